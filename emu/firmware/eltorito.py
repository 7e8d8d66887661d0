"""The El Torito boot loader, reading through the ATAPI driver like a BIOS.

El Torito 1.0 §2.0 (boot record volume descriptor at sector 17), §2.1
(validation entry), §2.2 (initial/default entry), §2.4-2.5 (section headers
and entries).  Everything is read with READ(10) through the emulated drive.
"""

from __future__ import annotations

from dataclasses import dataclass

from emu.firmware.ata import SCRATCH, SECTOR, AtaHostDriver, AtapiDevice, FirmwareError, sha256_of

BOOT_RECORD_LBA = 17
EL_TORITO_ID = b"EL TORITO SPECIFICATION"
PLATFORMS = {0x00: "x86", 0x01: "PowerPC", 0x02: "Mac", 0xEF: "EFI"}
MEDIA_TYPES = {
    0: "no emulation",
    1: "1.2M floppy",
    2: "1.44M floppy",
    3: "2.88M floppy",
    4: "hard disk",
}
DEFAULT_LOAD_SEGMENT = 0x07C0


class BootError(FirmwareError):
    """The disc cannot be booted; the message says why, as a BIOS would."""


@dataclass(frozen=True)
class BootEntry:
    """The initial/default entry of a boot catalog (El Torito §2.2)."""

    platform: int
    bootable: bool
    media_type: int
    load_segment: int
    """As stored (0 means the BIOS default 07C0h)."""
    sector_count: int
    """512-byte virtual sectors to load."""
    load_rba: int

    @property
    def platform_name(self) -> str:
        return PLATFORMS.get(self.platform, f"platform {self.platform:#04x}")

    @property
    def media_name(self) -> str:
        return MEDIA_TYPES.get(self.media_type, f"media type {self.media_type}")

    @property
    def segment(self) -> int:
        return self.load_segment or DEFAULT_LOAD_SEGMENT


@dataclass(frozen=True)
class LoadedImage:
    """What the loader put in guest memory."""

    device: AtapiDevice
    catalog_lba: int
    entry: BootEntry
    address: int
    length: int
    sha256: str


def parse_boot_record(sector: bytes) -> int:
    """Check the boot record volume descriptor; return the catalog LBA (§2.0)."""
    if sector[0] != 0 or sector[1:6] != b"CD001" or sector[6] != 1:
        raise BootError("no El Torito boot record at sector 17")
    if sector[7 : 7 + len(EL_TORITO_ID)] != EL_TORITO_ID:
        raise BootError("sector 17 is not an El Torito boot record")
    return int.from_bytes(sector[0x47:0x4B], "little")


def parse_catalog(catalog: bytes) -> BootEntry:
    """Check the validation entry (§2.1) and decode the initial entry (§2.2)."""
    if catalog[0] != 0x01 or catalog[0x1E] != 0x55 or catalog[0x1F] != 0xAA:
        raise BootError("boot catalog has no valid validation entry")
    words = [int.from_bytes(catalog[i : i + 2], "little") for i in range(0, 32, 2)]
    if sum(words) & 0xFFFF:
        raise BootError("boot catalog validation entry checksum is wrong")
    entry = catalog[0x20:0x40]
    return BootEntry(
        platform=catalog[1],
        bootable=entry[0] == 0x88,
        media_type=entry[1] & 0x0F,
        load_segment=int.from_bytes(entry[2:4], "little"),
        sector_count=int.from_bytes(entry[6:8], "little"),
        load_rba=int.from_bytes(entry[8:12], "little"),
    )


def _entry(platform: int, raw: bytes) -> BootEntry:
    return BootEntry(
        platform=platform,
        bootable=raw[0] == 0x88,
        media_type=raw[1] & 0x0F,
        load_segment=int.from_bytes(raw[2:4], "little"),
        sector_count=int.from_bytes(raw[6:8], "little"),
        load_rba=int.from_bytes(raw[8:12], "little"),
    )


def parse_boot_entries(catalog: bytes) -> list[BootEntry]:
    """The initial entry, then every section entry (§2.4 headers 90h/91h, §2.5 entries).

    Section entries take their platform from their section header; extension
    entries (§2.6, indicator 44h) are skipped.
    """
    entries = [parse_catalog(catalog)]
    at = 0x40
    while at + 32 <= len(catalog):
        header = catalog[at : at + 32]
        if header[0] not in (0x90, 0x91):
            break
        platform, count = header[1], int.from_bytes(header[2:4], "little")
        at += 32
        while count and at + 32 <= len(catalog):
            raw = catalog[at : at + 32]
            at += 32
            if raw[0] == 0x44:
                continue  # an extension entry belongs to the previous entry
            entries.append(_entry(platform, raw))
            count -= 1
        if header[0] == 0x91:
            break
    return entries


def choose_entry(entries: list[BootEntry]) -> BootEntry:
    """The first bootable x86 entry (the initial entry first), as a PC BIOS picks."""
    for entry in entries:
        if entry.bootable and entry.platform == 0x00:
            return entry
    initial = entries[0]
    if not initial.bootable:
        raise BootError("the boot catalog's initial entry is not bootable")
    raise BootError(f"unsupported boot platform: {initial.platform_name}")


def load_boot_image(driver: AtaHostDriver, dev: AtapiDevice) -> LoadedImage:
    """Read sector 17 and the catalog, then load the boot image at its load segment.

    No emulation: ``sector_count`` 512-byte sectors at ``segment:0``.  Floppy and
    hard-disk emulation: the image's first 512-byte sector at 0000:7C00 (the
    rest is served through INT 13h by the BIOS services).
    """
    driver.wait_ready(dev)
    driver.read_sectors(dev, BOOT_RECORD_LBA, 1, SCRATCH)
    catalog_lba = parse_boot_record(driver.memory.read(SCRATCH, SECTOR))
    driver.read_sectors(dev, catalog_lba, 1, SCRATCH)
    entry = choose_entry(parse_boot_entries(driver.memory.read(SCRATCH, SECTOR)))
    if entry.media_type not in MEDIA_TYPES:
        raise BootError(f"unsupported boot media type {entry.media_type}")
    if entry.media_type == 0:
        length = max(entry.sector_count, 1) * 512
        address = entry.segment << 4
    else:
        length, address = 512, 0x7C00
    sectors = (length + SECTOR - 1) // SECTOR
    if address + sectors * SECTOR > 0xA0000:
        raise BootError("boot image does not fit in conventional memory")
    # Whole CD sectors go through a bounce area, then exactly `length` bytes land.
    bounce = 0x100000
    driver.read_sectors(dev, entry.load_rba, sectors, bounce)
    driver.memory.write(address, driver.memory.view(bounce, length).copy())
    return LoadedImage(dev, catalog_lba, entry, address, length,
                       sha256_of(driver.memory, address, length))


def firmware_boot(driver: AtaHostDriver) -> LoadedImage:
    """The firmware half of a CD boot: probe both channels, then boot the first
    DVD/CD drive whose disc has an El Torito record (as SeaBIOS tries its boot list)."""
    devices = [d for d in driver.probe() if d.device_type == 5]
    if not devices:
        raise BootError("no DVD/CD drive found on either IDE channel")
    errors: list[str] = []
    for dev in devices:
        try:
            return load_boot_image(driver, dev)
        except FirmwareError as exc:
            errors.append(str(exc))
    raise BootError("; ".join(errors))
