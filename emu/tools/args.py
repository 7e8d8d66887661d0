"""Numbers and drive locations typed by a user, checked once for every tool.

Each parser either returns a value inside its documented range or raises a
:class:`ValueError` whose message names the argument, what was typed and the
limits.  ``argparse`` turns that into ``emu CMD: error: argument --lba: ...``
(exit status 2); the console prints it as ``error: ...`` and goes on.  Nothing
typed by a user reaches ``int.to_bytes`` unchecked, so no ``OverflowError``
escapes.

Numbers are decimal or ``0x`` hexadecimal (``int(text, 0)``).  A drive
location is written ``ide1-0`` (bus 1, device 0) in every output; ``ata1-0``
(SeaBIOS's spelling) and ``1-0`` / ``1:0`` are accepted on input too
(``emu.firmware.ata.location_name`` writes it).  This module imports nothing
heavy: the CLI builds its arguments with it before numpy loads.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable

__all__ = ["parse_location", "parse_int", "int_range", "even_byte_count", "positive_float",
           "location"]

MAX_LBA = 0xFFFF_FFFF
"""READ(10)/READ(12) carry a 32-bit LBA (MMC-5 §6.19, §6.20)."""
MAX_BLOCKS10 = 0xFFFF
"""READ(10)'s transfer length is 16 bits (MMC-5 §6.19)."""
MAX_BLOCKS12 = 0xFFFF_FFFF
"""READ(12)'s transfer length is 32 bits (MMC-5 §6.20)."""
MAX_PAGE = 0x3F
"""A mode page code is 6 bits (SPC-3 §7.4.5)."""
BYTE_COUNT_LIMITS = (2, 0xFFFE)
"""An even byte-count limit for PIO packet commands (ATA/ATAPI-7 vol 2 §11.8.2)."""

_LOCATION = re.compile(r"^(?:ide|ata)?([01])[-:.]([01])$", re.IGNORECASE)


def parse_location(text: str) -> tuple[int, int]:
    """``ide1-0``, ``ata1-0``, ``1-0`` or ``1:0`` → ``(1, 0)``."""
    match = _LOCATION.match(text.strip())
    if match is None:
        raise ValueError(f"drive location {text!r} is not one of ide0-0, ide0-1, ide1-0, "
                         "ide1-1 (ata1-0 and 1-0 are accepted too)")
    return int(match.group(1)), int(match.group(2))


def parse_int(text: str, what: str, low: int, high: int) -> int:
    """``text`` as a whole number in ``low..high``, or a ValueError that gives the limits."""
    try:
        value = int(str(text).strip(), 0)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a whole number "
                         f"(decimal or 0x hex, {low}-{high})") from None
    if not low <= value <= high:
        raise ValueError(f"{what} {text} is out of range ({low}-{high}, "
                         f"0x{low:X}-0x{high:X})")
    return value


def parse_float(text: str, what: str, low: float) -> float:
    """``text`` as a number greater than ``low``."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a number") from None
    if not value > low:
        raise ValueError(f"{what} {text} must be greater than {low:g}")
    if not math.isfinite(value):
        raise ValueError(f"{what} {text} must be a finite number")
    return value


def int_range(low: int, high: int, what: str = "value") -> Callable[[str], int]:
    """An ``argparse`` type for a whole number in ``low..high``."""

    def convert(text: str) -> int:
        try:
            return parse_int(text, what, low, high)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = what  # argparse names the type in some messages
    return convert


def even_byte_count(text: str) -> int:
    """An ``argparse`` type for a PIO byte-count limit: even, 2..65534."""
    low, high = BYTE_COUNT_LIMITS
    try:
        value = parse_int(text, "byte-count limit", low, high)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value & 1:
        raise argparse.ArgumentTypeError(f"byte-count limit {text} must be even "
                                         f"({low}-{high}, e.g. 0x800)")
    return value


def positive_float(text: str) -> float:
    """An ``argparse`` type for a number of seconds greater than zero."""
    try:
        return parse_float(text, "seconds", 0.0)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def location(text: str) -> tuple[int, int]:
    """An ``argparse`` type for ``--drive ide1-0``."""
    try:
        return parse_location(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
