"""One run of the PC: a board, its drives, a firmware plugged in, and one set of stop rules.

:class:`Session` builds a :class:`~emu.pc.board.PcBoard`, puts the DVD drives on it,
hands the board to a firmware plug (:class:`Firmware`: the built-in BIOS or SeaBIOS, from
:mod:`emu.firmware`) and runs the CPU until one of the rules below ends the run.  The
rules are the same whatever firmware runs:

=====  ==================  ===========================================================
 0     ``OK``              the ``until`` text appeared (on the screen, however it got
                           there, or on COM1 / the E9h console); or, without ``until``,
                           the guest halted or waits for input
 1     ``BOOT_FAILED``     the firmware gave up (no drive, not ready, no El Torito
                           record, "No bootable device", INT 18h/19h) or the CPU hit
                           something this PC cannot continue from
 2     ``BAD_INPUT``       the image, a path or an option was unusable (the CLI's)
 3     ``LIMIT``           ``timeout`` (host seconds), ``guest_timeout`` (virtual
                           seconds) or ``max_instructions`` came first
 4     ``UNTIL_NOT_SEEN``  the guest halted or waits for input and the ``until`` text
                           never appeared
 5     ``TRIPLE_FAULT``    the guest triple-faulted (a PC would shut down / reset);
                           the message gives CS:IP
=====  ==================  ===========================================================

**Waiting for input** is decided by what the guest does, never by an unchanged screen
alone: the guest must be *asking* (polling the keyboard with nothing there, or halting
with interrupts on while nothing is pending) and nothing must be happening (no drive
command, no screen change, no serial or debug-console output) for
:data:`QUIET_SECONDS` of guest time with :data:`ASKS_BEFORE_WAITING` keyboard polls in
it, or :data:`HALT_QUIET_SECONDS` with as many halts (an OS idles in ``hlt`` between
timer events) (or :data:`POLLS_BEFORE_WAITING` polls, however short); a guest
that blocks in a keyboard read nobody will answer waits at once.  A guest that computes
(a decompressor, a memory test) is never "waiting".

**Time.**  Guest time is virtual (the CPU's instruction clock), so runs are
deterministic; ``guest_timeout`` and ``max_instructions`` stop at the same instruction
every run.  ``timeout`` is wall-clock seconds, as users expect; it is checked between
short CPU runs (never by preempting Unicorn: pitfall 2 in docs/booting.md), which keeps
every run inside its limit plus a fraction of a second.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any, Protocol

from devices.atapi.drive import AtapiDrive
from devices.media.base import Medium
from devices.trace import Tracer
from emu.pc.board import DEFAULT_MEMORY, PcBoard
from emu.pc.cpu import CpuFault, StopReason, TripleFault
from emu.pc.keyboard import Keyboard, parse_keys
from emu.pc.screen import TextScraper

DEFAULT_TIMEOUT = 60.0
"""Host seconds a non-interactive boot may run."""
RUN_CHUNK = 1_000_000
"""Instructions per CPU run between checks of the stop rules and the wall clock."""
SCRAPE_US = 8_000
"""How often (virtual microseconds) the text frame is looked at.  Each look ends an engine
run; at 2 ms the Linux decompressor spent 6 % of its time on looks at an unchanged
screen.  Text written and erased again within 8 ms of guest time is not streamed (the
built-in BIOS asks for a look before it scrolls or clears)."""
QUIET_SECONDS = 1.0
"""Guest seconds without disk, screen or serial activity that, with the guest asking for
input all along, mean it waits for input."""
HALT_QUIET_SECONDS = 30.0
"""Guest seconds of quiet that a guest asking only by halting (no keyboard polls) needs:
an operating system idles in ``hlt`` between timer events while it waits for a device or
a delay, so halts alone mean "waiting for input" only after a long silence."""
ASKS_BEFORE_WAITING = 10
"""Keyboard polls or interrupt waits in the quiet time that mean the guest is asking..."""
POLLS_BEFORE_WAITING = 2000
"""...or this many with nothing happening in between, however short the time (a loader
spinning on "is there a key?": each poll served by firmware costs the guest little time)."""


class ExitStatus(IntEnum):
    """The documented exit statuses of ``emu boot`` (see the module docstring)."""

    OK = 0
    BOOT_FAILED = 1
    BAD_INPUT = 2
    LIMIT = 3
    UNTIL_NOT_SEEN = 4
    TRIPLE_FAULT = 5


class FirmwareFailure(Exception):
    """The firmware gave up, said as a BIOS would ("no bootable device", ...)."""


@dataclass
class DriveSpec:
    """A DVD drive on the board: bus location and the image in it (None = empty)."""

    bus: int
    device: int
    iso: str | Path | None = None


@dataclass
class BootOptions:
    """What to boot and when to stop."""

    iso: str | Path | None = None
    bus: int = 1
    device: int = 0
    drives: list[DriveSpec] | None = None
    """Several drives (overrides ``iso``/``bus``/``device``)."""
    keys: str = ""
    until: str | None = None
    timeout: float | None = DEFAULT_TIMEOUT
    """Host (wall-clock) seconds (None: no limit)."""
    guest_timeout: float | None = None
    """Virtual seconds (None: no limit); deterministic."""
    max_instructions: int | None = None
    live_keys: Callable[[], int | None] | None = None
    """A key source after the script (a terminal); the run never "waits for input" then."""
    on_console: Callable[[str], None] | None = None
    """Streamed screen text, as it appears."""
    on_serial: Callable[[str], None] | None = None
    """Streamed COM1 and port E9h text."""
    on_loaded: Callable[[Any], None] | None = None
    """Called once the firmware loaded the boot image (built-in firmware), before the CPU starts."""
    memory_size: int = DEFAULT_MEMORY
    firmware: str = "builtin"
    """``"builtin"`` (the Python BIOS) or ``"seabios"`` (Debian's SeaBIOS)."""
    transfer: str | None = None
    """How the built-in BIOS moves CD sectors: ``"pio"`` or ``"dma"`` (bus-master);
    None: DMA.  SeaBIOS chooses for itself (PIO)."""
    trace: Tracer | None = None
    """Traces the controller, drives and bus masters from power-on (e.g. a traffic count)."""

    def drive_specs(self) -> list[DriveSpec]:
        if self.drives is not None:
            return list(self.drives)
        from images import SAMPLE_ISO

        return [DriveSpec(self.bus, self.device, self.iso or SAMPLE_ISO)]


@dataclass
class BootResult:
    """How a boot went."""

    status: ExitStatus
    message: str
    loaded: Any = None
    """The boot image the built-in firmware loaded (an ``emu.firmware.eltorito.LoadedImage``)."""
    console: str = ""
    serial: str = ""
    screen: str = ""
    instructions: int = 0
    virtual_seconds: float = 0.0
    wall_seconds: float = 0.0
    sectors_read: int = 0
    """CD sectors the built-in BIOS read for the guest (INT 13h), all by READ(10)."""
    dma_reads: int = 0
    """How many of the built-in BIOS's READ(10) runs moved their data by bus-master DMA."""
    drive_commands: int = 0
    """ATA commands written to the IDE channels (by firmware, loader or OS)."""
    bios_calls: dict[tuple[int, int], int] = field(default_factory=dict)
    firmware_log: list[str] = field(default_factory=list)
    machine: PcBoard | None = None
    drive: AtapiDrive | None = None


class Firmware(Protocol):
    """A firmware plug: given the session's board, it puts itself there."""

    name: str

    def install(self, session: Session) -> None:
        """Map ROM or install hooks and set the CPU's start state.  May raise
        :class:`FirmwareFailure` (the built-in firmware loads the boot image here)."""
        ...

    def finish(self, result: BootResult) -> None:
        """Add firmware-specific figures to the result (calls, sectors, log)."""
        ...

    def state(self) -> dict[str, Any]:
        """The plug's own saved state (plain data; emu/pc/state.py)."""
        ...

    def attach(self, session: Session, state: dict[str, Any]) -> None:
        """Plug in for a restored state: hooks and ROM mapping without the power-on work
        (RAM, the CPU and the devices are then set from the state)."""
        ...


def check_limits(options: BootOptions) -> None:
    """Reject limits no run can honour (a one-line ``ValueError``)."""
    for name in ("timeout", "guest_timeout"):
        value = getattr(options, name)
        if value is not None and (not math.isfinite(value) or value <= 0):
            raise ValueError(f"{name.replace('_', '-')} must be a positive number of seconds, "
                             f"not {value}")
    if options.max_instructions is not None and options.max_instructions <= 0:
        raise ValueError("max-instructions must be positive")


class Session:
    """A board with its drives and a firmware, and the one run loop (module docstring)."""

    def __init__(self, options: BootOptions, firmware: Firmware,
                 board: PcBoard | None = None) -> None:
        """A new board with the drives ``options`` names, or an existing ``board`` (a
        management-API virtual machine's) with the drives already on it."""
        check_limits(options)
        self.options = options
        self.firmware = firmware
        self.media: list[Medium] = []
        self.drives: list[AtapiDrive] = []
        if board is None:
            board = PcBoard(options.memory_size)
            from devices.media.iso import IsoImage

            try:
                for spec in options.drive_specs():
                    medium = IsoImage(spec.iso) if spec.iso is not None else None
                    if medium is not None:
                        self.media.append(medium)
                    self.drives.append(board.add_dvd_drive(spec.bus, spec.device, medium))
            except BaseException:
                self.close()
                raise
        else:
            self.drives = [unit for channel in board.ide.channels for unit in channel.units
                           if isinstance(unit, AtapiDrive)]
        self.board = board
        self.cpu = board.cpu
        self.clock = board.clock
        self.drive = self.drives[0] if self.drives else None
        if options.trace is not None:
            board.set_trace(options.trace)
        self.keyboard = Keyboard(parse_keys(options.keys), options.live_keys)
        # Guest text: the screen (whatever writes it), COM1 and the E9h console.
        self.serial_text: list[str] = []
        self._text_tail = ""
        self.until_seen = False
        self.scraper = TextScraper(board.memory.data, board.vga, self._screen_text)
        self.on_screen_text: list[Callable[[str], None]] = []
        """Firmware listeners for text appearing on the screen."""
        board.uart.on_output = self._serial_out
        board.debug.on_output = self._serial_out
        board.on_reset = self._guest_reset
        self.deadline: int | None = None
        self._scrape_period = max(1, self.clock.ips * SCRAPE_US // 1_000_000)
        self._quiet_limit = self.clock.to_instructions(QUIET_SECONDS)
        self._halt_quiet_limit = self.clock.to_instructions(HALT_QUIET_SECONDS)
        self.deadline = self.clock.instructions + self._scrape_period
        self.clock.add_timer(self)
        # Stop requests and the waiting-for-input rule.
        self._stop: tuple[ExitStatus, str] | None = None
        self._quiet_since = 0
        self._activity = self._activity_mark()
        self._asking = 0
        self._waits_seen = 0
        self.input_polls = 0
        self.installed = False

    # -- what firmware (and the board) tell the session ---------------------------------
    def input_polled(self, count: int = 1) -> None:
        """The guest looked for a key and found none."""
        self.input_polls += count
        self._asking += count

    def input_blocked(self) -> None:
        """The guest blocks reading a key that nobody will type: it waits for input."""
        if self.keyboard.live is None and not self.keyboard.script:
            self.request_stop(None, "the guest waits for keyboard input")

    def request_stop(self, status: ExitStatus | None, message: str) -> None:
        """End the run (from a hook); status None means "halted/waiting" (OK or
        UNTIL_NOT_SEEN, depending on ``until``)."""
        if self._stop is None:
            self._stop = (self._until_missing() if status is None else status, message)
        self.cpu.request_stop(StopReason.STOPPED)

    def screen_changed(self) -> None:
        """Firmware is about to scroll or clear the screen: read the frame first."""
        self.scraper.poll()

    # -- text ----------------------------------------------------------------------------
    def _until_missing(self) -> ExitStatus:
        return ExitStatus.UNTIL_NOT_SEEN if self.options.until is not None else ExitStatus.OK

    def _watch(self, text: str) -> None:
        until = self.options.until
        if until is None or self.until_seen:
            return
        self._text_tail = (self._text_tail + text)[-(len(until) + 4096):]
        if until in self._text_tail:
            self._saw_until()

    def _saw_until(self) -> None:
        self.until_seen = True
        self.request_stop(ExitStatus.OK, f"saw {self.options.until!r}")

    def _screen_text(self, text: str) -> None:
        for listener in self.on_screen_text:
            listener(text)
        if self.options.on_console is not None:
            self.options.on_console(text)
        self._watch(text)
        until = self.options.until
        if until is not None and not self.until_seen and until in self.scraper.text():
            self._saw_until()  # a whole screen drawn at once, in any order

    def _serial_out(self, data: bytes) -> None:
        text = data.decode("latin-1")
        self.serial_text.append(text)
        if self.options.on_serial is not None:
            self.options.on_serial(text)
        self._watch(text)

    def _guest_reset(self, how: str) -> None:
        self.request_stop(ExitStatus.BOOT_FAILED, f"the guest reset the machine ({how})")

    # -- the clock timer: screen, and the waiting-for-input rule --------------------------
    def _activity_mark(self) -> tuple[int, int, int]:
        board = self.board
        return (sum(ch.commands for ch in board.ide.channels),
                len(board.uart.output) + len(board.debug.output), len(self.scraper.stream))

    def fire(self) -> None:
        """Every :data:`SCRAPE_US`: read the screen, then judge "waiting for input"."""
        self.scraper.poll()
        assert self.deadline is not None
        now = self.deadline
        self.deadline += self._scrape_period
        mark = self._activity_mark()
        kb = self.keyboard
        if mark != self._activity or kb.script or kb.live is not None:
            self._activity = mark
            self._quiet_since = now
            self._asking = 0
            self._waits_seen = self.cpu.idle_waits
            return
        polls = self._asking
        waits = self.cpu.idle_waits - self._waits_seen
        quiet = now - self._quiet_since
        if (polls >= ASKS_BEFORE_WAITING and quiet >= self._quiet_limit) or (
                polls >= POLLS_BEFORE_WAITING) or (
                waits >= ASKS_BEFORE_WAITING and quiet >= self._halt_quiet_limit):
            self.request_stop(None, "the guest waits for keyboard input")

    # -- saved state (emu/pc/state.py, docs/state.md) -------------------------------------
    STATE_FIELDS = ("serial_text", "until_seen", "_text_tail", "deadline", "_quiet_since",
                    "_activity", "_asking", "_waits_seen", "input_polls")
    """The run loop's stop-rule and text state; ``until``, keys and the limits are the next
    run's and come from whoever resumes."""
    SCRAPER_FIELDS = ("rows", "stream", "last_row", "changed")
    KEYBOARD_FIELDS = ("script", "buffer", "empty_polls", "typed")

    def state(self) -> dict[str, Any]:
        """The session's own saved state (its board's is taken by emu/pc/state.py)."""
        from devices.state import capture

        return {**capture(self, self.STATE_FIELDS),
                "scraper": capture(self.scraper, self.SCRAPER_FIELDS),
                "keyboard": capture(self.keyboard, self.KEYBOARD_FIELDS)}

    def load_state(self, state: dict[str, Any]) -> None:
        from devices.state import apply, part

        apply(self.scraper, part(state, "scraper"), self.SCRAPER_FIELDS)
        apply(self.keyboard, part(state, "keyboard"), self.KEYBOARD_FIELDS)
        apply(self, state, self.STATE_FIELDS)
        self._stop = None

    def snapshot(self) -> Any:
        """The whole PC's state in memory, between runs (an ``emu.pc.state.Snapshot``)."""
        from emu.pc import state

        return state.snapshot(self)

    def restore(self, snap: Any, force: bool = False) -> None:
        """Go back to ``snap`` (from :meth:`snapshot`, or ``emu.pc.state.load``), in place.
        A different medium is refused unless ``force``; a failure changes nothing."""
        from emu.pc import state

        state.restore(self, snap, force=force)

    def save_state(self, path: str | Path) -> None:
        """Write the whole PC's state to ``path`` (a ``.emustate`` zip, docs/state.md)."""
        from emu.pc import state

        state.save(state.snapshot(self), path)

    # -- the run -------------------------------------------------------------------------
    def power_on(self) -> None:
        """Plug the firmware in (once).  Raises :class:`FirmwareFailure`."""
        if not self.installed:
            self.installed = True
            self.firmware.install(self)

    def run(self) -> BootResult:
        """Power on and run until a stop rule ends the run; then close the media."""
        try:
            return self._run(time.monotonic())
        finally:
            self.close()

    def resume(self, until: str | None = None, keys: str = "",
               timeout: float | None = DEFAULT_TIMEOUT) -> BootResult:
        """Run on from where the last run stopped (or from power-on), for experiments from
        Python: wait for ``until``, type ``keys`` when the guest asks, stop at the same
        rules (``timeout`` in wall seconds from now).  The media stay open."""
        self.options.until = until
        self.options.timeout = timeout
        check_limits(self.options)
        self.keyboard.script.extend(parse_keys(keys))
        self.until_seen = False
        self._stop = None
        self._text_tail = ""
        self._activity = self._activity_mark()
        self._asking = 0
        self._waits_seen = self.cpu.idle_waits
        return self._run(time.monotonic())

    def _run(self, started: float) -> BootResult:
        result = BootResult(ExitStatus.OK, "", machine=self.board, drive=self.drive)
        try:
            try:
                self.power_on()
            except FirmwareFailure as exc:
                result.status, result.message = ExitStatus.BOOT_FAILED, f"Boot failed: {exc}"
                return result
            result.status, result.message = self._run_cpu(started)
        finally:
            self.scraper.poll()
            result.console = "".join(self.scraper.stream)
            result.serial = "".join(self.serial_text)
            result.screen = self.scraper.text()
            result.instructions = self.clock.instructions
            result.virtual_seconds = self.clock.seconds
            result.wall_seconds = time.monotonic() - started
            result.drive_commands = sum(ch.commands for ch in self.board.ide.channels)
            log = self.board.debug_log
            result.firmware_log = log.splitlines() if log else []
            if self.installed:
                self.firmware.finish(result)
        return result

    def change_disc(self, path: str | Path | None, drive: AtapiDrive | None = None) -> None:
        """Swap the disc in ``drive`` (the first drive by default) between runs, as the
        management API's ``release_image`` + ``attach_image`` do: a forced eject (the guest
        sees the tray open: GESN media removal, NOT READY, INTRQ), then, with ``path``, the
        image loaded (GESN new media, UNIT ATTENTION).  The new image is opened first: a
        :class:`~devices.media.base.MediumError` (one line) leaves the old disc in place."""
        from devices.media.iso import IsoImage

        unit = drive or self.drive
        if unit is None:
            raise ValueError("this session has no DVD drive")
        new = IsoImage(path) if path is not None else None
        old = unit.remove_medium()
        if old in self.media:
            self.media.remove(old)
            old.close()
        if new is not None:
            self.media.append(new)
            unit.insert_medium(new)

    def close(self) -> None:
        for medium in self.media:
            medium.close()

    def _run_cpu(self, started: float) -> tuple[ExitStatus, str]:
        opts = self.options
        cpu, clock = self.cpu, self.clock
        limit = opts.max_instructions
        if opts.guest_timeout is not None:
            by_time = clock.to_instructions(opts.guest_timeout)
            limit = by_time if limit is None else min(limit, by_time)
        wall_deadline = None if opts.timeout is None else started + opts.timeout
        cpu.wall_deadline = wall_deadline
        while True:
            chunk = RUN_CHUNK
            if limit is not None:
                chunk = min(chunk, limit - clock.instructions)
                if chunk <= 0:
                    return ExitStatus.LIMIT, (
                        f"stopped at the limit after {clock.instructions:,} instructions "
                        f"({clock.seconds:.2f} s of guest time)")
            try:
                outcome = cpu.run(chunk)
            except TripleFault as exc:
                return ExitStatus.TRIPLE_FAULT, str(exc)
            except CpuFault as exc:
                if self._stop is not None:
                    return self._stop
                return ExitStatus.BOOT_FAILED, f"CPU fault: {exc}"
            self.scraper.poll()  # text written just before a stop counts
            if self._stop is not None:
                return self._stop
            if outcome.reason is StopReason.HALTED:
                return self._until_missing(), f"the guest halted at {cpu.where()}"
            if outcome.reason is StopReason.IDLE:
                return self._until_missing(), (
                    f"the guest idles with nothing to wake it at {cpu.where()}")
            if wall_deadline is not None and time.monotonic() >= wall_deadline:
                return ExitStatus.LIMIT, (
                    f"stopped at the time limit of {opts.timeout:g} s (wall clock), after "
                    f"{clock.instructions:,} instructions")
