"""Raw CD sectors: sync, header, EDC and ECC of mode-1 sectors, and sub-channel Q.

ECMA-130 (CD-ROM, 2nd edition): §14.1 sync pattern, §14.2 header (absolute
MSF in BCD and the mode byte), §14.3 mode 1 layout (2048 user bytes, EDC,
8 zero bytes, P and Q parity), Annex A (the Reed-Solomon product code that
gives the 172 P-parity and 104 Q-parity bytes), Annex B (the 32-bit EDC),
§22.3 (sub-channel Q: mode-1 position data and its CRC-16).  READ CD
(MMC-5 §6.20) returns these fields unscrambled.

Everything is vectorised over the sectors of a request: the EDC comes from a
per-position table (the CRC is linear, so it is the XOR of one table entry
per byte); the parity symbols come from a handful of numpy gathers and XOR
reductions over all P columns or Q diagonals of all sectors at once.
"""

from __future__ import annotations

import binascii
from functools import cache

import numpy as np

RAW_SECTOR_SIZE = 2352
USER_SIZE = 2048
SYNC = np.array([0x00] + [0xFF] * 10 + [0x00], dtype=np.uint8)
"""ECMA-130 §14.1: 00h, ten FFh, 00h."""

# Byte offsets in a mode-1 sector (ECMA-130 §14.3, figure 10).
SYNC_AT, HEADER_AT, USER_AT, EDC_AT, ZERO_AT, P_AT, Q_AT = 0, 12, 16, 2064, 2068, 2076, 2248
EDC_SPAN = EDC_AT  # the EDC covers sync, header and user data: bytes 0-2063
MODE_1 = 0x01

# -- EDC (ECMA-130 Annex B) ------------------------------------------------------------
EDC_POLY_REFLECTED = 0xD8018001
"""P(x) = (x^16 + x^15 + x^2 + 1)(x^16 + x^2 + x + 1) = 0x8001801B, bit-reversed:
the EDC is computed least significant bit first, from 0, with no final inversion,
and stored least significant byte first."""


@cache
def _edc_tables() -> np.ndarray:
    """``T[p, v]``: the EDC contribution of byte value ``v`` at position ``p`` of 2064
    (built at the first raw-sector read, not at import: 6 ms a boot does not need)."""
    byte_table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        byte_table = np.where(
            byte_table & 1, (byte_table >> 1) ^ np.uint32(EDC_POLY_REFLECTED), byte_table >> 1
        ).astype(np.uint32)
    tables = np.empty((EDC_SPAN, 256), dtype=np.uint32)
    row = byte_table  # the last byte: one table step
    tables[EDC_SPAN - 1] = row
    for p in range(EDC_SPAN - 2, -1, -1):  # one zero byte more after position p
        row = (row >> 8) ^ byte_table[row & 0xFF]
        tables[p] = row
    return tables


_EDC_POS = np.arange(EDC_SPAN)


def edc(frames: np.ndarray) -> np.ndarray:
    """EDC of bytes 0-2063 of each sector in ``frames`` (shape ``(n, >=2064)``), as uint32."""
    contrib = _edc_tables()[_EDC_POS, frames[:, :EDC_SPAN]]
    return np.bitwise_xor.reduce(contrib, axis=1)


# -- ECC (ECMA-130 Annex A) ------------------------------------------------------------
GF_POLY = 0x11D
"""GF(2^8) field generator x^8 + x^4 + x^3 + x^2 + 1; the primitive element alpha is x."""


def _gf_tables() -> tuple[np.ndarray, np.ndarray]:
    exp = np.zeros(512, dtype=np.int64)
    log = np.zeros(256, dtype=np.int64)
    x = 1
    for i in range(255):
        exp[i] = x
        log[x] = i
        x <<= 1
        if x & 0x100:
            x ^= GF_POLY
    exp[255:510] = exp[:255]
    mul = np.zeros((256, 256), dtype=np.uint8)
    nz = np.arange(1, 256)
    mul[1:, 1:] = exp[log[nz][:, None] + log[nz][None, :]]
    return exp, mul


_GF_EXP, _GF_MUL = _gf_tables()
_ONE_PLUS_ALPHA = 1 ^ 2
_INV_1_PLUS_ALPHA = next(v for v in range(1, 256) if _GF_MUL[_ONE_PLUS_ALPHA, v] == 1)

# The 2340 bytes from the header on are 1170 16-bit words; each byte plane (the
# words' first and second bytes) is coded separately.  P vectors are the 43
# columns of a 24 x 43 word array (26 symbols with 2 parity); Q vectors are 26
# diagonals through the 26 x 43 array with the P parity (45 symbols with 2 parity).
_P_DATA = np.arange(24)[:, None] * 43 + np.arange(43)[None, :]  # (k, column) -> word
_Q_DATA = (np.arange(43)[None, :] * 44 + np.arange(26)[:, None] * 43) % 1118  # (diag, k)
_P_COEF = _GF_EXP[25 - np.arange(24)].astype(np.uint8)  # alpha^(25-k) for data symbol k
_Q_COEF = _GF_EXP[44 - np.arange(43)].astype(np.uint8)  # alpha^(44-k)


def _parity(vectors: np.ndarray, coef: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two check symbols making ``sum(V) = 0`` and ``sum(alpha^(n-1-k) V_k) = 0``.

    ``vectors`` has the data symbols on its last axis; with A = sum(V_k) and
    B = sum(alpha^(n-1-k) V_k) over data symbols: p0 = (A + B) / (1 + alpha),
    p1 = A + p0 (GF(2^8) sums are XOR).
    """
    a = np.bitwise_xor.reduce(vectors, axis=-1)
    b = np.bitwise_xor.reduce(_GF_MUL[coef, vectors], axis=-1)
    p0 = _GF_MUL[_INV_1_PLUS_ALPHA, a ^ b]
    return p0, a ^ p0


def fill_ecc(frames: np.ndarray) -> None:
    """Write the P and Q parity (bytes 2076-2351) of each sector in ``frames`` in place.

    Bytes 12-2075 (header, user data, EDC, zeros) must already be in place.
    """
    n = frames.shape[0]
    words = frames[:, HEADER_AT:].reshape(n, 1170, 2).transpose(0, 2, 1)  # (n, plane, word)
    assert np.shares_memory(words, frames)  # a view: the parity lands in ``frames``
    cols = words[:, :, _P_DATA.T]  # (n, plane, 43 columns, 24 symbols)
    p0, p1 = _parity(cols, _P_COEF)
    words[:, :, 1032:1075] = p0
    words[:, :, 1075:1118] = p1
    diags = words[:, :, _Q_DATA]  # (n, plane, 26 diagonals, 43 symbols)
    q0, q1 = _parity(diags, _Q_COEF)
    words[:, :, 1118:1144] = q0
    words[:, :, 1144:1170] = q1


# -- whole sectors ---------------------------------------------------------------------
def bcd(values: np.ndarray) -> np.ndarray:
    """Binary 0-99 to packed BCD."""
    return ((values // 10) << 4 | (values % 10)).astype(np.uint8)


def msf_fields(lbas: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Absolute minute, second, frame of each LBA (LBA 0 = 00:02:00, ECMA-130 §14.2.1)."""
    frames = lbas.astype(np.int64) + 150
    return frames // 4500, (frames // 75) % 60, frames % 75


def mode1_sectors(user: np.ndarray, first_lba: int) -> np.ndarray:
    """Complete 2352-byte mode-1 sectors for ``user`` (``n * 2048`` bytes) from ``first_lba``."""
    n = user.size // USER_SIZE
    frames = np.zeros((n, RAW_SECTOR_SIZE), dtype=np.uint8)
    frames[:, SYNC_AT:HEADER_AT] = SYNC
    m, s, f = msf_fields(np.arange(first_lba, first_lba + n))
    frames[:, HEADER_AT] = bcd(m % 100)  # minutes past 99 wrap (a CD never gets there)
    frames[:, HEADER_AT + 1] = bcd(s)
    frames[:, HEADER_AT + 2] = bcd(f)
    frames[:, HEADER_AT + 3] = MODE_1
    frames[:, USER_AT:EDC_AT] = user.reshape(n, USER_SIZE)
    frames[:, EDC_AT:ZERO_AT] = edc(frames).astype("<u4").view(np.uint8).reshape(n, 4)
    fill_ecc(frames)
    return frames


# -- sub-channel (ECMA-130 §22.3) ------------------------------------------------------
Q_CONTROL_ADR = 0x41
"""Control 4 (data track, copy prohibited) in the high nibble, ADR 1 (position) low."""


_CRC16 = np.array([binascii.crc_hqx(bytes([b]), 0) for b in range(256)], dtype=np.uint32)
"""CRC-16 (x^16 + x^12 + x^5 + 1, initial value 0) of each byte: the standard library's
``crc_hqx`` is that CRC; the table lets :func:`q_subchannel` run it over many sectors at once."""


def q_subchannel(lbas: np.ndarray) -> np.ndarray:
    """The 12 Q bytes (10 data + CRC) of track 1, index 1, at each LBA: shape ``(n, 12)``.

    Relative time counts from the start of track 1 (LBA 0); absolute time adds
    the 2-second pregap.  The CRC-16 (x^16 + x^12 + x^5 + 1) is stored inverted.
    """
    n = lbas.size
    q = np.zeros((n, 12), dtype=np.uint8)
    q[:, 0] = Q_CONTROL_ADR
    q[:, 1] = 0x01  # track 1 (BCD)
    q[:, 2] = 0x01  # index 1
    rel = lbas.astype(np.int64)
    q[:, 3] = bcd((rel // 4500) % 100)
    q[:, 4] = bcd((rel // 75) % 60)
    q[:, 5] = bcd(rel % 75)
    m, s, f = msf_fields(lbas)
    q[:, 7], q[:, 8], q[:, 9] = bcd(m % 100), bcd(s), bcd(f)
    crc = np.zeros(n, dtype=np.uint32)
    for i in range(10):  # ten table steps, each over all sectors
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[((crc >> 8) ^ q[:, i]) & 0xFF]
    crc ^= 0xFFFF
    q[:, 10] = crc >> 8
    q[:, 11] = crc & 0xFF
    return q


def raw_pw_subchannel(lbas: np.ndarray) -> np.ndarray:
    """96 raw P-W bytes per sector (one bit of each channel per byte, P in bit 7).

    P is 0 inside a track; Q carries :func:`q_subchannel`; R-W are 0 (no CD-G).
    """
    qbits = np.unpackbits(q_subchannel(lbas), axis=1)  # (n, 96), first bit first
    return (qbits << 6).astype(np.uint8)
