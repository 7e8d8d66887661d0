"""Build sample and test disc images with pycdlib, byte-for-byte reproducibly.

* :func:`pattern_bytes` is the self-checking data pattern: every 16-byte record
  holds its own absolute byte offset, so any sector read can be verified.
* :func:`build_patterned_iso` makes an ISO 9660 image (ECMA-119) whose
  ``/PATTERN.BIN`` extent is patterned, optionally with an El Torito
  no-emulation boot image (El Torito §2.2, media type 0), and optionally padded
  past the ISO 9660 volume with more patterned sectors (as hybrid images append
  partitions past the volume; the drive's capacity is the file size).
* :func:`build_sample_iso` makes the built-in sample that the main job boots.
* :func:`build_floppy_emulation_iso` makes a floppy-emulation boot image: 1.2M,
  1.44M or 2.88M (El Torito §2.2, media type 1, 2 or 3, chosen by the size).

Determinism: pycdlib stamps the current time into the volume descriptor dates
(ECMA-119 §8.4.26-8.4.29) and every directory record's recording date
(ECMA-119 §9.1.5), in local time with a GMT offset.  While building, pycdlib's
modules see a clock fixed at :data:`BUILD_TIME`, in UTC, so the same inputs
give the same bytes whatever the day or time zone.

Run ``python -m images.builders sample`` to regenerate ``images/sample.iso``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pycdlib

from images import SAMPLE_ISO

SECTOR_SIZE = 2048
"""Logical block size of the images built here (ECMA-119 §6.1.2)."""

VIRTUAL_SECTOR = 512
"""El Torito counts a no-emulation boot image in 512-byte virtual sectors (§2.2)."""

RECORD_SIZE = 16
"""Bytes per self-describing pattern record."""

BUILD_TIME = 1_704_067_200
"""The fixed clock for reproducible images: 2024-01-01 00:00:00 UTC."""

FLOPPY_144_SIZE = 1_474_560
"""Bytes in a 1.44M floppy image (80 cylinders, 2 heads, 18 sectors of 512)."""
FLOPPY_SIZES = {1: 1_228_800, 2: FLOPPY_144_SIZE, 3: 2_949_120}
"""El Torito §2.2 floppy media type → image bytes: 1.2M (80×2×15), 1.44M (80×2×18),
2.88M (80×2×36)."""

PATTERN_PATH = "/PATTERN.BIN;1"
SAMPLE_PATH = SAMPLE_ISO
SAMPLE_VOLUME_ID = "EMU_SAMPLE"
SAMPLE_BOOT_TEXT = b"EMU SAMPLE BOOT IMAGE"
SAMPLE_BOOT_PROGRAM = Path(__file__).with_name("sampleboot.bin")
SAMPLE_INFO_SIGNATURE = b"EMUINFO1"
SAMPLE_EXPECTED_OFFSET = 16
"""Where the sample boot program keeps the expected sum32 of /DATA.BIN."""
BOOT_SIGNATURE = b"\x55\xaa"
"""The PC boot signature at offset 510 of a boot sector."""

_PYCDLIB_CLOCK_USERS = ("pycdlib", "headervd", "dates", "utils", "udf", "inplaceeditor")
_clock_lock = threading.Lock()


# -- the self-checking pattern ---------------------------------------------------


def pattern_bytes(offset: int, length: int) -> np.ndarray:
    """The pattern bytes at absolute byte offsets ``[offset, offset+length)``.

    The image is cut into 16-byte records.  The record starting at byte ``r``
    (a multiple of 16) holds ``r`` as a little-endian u64 in bytes 0-7 and its
    bitwise NOT (``r ^ 0xFFFF_FFFF_FFFF_FFFF``) as a little-endian u64 in bytes
    8-15, so no record is all zeros and every record names its own place: a
    read of LBA ``n`` must equal ``pattern_bytes(n * 2048, 2048)``.
    """
    if offset < 0 or length < 0:
        raise ValueError(f"negative offset or length: {offset}, {length}")
    first = offset // RECORD_SIZE
    last = -(-(offset + length) // RECORD_SIZE)
    starts = np.arange(first, last, dtype=np.uint64) * np.uint64(RECORD_SIZE)
    records = np.empty((last - first, 2), dtype="<u8")
    records[:, 0] = starts
    records[:, 1] = ~starts
    skip = offset - first * RECORD_SIZE
    return records.reshape(-1).view(np.uint8)[skip : skip + length]


# -- reproducible pycdlib ---------------------------------------------------------


class _FixedClock(types.ModuleType):
    """Stands in for the ``time`` module inside pycdlib: a fixed clock in UTC."""

    def __init__(self, now: float) -> None:
        super().__init__("time")
        self._now = now

    def time(self) -> float:
        return self._now

    def localtime(self, secs: float | None = None) -> time.struct_time:
        return time.gmtime(self._now if secs is None else secs)

    def gmtime(self, secs: float | None = None) -> time.struct_time:
        return time.gmtime(self._now if secs is None else secs)

    def __getattr__(self, name: str) -> object:
        return getattr(time, name)


@contextlib.contextmanager
def fixed_clock(now: float = BUILD_TIME) -> Iterator[None]:
    """Make pycdlib see ``now`` in UTC (its modules only; the real ``time`` is untouched).

    Builds are serialised by a lock, because the swap is visible to every thread
    that uses pycdlib meanwhile.
    """
    clock = _FixedClock(now)
    with _clock_lock:
        saved: list[tuple[types.ModuleType, object]] = []
        try:
            for name in _PYCDLIB_CLOCK_USERS:
                module = sys.modules.get(f"pycdlib.{name}")
                if module is not None and hasattr(module, "time"):
                    saved.append((module, module.time))
                    module.time = clock  # type: ignore[attr-defined]
            yield
        finally:
            for module, original in saved:
                module.time = original  # type: ignore[attr-defined]


def _new_iso(volume_id: str, *, joliet: bool = False, rock_ridge: bool = False) -> pycdlib.PyCdlib:
    iso = pycdlib.PyCdlib()
    iso.new(
        interchange_level=1,
        vol_ident=volume_id,
        sys_ident="",
        app_ident_str="EMU-ATAPI IMAGES.BUILDERS",
        joliet=3 if joliet else None,
        rock_ridge="1.09" if rock_ridge else None,
    )
    return iso


def _add_file(
    iso: pycdlib.PyCdlib, name: str, data: bytes, *, joliet: bool, rock_ridge: bool
) -> None:
    """Add ``/NAME;1`` (ISO 9660 level 1 name) with optional Joliet / Rock Ridge names."""
    iso.add_fp(
        io.BytesIO(data),
        len(data),
        f"/{name};1",
        rr_name=name.lower() if rock_ridge else None,
        joliet_path=f"/{name.lower()}" if joliet else None,
    )


def _write(iso: pycdlib.PyCdlib, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        iso.write_fp(out)
    iso.close()


def _extent(path: Path, iso_path: str) -> tuple[int, int]:
    """``(first_lba, length_in_bytes)`` of a file on a built image."""
    iso = pycdlib.PyCdlib()
    with open(path, "rb") as fp:
        iso.open_fp(fp)
        try:
            record = iso.get_record(iso_path=iso_path)
            return record.extent_location(), record.get_data_length()
        finally:
            iso.close()


def _fill_pattern(path: Path, first_lba: int, sectors: int) -> None:
    """Overwrite (or append) sectors ``[first_lba, first_lba+sectors)`` with the pattern."""
    with open(path, "r+b") as out:
        out.seek(first_lba * SECTOR_SIZE)
        out.write(pattern_bytes(first_lba * SECTOR_SIZE, sectors * SECTOR_SIZE).tobytes())


def _boot_sector(text: bytes, size: int = SECTOR_SIZE) -> bytes:
    """A tiny real-mode boot image: jump over ``text``, then halt forever.

    Layout: ``EB rel8`` (jmp short over the text), the NUL-terminated text,
    ``FA`` (cli), ``F4`` (hlt), ``EB FD`` (jmp back to the hlt); zeros; the boot
    signature 55 AA at offset 510; zeros up to ``size``.
    """
    code_at = 2 + len(text) + 1
    if code_at + 4 > 510:
        raise ValueError("boot text too long")
    image = bytearray(size)
    image[0:2] = bytes([0xEB, code_at - 2])
    image[2 : 2 + len(text)] = text
    image[code_at : code_at + 4] = b"\xfa\xf4\xeb\xfd"
    image[510:512] = BOOT_SIGNATURE
    return bytes(image)


# -- builders ---------------------------------------------------------------------


def build_patterned_iso(
    path: str | os.PathLike[str],
    data_sectors: int = 64,
    boot: bool = True,
    volume_id: str = "PATTERN",
    total_sectors: int | None = None,
    *,
    joliet: bool = False,
    rock_ridge: bool = False,
) -> Path:
    """An ISO whose ``/PATTERN.BIN`` (``data_sectors`` sectors) holds the offset pattern.

    With ``boot``, ``/BOOT.IMG`` is an El Torito no-emulation boot image: 2048
    bytes loaded as 4 virtual sectors at the default segment (load segment 0,
    which firmware reads as 0x07C0), a jump over "PATTERN BOOT IMAGE" and 55 AA
    at offset 510.  With ``total_sectors``, patterned sectors are appended past
    the ISO 9660 volume up to that many sectors.  See :func:`pattern_extent`.
    """
    if data_sectors < 1:
        raise ValueError("data_sectors must be at least 1")
    out = Path(path)
    with fixed_clock():
        iso = _new_iso(volume_id, joliet=joliet, rock_ridge=rock_ridge)
        _add_file(
            iso,
            "PATTERN.BIN",
            bytes(data_sectors * SECTOR_SIZE),
            joliet=joliet,
            rock_ridge=rock_ridge,
        )
        if boot:
            _add_file(
                iso,
                "BOOT.IMG",
                _boot_sector(b"PATTERN BOOT IMAGE"),
                joliet=joliet,
                rock_ridge=rock_ridge,
            )
            iso.add_eltorito("/BOOT.IMG;1", boot_load_size=SECTOR_SIZE // VIRTUAL_SECTOR)
        _write(iso, out)
    first, length = _extent(out, PATTERN_PATH)
    _fill_pattern(out, first, length // SECTOR_SIZE)
    if total_sectors is not None:
        _pad(out, total_sectors)
    return out


def _pad(path: Path, total_sectors: int) -> None:
    """Append patterned sectors past the ISO 9660 volume up to ``total_sectors``."""
    volume_sectors = path.stat().st_size // SECTOR_SIZE
    if total_sectors < volume_sectors:
        raise ValueError(
            f"total_sectors {total_sectors} is smaller than the ISO volume ({volume_sectors})"
        )
    _fill_pattern(path, volume_sectors, total_sectors - volume_sectors)


def pattern_extent(path: str | os.PathLike[str]) -> tuple[int, int]:
    """``(first_lba, sector_count)`` of ``/PATTERN.BIN`` on a patterned image."""
    first, length = _extent(Path(path), PATTERN_PATH)
    return first, length // SECTOR_SIZE


SAMPLE_README = b"""EMU SAMPLE DISC
===============

This is the built-in sample image of the emu-atapi PC emulator.

BOOT.IMG  El Torito no-emulation boot image (4 x 512-byte virtual sectors)
DATA.BIN  16 sectors of a self-checking pattern: every 16-byte record holds
          its own absolute byte offset in the image (u64 little-endian) and
          that offset's bitwise NOT.

Regenerate with: python -m images.builders sample
"""


def sample_boot_program() -> bytes:
    """``images/sampleboot.bin``, assembled by nasm from ``images/sampleboot.asm``."""
    program = SAMPLE_BOOT_PROGRAM.read_bytes()
    if len(program) != SECTOR_SIZE or program[8:16] != SAMPLE_INFO_SIGNATURE:
        raise ValueError(f"{SAMPLE_BOOT_PROGRAM} is not the 2048-byte sample boot program")
    return program


def sum32(data: bytes | np.ndarray) -> int:
    """The sample boot program's checksum: little-endian u32 words added modulo 2**32."""
    words = np.frombuffer(bytes(data), dtype="<u4")
    return int(words.sum(dtype=np.uint64) & np.uint64(0xFFFF_FFFF))


def build_sample_iso(path: str | os.PathLike[str] = SAMPLE_PATH) -> Path:
    """The built-in sample (volume "EMU_SAMPLE"): boot image, README.TXT, DATA.BIN.

    ISO 9660 level 1 names with Joliet and Rock Ridge trees; ``/BOOT.IMG`` is a
    no-emulation boot image: the boot program assembled from
    ``images/sampleboot.asm`` (2048 bytes; the text "EMU SAMPLE BOOT IMAGE" and
    55 AA at offset 510), which reads ``/DATA.BIN`` through INT 13h and checks
    its sum32 against the value stored at offset 16 of the image after the
    build; ``/DATA.BIN`` is 16 patterned sectors.
    """
    out = Path(path)
    with fixed_clock():
        iso = _new_iso(SAMPLE_VOLUME_ID, joliet=True, rock_ridge=True)
        _add_file(iso, "BOOT.IMG", sample_boot_program(), joliet=True, rock_ridge=True)
        _add_file(iso, "README.TXT", SAMPLE_README, joliet=True, rock_ridge=True)
        _add_file(iso, "DATA.BIN", bytes(16 * SECTOR_SIZE), joliet=True, rock_ridge=True)
        iso.add_eltorito(
            "/BOOT.IMG;1",
            boot_load_size=SECTOR_SIZE // VIRTUAL_SECTOR,
            rr_bootcatname="boot.cat",
            joliet_bootcatfile="/boot.cat",
        )
        _write(iso, out)
    first, length = _extent(out, "/DATA.BIN;1")
    _fill_pattern(out, first, length // SECTOR_SIZE)
    boot_lba, _ = _extent(out, "/BOOT.IMG;1")
    with open(out, "r+b") as fp:  # the expected checksum, now that DATA.BIN's place is known
        fp.seek(boot_lba * SECTOR_SIZE + SAMPLE_EXPECTED_OFFSET)
        fp.write(sum32(pattern_bytes(first * SECTOR_SIZE, length)).to_bytes(4, "little"))
    return out


def build_floppy_emulation_iso(
    path: str | os.PathLike[str], floppy_image: bytes, volume_id: str = "FLOPPY"
) -> Path:
    """An ISO booting ``/FLOPPY.IMG`` as an emulated floppy (El Torito §2.2).

    The image size picks the media type (:data:`FLOPPY_SIZES`: 1,228,800 bytes
    for 1.2M, 1,474,560 for 1.44M, 2,949,120 for 2.88M).  The catalog entry has
    load segment 0 and sector count 1 (the firmware reads the virtual floppy's
    boot sector, then serves INT 13h from it).
    """
    if len(floppy_image) not in FLOPPY_SIZES.values():
        sizes = ", ".join(str(size) for size in FLOPPY_SIZES.values())
        raise ValueError(f"a floppy image is {sizes} bytes, not {len(floppy_image)}")
    out = Path(path)
    with fixed_clock():
        iso = _new_iso(volume_id)
        _add_file(iso, "FLOPPY.IMG", bytes(floppy_image), joliet=False, rock_ridge=False)
        iso.add_eltorito(
            "/FLOPPY.IMG;1",
            media_name="floppy",
            boot_load_size=len(floppy_image) // VIRTUAL_SECTOR,
        )
        _write(iso, out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m images.builders", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sample = sub.add_parser("sample", help="regenerate the built-in sample image")
    sample.add_argument("-o", "--output", type=Path, default=SAMPLE_PATH)
    pattern = sub.add_parser("pattern", help="build a patterned test image")
    pattern.add_argument("output", type=Path)
    pattern.add_argument("--sectors", type=int, default=64, help="PATTERN.BIN sectors")
    pattern.add_argument("--total", type=int, default=None, help="pad the image to this size")
    pattern.add_argument("--no-boot", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "sample":
        out = build_sample_iso(args.output)
    else:
        out = build_patterned_iso(
            args.output, args.sectors, boot=not args.no_boot, total_sectors=args.total
        )
    print(f"{out}: {out.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
