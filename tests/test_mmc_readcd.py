"""READ CD and READ CD MSF (MMC-5 §6.20, §6.21) with raw sectors checked against an
independent reference of ECMA-130.

The reference below is written from the standard's definitions with plain
per-byte loops: the EDC (Annex B) bit by bit, GF(2^8) products by shift and
add, the P and Q parity (Annex A) solved symbol by symbol from the two check
equations, and the Q sub-channel CRC (§22.3.6) bit by bit.  It shares no
tables or code with ``devices/media/cdframe.py``.  The check values of the
CRC catalogue anchor the two CRCs: CRC-32/CD-ROM-EDC("123456789") =
6EC2EDC4h and CRC-16/GSM (the Q CRC: poly 1021h, inverted) = CE3Ch.
"""

from __future__ import annotations

import numpy as np
import pytest

from devices.media import cdframe
from tests.mmc_support import (
    CD_SECTORS,
    DVD_SECTORS,
    ILLEGAL_MODE,
    INVALID_FIELD,
    LBA_RANGE,
    FakeMedium,
    Host,
    sector_pattern,
)

# -- the reference ---------------------------------------------------------------------


def ref_edc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0xD8018001 if crc & 1 else 0)
    return crc


def gf_mul(a: int, b: int) -> int:
    """Product in GF(2^8) with x^8 + x^4 + x^3 + x^2 + 1, by shift and add."""
    out = 0
    while b:
        if b & 1:
            out ^= a
        a <<= 1
        if a & 0x100:
            a ^= 0x11D
        b >>= 1
    return out


def gf_pow_alpha(n: int) -> int:
    x = 1
    for _ in range(n):
        x = gf_mul(x, 2)
    return x


def gf_inv(a: int) -> int:
    return next(b for b in range(1, 256) if gf_mul(a, b) == 1)


def ref_check_symbols(data: list[int]) -> tuple[int, int]:
    """Two check symbols p0, p1 after ``data`` (n = len + 2 symbols) such that
    sum(V_k) = 0 and sum(alpha^(n-1-k) V_k) = 0 (ECMA-130 Annex A, H_P / H_Q)."""
    n = len(data) + 2
    s0 = s1 = 0
    for k, v in enumerate(data):
        s0 ^= v
        s1 ^= gf_mul(gf_pow_alpha(n - 1 - k), v)
    # p0 + p1 = s0 and alpha p0 + p1 = s1  =>  p0 = (s0 + s1) / (1 + alpha)
    p0 = gf_mul(s0 ^ s1, gf_inv(1 ^ 2))
    return p0, s0 ^ p0


def ref_fill_ecc(sector: bytearray) -> None:
    """P then Q parity over bytes 12-2075 (two byte planes of 1170 words each)."""
    for plane in range(2):
        def at(word: int, plane: int = plane) -> int:
            return 12 + 2 * word + plane

        for col in range(43):  # P: 43 columns of 24 words, parity words 1032+col, 1075+col
            data = [sector[at(43 * k + col)] for k in range(24)]
            p0, p1 = ref_check_symbols(data)
            sector[at(1032 + col)], sector[at(1075 + col)] = p0, p1
        for diag in range(26):  # Q: 26 diagonals of 43 words, parity 1118+diag, 1144+diag
            data = [sector[at((44 * k + 43 * diag) % 1118)] for k in range(43)]
            q0, q1 = ref_check_symbols(data)
            sector[at(1118 + diag)], sector[at(1144 + diag)] = q0, q1


def to_bcd(v: int) -> int:
    return int(f"{v:02d}", 16)


def ref_msf(lba: int) -> tuple[int, int, int]:
    f = lba + 150
    return f // 4500, (f // 75) % 60, f % 75


def ref_sector(user: bytes, lba: int) -> bytes:
    """A mode-1 sector per ECMA-130 §14: sync, BCD header, data, EDC (LSB first), zeros, ECC."""
    s = bytearray(2352)
    s[0:12] = b"\x00" + b"\xff" * 10 + b"\x00"
    m, sec, f = ref_msf(lba)
    s[12:16] = bytes([to_bcd(m), to_bcd(sec), to_bcd(f), 0x01])
    s[16:2064] = user
    edc = ref_edc(bytes(s[0:2064]))
    s[2064:2068] = bytes([(edc >> (8 * i)) & 0xFF for i in range(4)])
    ref_fill_ecc(s)
    return bytes(s)


def ref_crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
    return crc ^ 0xFFFF


def ref_q(lba: int) -> bytes:
    rm, rs, rf = ref_msf(lba - 150)  # relative to track 1 (LBA 0)
    am, as_, af = ref_msf(lba)
    q = bytes([0x41, 0x01, 0x01, to_bcd(rm), to_bcd(rs), to_bcd(rf), 0,
               to_bcd(am), to_bcd(as_), to_bcd(af)])
    crc = ref_crc16(q)
    return q + bytes([crc >> 8, crc & 0xFF])


def syndromes_are_zero(sector: bytes) -> bool:
    """Check the H_P and H_Q equations of every P and Q vector straight from Annex A."""
    for plane in range(2):
        def w(word: int, plane: int = plane) -> int:
            return sector[12 + 2 * word + plane]

        for col in range(43):
            vec = [w(43 * k + col) for k in range(26)]
            if not _zero(vec):
                return False
        for diag in range(26):
            vec = [w((44 * k + 43 * diag) % 1118) for k in range(43)]
            vec += [w(1118 + diag), w(1144 + diag)]
            if not _zero(vec):
                return False
    return True


def _zero(vec: list[int]) -> bool:
    n = len(vec)
    s0 = s1 = 0
    for k, v in enumerate(vec):
        s0 ^= v
        s1 ^= gf_mul(gf_pow_alpha(n - 1 - k), v)
    return s0 == 0 and s1 == 0


# -- the reference itself --------------------------------------------------------------


def test_reference_edc_matches_the_crc_catalogue_check_value() -> None:
    assert ref_edc(b"123456789") == 0x6EC2EDC4


def test_reference_q_crc_matches_the_crc_catalogue_check_value() -> None:
    assert ref_crc16(b"123456789") == 0xCE3C


ZERO_SECTOR_LBA_16 = ref_sector(bytes(2048), 16)


def test_known_sector_all_zero_mode1_at_lba_16() -> None:
    s = ZERO_SECTOR_LBA_16
    assert s[:16] == bytes.fromhex("00ffffffffffffffffffff00" "00021601")  # 00:02:16, mode 1
    assert s[2068:2076] == bytes(8)
    assert syndromes_are_zero(s)
    assert any(s[2064:])  # the header makes EDC and parity non-zero


# -- production against the reference --------------------------------------------------


def test_cdframe_matches_the_reference_on_the_known_sector() -> None:
    got = cdframe.mode1_sectors(np.zeros(2048, np.uint8), 16)
    assert got.shape == (1, 2352)
    assert got[0].tobytes() == ZERO_SECTOR_LBA_16


def test_cdframe_edc_matches_the_reference_on_random_data() -> None:
    rng = np.random.default_rng(7)
    frames = rng.integers(0, 256, size=(3, 2352), dtype=np.uint8)
    got = cdframe.edc(frames)
    assert [int(v) for v in got] == [ref_edc(f[:2064].tobytes()) for f in frames]


def test_cdframe_sectors_match_the_reference_on_random_user_data() -> None:
    rng = np.random.default_rng(11)
    user = rng.integers(0, 256, size=2 * 2048, dtype=np.uint8)
    got = cdframe.mode1_sectors(user, 4500 * 3 + 17)
    for i in range(2):
        expected = ref_sector(user[i * 2048:(i + 1) * 2048].tobytes(), 4500 * 3 + 17 + i)
        assert got[i].tobytes() == expected
        assert syndromes_are_zero(got[i].tobytes())


def test_cdframe_q_subchannel_matches_the_reference() -> None:
    lbas = np.array([0, 1, 74, 75, 4499, 333000])
    got = cdframe.q_subchannel(lbas)
    assert [row.tobytes() for row in got] == [ref_q(int(lba)) for lba in lbas]


# -- READ CD over the ports ------------------------------------------------------------


def read_cd(lba: int, count: int, byte9: int, sub: int = 0, sector_type: int = 0) -> list[int]:
    # BE type<<2 LBA(4) length(3) fields sub-channel control
    return [0xBE, sector_type << 2, *lba.to_bytes(4, "big"), *count.to_bytes(3, "big"),
            byte9, sub, 0]


@pytest.fixture
def host() -> Host:
    return Host(FakeMedium(CD_SECTORS))


def raw(lba: int, count: int = 1) -> bytes:
    return b"".join(ref_sector(sector_pattern(n, 1).tobytes(), n) for n in range(lba, lba + count))


def test_read_cd_user_data_only(host: Host) -> None:
    assert host.ok(read_cd(5, 2, 0x10)) == sector_pattern(5, 2).tobytes()


def test_read_cd_raw_sectors_equal_the_reference(host: Host) -> None:
    assert host.ok(read_cd(16, 3, 0xF8)) == raw(16, 3)


def test_read_cd_raw_sectors_cross_drq_blocks(host: Host) -> None:
    assert host.ok(read_cd(100, 3, 0xF8), bcl=5000) == raw(100, 3)


@pytest.mark.parametrize("byte9, start, end", [
    (0x80, 0, 12),  # sync
    (0x20, 12, 16),  # header
    (0x60, 12, 16),  # all headers (a mode-1 sector has no sub-header)
    (0xA0, 0, 16),  # sync + header
    (0x30, 12, 2064),  # header + user data
    (0xB0, 0, 2064),  # sync + header + user data
    (0x18, 16, 2352),  # user data + EDC/ECC
    (0x38, 12, 2352),  # header + user data + EDC/ECC
    (0x78, 12, 2352),
    (0x08, 2064, 2352),  # EDC/ECC only
    (0xE0, 0, 16),
])
def test_read_cd_field_selection(host: Host, byte9: int, start: int, end: int) -> None:
    assert host.ok(read_cd(7, 2, byte9)) == b"".join(s[start:end] for s in
                                                     (raw(7), raw(8)))


@pytest.mark.parametrize("byte9", [0x00, 0x40])  # nothing, or a sub-header that mode 1 lacks
def test_read_cd_selecting_nothing_moves_no_data_even_with_bcl_0(host: Host, byte9: int) -> None:
    assert host.ok(read_cd(0, 4, byte9), bcl=0) == b""


def test_read_cd_zero_blocks_is_a_no_op_with_bcl_0(host: Host) -> None:
    assert host.ok(read_cd(0, 0, 0xF8), bcl=0) == b""


@pytest.mark.parametrize("error_bits, size", [(0x02, 294), (0x04, 296)])
def test_read_cd_c2_error_field_is_all_zero(host: Host, error_bits: int, size: int) -> None:
    data = host.ok(read_cd(3, 2, 0xF8 | error_bits))
    assert len(data) == 2 * (2352 + size)
    assert data[:2352] == raw(3) and data[2352:2352 + size] == bytes(size)
    assert data[2352 + size:2 * 2352 + size] == raw(4)


def test_read_cd_formatted_q_subchannel(host: Host) -> None:
    data = host.ok(read_cd(200, 2, 0xF8, sub=2))
    assert len(data) == 2 * (2352 + 16)
    assert data[2352:2368] == ref_q(200) + bytes(4)
    assert data[2368 + 2352:] == ref_q(201) + bytes(4)


def test_read_cd_raw_pw_subchannel_carries_q_in_bit_6(host: Host) -> None:
    data = host.ok(read_cd(200, 1, 0x10, sub=1))
    pw = data[2048:]
    assert len(pw) == 96
    bits = "".join(f"{b:08b}" for b in ref_q(200))
    assert pw == bytes(0x40 if bit == "1" else 0 for bit in bits)


def test_read_cd_rw_subchannel_is_zero(host: Host) -> None:
    assert host.ok(read_cd(0, 1, 0x00, sub=4)) == bytes(96)


@pytest.mark.parametrize("byte9, sub", [
    (0x90, 0),  # sync + user data: the header is missing in between
    (0x28, 0),  # header + EDC/ECC without user data
    (0x88, 0),  # sync + EDC/ECC
    (0x98, 0),
    (0x16, 0),  # error field 11b: reserved
    (0x10, 3),  # reserved sub-channel selections
    (0x10, 5),
    (0x10, 7),
])
def test_read_cd_illegal_field_combinations(host: Host, byte9: int, sub: int) -> None:
    assert host.fails(read_cd(0, 1, byte9, sub)) == INVALID_FIELD


@pytest.mark.parametrize("sector_type", [0, 2])
def test_read_cd_expected_type_any_or_mode1_matches(host: Host, sector_type: int) -> None:
    assert host.ok(read_cd(0, 1, 0x10, sector_type=sector_type)) == sector_pattern(0, 1).tobytes()


@pytest.mark.parametrize("sector_type, sense", [
    (1, ILLEGAL_MODE),  # CD-DA
    (3, ILLEGAL_MODE),  # mode 2 formless
    (4, ILLEGAL_MODE),  # mode 2 form 1
    (5, ILLEGAL_MODE),  # mode 2 form 2
    (6, INVALID_FIELD),
    (7, INVALID_FIELD),
])
def test_read_cd_expected_type_mismatch(host: Host, sector_type: int,
                                        sense: tuple[int, int, int]) -> None:
    assert host.fails(read_cd(0, 1, 0x10, sector_type=sector_type)) == sense


def test_read_cd_past_the_end_is_lba_out_of_range(host: Host) -> None:
    assert host.fails(read_cd(999, 2, 0x10)) == LBA_RANGE
    assert host.ok(read_cd(999, 1, 0x10)) == sector_pattern(999, 1).tobytes()


def test_read_cd_on_a_dvd_reads_user_data_but_no_cd_fields() -> None:
    host = Host(FakeMedium(DVD_SECTORS))
    assert host.ok(read_cd(360500, 1, 0x10)) == sector_pattern(360500, 1).tobytes()
    assert host.fails(read_cd(0, 1, 0xF8)) == ILLEGAL_MODE
    assert host.fails(read_cd(0, 1, 0x10, sub=2)) == ILLEGAL_MODE


def test_read_cd_needs_a_medium() -> None:
    assert Host(None).fails(read_cd(0, 1, 0x10)) == (0x02, 0x3A, 0x01)


# -- READ CD MSF -----------------------------------------------------------------------


def read_cd_msf(start: tuple[int, int, int], end: tuple[int, int, int], byte9: int) -> list[int]:
    # B9 type rsvd start(M,S,F) end(M,S,F) fields sub-channel control
    return [0xB9, 0, 0, *start, *end, byte9, 0, 0]


def test_read_cd_msf_reads_up_to_the_ending_address(host: Host) -> None:
    assert host.ok(read_cd_msf((0, 2, 0), (0, 2, 3), 0xF8)) == raw(0, 3)
    assert host.ok(read_cd_msf((0, 3, 74), (0, 4, 1), 0x10)) == sector_pattern(149, 2).tobytes()


def test_read_cd_msf_equal_addresses_move_nothing(host: Host) -> None:
    assert host.ok(read_cd_msf((0, 2, 5), (0, 2, 5), 0xF8), bcl=0) == b""


@pytest.mark.parametrize("start, end", [
    ((0, 2, 5), (0, 2, 4)),  # ends before it starts
    ((0, 1, 74), (0, 2, 1)),  # before the first sector (00:02:00)
    ((0, 60, 0), (0, 61, 0)),  # second 60
    ((0, 2, 75), (0, 3, 0)),  # frame 75
])
def test_read_cd_msf_bad_addresses_are_invalid_field(host: Host, start: tuple[int, int, int],
                                                     end: tuple[int, int, int]) -> None:
    assert host.fails(read_cd_msf(start, end, 0x10)) == INVALID_FIELD


def test_read_cd_msf_past_the_end_is_lba_out_of_range(host: Host) -> None:
    # LBA 1000 is 00:15:25 (1150 frames)
    assert host.fails(read_cd_msf((0, 15, 24), (0, 15, 26), 0x10)) == LBA_RANGE
