"""Floppy- and hard-disk-emulation boot discs for the boot tests (El Torito 1.0 §3).

Both carry ``images/emuboot.bin`` (assembled from ``images/emuboot.asm``) as
the first sector of the emulated disk.  It prints the drive it booted from,
the geometry INT 13h AH=08h reports for it, and the text stored at CHS (0,0,2)
and CHS (1,1,1), which these builders write: ``FLOPPY SECTOR C1 H1 S1 (LBA 54)``
style lines that only come out right if the BIOS maps CHS to the image with the
emulated geometry.

* :func:`build_floppy_boot_iso` — a floppy of El Torito media type 1 (1.2M,
  80 cylinders × 2 heads × 15 sectors), 2 (1.44M, 80×2×18, the default) or 3
  (2.88M, 80×2×36), drive 00h.
* :func:`build_hard_disk_boot_iso` — a small MBR disk, media type 4, drive
  80h; one active partition whose end CHS gives the geometry (16 heads, 63
  sectors), as El Torito §3.3 has the BIOS read it.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from images.builders import (
    FLOPPY_SIZES,
    _new_iso,
    _write,
    build_floppy_emulation_iso,
    fixed_clock,
)

BOOT_SECTOR = Path(__file__).with_name("emuboot.bin")
HD_HEADS, HD_SPT, HD_CYLINDERS = 16, 63, 4
FLOPPY_GEOMETRY = {1: (80, 2, 15), 2: (80, 2, 18), 3: (80, 2, 36)}
"""El Torito §2.2 floppy media type → (cylinders, heads, sectors per track)."""


def _boot_sector() -> bytearray:
    data = bytearray(BOOT_SECTOR.read_bytes())
    if len(data) != 512 or data[510:512] != b"\x55\xaa":
        raise ValueError(f"{BOOT_SECTOR} is not a boot sector")
    return data


def _chs_lba(cyl: int, head: int, sector: int, heads: int, spt: int) -> int:
    return (cyl * heads + head) * spt + sector - 1


def _put_text(image: bytearray, lba: int, text: str) -> None:
    raw = text.encode("ascii") + b"\0"
    image[lba * 512 : lba * 512 + len(raw)] = raw


def floppy_marker_lba(media_type: int) -> int:
    """LBA of CHS (1,1,1) on the floppy of ``media_type``: one track per head before it."""
    _, heads, spt = FLOPPY_GEOMETRY[media_type]
    return _chs_lba(1, 1, 1, heads, spt)


def floppy_image(media_type: int = 2) -> bytes:
    """The floppy image of ``media_type``: boot sector plus the two marker sectors."""
    cylinders, heads, spt = FLOPPY_GEOMETRY[media_type]
    size = FLOPPY_SIZES[media_type]
    if cylinders * heads * spt * 512 != size:
        raise ValueError(f"media type {media_type}: geometry and size disagree")
    image = bytearray(size)
    image[:512] = _boot_sector()
    _put_text(image, _chs_lba(0, 0, 2, heads, spt), "FLOPPY SECTOR C0 H0 S2 (LBA 1)")
    marker = floppy_marker_lba(media_type)
    _put_text(image, marker, f"FLOPPY SECTOR C1 H1 S1 (LBA {marker})")
    return bytes(image)


def build_floppy_boot_iso(path: str | os.PathLike[str], media_type: int = 2) -> Path:
    """A floppy-emulation disc of ``media_type`` whose floppy boots and prints (drive 00h)."""
    return build_floppy_emulation_iso(path, floppy_image(media_type), volume_id="EMU_FLOPPY")


def hard_disk_image() -> bytes:
    """A 4-cylinder MBR disk: the boot code as MBR, one active partition, marker sectors."""
    sectors = HD_CYLINDERS * HD_HEADS * HD_SPT
    image = bytearray(sectors * 512)
    mbr = _boot_sector()
    start, last_cyl = HD_SPT, HD_CYLINDERS - 1
    entry = bytes([
        0x80, 1, 1, 0,  # active; first sector at CHS (0, 1, 1)
        0x01,  # FAT12, as a type pycdlib and loaders accept
        HD_HEADS - 1, ((last_cyl >> 2) & 0xC0) | HD_SPT, last_cyl & 0xFF,
    ]) + start.to_bytes(4, "little") + (sectors - start).to_bytes(4, "little")
    mbr[0x1BE:0x1CE] = entry
    image[:512] = mbr
    _put_text(image, _chs_lba(0, 0, 2, HD_HEADS, HD_SPT), "HARD DISK SECTOR C0 H0 S2 (LBA 1)")
    _put_text(image, _chs_lba(1, 1, 1, HD_HEADS, HD_SPT),
              "HARD DISK SECTOR C1 H1 S1 (LBA 1071)")
    return bytes(image)


def build_hard_disk_boot_iso(path: str | os.PathLike[str]) -> Path:
    """A hard-disk-emulation disc (media type 4) whose disk boots and prints (drive 80h)."""
    out = Path(path)
    data = hard_disk_image()
    with fixed_clock():
        iso = _new_iso("EMU_HDEMU")
        iso.add_fp(io.BytesIO(data), len(data), "/HDISK.IMG;1")
        iso.add_eltorito("/HDISK.IMG;1", media_name="hdemul", boot_load_size=1)
        _write(iso, out)
    return out
