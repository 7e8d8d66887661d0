"""One boot of a PC from its DVD drive: firmware, BIOS services and the CPU together.

:func:`run_boot` powers on a :class:`~emu.pc.machine.Machine` with a DVD drive
holding the disc, adds the legacy chipset (PIC, PIT, CMOS, COM1, port 80h,
port E9h, port 92h), runs the firmware half of the boot (probe, El Torito,
load: :func:`~emu.firmware.eltorito.firmware_boot`), installs the BIOS and
starts the boot image on the CPU with DL = the boot drive, as a BIOS does.

The run ends when one of these happens first (:class:`ExitStatus`):

=====  ==================  ===================================================
 0     ``OK``              the ``until`` text appeared; or, without ``until``,
                           the guest halted or waits for a key nobody will type
 1     ``BOOT_FAILED``     no drive / not ready / no El Torito record /
                           unsupported platform (said as a BIOS would), the
                           guest called INT 18h/19h, or the CPU crashed
 2     ``BAD_INPUT``       the image could not be opened (the CLI's status)
 3     ``LIMIT``           ``timeout`` (virtual seconds), ``max_instructions``
                           or the wall-clock last-resort deadline came first
 4     ``UNTIL_NOT_SEEN``  the guest halted or waits for input, and the
                           ``until`` text never appeared
=====  ==================  ===================================================

Time is virtual (:class:`~emu.pc.cpu.VirtualClock`): ``timeout`` counts guest
seconds at 100 M instructions a second, so a run is deterministic.  The wall
deadline exists only as a last resort against a host that crawls; it is
checked between CPU runs, never by preempting Unicorn.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

from devices.atapi.drive import AtapiDrive
from devices.media.iso import IsoImage
from devices.platform.cmos import Cmos
from devices.platform.debugport import DebugPorts
from devices.platform.i8042 import I8042
from devices.platform.pic import Pic8259Pair
from devices.platform.pit import Pit8254
from devices.platform.port92 import SystemPorts
from devices.platform.uart import Uart16550
from emu.firmware.ata import AtaHostDriver, FirmwareError
from emu.firmware.bios import Bios, BiosStop
from emu.firmware.eltorito import LoadedImage, firmware_boot
from emu.firmware.keyboard import Keyboard, parse_keys
from emu.firmware.video import Screen
from emu.pc.cpu import Cpu, CpuFault, StopReason
from emu.pc.machine import Machine
from images import SAMPLE_ISO

DEFAULT_TIMEOUT = 60.0
"""Virtual seconds a non-interactive boot may run."""
RUN_CHUNK = 20_000_000
"""Instructions per :meth:`Cpu.run` call between wall-clock checks."""


class ExitStatus(IntEnum):
    """The documented exit statuses of ``emu boot`` (see the module docstring)."""

    OK = 0
    BOOT_FAILED = 1
    BAD_INPUT = 2
    LIMIT = 3
    UNTIL_NOT_SEEN = 4


@dataclass
class BootOptions:
    """What to boot and when to stop."""

    iso: str | Path | None = None
    bus: int = 1
    device: int = 0
    keys: str = ""
    until: str | None = None
    timeout: float | None = DEFAULT_TIMEOUT
    """Virtual seconds (None: no limit)."""
    wall_timeout: float | None = None
    """Last-resort host seconds (None: no limit)."""
    max_instructions: int | None = None
    live_keys: Callable[[], int | None] | None = None
    """A key source after the script (a terminal); the run never "starves" then."""
    on_console: Callable[[str], None] | None = None
    """Streamed screen text, as it appears."""
    on_serial: Callable[[str], None] | None = None
    """Streamed COM1 and port E9h text."""
    on_loaded: Callable[[LoadedImage], None] | None = None
    """Called once the firmware loaded the boot image, before the CPU starts."""
    memory_size: int = 16 << 20
    firmware: str = "builtin"
    """``"builtin"`` (the Python BIOS) or ``"seabios"`` (emu.firmware.seabios)."""


@dataclass
class BootResult:
    """How a boot went."""

    status: ExitStatus
    message: str
    loaded: LoadedImage | None = None
    console: str = ""
    serial: str = ""
    screen: str = ""
    instructions: int = 0
    virtual_seconds: float = 0.0
    wall_seconds: float = 0.0
    sectors_read: int = 0
    """CD sectors the BIOS read for the guest (INT 13h), all by READ(10) through the drive."""
    dma_reads: int = 0
    """How many of the BIOS's READ(10) runs moved their data by bus-master DMA."""
    bios_calls: dict[tuple[int, int], int] = field(default_factory=dict)
    firmware_log: list[str] = field(default_factory=list)
    machine: Machine | None = None
    drive: AtapiDrive | None = None


class GuestText:
    """Guest text output shared by both firmwares' sessions: the screen stream and
    COM1 go to the caller's callbacks and are watched for the ``--until`` text.

    A session sets ``options``, ``cpu``, ``serial_text``, ``console_tail`` and
    ``until_seen`` and hands :meth:`_console_out` / :meth:`_serial_out` to its
    screen and serial models.
    """

    options: BootOptions
    cpu: Cpu
    serial_text: list[str]
    console_tail: str
    until_seen: bool

    def _check_until(self, text: str) -> None:
        until = self.options.until
        if until is None or self.until_seen:
            return
        self.console_tail = (self.console_tail + text)[-(len(until) + 256):]
        if until in self.console_tail:
            self.until_seen = True
            self.cpu.request_stop(StopReason.STOPPED)

    def _console_out(self, text: str) -> None:
        if self.options.on_console is not None:
            self.options.on_console(text)
        self._check_until(text)

    def _serial_out(self, data: bytes) -> None:
        text = data.decode("latin-1")
        self.serial_text.append(text)
        if self.options.on_serial is not None:
            self.options.on_serial(text)
        self._check_until(text)


class BootSession(GuestText):
    """A machine, its chipset, BIOS and CPU, set up for one boot."""

    def __init__(self, options: BootOptions) -> None:
        self.options = options
        self.medium = IsoImage(options.iso or SAMPLE_ISO)
        self.machine = Machine(options.memory_size)
        self.drive = self.machine.add_dvd_drive(options.bus, options.device, self.medium)
        machine = self.machine
        self.cpu = Cpu(machine.memory, machine.ports)
        self.pic = Pic8259Pair()
        self.pic.connect(machine.irqs)
        self.pit = Pit8254(self.cpu.clock, machine.irqs[0])
        self.cmos = Cmos(self.cpu.clock, machine.memory.size)
        self.serial_text: list[str] = []
        self.console_tail = ""
        self.serial = Uart16550(on_output=self._serial_out)
        self.debug = DebugPorts(on_output=self._serial_out)
        self.system = SystemPorts()
        self.kbc = I8042(machine.irqs[1], machine.irqs[12])
        for device in (self.pic, self.pit, self.cmos, self.serial, self.debug, self.system,
                       self.kbc):
            for rng in device.port_ranges():
                machine.ports.register(rng)
        self.cpu.interrupts = self.pic
        self.driver = AtaHostDriver(machine.ports, machine.memory,
                                    use_dma=bool(machine.bus_masters))
        self.keyboard = Keyboard(parse_keys(options.keys), options.live_keys)
        self.screen = Screen(machine.memory.data, on_text=self._console_out)
        self.bios = Bios(self.cpu, self.driver, self.pic, self.keyboard, self.screen,
                         serial=self.serial, cmos=self.cmos, on_stop=self._bios_stop)
        self.until_seen = False
        self.bios_stop: BiosStop | None = None

    # -- stop events (called from CPU hooks) ----------------------------------------
    def _bios_stop(self, event: BiosStop) -> None:
        if event.kind == "input" and self.options.until is not None:
            return  # keep waiting: a countdown may still print the text
        self.bios_stop = event
        self.cpu.request_stop(StopReason.STOPPED)

    # -- the boot ------------------------------------------------------------------------
    def firmware(self) -> LoadedImage:
        """Probe, El Torito, load (raises :class:`FirmwareError` with a BIOS-like reason)."""
        loaded = firmware_boot(self.driver)
        self.bios.attach_boot(loaded)
        return loaded

    def start(self, loaded: LoadedImage) -> None:
        """CPU state at the hand-over: CS:IP at the image, DL = boot drive, IF set."""
        entry = loaded.entry
        cpu = self.cpu
        if entry.media_type == 0:
            cpu.reset_real_mode(entry.segment, 0, ss=0, sp=0x7C00)
        else:
            cpu.reset_real_mode(0, 0x7C00, ss=0, sp=0x7C00)
        cpu.set_reg("edx", self.bios.boot_drive)
        cpu.set_reg("eflags", 0x202)

    def run(self) -> BootResult:
        opts = self.options
        started = time.monotonic()
        result = BootResult(ExitStatus.OK, "", machine=self.machine, drive=self.drive)
        try:
            try:
                loaded = self.firmware()
            except FirmwareError as exc:
                result.status = ExitStatus.BOOT_FAILED
                result.message = f"Boot failed: {exc}"
                return result
            result.loaded = loaded
            if opts.on_loaded is not None:
                opts.on_loaded(loaded)
            self.start(loaded)
            result.status, result.message = self._run_cpu(started)
        finally:
            result.firmware_log = list(self.driver.log)
            result.console = "".join(self.screen.stream)
            result.serial = "".join(self.serial_text)
            result.screen = self.screen.text()
            result.instructions = self.cpu.clock.instructions
            result.virtual_seconds = self.cpu.clock.seconds
            result.wall_seconds = time.monotonic() - started
            result.sectors_read = self.bios.sectors_read
            result.dma_reads = self.bios.dma_reads
            result.bios_calls = dict(self.bios.calls)
            self.medium.close()
        return result

    def _run_cpu(self, started: float) -> tuple[ExitStatus, str]:
        return run_cpu_until(self.cpu, self.options, started, self._firmware_stop)

    def _firmware_stop(self, until_missing: ExitStatus) -> tuple[ExitStatus, str] | None:
        """Stops the built-in BIOS asks for: waiting for input, INT 18h/19h."""
        if self.until_seen:
            return ExitStatus.OK, f"saw {self.options.until!r}"
        stop = self.bios_stop
        if stop is None:
            return None
        if stop.kind == "input":
            return until_missing, "the guest waits for keyboard input"
        return ExitStatus.BOOT_FAILED, stop.message


def run_cpu_until(
    cpu: Cpu,
    opts: BootOptions,
    started: float,
    firmware_stop: Callable[[ExitStatus], tuple[ExitStatus, str] | None],
) -> tuple[ExitStatus, str]:
    """Run the CPU in chunks until the guest halts or idles, the firmware asks to
    stop (``firmware_stop``, given the status to use when ``--until`` text never
    appeared), or a limit is reached.  Shared by both firmwares."""
    limit = opts.max_instructions
    if opts.timeout is not None:
        by_time = cpu.clock.to_instructions(opts.timeout)
        limit = by_time if limit is None else min(limit, by_time)
    until_missing = ExitStatus.UNTIL_NOT_SEEN if opts.until is not None else ExitStatus.OK
    while True:
        chunk = RUN_CHUNK
        if limit is not None:
            chunk = min(chunk, limit - cpu.clock.instructions)
            if chunk <= 0:
                return ExitStatus.LIMIT, (
                    f"stopped at the limit after {cpu.clock.instructions:,} instructions "
                    f"({cpu.clock.seconds:.2f} s of guest time)")
        try:
            outcome = cpu.run(chunk)
        except CpuFault as exc:
            return ExitStatus.BOOT_FAILED, f"CPU fault: {exc}"
        stop = firmware_stop(until_missing)
        if stop is not None:
            return stop
        if outcome.reason is StopReason.HALTED:
            return until_missing, f"the guest halted at {cpu.where()}"
        if outcome.reason is StopReason.IDLE:
            return until_missing, f"the guest idles with nothing to wake it at {cpu.where()}"
        if opts.wall_timeout is not None and time.monotonic() - started > opts.wall_timeout:
            return ExitStatus.LIMIT, f"wall-clock deadline of {opts.wall_timeout} s reached"


def run_boot(options: BootOptions) -> BootResult:
    """Boot ``options.iso`` (the built-in sample by default) and report how it went."""
    if options.firmware == "seabios":
        from emu.firmware.seabios import run_seabios_boot

        return run_seabios_boot(options)
    return BootSession(options).run()
