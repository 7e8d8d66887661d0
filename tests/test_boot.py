"""``emu boot``: real boot loaders boot from the emulated DVD drive on the Unicorn CPU.

Debian's isolinux, syslinux-common, grub-rescue-pc, xorriso and nasm are used
as CI installs them; a test skips only when its tool is missing.  Every boot
here also checks that the sectors the guest read crossed the drive: the
drive's trace saw the READ(10) commands (no back door to the image file).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devices.trace import TraceEvent, Tracer
from emu.boot import BootOptions, BootResult, ExitStatus, Session
from emu.firmware.builtin import BuiltinFirmware
from images.builders import SAMPLE_PATH, build_patterned_iso
from images.emulation import (
    build_floppy_boot_iso,
    build_hard_disk_boot_iso,
    floppy_image,
    floppy_marker_lba,
)
from images.loaders import (
    CHAIN_MESSAGE,
    LoaderUnavailable,
    build_isolinux_iso,
    grub_rescue_iso,
)

pytestmark = pytest.mark.usefixtures("both_clocks")  # every boot, with each clock
XORRISO = shutil.which("xorriso")


class ReadLog:
    """A trace sink that records every READ(10) the drive executed as (lba, count)."""

    def __init__(self) -> None:
        self.reads: list[tuple[int, int]] = []

    def __call__(self, event: TraceEvent) -> None:
        if event.kind == "cdb" and event.fields.get("name") == "READ(10)":
            cdb = bytes.fromhex(event.fields["cdb"].replace(" ", ""))
            self.reads.append((int.from_bytes(cdb[2:6], "big"),
                               int.from_bytes(cdb[7:9], "big")))

    @property
    def sectors(self) -> int:
        return sum(count for _, count in self.reads)


def boot(iso: Path | str | None, **options: object) -> tuple[BootResult, ReadLog]:
    """Boot with the drive traced; returns the result and the drive's READ(10)s."""
    opts = BootOptions(iso=iso, **options)  # type: ignore[arg-type]
    session = Session(opts, BuiltinFirmware())
    log = ReadLog()
    session.board.set_trace(Tracer(keep=False, sinks=[log]))
    return session.run(), log


def firmware_reads(result: BootResult) -> int:
    """Sectors the firmware itself read: boot record, catalog, the boot image."""
    assert result.loaded is not None
    return 2 + (result.loaded.length + 2047) // 2048


def assert_no_back_door(result: BootResult, log: ReadLog) -> None:
    assert result.sectors_read > 0
    assert log.sectors == firmware_reads(result) + result.sectors_read


# -- the built-in sample ----------------------------------------------------------------


def test_emu_boot_without_arguments_boots_the_sample():
    out = subprocess.run([sys.executable, "-m", "emu.tools.cli", "boot"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "platform x86, no emulation, load segment 0x07c0" in out.stdout
    assert "EMU SAMPLE BOOT: booted from the DVD drive by El Torito" in out.stdout
    assert "sum32 0x" in out.stdout and ": checksum OK" in out.stdout
    assert "Halted." in out.stdout
    assert "the guest halted" in out.stderr


def test_the_sample_reads_data_bin_through_int13_extended_reads_and_the_drive():
    from devices.media.iso import IsoImage

    with IsoImage(SAMPLE_PATH) as medium:
        data_lba, data_len = medium.file_extent("/DATA.BIN")
    result, log = boot(None)
    assert result.status is ExitStatus.OK, result.message
    assert "checksum OK" in result.console
    assert result.bios_calls[(0x13, 0x42)] == 3  # volume descriptor, root directory, file
    assert result.bios_calls[(0x13, 0x41)] == 1
    assert (data_lba, data_len // 2048) in log.reads
    assert (16, 1) in log.reads
    assert_no_back_door(result, log)


def test_int13_reads_use_bus_master_dma_and_fall_back_to_pio():
    result, log = boot(None)
    assert result.dma_reads == result.bios_calls[(0x13, 0x42)] == 3
    session = Session(BootOptions(), BuiltinFirmware(use_dma=False))
    pio_log = ReadLog()
    session.board.set_trace(Tracer(keep=False, sinks=[pio_log]))
    pio = session.run()
    assert pio.dma_reads == 0 and "checksum OK" in pio.console
    assert pio_log.reads == log.reads


def test_the_firmware_enables_both_ide_channels_decode_as_a_pc_bios_does():
    """PIIX3 IDETIM (40h, 42h) bit 15 is 0 after reset and set by the BIOS; Linux's
    ata_piix checks it before probing a channel and skips a disabled one without a word
    (the drive on the secondary channel was never looked at)."""
    from emu.firmware.builtin import PIIX3_IDE, pci_config_read

    session = Session(BootOptions(), BuiltinFirmware())
    ports = session.board.ports
    assert pci_config_read(ports, PIIX3_IDE, 0x40) & 0x8000_8000 == 0   # reset state
    session.power_on()
    idetim = pci_config_read(ports, PIIX3_IDE, 0x40)
    assert idetim & 0x8000 and idetim >> 16 & 0x8000
    session.close()


def test_the_sample_screen_and_bda_look_like_a_pc():
    result, _ = boot(None)
    assert result.screen.splitlines()[0].startswith("EMU SAMPLE BOOT")
    assert result.machine is not None
    ram = result.machine.memory
    assert ram.read_u16(0x44A) == 80 and ram.read_u8(0x484) == 24


def test_boot_statuses_until_seen_until_missing_and_limit():
    result, _ = boot(None, until="checksum OK")
    assert result.status is ExitStatus.OK and result.message == "saw 'checksum OK'"
    result, _ = boot(None, until="never printed")
    assert result.status is ExitStatus.UNTIL_NOT_SEEN
    result, _ = boot(None, max_instructions=50)
    assert result.status is ExitStatus.LIMIT


# -- failures said as a BIOS would -------------------------------------------------------


def test_a_disc_without_el_torito_fails_with_a_reason(tmp_path):
    iso = build_patterned_iso(tmp_path / "plain.iso", data_sectors=4, boot=False)
    out = subprocess.run([sys.executable, "-m", "emu.tools.cli", "boot", str(iso)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == ExitStatus.BOOT_FAILED
    assert "Boot failed: no El Torito boot record at sector 17" in out.stderr


def test_a_guest_int18h_ends_the_boot_as_failed(tmp_path):
    result, _ = boot(_int18_iso(tmp_path))
    assert result.status is ExitStatus.BOOT_FAILED
    assert "INT 18h" in result.message


def _int18_iso(tmp_path: Path) -> Path:
    """A patterned ISO whose boot image is just ``int 18h``."""
    iso = build_patterned_iso(tmp_path / "int18.iso", data_sectors=4)
    from devices.media.iso import IsoImage

    with IsoImage(iso) as medium:
        (entry,) = medium.boot_entries()
        rba = entry.load_rba
    with open(iso, "r+b") as fp:
        fp.seek(rba * 2048)
        fp.write(b"\xcd\x18\xeb\xfe")
    return iso


def test_an_x86_section_entry_behind_an_efi_initial_entry_is_booted(tmp_path):
    """Validation entry platform EFI, x86 image in a section (El Torito §2.4-2.5)."""
    if XORRISO is None:
        pytest.skip("xorriso is not installed")
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(Path(__file__).parent.parent / "images" / "sampleboot.bin", root / "boot.bin")
    (root / "efi.img").write_bytes(bytes(2048))
    iso = tmp_path / "efi-first.iso"
    subprocess.run([XORRISO, "-as", "mkisofs", "-quiet", "-o", str(iso),
                    "-e", "efi.img", "-no-emul-boot", "-eltorito-alt-boot",
                    "-b", "boot.bin", "-no-emul-boot", "-boot-load-size", "4", str(root)],
                   check=True, capture_output=True)
    result, _ = boot(iso)
    assert result.loaded is not None and result.loaded.entry.platform == 0x00
    assert "EMU SAMPLE BOOT" in result.console


# -- ISOLINUX ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def isolinux_iso(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        return build_isolinux_iso(tmp_path_factory.mktemp("isolinux") / "isolinux.iso")
    except LoaderUnavailable as exc:
        pytest.skip(str(exc))


def test_isolinux_reaches_its_boot_prompt(isolinux_iso):
    result, log = boot(isolinux_iso, until="boot:")
    assert result.status is ExitStatus.OK, result.message
    assert "ISOLINUX 6.04" in result.console
    assert "Hello from the ISOLINUX test disc" in result.console
    assert result.bios_calls.get((0x13, 0x42), 0) >= 5
    assert_no_back_door(result, log)


def test_isolinux_runs_ls_c32_and_chain_loads_a_boot_sector(isolinux_iso):
    result, log = boot(isolinux_iso, keys="ls.c32 /\\r/hello.bs\\r")
    assert result.status is ExitStatus.OK, result.message
    console = result.console
    listing = console[console.index("boot: ls.c32 /") :]
    for name in ("isolinux", "README.TXT", "hello.bs"):
        assert name in listing
    assert "boot: /hello.bs" in console
    assert CHAIN_MESSAGE in console
    assert "the guest halted" in result.message
    assert_no_back_door(result, log)


# -- GRUB ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grub_iso() -> Path:
    try:
        return grub_rescue_iso()
    except LoaderUnavailable as exc:
        pytest.skip(str(exc))


def test_grub_rescue_boots_to_its_menu_and_lists_the_disc_at_its_prompt(grub_iso):
    # 'c' leaves the menu for the command line; "ls /" lists the disc's root.
    result, log = boot(grub_iso, keys="cls /\\r")
    assert result.status is ExitStatus.OK, result.message
    assert "GNU GRUB" in result.console
    assert "Use the" in result.console and "keys to select which entry" in result.console
    after = result.console[result.console.index("grub> ls /") :]
    assert "boot/" in after and "boot.catalog" in after
    assert "waits for keyboard input" in result.message
    assert_no_back_door(result, log)


# -- floppy and hard-disk emulation ---------------------------------------------------------


# El Torito §2.2 floppy media types.  INT 13h AH=08h (Ralf Brown's list): CH = low
# 8 bits of the last cylinder, CL = sectors per track | cylinder bits 8-9 << 6,
# DH = last head, DL = drives, BL = CMOS drive type (02h 1.2M, 04h 1.44M, 06h 2.88M).
FLOPPIES = {
    1: ("1.2M", 45, "CX=4F0F DX=0101 BL=02"),  # 80 x 2 x 15: CHS 1/1/1 = (1*2+1)*15
    2: ("1.44M", 54, "CX=4F12 DX=0101 BL=04"),  # 80 x 2 x 18
    3: ("2.88M", 108, "CX=4F24 DX=0101 BL=06"),  # 80 x 2 x 36
}


@pytest.mark.parametrize("media_type", sorted(FLOPPIES), ids=[v[0] for v in FLOPPIES.values()])
def test_a_floppy_emulation_disc_boots_as_drive_00_and_reads_by_chs(tmp_path, media_type):
    _, marker, geometry = FLOPPIES[media_type]
    assert floppy_marker_lba(media_type) == marker
    result, log = boot(build_floppy_boot_iso(tmp_path / "floppy.iso", media_type))
    assert result.status is ExitStatus.OK, result.message
    assert "EMULATED DRIVE BOOT: drive 0x00" in result.console
    assert f"GEOMETRY {geometry}" in result.console
    assert "FLOPPY SECTOR C0 H0 S2 (LBA 1)" in result.console
    assert f"FLOPPY SECTOR C1 H1 S1 (LBA {marker})" in result.console
    assert result.bios_calls[(0x13, 0x02)] == 2 and result.bios_calls[(0x13, 0x08)] == 1
    assert result.loaded is not None and result.loaded.entry.media_type == media_type
    # The last CHS read (1/1/1) left exactly that 512-byte sector of the image at 0:8000.
    assert result.machine is not None
    image = floppy_image(media_type)
    assert result.machine.memory.read(0x8000, 512) == image[marker * 512 : marker * 512 + 512]
    image_lba = result.loaded.entry.load_rba
    assert (image_lba, 1) in log.reads  # CHS 0/0/2 lives in the image's first CD sector
    assert (image_lba + marker // 4, 1) in log.reads
    assert log.sectors == firmware_reads(result) + result.sectors_read


def test_a_hard_disk_emulation_disc_boots_as_drive_80(tmp_path):
    result, log = boot(build_hard_disk_boot_iso(tmp_path / "hd.iso"))
    assert result.status is ExitStatus.OK, result.message
    assert "EMULATED DRIVE BOOT: drive 0x80" in result.console
    # AH=08h: last cylinder 3, 63 sectors per track, last head 15, one drive.
    assert "GEOMETRY CX=033F DX=0F01" in result.console
    assert "HARD DISK SECTOR C0 H0 S2 (LBA 1)" in result.console
    assert "HARD DISK SECTOR C1 H1 S1 (LBA 1071)" in result.console
    assert result.loaded is not None and result.loaded.entry.media_type == 4
    assert (result.loaded.entry.load_rba + 1071 // 4, 1) in log.reads
    assert log.sectors == firmware_reads(result) + result.sectors_read
