"""Booting with real firmware: Debian's SeaBIOS on the emulated PC platform.

``emu boot --firmware seabios`` runs the unmodified ``bios.bin`` from the
reset vector.  SeaBIOS does its own POST — PCI enumeration, memory map,
interrupt controllers, timer calibration, keyboard, its own ATA/ATAPI driver
probing the four IDE locations through the ports — prints its banner, lists
the boot devices and boots the disc by El Torito, all by itself.  Nothing
here calls into the drive: every byte SeaBIOS and the loader get crosses the
emulated controller (tests count the commands in the drive's trace).

The platform (each device a model in ``devices/``):

==============================  ==========================================
8259A pair (20h/A0h)            :mod:`devices.platform.pic`; IDE IRQ 14/15 wired in
8254 (40h-43h, 61h)             :mod:`devices.platform.pit`; IRQ 0 on the virtual clock
8042 (60h/64h)                  :mod:`devices.platform.i8042`; keys from ``--keys``
MC146818 (70h/71h)              :mod:`devices.platform.cmos`; memory size, one CPU
PCI mechanism #1 (CF8h/CFCh)    :mod:`devices.platform.pci`; i440FX, PIIX3, PIIX3 IDE
local APIC / I/O APIC pages     :mod:`devices.platform.apic`; Unicorn ``mmio_map``
fw_cfg (510h/511h)              :mod:`devices.platform.fw_cfg`; e820, menu, VGA ROM
VGA registers (3B4h-3DAh)       :mod:`devices.platform.vga`; SeaVGABIOS runs on them
port 402h                       SeaBIOS's debug console, captured
port 92h, 80h, E9h, COM1        fast A20/reset, POST codes, debug console, serial
==============================  ==========================================

Memory: ``bios.bin`` (128 KiB) sits at the top of the 4 GiB space
(FFFE0000h, a read-only alias as the chipset decodes it) and in RAM at
E0000h-FFFFFh, where the CPU starts at F000:FFF0 (the shadow copy; SeaBIOS
re-copies itself from the high alias when it opens the PAM registers,
which here are plain storage).

Text output (the documented path): SeaBIOS finds SeaVGABIOS
(``vgabios-stdvga.bin``) as the fw_cfg file ``vgaroms/vgabios-stdvga.bin``,
copies it to C0000h and runs its POST; the VGA BIOS programs the register
file and writes characters into the text frame buffer at B8000h (RAM).  A
:class:`TextScraper` polls that frame on the virtual clock and turns changes
into the text stream (so anything written straight into B8000h shows too).
There is no Bochs VBE interface, so SeaVGABIOS falls back to plain VGA.

fw_cfg makes POST shorter and simpler: the memory map comes from
``etc/e820`` instead of CMOS probing.  The boot menu (fw_cfg item 0Eh) is
offered only when ``--keys`` starts with ESC (or keys come from a terminal):
then SeaBIOS prints "Press ESC for boot menu.", waits ``etc/boot-menu-wait``
ms (idle time, skipped while the CPU halts), and the ESC opens its list,
which names each drive as SeaBIOS sees it (``DVD/CD [ata1-0: <model>
ATAPI-<n> DVD/CD]``); the next key picks the entry.  Otherwise SeaBIOS boots
straight away and the first scripted key reaches the loader.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from unicorn import UC_HOOK_CODE, UC_PROT_EXEC, UC_PROT_READ

from devices.atapi.drive import AtapiDrive
from devices.bus import PortRange
from devices.ide.bmdma import BM_CHANNEL_STRIDE
from devices.media.iso import IsoImage
from devices.platform.apic import IOAPIC_BASE, LAPIC_BASE, PAGE, IoApic, LocalApic
from devices.platform.cmos import Cmos
from devices.platform.debugport import DebugPorts
from devices.platform.fw_cfg import (
    BOOT_MENU,
    E820_RAM,
    MAX_CPUS,
    NB_CPUS,
    NOGRAPHIC,
    RAM_SIZE,
    FwCfg,
    e820_table,
)
from devices.platform.i8042 import I8042
from devices.platform.pci import PciBus, pc_pci_bus
from devices.platform.pic import Pic8259Pair
from devices.platform.pit import Pit8254
from devices.platform.port92 import SystemPorts
from devices.platform.uart import Uart16550
from devices.platform.vga import VgaRegisters
from emu.boot import SAMPLE_ISO, BootOptions, BootResult, ExitStatus, GuestText, run_cpu_until
from emu.firmware.keyboard import Keyboard, parse_keys
from emu.pc.cpu import Cpu, StopReason
from emu.pc.machine import Machine

SEABIOS_BIN = Path("/usr/share/seabios/bios.bin")
VGABIOS_BIN = Path("/usr/share/seabios/vgabios-stdvga.bin")
DEBUG_PORT = 0x402
TEXT_BASE = 0xB8000
COLUMNS, ROWS = 80, 25
SCRAPE_US = 2_000
"""How often (virtual microseconds) the text frame is compared for changes."""
DEFAULT_MENU_WAIT_MS = 300
"""``etc/boot-menu-wait``: long enough for a scripted ESC, idle time otherwise."""
NO_BOOT_DEVICE = "No bootable device."
INPUT_WAIT_SECONDS = 1.0
"""Virtual seconds of an unchanged screen with no keys left to type that mean "the
guest waits for keyboard input" (the hardware-level view of a blocked INT 16h)..."""
POLLS_BEFORE_STARVED = 2000
"""...or this many INT 16h calls on an empty key buffer meanwhile (a polling loader;
the built-in BIOS's rule)."""
INT16_ENTRY = 0xFE82E
"""F000:E82E, the IBM-compatible fixed entry point of INT 16h, where SeaBIOS keeps it."""
POLLS_BEFORE_TYPING = 4
"""A scripted key is typed when the CPU halts waiting for an interrupt, or after the
guest called INT 16h this many times with SeaBIOS's key buffer empty (a loader polling
AH=01h does not halt) — the same rule as the built-in BIOS's typist."""
BDA_KBD_HEAD, BDA_KBD_TAIL = 0x41A, 0x41C
ESC_KEY = 0x011B


def _kept(old: str, new: str) -> bool:
    """Does row text ``new`` keep what ``old`` showed (same, grown, or filling a blank row)?"""
    return not old or new.startswith(old)


class TextScraper:
    """Turns the 80×25 text frame at B8000h into a stream of appearing text.

    Each poll compares the frame with the last one.  When some row lost its
    old text, a scroll is looked for first: the smallest *k* such that the old
    rows moved up by *k* are all still there (unchanged, grown, or blank
    before).  Then every changed, non-blank row is emitted — only the new tail
    when the row grew from its old content, else the whole row on a new line.
    """

    def __init__(self, ram: np.ndarray, vga: VgaRegisters,
                 on_text: Callable[[str], None] | None = None) -> None:
        self.ram = ram
        self.vga = vga
        self.on_text = on_text
        self.rows = [""] * ROWS
        self.stream: list[str] = []
        self.last_row = 0
        self.changed = False

    def frame_rows(self) -> list[str]:
        """The displayed page as 25 strings (trailing blanks removed)."""
        start = TEXT_BASE + 2 * self.vga.start_offset()
        cells = self.ram[start : start + 2 * COLUMNS * ROWS : 2]
        chars = np.where((cells >= 0x20) & (cells < 0x7F), cells, 0x20).astype(np.uint8)
        text = chars.tobytes().decode("latin-1")
        return [text[r * COLUMNS : (r + 1) * COLUMNS].rstrip() for r in range(ROWS)]

    def text(self) -> str:
        """The screen as lines of text."""
        return "\n".join(self.frame_rows()).rstrip("\n")

    def poll(self) -> str:
        """Compare with the last frame; return (and stream) what appeared."""
        new = self.frame_rows()
        old = self.rows
        if new == old:
            self.changed = False
            return ""
        self.changed = True
        if not all(_kept(o, n) for o, n in zip(old, new, strict=True)):
            for k in range(1, ROWS):
                moved = old[k:]
                if any(moved) and all(_kept(o, n) for o, n in zip(moved, new, strict=False)):
                    old = moved + [""] * k
                    self.last_row = max(0, self.last_row - k)
                    break
        out: list[str] = []
        for r in range(ROWS):
            if new[r] == old[r] or not new[r]:
                continue
            if r == self.last_row and new[r].startswith(old[r]):
                out.append(new[r][len(old[r]):])
            else:
                out.append("\n" + new[r])
            self.last_row = r
        self.rows = new
        text = "".join(out)
        if text:
            self.stream.append(text)
            if self.on_text is not None:
                self.on_text(text)
        return text


@dataclass
class DriveSpec:
    """A DVD drive for the SeaBIOS board: bus location and an ISO path (None = empty)."""

    bus: int
    device: int
    iso: str | Path | None = None


class SeaBiosSession(GuestText):
    """The PC platform for SeaBIOS, the firmware images mapped, and the run loop."""

    def __init__(self, options: BootOptions, drives: list[DriveSpec] | None = None,
                 bios_path: Path = SEABIOS_BIN, vgabios_path: Path | None = VGABIOS_BIN,
                 menu_wait_ms: int = DEFAULT_MENU_WAIT_MS, boot_menu: bool | None = None
                 ) -> None:
        self.options = options
        if drives is None:
            drives = [DriveSpec(options.bus, options.device, options.iso or SAMPLE_ISO)]
        self.machine = machine = Machine(options.memory_size)
        self.media: list[IsoImage] = []
        self.drives: list[AtapiDrive] = []
        for spec in drives:
            medium = IsoImage(spec.iso) if spec.iso is not None else None
            if medium is not None:
                self.media.append(medium)
            self.drives.append(machine.add_dvd_drive(spec.bus, spec.device, medium))
        self.drive = self.drives[0] if self.drives else None
        self.cpu = cpu = Cpu(machine.memory, machine.ports)
        clock = cpu.clock
        self.pic = Pic8259Pair()
        self.pic.connect(machine.irqs)
        cpu.interrupts = self.pic
        cpu.irq_window = (0xF0000, 0x100000)  # SeaBIOS's 16-bit code: sti; nop; cli windows
        cpu.use_virtual_tsc()  # TSC calibration and timeouts on the virtual clock
        self.pit = Pit8254(clock, machine.irqs[0])
        self.cmos = Cmos(clock, machine.memory.size)
        self.keyboard = Keyboard(parse_keys(options.keys), options.live_keys)
        self.kbc = I8042(machine.irqs[1], machine.irqs[12], keys=self._next_key,
                         typing_allowed=self._typing_allowed, on_reset=self._reset,
                         clock=clock)
        self._bm_ranges: list[PortRange] = []
        for engine in machine.bus_masters:  # placed by BAR 4, when the guest enables I/O
            engine.bus_master_enabled = False  # until the PCI command register says so
            registered = machine.ports.claimed(engine.base)
            if registered is not None:
                machine.ports.unregister(registered)
        self.pci: PciBus = pc_pci_bus(0, self._ide_io_changed)
        if boot_menu is None:
            script = self.keyboard.script
            boot_menu = options.live_keys is not None or (bool(script) and script[0] == ESC_KEY)
        self.boot_menu = boot_menu
        self.fw_cfg = self._make_fw_cfg(vgabios_path, menu_wait_ms, boot_menu)
        self.vga = VgaRegisters()
        self.serial_text: list[str] = []
        self.serial = Uart16550(on_output=self._serial_out)
        self.debug_bytes = bytearray()
        self.system = SystemPorts(on_reset=self._reset_92)
        self.post = DebugPorts(on_output=self._serial_out)  # 80h POST codes, E9h console
        for device in (self.pic, self.pit, self.cmos, self.kbc, self.pci, self.fw_cfg,
                       self.vga, self.serial, self.system, self.post):
            for rng in device.port_ranges():
                machine.ports.register(rng)
        machine.ports.register(PortRange(DEBUG_PORT, 1, lambda p, w: 0xE9, self._debug_out,
                                         name="seabios-debug"))
        self.lapic = LocalApic()
        self.ioapic = IoApic()
        self._map_firmware(bios_path)
        self.scraper = TextScraper(machine.memory.data, self.vga, self._console_out)
        self.deadline: int | None = None
        self._scrape_period = max(1, clock.ips * SCRAPE_US // 1_000_000)
        self.deadline = clock.instructions + self._scrape_period
        clock.add_timer(self)
        self.console_tail = ""
        self.until_seen = False
        self.no_boot_device = False
        self.waiting_for_input = False
        self._idle_since = clock.instructions
        self._idle_polls = 0
        self._empty_polls = 0
        cpu.uc.hook_add(UC_HOOK_CODE, self._int16_called, None, INT16_ENTRY, INT16_ENTRY)
        self.resets = 0
        cpu.reset_real_mode(0xF000, 0xFFF0, ss=0, sp=0)

    # -- platform wiring -------------------------------------------------------------
    def _make_fw_cfg(self, vgabios_path: Path | None, menu_wait_ms: int,
                     boot_menu: bool) -> FwCfg:
        size = self.machine.memory.size
        cfg = FwCfg()
        cfg.set_int(RAM_SIZE, size, 8)
        cfg.set_int(NB_CPUS, 1, 2)
        cfg.set_int(MAX_CPUS, 1, 2)
        cfg.set_int(NOGRAPHIC, 0, 2)
        cfg.set_int(BOOT_MENU, int(boot_menu), 2)
        cfg.add_file("etc/e820", e820_table([(0, size, E820_RAM)]))
        cfg.add_file("etc/boot-menu-wait", menu_wait_ms.to_bytes(2, "little"))
        if vgabios_path is not None and Path(vgabios_path).exists():
            cfg.add_file("vgaroms/vgabios-stdvga.bin", Path(vgabios_path).read_bytes())
        return cfg

    def _map_firmware(self, bios_path: Path) -> None:
        rom = Path(bios_path).read_bytes()
        if len(rom) % PAGE or not 0 < len(rom) <= 0x20000:
            raise ValueError(f"{bios_path}: expected a 128 KiB (or smaller, 4 KiB aligned) BIOS")
        uc = self.cpu.uc
        high = (1 << 32) - len(rom)
        uc.mem_map(high, len(rom), UC_PROT_READ | UC_PROT_EXEC)  # ROM: writes fault
        uc.mem_write(high, rom)
        self.machine.memory.write(0x100000 - len(rom), rom)
        for base, model in ((LAPIC_BASE, self.lapic), (IOAPIC_BASE, self.ioapic)):
            uc.mmio_map(base, PAGE,
                        lambda _uc, off, size, m: m.read(off, size), model,
                        lambda _uc, off, size, value, m: m.write(off, size, value), model)

    def _ide_io_changed(self, base: int, io_enabled: bool, bus_master: bool) -> None:
        ports = self.machine.ports
        for rng in self._bm_ranges:
            ports.unregister(rng)
        self._bm_ranges = []
        for engine in self.machine.bus_masters:
            engine.bus_master_enabled = bus_master
            engine.service()  # a transfer that waited for the bit goes on now
        if not io_enabled or not base:
            return
        for engine in self.machine.bus_masters:
            engine.base = base + engine.channel.number * BM_CHANNEL_STRIDE
            rng = engine.port_range()
            ports.register(rng)
            self._bm_ranges.append(rng)

    def _typing_allowed(self) -> bool:
        return self.cpu.halted or self._empty_polls >= POLLS_BEFORE_TYPING

    def _int16_called(self, uc: object, address: int, size: int, _user: object) -> None:
        ram = self.machine.memory.data
        if ram[BDA_KBD_HEAD:BDA_KBD_HEAD + 2].tobytes() == ram[BDA_KBD_TAIL:BDA_KBD_TAIL + 2
                                                              ].tobytes():
            self._empty_polls += 1
            self._idle_polls += 1

    def _next_key(self) -> int | None:
        kb = self.keyboard
        if kb.script:
            key = kb.script.popleft()
        elif kb.live is not None:
            key = kb.live()
        else:
            return None
        if key is not None:
            kb.typed.append(key)
            self._empty_polls = 0
        return key

    def _reset(self) -> None:
        self.resets += 1
        self.cpu.fail("the guest reset the machine (8042 pulse)")

    def _reset_92(self) -> None:
        self.resets += 1
        self.cpu.fail("the guest reset the machine (port 92h)")

    # -- output ------------------------------------------------------------------------
    def _debug_out(self, port: int, width: int, value: int) -> None:
        self.debug_bytes.append(value & 0xFF)

    @property
    def debug_log(self) -> str:
        """What SeaBIOS wrote to its debug port (402h)."""
        return self.debug_bytes.decode("latin-1")

    def _console_out(self, text: str) -> None:
        super()._console_out(text)
        if NO_BOOT_DEVICE in text:
            self.no_boot_device = True
            self.cpu.request_stop(StopReason.STOPPED)

    def fire(self) -> None:
        """Clock timer: look at the text frame; notice a guest that waits for keys."""
        self.scraper.poll()
        assert self.deadline is not None
        self.deadline += self._scrape_period
        kb = self.keyboard
        idle = not self.scraper.changed and not kb.script and kb.live is None
        if not idle:
            self._idle_since = self.deadline
            self._idle_polls = 0
        elif self._idle_polls >= POLLS_BEFORE_STARVED or (
                self.deadline - self._idle_since
                >= self.cpu.clock.to_instructions(INPUT_WAIT_SECONDS)):
            self.waiting_for_input = True
            self.cpu.request_stop(StopReason.STOPPED)

    # -- the run -----------------------------------------------------------------------
    def run(self) -> BootResult:
        """Power on and run until a stop condition (see :class:`~emu.boot.ExitStatus`)."""
        started = time.monotonic()
        result = BootResult(ExitStatus.OK, "", machine=self.machine, drive=self.drive)
        try:
            result.status, result.message = self._run_cpu(started)
        finally:
            self.scraper.poll()
            result.console = "".join(self.scraper.stream)
            result.serial = "".join(self.serial_text)
            result.screen = self.scraper.text()
            result.instructions = self.cpu.clock.instructions
            result.virtual_seconds = self.cpu.clock.seconds
            result.wall_seconds = time.monotonic() - started
            result.firmware_log = self.debug_log.splitlines()
            for medium in self.media:
                medium.close()
        return result

    def _run_cpu(self, started: float) -> tuple[ExitStatus, str]:
        return run_cpu_until(self.cpu, self.options, started, self._firmware_stop)

    def _firmware_stop(self, until_missing: ExitStatus) -> tuple[ExitStatus, str] | None:
        """Stops SeaBIOS's run asks for: the text seen, no boot device, input wait."""
        self.scraper.poll()  # text written just before a halt must be seen by --until
        if self.until_seen:
            return ExitStatus.OK, f"saw {self.options.until!r}"
        if self.no_boot_device:
            return ExitStatus.BOOT_FAILED, "SeaBIOS: No bootable device."
        if self.waiting_for_input:
            return until_missing, "the guest waits for keyboard input"
        return None


def run_seabios_boot(options: BootOptions, drives: list[DriveSpec] | None = None
                     ) -> BootResult:
    """Boot under SeaBIOS (see the module docstring)."""
    return SeaBiosSession(options, drives).run()
