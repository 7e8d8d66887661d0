"""Named CDB field and reply-layout helpers (big-endian, SPC-3 §4.3.1).

Handlers read fields through these helpers instead of ad-hoc index arithmetic.
"""

from __future__ import annotations


def be16(buf: bytes, offset: int) -> int:
    return (buf[offset] << 8) | buf[offset + 1]


def be24(buf: bytes, offset: int) -> int:
    return (buf[offset] << 16) | (buf[offset + 1] << 8) | buf[offset + 2]


def be32(buf: bytes, offset: int) -> int:
    return int.from_bytes(buf[offset : offset + 4], "big")


def put16(value: int) -> bytes:
    return (value & 0xFFFF).to_bytes(2, "big")


def put32(value: int) -> bytes:
    return (value & 0xFFFFFFFF).to_bytes(4, "big")


def ascii_field(text: str, width: int) -> bytes:
    """A fixed-width, space-padded ASCII field (SPC-3 §4.4.1)."""
    return text.encode("ascii", "replace")[:width].ljust(width, b" ")


def lba_to_msf(lba: int) -> tuple[int, int, int]:
    """Absolute MSF address of a logical block (MMC-5 §4.2.3: LBA 0 = 00:02:00)."""
    frames = lba + 150
    return frames // (60 * 75), (frames // 75) % 60, frames % 75


def msf_to_lba(minute: int, second: int, frame: int) -> int:
    """Inverse of :func:`lba_to_msf`."""
    return (minute * 60 + second) * 75 + frame - 150
