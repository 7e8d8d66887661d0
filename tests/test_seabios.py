"""Real firmware: Debian's SeaBIOS finds and boots our DVD drive through its own ATA driver.

Every boot starts at the reset vector F000:FFF0 in the unmodified
``/usr/share/seabios/bios.bin``; SeaBIOS's POST, its ATA/ATAPI probe of the
four IDE locations, its boot menu and its El Torito loader run on the
emulated platform (devices/platform/pic.py, pit.py, i8042.py, cmos.py, pci.py,
apic.py, fw_cfg.py, vga.py).  The drive's trace counts what SeaBIOS sent;
every byte it got came through the data port (no back door).  Skipped only
when the SeaBIOS package is missing.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from devices.platform.apic import IoApic, LocalApic
from devices.platform.fw_cfg import FILE_DIR, FwCfg
from devices.platform.vga import VgaRegisters
from devices.trace import TraceEvent, Tracer
from emu.boot import BootOptions, BootResult, DriveSpec, ExitStatus, Session, run_boot
from emu.firmware.seabios import SEABIOS_BIN, SeaBios
from emu.pc.screen import TextScraper
from images.builders import SAMPLE_PATH
from tests.test_boot import grub_iso, isolinux_iso  # noqa: F401 - module fixtures

pytestmark = [pytest.mark.usefixtures("both_clocks"),  # every boot, with each clock
              pytest.mark.skipif(not SEABIOS_BIN.exists(),
                                reason="/usr/share/seabios/bios.bin is not installed")]

MODEL = "EMU Virtual DVD-ROM"
SENSE_BYTES = 18
"""SeaBIOS asks REQUEST SENSE for 18 bytes."""


class DriveTraffic:
    """A trace sink: commands per drive, READ(10) sectors, data-port bytes in."""

    def __init__(self) -> None:
        self.ata: Counter[tuple[str, str]] = Counter()
        self.cdbs: Counter[tuple[str, str]] = Counter()
        self.read_lbas: list[int] = []
        self.sectors = 0
        self.bytes_in = 0

    def __call__(self, event: TraceEvent) -> None:
        if event.kind == "ata":
            self.ata[(event.source, event.fields["name"])] += 1
        elif event.kind == "cdb":
            name = event.fields["name"]
            self.cdbs[(event.source, name)] += 1
            if name == "READ(10)":
                cdb = bytes.fromhex(event.fields["cdb"].replace(" ", ""))
                self.read_lbas.append(int.from_bytes(cdb[2:6], "big"))
                self.sectors += int.from_bytes(cdb[7:9], "big")
        elif event.kind == "data" and event.fields["dir"] == "in":
            self.bytes_in += event.fields["bytes"]

    def count(self, name: str, drive: str | None = None) -> int:
        table = self.cdbs if name in {n for _, n in self.cdbs} else self.ata
        return sum(n for (src, cmd), n in table.items()
                   if cmd == name and (drive is None or src == drive))


def seabios_boot(drives: list[DriveSpec] | None = None, iso: Path | str | None = None,
                 **options: object) -> tuple[BootResult, Session, DriveTraffic]:
    opts = BootOptions(iso=iso, firmware="seabios", drives=drives,
                       **options)  # type: ignore[arg-type]
    session = Session(opts, SeaBios())
    traffic = DriveTraffic()
    session.board.set_trace(Tracer(keep=False, sinks=[traffic]))
    return session.run(), session, traffic  # type: ignore[return-value]


def drive_label(bus: int, device: int) -> str:
    return f"DVD/CD [ata{bus}-{device}: {MODEL} ATAPI-7 DVD/CD]"


def assert_only_through_the_ports(traffic: DriveTraffic) -> None:
    """Every byte SeaBIOS and the loader got crossed the data port."""
    identify = traffic.count("IDENTIFY PACKET DEVICE")
    sense = traffic.count("REQUEST SENSE")
    rest = traffic.bytes_in - 2048 * traffic.sectors - SENSE_BYTES * sense
    assert rest % 512 == 0 and 512 <= rest <= 512 * identify, traffic.bytes_in


# -- the platform pieces only SeaBIOS uses ---------------------------------------------------


def test_fw_cfg_signature_and_file_directory() -> None:
    cfg = FwCfg()
    cfg.add_file("etc/boot-menu-wait", (300).to_bytes(2, "little"))
    cfg.write(0x510, 2, 0)
    assert bytes(cfg.read(0x511, 1) for _ in range(4)) == b"QEMU"
    cfg.write(0x510, 2, FILE_DIR)
    raw = bytes(cfg.read(0x511, 1) for _ in range(4 + 64))
    assert int.from_bytes(raw[:4], "big") == 1
    assert int.from_bytes(raw[4:8], "big") == 2 and raw[12:30] == b"etc/boot-menu-wait"
    cfg.write(0x510, 2, int.from_bytes(raw[8:10], "big"))
    assert cfg.read(0x511, 2) == 300 and cfg.read(0x511, 1) == 0


def test_apic_pages_behave_as_a_uniprocessor() -> None:
    lapic = LocalApic()
    assert lapic.read(0x20, 4) == 0 and lapic.read(0x30, 4) & 0xFF == 0x14
    lapic.write(0x300, 4, 0x000C4500)  # INIT to all excluding self: nobody answers
    assert not lapic.read(0x300, 4) & (1 << 12) and lapic.ipis == [0x000C4500]
    ioapic = IoApic()
    ioapic.write(0x00, 4, 1)
    assert (ioapic.read(0x10, 4) >> 16) & 0xFF == 23
    ioapic.write(0x00, 4, 0x10)
    assert ioapic.read(0x10, 4) & (1 << 16)  # masked at reset


def test_text_written_straight_into_b8000_is_on_the_screen() -> None:
    ram = np.zeros(1 << 20, dtype=np.uint8)
    vga = VgaRegisters()
    seen: list[str] = []
    scraper = TextScraper(ram, vga, seen.append)
    for i, ch in enumerate(b"Hello"):
        ram[0xB8000 + 2 * i] = ch
    assert scraper.poll() == "Hello"
    for i, ch in enumerate(b", world"):
        ram[0xB8000 + 10 + 2 * i] = ch
    ram[0xB8000 + 160 : 0xB8000 + 166 : 2] = list(b"two")
    assert scraper.poll() == ", world\ntwo"
    ram[0xB8000 : 0xB8000 + 160 * 24] = ram[0xB8000 + 160 : 0xB8000 + 160 * 25].copy()
    ram[0xB8000 + 160 * 24 : 0xB8000 + 160 * 25] = 0
    ram[0xB8000 + 160 : 0xB8000 + 166 : 2] = list(b"new")
    assert scraper.poll() == "\nnew"  # scrolled by one, then a new row
    assert scraper.text().splitlines()[:2] == ["two", "new"]


# -- SeaBIOS boots ---------------------------------------------------------------------------


def test_the_sample_boots_from_the_reset_vector_with_banner_and_post() -> None:
    result, session, traffic = seabios_boot(iso=SAMPLE_PATH)
    assert result.status is ExitStatus.OK, result.message
    log = session.board.debug_log
    assert log.startswith("SeaBIOS (version 1.16")
    assert "Found QEMU fw_cfg" in log and "Found 3 PCI devices" in log
    assert "Found 1 cpu(s)" in log and "PS2 keyboard initialized" in log
    assert "No VBE DISPI interface detected, falling back to stdvga" in log
    assert drive_label(1, 0) in log
    screen = result.screen
    assert screen.startswith("SeaBIOS (version 1.16")
    assert "Booting from DVD/CD..." in screen and "checksum OK" in screen
    # SeaBIOS placed the bus-master registers by BAR 4 and enabled I/O decoding.
    ide = session.board.pci.functions[(1, 1)]
    assert ide.bm_base == 0xC000 and ide.command & 1
    assert session.board.ports.claimed(0xC000) is not None
    assert traffic.count("IDENTIFY PACKET DEVICE", "ide1-0") == 1
    assert_only_through_the_ports(traffic)


def test_isolinux_reaches_boot_prompt_from_the_seabios_boot_menu(isolinux_iso):  # noqa: F811
    # ESC opens SeaBIOS's boot menu (typed through the 8042 while SeaBIOS waits); 1 boots.
    result, session, traffic = seabios_boot(iso=isolinux_iso, until="boot:", keys="\\e1")
    assert result.status is ExitStatus.OK, result.message
    screen = result.screen
    assert "Select boot device:" in screen
    assert f"1. {drive_label(1, 0)}" in screen
    assert "ISOLINUX 6.04" in result.console
    assert "Hello from the ISOLINUX test disc" in result.console
    assert screen.rstrip().endswith("boot:")
    drive = "ide1-0"
    assert traffic.count("IDENTIFY PACKET DEVICE", drive) == 1
    assert traffic.count("TEST UNIT READY", drive) == 2  # power-on UNIT ATTENTION, then ready
    assert traffic.count("REQUEST SENSE", drive) == 1
    assert traffic.count("READ(10)", drive) == 14
    assert traffic.read_lbas[:2] == [17, traffic.read_lbas[1]] and traffic.read_lbas[1] > 17
    assert_only_through_the_ports(traffic)


def test_grub_rescue_reaches_its_menu(grub_iso):  # noqa: F811
    result, session, traffic = seabios_boot(iso=grub_iso, until="keys to select which entry")
    assert result.status is ExitStatus.OK, result.message
    assert "Booting from DVD/CD..." in result.console
    assert "GNU GRUB" in result.console
    assert drive_label(1, 0) in session.board.debug_log
    assert traffic.count("IDENTIFY PACKET DEVICE", "ide1-0") == 1
    assert traffic.count("READ(10)", "ide1-0") > 20
    assert_only_through_the_ports(traffic)


@pytest.mark.parametrize(("bus", "device"), [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_a_drive_at_each_location_is_listed_and_boots(bus: int, device: int) -> None:
    result, session, traffic = seabios_boot([DriveSpec(bus, device, SAMPLE_PATH)], keys="\\e1")
    assert result.status is ExitStatus.OK, result.message
    assert f"1. {drive_label(bus, device)}" in result.screen
    assert drive_label(bus, device) in session.board.debug_log
    assert "checksum OK" in result.screen
    assert traffic.count("IDENTIFY PACKET DEVICE", f"ide{bus}-{device}") == 1
    assert_only_through_the_ports(traffic)


def test_an_empty_drive_is_given_up_cleanly_and_the_next_one_boots() -> None:
    drives = [DriveSpec(0, 0, None), DriveSpec(1, 1, SAMPLE_PATH)]
    result, session, traffic = seabios_boot(drives, keys="\\e1")
    assert result.status is ExitStatus.OK, result.message
    assert f"1. {drive_label(0, 0)}" in result.screen
    assert f"2. {drive_label(1, 1)}" in result.screen
    log = session.board.debug_log
    assert "Device reports MEDIUM NOT PRESENT - 0 tries left" in log
    screen = result.screen
    failed = screen.index("Boot failed: Could not read from CDROM (code 0003)")
    assert screen.index("checksum OK") > failed
    # The power-on UNIT ATTENTION, then MEDIUM NOT PRESENT three times: SeaBIOS gives up.
    assert traffic.count("TEST UNIT READY", "ide0-0") == 4
    assert traffic.count("REQUEST SENSE", "ide0-0") == 4
    # SeaBIOS still tries the boot record (LBA 17) once; it fails NOT READY: "code 0003".
    assert traffic.count("READ(10)", "ide0-0") == 1
    assert traffic.count("READ(10)", "ide1-1") > 0


def test_only_an_empty_drive_means_no_bootable_device() -> None:
    result, session, _ = seabios_boot([DriveSpec(1, 0, None)])
    assert result.status is ExitStatus.BOOT_FAILED
    assert "No bootable device" in result.message
    assert drive_label(1, 0) in session.board.debug_log


def test_run_boot_and_the_cli_select_seabios() -> None:
    result = run_boot(BootOptions(iso=SAMPLE_PATH, firmware="seabios"))
    assert result.status is ExitStatus.OK and "checksum OK" in result.console
    out = subprocess.run([sys.executable, "-m", "emu.tools.cli", "boot", "--firmware", "seabios",
                          "--firmware-log", str(SAMPLE_PATH)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "SeaBIOS (version" in out.stdout and "checksum OK" in out.stdout
    assert drive_label(1, 0) in out.stderr


def test_bus_master_registers_follow_bar4_and_the_command_register() -> None:
    session = Session(BootOptions(iso=SAMPLE_PATH, firmware="seabios"), SeaBios())
    ports, ide = session.board.ports, session.board.pci.functions[(1, 1)]
    engines = session.board.bus_masters
    assert ports.claimed(0xC000) is None and not engines[0].bus_master_enabled
    addr = 0x8000_0000 | (1 << 11) | (1 << 8)
    ports.outl(0xCF8, addr | 0x20)
    ports.outl(0xCFC, 0xD000)
    ports.outl(0xCF8, addr | 0x04)
    ports.outw(0xCFC, 0x0001)  # I/O space only
    assert ports.claimed(0xD000) is not None and ports.claimed(0xD008) is not None
    assert not engines[1].bus_master_enabled
    ports.outw(0xCFC, 0x0005)  # and bus master
    assert engines[0].bus_master_enabled and ide.bm_base == 0xD000
    ports.outw(0xCFC, 0x0000)
    assert ports.claimed(0xD000) is None
    for medium in session.media:
        medium.close()


def test_isolinux_gets_typed_keys_through_the_8042(isolinux_iso):  # noqa: F811
    result, session, _ = seabios_boot(iso=isolinux_iso, keys="ls.c32 /\\r")
    assert result.status is ExitStatus.OK, result.message
    assert "waits for keyboard input" in result.message
    assert "Press ESC" not in result.console  # no boot menu unless the keys start with ESC
    listing = result.console[result.console.index("boot: ls.c32 /") :]
    assert "isolinux" in listing
    assert session.board.kbc.typed[:2] == [0x266C, 0x1F73]  # 'l', 's' as INT 16h words


def test_grub_command_line_through_the_8042(grub_iso):  # noqa: F811
    # 'c' at the menu, then "ls /": GRUB polls INT 16h from protected mode; the keys
    # reach it as IRQ 1 delivered in SeaBIOS's sti windows.
    result, _, traffic = seabios_boot(iso=grub_iso, keys="cls /\\r", until="boot.catalog")
    assert result.status is ExitStatus.OK, result.message
    after = result.console[result.console.index("grub> ls /") :]
    assert "boot/" in after
    assert_only_through_the_ports(traffic)


def test_seabios_boots_are_deterministic_with_the_tsc_on_the_virtual_clock() -> None:
    # Unicorn's RDTSC counts host time; SeaBIOS calibrates it against the 8254, so a
    # host-time TSC would give another "CPU Mhz" and other timeouts on every run.
    runs = [seabios_boot(iso=SAMPLE_PATH) for _ in range(2)]
    assert runs[0][0].instructions == runs[1][0].instructions
    assert "CPU Mhz=100\n" in runs[0][1].board.debug_log
    assert runs[0][1].board.debug_log == runs[1][1].board.debug_log
