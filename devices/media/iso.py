"""An ISO 9660 / UDF disc image file as a medium: pycdlib answers, a memory map serves.

What a drive reads from an image is its 2048-byte logical blocks, so sectors come
straight from a read-only numpy memory map of the file (zero copy).  The structure
is only *looked at*, to refuse what is no disc image at all and to answer
questions for ``emu info`` and the boot path:

* The volume recognition sequence starts at logical sector 16 (ECMA-119 §6.2.1,
  the first 16 sectors are the System Area).  Each descriptor there carries a
  5-byte standard identifier at byte 1: ``CD001`` for ISO 9660 volume descriptors
  (ECMA-119 §8.1), ``BEA01`` / ``NSR02`` / ``NSR03`` / ``TEA01`` / ``BOOT2`` /
  ``CDW02`` for the ECMA-167 extended area (ECMA-167 2/9.1-9.3) that announces a
  UDF volume.  Anything else at sector 16 is not a disc image (``ImageNotIso``).
* An ISO 9660 volume is validated by pycdlib (Primary Volume Descriptor,
  ECMA-119 §8.4; path tables §9.4; directory records §9.1; Joliet and Rock Ridge).
  A file that ends inside those structures is ``ImageTruncated``.
* A UDF-only image (DVD images made by ``mkudffs``: ``BEA01 NSR0x TEA01`` at
  sector 16 and no ``CD001`` Primary Volume Descriptor) is accepted: the drive
  serves its sectors and the structural answers say there is no ISO 9660 volume.
* El Torito: the Boot Record Volume Descriptor at sector 17 points at the Boot
  Catalog (El Torito §2.0); the catalog holds a Validation Entry (§2.1), the
  Initial/Default Entry (§2.2), and Section Headers (§2.3) with Section Entries
  (§2.4).  :meth:`IsoImage.boot_entries` lists them.

Capacity comes from the file size, not the ISO 9660 volume size: hybrid images
append partitions (EFI system partitions, UDF, padding) past the ISO 9660 volume,
and a drive reads every sector on the disc.  Nothing is ever written to the file.

The host may change the file while it is attached.  The drive holds the file open
(as Virtual PC does), so a rename-over or an unlink changes nothing for the guest:
it keeps reading the file it was given until the host releases it.  A file cut
short in place is different: touching a memory-mapped page past the new end of
file raises SIGBUS, which would kill the process.  So :meth:`IsoImage.read` asks
the file's current size (one ``fstat``) before handing out a view, and a range
past the new end raises :class:`MediumReadError` (the guest sees MEDIUM ERROR
03/11/00; READ CAPACITY keeps the size the disc had when it was attached).  A view
held across port accesses (the later DRQ blocks of a multi-block PIO transfer, a DMA
transfer whose engine is started after the command) is checked again with
:meth:`IsoImage.recheck` in the port access that copies from it: the check and the
copy always happen together.
"""

from __future__ import annotations

import dataclasses
import io
import os
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import pycdlib

from devices.media.base import (
    SECTOR_SIZE,
    ImageBadBootCatalog,
    ImageNotIso,
    ImageTruncated,
    ImageUnreadable,
    MediumGone,
    MediumReadError,
    check_range,
    is_dvd_size,
    open_readonly,
)

VRS_FIRST_SECTOR = 16
"""Where the volume recognition sequence starts (ECMA-119 §6.2.1, ECMA-167 2/8.3)."""

_ISO_IDENT = b"CD001"
"""Standard identifier of every ISO 9660 volume descriptor (ECMA-119 §8.1.2)."""

_UDF_IDENTS = frozenset({b"BEA01", b"NSR02", b"NSR03", b"TEA01", b"BOOT2", b"CDW02"})
"""Extended area descriptor identifiers (ECMA-167 2/9.1-9.3; NSR02/03 mean UDF)."""

_VD_PRIMARY = 1
"""Volume descriptor type of the Primary Volume Descriptor (ECMA-119 §8.4.1)."""

_VD_TERMINATOR = 255
"""Volume descriptor type of the Set Terminator (ECMA-119 §8.3.1)."""

_VD_BOOT_RECORD = 0
"""Volume descriptor type of a Boot Record (ECMA-119 §8.2)."""

_BOOT_SYSTEM_ID = slice(7, 39)
"""Boot System Identifier, BP 8-39 of a Boot Record (ECMA-119 §8.2.4)."""

_BOOT_SYSTEM_USE = 71
"""Offset of the Boot System Use field, where El Torito keeps the catalog pointer (§2.0)."""

_VALIDATION_ENTRY_SIZE = 32
"""Every Boot Catalog entry, the Validation Entry first, is 32 bytes (El Torito §2.1)."""

_ELTORITO_ID = b"EL TORITO SPECIFICATION"
"""The Boot System Identifier of an El Torito Boot Record (El Torito §2.0)."""

_PVD_SPACE_SIZE = struct.Struct("<I")
_PVD_SPACE_SIZE_OFFSET = 80
"""Volume Space Size, both-byte-order u32 at BP 81-88 (ECMA-119 §8.4.8); we read the LE half."""

_MAX_VRS_DESCRIPTORS = 512
"""Stop scanning after this many descriptors: no real image has more, a crafted one might."""

_ELTORITO_CATALOG_POINTER = struct.Struct("<I")
"""Boot Catalog pointer, the first 4 bytes of the Boot Record's system use (El Torito §2.0)."""

PLATFORM_NAMES = {0x00: "x86", 0x01: "PowerPC", 0x02: "Mac", 0xEF: "EFI"}
"""Platform IDs of the Validation Entry and Section Headers (El Torito §2.1, §2.3)."""

MEDIA_NAMES = {
    0: "no emulation",
    1: "1.2M floppy",
    2: "1.44M floppy",
    3: "2.88M floppy",
    4: "hard disk",
}
"""Boot media type, bits 0-3 of entry byte 1 (El Torito §2.2, §2.4)."""

_MEDIA_TYPE_MASK = 0x0F
"""Bits 4-7 of the media type byte are flags in a Section Entry (El Torito §2.4)."""

_BOOTABLE = 0x88
"""Boot indicator of a bootable entry (El Torito §2.2 offset 0)."""


@dataclass(frozen=True)
class BootEntry:
    """One El Torito boot entry (Initial/Default Entry §2.2 or Section Entry §2.4)."""

    platform: int
    """Platform ID from the Validation Entry or Section Header (0 = x86)."""
    platform_name: str
    bootable: bool
    """Boot indicator 0x88 (bootable) versus 0x00."""
    media_type: int
    """Emulation: 0 none, 1-3 floppy (1.2M, 1.44M, 2.88M), 4 hard disk."""
    media_name: str
    load_segment: int
    """Raw load segment from the entry; 0 means the firmware's default 0x07C0."""
    sector_count: int
    """Virtual 512-byte sectors the firmware loads (no-emulation boot only)."""
    load_rba: int
    """First 2048-byte logical block of the boot image."""


@dataclass
class _Recognition:
    """What the volume recognition sequence at sector 16 says."""

    iso_types: list[int] = dataclasses.field(default_factory=list)
    udf_idents: list[bytes] = dataclasses.field(default_factory=list)
    pvd: bytes | None = None
    boot_catalog: int | None = None
    """The El Torito Boot Record's catalog pointer (El Torito §2.0), if there is one."""

    @property
    def has_udf(self) -> bool:
        return b"NSR02" in self.udf_idents or b"NSR03" in self.udf_idents


def _read_at(fp: io.BufferedReader, offset: int, length: int) -> bytes:
    fp.seek(offset)
    return fp.read(length)


def _recognise(path: str, fp: io.BufferedReader, file_size: int) -> _Recognition:
    """Walk the volume recognition sequence (ECMA-119 §6.7.1, ECMA-167 2/8.3).

    ISO 9660 descriptors run up to a Set Terminator; a UDF extended area runs from
    ``BEA01`` to ``TEA01``.  The file ending inside either is truncation; an
    unknown identifier ends the sequence (at sector 16, it means no disc image).
    """
    found = _Recognition()
    iso_open = False  # inside an ISO 9660 descriptor set, before its terminator
    udf_open = False  # inside an extended area, before TEA01
    for lba in range(VRS_FIRST_SECTOR, VRS_FIRST_SECTOR + _MAX_VRS_DESCRIPTORS):
        sector = _read_at(fp, lba * SECTOR_SIZE, SECTOR_SIZE)
        ident = sector[1:6]
        known = ident == _ISO_IDENT or ident in _UDF_IDENTS
        if len(sector) < SECTOR_SIZE:
            if known or iso_open or udf_open:
                raise ImageTruncated(
                    path,
                    f"the file ends at byte {file_size}, inside its volume descriptors "
                    f"(sector {lba} is incomplete or missing)",
                )
            if lba == VRS_FIRST_SECTOR:
                raise ImageNotIso(
                    path,
                    f"not an ISO 9660 or UDF image: the file ({file_size} bytes) ends "
                    f"before sector {VRS_FIRST_SECTOR}, where the volume recognition "
                    "sequence starts",
                )
            break
        if ident == _ISO_IDENT:
            vd_type = sector[0]
            found.iso_types.append(vd_type)
            if vd_type == _VD_PRIMARY and found.pvd is None:
                found.pvd = sector
            elif (vd_type == _VD_BOOT_RECORD and found.boot_catalog is None
                  and sector[_BOOT_SYSTEM_ID].startswith(_ELTORITO_ID)):
                (found.boot_catalog,) = _ELTORITO_CATALOG_POINTER.unpack_from(
                    sector, _BOOT_SYSTEM_USE
                )
            iso_open = vd_type != _VD_TERMINATOR
        elif ident in _UDF_IDENTS:
            found.udf_idents.append(ident)
            if ident == b"BEA01":
                udf_open = True
            elif ident == b"TEA01":
                break
        else:
            if lba == VRS_FIRST_SECTOR:
                raise ImageNotIso(
                    path,
                    "not an ISO 9660 or UDF image: no volume recognition sequence at "
                    f"sector {VRS_FIRST_SECTOR} (expected 'CD001' or 'BEA01' at byte 1)",
                )
            break
    if found.pvd is None and not found.has_udf:
        raise ImageNotIso(
            path,
            "not an ISO 9660 or UDF image: the volume recognition sequence has neither "
            "a Primary Volume Descriptor nor a UDF NSR descriptor",
        )
    return found


def _check_validation_entry(path: str, fp: io.BufferedReader, lba: int) -> None:
    """Refuse a Boot Catalog whose first entry is no Validation Entry (El Torito §2.1):
    header ID 01h at byte 0, key 55h AAh at bytes 1Eh-1Fh, and the sixteen little-endian
    words summing to 0."""
    entry = _read_at(fp, lba * SECTOR_SIZE, _VALIDATION_ENTRY_SIZE)
    words = struct.unpack(f"<{_VALIDATION_ENTRY_SIZE // 2}H", entry.ljust(32, b"\0"))
    if entry[0] != 0x01 or entry[0x1E:0x20] != b"\x55\xaa" or sum(words) & 0xFFFF:
        raise ImageBadBootCatalog(
            path,
            f"the El Torito Boot Catalog in sector {lba} does not start with a valid "
            "Validation Entry (header ID 01h, key 55h AAh, checksum 0)",
        )


def _text(raw: bytes) -> str:
    return raw.decode("ascii", "replace").rstrip(" \x00")


class IsoImage:
    """A read-only disc image file: ISO 9660 (with Joliet, Rock Ridge, El Torito) or UDF.

    ``sector_count`` is ``file_size // 2048``: capacity comes from the file size.
    If the size is not a multiple of 2048 the trailing partial sector is not
    served (a drive reads whole logical blocks only).
    """

    path: str
    sector_count: int

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path, fd, self.file_size = open_readonly(path)
        self.sector_count = self.file_size // SECTOR_SIZE
        self._fd = fd
        self._fp: io.BufferedReader | None = os.fdopen(fd, "rb")
        self._iso: pycdlib.PyCdlib | None = None
        self._map: np.memmap | None = None
        self._data: np.ndarray | None = None
        try:
            self._open_structures()
            self._map = np.memmap(
                self._fp, dtype=np.uint8, mode="r", shape=(self.sector_count * SECTOR_SIZE,)
            )
            self._data = self._map.view(np.ndarray)
        except OSError as exc:
            self.close()
            raise ImageUnreadable(self.path, f"read error: {exc.strerror or exc}") from None
        except BaseException:
            self.close()
            raise

    def _open_structures(self) -> None:
        assert self._fp is not None
        found = _recognise(self.path, self._fp, self.file_size)
        self._udf = found.has_udf
        self._iso9660 = found.pvd is not None
        self._joliet = False
        self._rock_ridge = False
        self.volume_size = 0
        self.volume_id = ""
        self._boot_entries: list[BootEntry] = []
        self.boot_catalog_lba: int | None = None
        if found.pvd is None:
            return  # UDF only: sectors are served, no ISO 9660 answers.
        (self.volume_size,) = _PVD_SPACE_SIZE.unpack_from(found.pvd, _PVD_SPACE_SIZE_OFFSET)
        if found.boot_catalog is not None:
            try:
                if found.boot_catalog >= self.sector_count:
                    raise ImageBadBootCatalog(
                        self.path,
                        f"the El Torito Boot Record points at a Boot Catalog in sector "
                        f"{found.boot_catalog}, past the end of the image "
                        f"({self.sector_count} sectors)",
                    )
                _check_validation_entry(self.path, self._fp, found.boot_catalog)
            except ImageBadBootCatalog as exc:
                if self.sector_count < self.volume_size:
                    raise self._truncated(exc.reason) from None
                raise
        iso = pycdlib.PyCdlib()
        try:
            iso.open_fp(self._fp)
        except OSError:
            raise
        except Exception as exc:  # pycdlib raises many kinds on malformed input
            if self.sector_count < self.volume_size:
                raise self._truncated(str(exc)) from None
            raise ImageNotIso(self.path, f"invalid ISO 9660 structures: {exc}") from None
        self._iso = iso
        self.volume_id = _text(iso.pvd.volume_identifier)
        self._udf = self._udf or bool(iso.has_udf())
        self._joliet = bool(iso.has_joliet())
        self._rock_ridge = bool(iso.has_rock_ridge())
        self._read_boot_catalog(iso)

    def _truncated(self, detail: str) -> ImageTruncated:
        return ImageTruncated(
            self.path,
            f"the file ends at sector {self.sector_count}, inside its ISO 9660 "
            f"volume of {self.volume_size} sectors ({detail})",
        )

    def _read_boot_catalog(self, iso: pycdlib.PyCdlib) -> None:
        catalog = iso.eltorito_boot_catalog
        if catalog is None:
            return
        (self.boot_catalog_lba,) = _ELTORITO_CATALOG_POINTER.unpack_from(
            catalog.br.boot_system_use, 0
        )
        default_platform = catalog.validation_entry.platform_id
        entries = [(default_platform, catalog.initial_entry)]
        for section in catalog.sections:
            entries.extend((section.platform_id, e) for e in section.section_entries)
        entries.extend((default_platform, e) for e in catalog.standalone_entries)
        for platform, entry in entries:
            media = entry.boot_media_type & _MEDIA_TYPE_MASK
            self._boot_entries.append(
                BootEntry(
                    platform=platform,
                    platform_name=PLATFORM_NAMES.get(platform, f"unknown (0x{platform:02X})"),
                    bootable=entry.boot_indicator == _BOOTABLE,
                    media_type=media,
                    media_name=MEDIA_NAMES.get(media, f"unknown ({media})"),
                    load_segment=entry.load_segment,
                    sector_count=entry.sector_count,
                    load_rba=entry.load_rba,
                )
            )

    # -- the Medium protocol -------------------------------------------------

    @property
    def present(self) -> bool:
        return self._data is not None

    @property
    def is_dvd(self) -> bool:
        return is_dvd_size(self.sector_count)

    def read(self, lba: int, count: int) -> np.ndarray:
        """Sectors ``[lba, lba+count)`` as a read-only uint8 view of the memory map."""
        data = self._data
        if data is None:
            raise MediumGone(self.path, "the image was closed")
        check_range(lba, count, self.sector_count)
        end = (lba + count) * SECTOR_SIZE
        try:
            size = os.fstat(self._fd).st_size
        except OSError as exc:
            raise MediumReadError(self.path, f"cannot check the file: {exc.strerror}") from None
        if end > size:  # cut short under the drive: the map would SIGBUS past ``size``
            raise MediumReadError(
                self.path,
                f"sectors {lba}+{count} lie past the end of the file, now {size} bytes",
            )
        return data[lba * SECTOR_SIZE : end]

    def recheck(self, view: np.ndarray) -> None:
        """Raise :class:`MediumReadError` if ``view``, about to be copied, lies in this
        image's memory map past the file's current end (one ``fstat``); an array that is
        not a view of the map is never at risk."""
        data = self._data
        if data is None or view.size == 0:
            return
        start = view.ctypes.data - data.ctypes.data
        if not 0 <= start < data.size:
            return
        try:
            size = os.fstat(self._fd).st_size
        except OSError as exc:
            raise MediumReadError(self.path, f"cannot check the file: {exc.strerror}") from None
        if start + view.size > size:
            raise MediumReadError(
                self.path, f"the file was cut to {size} bytes during a transfer")

    def close(self) -> None:
        """Drop the memory map and close pycdlib and the file; closing twice is fine.

        Views already handed out keep their pages mapped until they are dropped.
        """
        self._data = None
        self._map = None
        iso, self._iso = self._iso, None
        if iso is not None:
            iso.close()
        fp, self._fp = self._fp, None
        if fp is not None:
            fp.close()

    # -- structural answers --------------------------------------------------

    @property
    def has_iso9660(self) -> bool:
        """Whether a Primary Volume Descriptor was found (False for UDF-only images)."""
        return self._iso9660

    @property
    def has_joliet(self) -> bool:
        """Whether a Joliet Supplementary Volume Descriptor is present (ECMA-119 §8.5)."""
        return self._joliet

    @property
    def has_rock_ridge(self) -> bool:
        """Whether the directory records carry Rock Ridge (SUSP/RRIP) entries."""
        return self._rock_ridge

    @property
    def has_udf(self) -> bool:
        return self._udf

    def boot_entries(self) -> list[BootEntry]:
        """El Torito entries: the Initial/Default Entry first, then Section Entries."""
        return list(self._boot_entries)

    def _pycdlib(self) -> pycdlib.PyCdlib | None:
        if self._fp is None:
            raise MediumGone(self.path, "the image was closed")
        return self._iso

    def files(self) -> list[str]:
        """Every file's ISO 9660 path, as recorded (``/DIR/NAME.EXT;1``), sorted."""
        iso = self._pycdlib()
        if iso is None:
            return []
        try:
            return self._walk(iso, "utf-8")
        except UnicodeDecodeError:
            # Names outside the d-characters (ECMA-119 §7.4.1) that are not UTF-8
            # either: show them byte for byte rather than fail.
            return self._walk(iso, "latin-1")

    @staticmethod
    def _walk(iso: pycdlib.PyCdlib, encoding: str) -> list[str]:
        paths: list[str] = []
        for here, _dirs, names in iso.walk(iso_path="/", encoding=encoding):
            prefix = here.rstrip("/")
            paths.extend(f"{prefix}/{name}" for name in names)
        return sorted(paths)

    def file_extent(self, iso_path: str) -> tuple[int, int]:
        """``(first_lba, length_in_bytes)`` of a file; ``;1`` is added if omitted."""
        iso = self._pycdlib()
        if iso is None:
            raise KeyError(f"{iso_path}: the image has no ISO 9660 volume")
        candidates = [iso_path]
        if ";" not in iso_path.rsplit("/", 1)[-1]:
            candidates.append(iso_path + ";1")
        for candidate in candidates:
            try:
                record = iso.get_record(iso_path=candidate)
            except pycdlib.pycdlibexception.PyCdlibException:
                continue
            return record.extent_location(), record.get_data_length()
        raise KeyError(f"{iso_path}: no such file on the ISO 9660 volume")

    def info(self) -> dict[str, Any]:
        """A summary for ``emu info``: sizes, volume, extensions and boot entries."""
        return {
            "path": self.path,
            "file_size": self.file_size,
            "capacity_sectors": self.sector_count,
            "trailing_bytes": self.file_size % SECTOR_SIZE,
            "is_dvd": self.is_dvd,
            "iso9660": self.has_iso9660,
            "volume_id": self.volume_id,
            "volume_size": self.volume_size,
            "joliet": self.has_joliet,
            "rock_ridge": self.has_rock_ridge,
            "udf": self.has_udf,
            "boot_catalog_lba": self.boot_catalog_lba,
            "boot_entries": [dataclasses.asdict(e) for e in self._boot_entries],
        }

    def __enter__(self) -> IsoImage:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"IsoImage({self.path!r}, sectors={self.sector_count})"
