"""``emu console``: an interactive teaching shell in front of the emulated DVD drive.

Everything goes through the I/O ports, as a guest would: raw register access
(``outb 0x177 0xa0``, ``inb 0x177``), packet commands by name (``packet
read10 16 1``) run with the PACKET PIO data-in protocol of ATA/ATAPI-7 vol 2
§11.8 with interrupts enabled, so a student sees INTRQ rise and fall in the
trace; the exchange itself is :class:`emu.api.guest.AtapiHost`'s, and ``bcl N``
sets the byte-count limit it writes.  Host-side actions (``eject``, ``attach
PATH``) are what the management API does to the drive; ``eject`` presses the
drive's button, so a guest lock (PREVENT ALLOW MEDIUM REMOVAL) keeps the disc in
unless ``eject --force``.  Every typed number is range-checked
(:mod:`emu.tools.args`): a bad one prints one ``error:`` line and the session
goes on.  With a terminal, line editing and history
come from :mod:`readline`; without one the shell reads a script from stdin and
echoes each command, so its output reads as a transcript.
"""

from __future__ import annotations

import argparse
import cmd
import shlex
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from devices.media.base import MediumError
from devices.media.iso import IsoImage
from devices.scsi.mmc_media import request_eject
from devices.scsi.sense import Sense
from devices.trace import TraceEvent, Tracer
from emu.api.guest import AtapiHost
from emu.firmware.ata import location_name
from emu.pc.machine import Machine
from emu.tools.args import (
    BYTE_COUNT_LIMITS,
    MAX_BLOCKS10,
    MAX_BLOCKS12,
    MAX_LBA,
    MAX_PAGE,
    parse_int,
)
from emu.tools.hexdump import hexdump
from emu.tools.trace import (
    CHANNEL_BASES,
    SAMPLE_ISO,
    Renderer,
    control_text,
    describe_cdb,
    error_text,
    reason_text,
    status_text,
)

CONTROL_PORTS = {0: 0x3F6, 1: 0x376}
DRQ = 0x08
MAX_PORT = 0xFFFF
"""The x86 I/O space: ports 0x0000-0xFFFF."""
DEFAULT_BCL = 0xFFFE
"""The byte-count limit until ``bcl`` changes it: the largest even value."""


def _cdb_read10(lba: str = "16", count: str = "1") -> bytes:
    """READ(10): LBA in bytes 2-5, transfer length in bytes 7-8 (MMC-5 §6.19)."""
    first = parse_int(lba, "LBA", 0, MAX_LBA)
    blocks = parse_int(count, "READ(10) block count", 0, MAX_BLOCKS10)
    return struct.pack(">BBIBHBBB", 0x28, 0, first, 0, blocks, 0, 0, 0)


def _cdb_read12(lba: str = "16", count: str = "1") -> bytes:
    """READ(12): LBA in bytes 2-5, transfer length in bytes 6-9 (MMC-5 §6.20)."""
    first = parse_int(lba, "LBA", 0, MAX_LBA)
    blocks = parse_int(count, "READ(12) block count", 0, MAX_BLOCKS12)
    return struct.pack(">BBIIBB", 0xA8, 0, first, blocks, 0, 0)


def _cdb_mode_sense10(page: str = "0x2a") -> bytes:
    """MODE SENSE(10) of one page, allocation 256 bytes (SPC-3 §6.10)."""
    code = parse_int(page, "mode page", 0, MAX_PAGE)
    return struct.pack(">BBBBBBBHB", 0x5A, 0, code, 0, 0, 0, 0, 0x100, 0)


PACKETS: dict[str, Callable[..., bytes]] = {
    "tur": lambda: bytes(12),
    "sense": lambda: bytes([0x03, 0, 0, 0, 18]),
    "inquiry": lambda: bytes([0x12, 0, 0, 0, 36]),
    "capacity": lambda: bytes([0x25]),
    "read10": _cdb_read10,
    "read12": _cdb_read12,
    "toc": lambda: bytes([0x43, 0, 0, 0, 0, 0, 1, 0x03, 0x24]),
    "gesn": lambda: bytes([0x4A, 0x01, 0, 0, 0x10, 0, 0, 0, 0x08]),
    "config": lambda: bytes([0x46, 0, 0, 0, 0, 0, 0, 0x01, 0x00]),
    "eject": lambda: bytes([0x1B, 0, 0, 0, 0x02]),
    "load": lambda: bytes([0x1B, 0, 0, 0, 0x03]),
    "lock": lambda: bytes([0x1E, 0, 0, 0, 0x01]),
    "unlock": lambda: bytes([0x1E, 0, 0, 0, 0x00]),
    "modesense": _cdb_mode_sense10,
}
"""Packet commands by name: ``packet NAME [ARGS]`` builds the CDB with these."""


def _is_hex_byte(word: str) -> bool:
    """``word`` is one CDB byte in hex: ``28``, ``0x28`` or ``a``."""
    digits = word[2:] if word[:2].lower() == "0x" else word
    return 1 <= len(digits) <= 2 and all(c in "0123456789abcdefABCDEF" for c in digits)


SHOWN_BYTES = 256
"""How much of a reply is dumped after a command; ``dump`` shows it all."""


def reply_dump(data: bytes, limit: int | None = SHOWN_BYTES) -> list[str]:
    """A reply as ``hexdump -C`` prints it, indented, cut at ``limit`` bytes."""
    lines = [f"  {line}" for line in hexdump(data, limit=limit)]
    if limit is not None and len(data) > limit:
        lines[-1] += " ('dump' shows all)"
    return lines


class TeachingConsole(cmd.Cmd):
    """The shell.  Commands are ``do_*`` methods; their docstrings are the help."""

    prompt = "emu> "

    def __init__(
        self,
        iso: str | None = None,
        bus: int = 1,
        device: int = 0,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        empty: bool = False,
    ) -> None:
        super().__init__(stdin=stdin, stdout=stdout)
        self.interactive = bool(getattr(self.stdin, "isatty", lambda: False)())
        self.use_rawinput = self.interactive  # readline editing and history on a tty
        if not self.interactive:
            self.prompt = ""  # precmd echoes each command with the prompt instead
        self.machine = Machine()
        medium = None if empty else IsoImage(iso or SAMPLE_ISO)
        self.drive = self.machine.add_dvd_drive(bus, device, medium)
        self.bus, self.device = bus, device
        self.base, self.ctrl = CHANNEL_BASES[bus], CONTROL_PORTS[bus]
        self.last_data = b""
        self.last_ejected = str(iso or SAMPLE_ISO)
        """What ``attach`` without a path puts back in."""
        self.bcl = DEFAULT_BCL
        self.tracer: Tracer | None = None
        self.renderer = Renderer()
        self.failed = False
        # Selects the device and clears nIEN: interrupts on, so the trace shows INTRQ.
        self.host = AtapiHost(self.machine, bus, device, interrupts=True)
        if self.interactive:
            self.intro = (
                f"emu console: DVD drive at {location_name(bus, device)} (ports "
                f"0x{self.base:03x}-0x{self.base + 7:03x}, 0x{self.ctrl:03x}). "
                "Type 'help' or '?'."
            )

    # -- plumbing ------------------------------------------------------------------
    def say(self, text: str = "") -> None:
        """Print a line of the console's own output.

        It does not flush the trace renderer: the line the renderer holds back
        (to join ``, INTRQ ↑`` or fold repeats) is newer than anything it has
        emitted, so flushing here would print trace lines out of order.
        """
        self.stdout.write(text + "\n")

    def _show_trace(self, lines: list[str]) -> None:
        for text in lines:
            self.stdout.write(f"  | {text}\n")

    def precmd(self, line: str) -> str:
        if not self.interactive and line.strip() and line != "EOF":
            self.say(f"{TeachingConsole.prompt}{line.rstrip()}")  # a script reads as a transcript
        return self._without_comment(line)

    @staticmethod
    def _without_comment(line: str) -> str:
        """``packet tur   # why`` → ``packet tur``: a ``#`` outside quotes starts a comment."""
        if "#" not in line or line.lstrip().startswith("#"):
            return line
        try:
            return shlex.join(shlex.split(line, comments=True))
        except ValueError:  # unbalanced quotes: leave the line to the command's own check
            return line

    def postcmd(self, stop: bool, line: str) -> bool:
        self._show_trace(self.renderer.flush())  # the end of a command completes its trace
        return stop

    def onecmd(self, line: str) -> bool:
        try:
            return super().onecmd(line)
        except (ValueError, IndexError, TypeError, MediumError, OSError) as exc:
            self.say(f"error: {exc}")
            self.failed = True
            return False
        except Exception as exc:  # noqa: BLE001 - a typed line never ends the session
            self.say(f"error: {type(exc).__name__}: {exc}")
            self.failed = True
            return False

    def emptyline(self) -> bool:
        return False  # an empty line does nothing (not "repeat the last command")

    def default(self, line: str) -> None:
        if line.strip().startswith("#"):
            return  # comments in scripts
        self.say(f"error: unknown command {line.split()[0]!r} (try 'help')")
        self.failed = True

    def _show_event(self, event: TraceEvent) -> None:
        """A tracer sink: print what the renderer emits, exactly as ``emu trace`` would."""
        self._show_trace(self.renderer.feed(event))

    def _usage(self, text: str) -> None:
        self.say(f"usage: {text}")
        self.failed = True

    # -- raw port access -----------------------------------------------------------
    @staticmethod
    def _number(text: str, what: str, limit: int) -> int:
        """``text`` as an integer in 0..``limit``, or a ValueError that says so."""
        return parse_int(text, what, 0, limit)

    def _in(self, name: str, arg: str, width: int) -> None:
        words = shlex.split(arg)
        if len(words) != 1:
            self._usage(f"{name} PORT (e.g. {name} 0x177)")
            return
        port = self._number(words[0], "port", MAX_PORT)
        value = self.machine.ports.read(port, width)
        self.say(f"0x{value:0{width * 2}X}")

    def _out(self, name: str, arg: str, width: int) -> None:
        words = shlex.split(arg)
        if len(words) != 2:
            self._usage(f"{name} PORT VALUE (e.g. {name} 0x177 0xa0)")
            return
        port = self._number(words[0], "port", MAX_PORT)
        kind = {1: "byte", 2: "word", 4: "dword"}[width]
        value = self._number(words[1], f"{kind} value", (1 << (8 * width)) - 1)
        self.machine.ports.write(port, width, value)

    def do_inb(self, arg: str) -> None:
        """inb PORT: read a byte from an I/O port (e.g. inb 0x177 reads Status)."""
        self._in("inb", arg, 1)

    def do_inw(self, arg: str) -> None:
        """inw PORT: read a 16-bit word (inw 0x170 reads the data port)."""
        self._in("inw", arg, 2)

    def do_inl(self, arg: str) -> None:
        """inl PORT: read a 32-bit dword."""
        self._in("inl", arg, 4)

    def do_outb(self, arg: str) -> None:
        """outb PORT VALUE: write a byte (outb 0x177 0xa0 issues PACKET)."""
        self._out("outb", arg, 1)

    def do_outw(self, arg: str) -> None:
        """outw PORT VALUE: write a 16-bit word (CDB bytes go to the data port two at a time)."""
        self._out("outw", arg, 2)

    def do_outl(self, arg: str) -> None:
        """outl PORT VALUE: write a 32-bit dword."""
        self._out("outl", arg, 4)

    # -- registers -----------------------------------------------------------------
    def do_regs(self, arg: str) -> None:
        """regs: every readable register, Alternate Status first (it leaves INTRQ alone)."""
        inb, b = self.machine.ports.inb, self.base
        alt = inb(self.ctrl)
        error, reason, lba_low = inb(b + 1), inb(b + 2), inb(b + 3)
        count = inb(b + 4) | (inb(b + 5) << 8)
        dev = inb(b + 6)
        irq = self.machine.ide.channel(self.bus).irq
        self.say(f"Alt status       0x{self.ctrl:03x}  {status_text(alt)}")
        self.say(f"Error            0x{b + 1:03x}  0x{error:02X} ({error_text(error)})")
        reason_words = reason_text(reason) if reason <= 7 else "(not an interrupt reason)"
        self.say(f"Interrupt reason 0x{b + 2:03x}  0x{reason:02X} {reason_words}")
        self.say(f"LBA low          0x{b + 3:03x}  0x{lba_low:02X}")
        self.say(f"Byte count       0x{b + 4:03x}  {count} (0x{count:04X})")
        self.say(f"Device           0x{b + 6:03x}  0x{dev:02X} (device {(dev >> 4) & 1})")
        control = self.machine.ide.channel(self.bus).control
        self.say(f"Device control   0x{self.ctrl:03x}  0x{control:02X} ({control_text(control)})")
        self.say(f"INTRQ (IRQ {irq.number})     {'asserted' if irq.level else 'clear'}")

    def do_status(self, arg: str) -> None:
        """status: read the Status register (this acknowledges a pending interrupt)."""
        self.say(status_text(self.machine.ports.inb(self.base + 7)))

    def do_reset(self, arg: str) -> None:
        """reset: pulse SRST in Device Control (both units reset, the packet signature loads)."""
        self.machine.ports.outb(self.ctrl, 0x04)
        self.machine.ports.outb(self.ctrl, 0x00)
        self.say(status_text(self.machine.ports.inb(self.ctrl)))

    # -- commands by name ----------------------------------------------------------
    def do_identify(self, arg: str) -> None:
        """identify: IDENTIFY PACKET DEVICE (0xA1) and the model string from words 27-46."""
        ports, b = self.machine.ports, self.base
        ports.outb(b + 7, 0xA1)
        if not ports.inb(self.ctrl) & DRQ:
            self.say("no IDENTIFY data (the command was aborted)")
            return
        ports.inb(b + 7)
        data = ports.insw(b, 256).tobytes()
        self.last_data = data
        swapped = bytes(data[i ^ 1] for i in range(54, 94))
        self.say(f"model: {swapped.decode('ascii', 'replace').strip()}")
        self.say(f"word 0: 0x{data[0] | (data[1] << 8):04X}")

    def do_packet(self, arg: str) -> None:
        """packet NAME [ARGS] | packet HEX BYTES: run a packet command through the ports.

        Names: tur, sense, inquiry, capacity, read10 LBA COUNT, read12 LBA COUNT,
        toc, gesn, config, eject, load, lock, unlock, modesense [PAGE].
        Or give the CDB bytes in hex: packet 28 00 00 00 00 10 00 00 01 00.
        """
        words = shlex.split(arg)
        if not words:
            self.say("usage: packet NAME [ARGS] (see 'help packet')")
            return
        name = words[0].lower()
        if name in PACKETS:
            try:
                cdb = PACKETS[name](*words[1:])
            except TypeError:
                raise ValueError(
                    f"wrong arguments for 'packet {name}' (see 'help packet')") from None
        elif _is_hex_byte(words[0]):
            bad = [w for w in words if not _is_hex_byte(w)]
            if bad:
                raise ValueError(f"{bad[0]!r} is not a CDB byte in hex (00-ff)")
            if len(words) > 12:
                raise ValueError(f"a CDB has at most 12 bytes, not {len(words)}")
            cdb = bytes(int(w, 16) for w in words)
        else:
            raise ValueError(f"unknown packet command {words[0]!r}; known: "
                             f"{', '.join(PACKETS)} (or the CDB bytes in hex)")
        self.run_packet(cdb)

    def do_bcl(self, arg: str) -> None:
        """bcl [N]: show or set the byte-count limit the packet commands use (even, 2-65534).

        The drive cuts a reply into DRQ blocks of at most N bytes (vol 2 §11.8.3);
        'bcl 0x800' gives one 2048-byte block per sector, 'bcl 512' four.
        """
        words = shlex.split(arg)
        if not words:
            self.say(f"byte-count limit {self.bcl} (0x{self.bcl:04X})")
            return
        low, high = BYTE_COUNT_LIMITS
        value = parse_int(words[0], "byte-count limit", low, high)
        if value & 1:
            raise ValueError(f"byte-count limit {words[0]} must be even ({low}-{high})")
        self.bcl = value
        self.say(f"byte-count limit {value} (0x{value:04X})")

    def run_packet(self, cdb: bytes, bcl: int | None = None) -> bool:
        """The PACKET PIO data-in protocol (vol 2 §11.8); returns True on GOOD status."""
        cdb = bytes(cdb).ljust(12, b"\0")[:12]
        self.say(f"CDB: {cdb.hex(' ')} = {describe_cdb(cdb)}")
        reply = self.host.packet(cdb, self.bcl if bcl is None else bcl)
        self._show_trace(self.renderer.flush())  # the exchange is over: its trace comes first
        if not reply.accepted:
            self.say(f"PACKET refused: {status_text(reply.status)}")
            return False
        self.last_data = reply.data
        if reply.data:
            self.say(f"data: {len(reply.data)} bytes")
            for line in reply_dump(reply.data):
                self.say(line)
        if not reply.good:
            self.say(f"status: {status_text(reply.status)}: CHECK CONDITION, error "
                     f"0x{reply.error:02X} ({error_text(reply.error)}); 'sense' tells why")
            return False
        self.say(f"status: {status_text(reply.status)}")
        return True

    def do_sense(self, arg: str) -> None:
        """sense: REQUEST SENSE and its meaning (key/ASC/ASCQ)."""
        if self.run_packet(PACKETS["sense"]()) and len(self.last_data) >= 14:
            d = self.last_data
            sense = Sense(d[2] & 0x0F, d[12], d[13])
            self.say(f"sense: {sense}")

    def do_dump(self, arg: str) -> None:
        """dump: the whole reply of the last command as a hex dump."""
        for line in reply_dump(self.last_data, limit=None):
            self.say(line)

    # -- the host side -------------------------------------------------------------
    def do_eject(self, arg: str) -> None:
        """eject [--force]: press the drive's eject button (the host takes the disc out).

        If the guest locked the tray (PREVENT ALLOW MEDIUM REMOVAL, 'packet lock'),
        the tray stays shut and the drive reports an Eject Request to the guest
        (GESN, MMC-5 §6.6); 'eject --force' takes the disc out anyway, as the
        management API's release_image does.
        """
        words = shlex.split(arg)
        if words not in ([], ["--force"]):
            self._usage("eject [--force]")
            return
        if not self.drive.medium.present:
            self.say("the drive is empty")
            return
        target = self.drive.target
        if target.locked and not target.tray_open and not words:
            request_eject(target)
            self.say("the guest has locked the tray: the drive reports an Eject Request "
                     "to the guest ('eject --force' takes the disc anyway)")
            return
        old = self.drive.remove_medium()
        old.close()
        self.last_ejected = old.path
        self.say(f"ejected {Path(old.path).name}")

    def do_attach(self, arg: str) -> None:
        """attach [PATH]: the host puts a disc image in the drive (tray closes).

        Without PATH, the disc that was last ejected goes back in (or the sample).
        """
        words = shlex.split(arg)
        if len(words) > 1:
            self._usage("attach [PATH]")
            return
        if self.drive.medium.present:
            self.say("the drive holds a disc: eject it first")
            return
        medium = IsoImage(words[0] if words else self.last_ejected)
        self.drive.insert_medium(medium)
        self.say(f"attached {Path(medium.path).name} ({medium.sector_count} sectors)")

    def do_trace(self, arg: str) -> None:
        """trace on|off: show the host-drive conversation under each command."""
        word = arg.strip().lower()
        if word == "on":
            self.tracer = Tracer(keep=False, sinks=[self._show_event])
            self.renderer = Renderer()
            self.machine.set_trace(self.tracer)
        elif word == "off":
            self.machine.set_trace(None)
            self.tracer = None
        else:
            self.say(f"trace is {'on' if self.tracer else 'off'} (trace on|off)")

    def do_history(self, arg: str) -> None:
        """history: the commands typed so far (with readline on a terminal)."""
        try:
            import readline
        except ImportError:  # pragma: no cover - platform without readline
            self.say("no readline here")
            return
        for i in range(1, readline.get_current_history_length() + 1):
            self.say(f"{i:4}  {readline.get_history_item(i)}")

    def do_quit(self, arg: str) -> bool:
        """quit: leave the console."""
        return True

    do_exit = do_quit

    def do_EOF(self, arg: str) -> bool:  # noqa: N802 - the name cmd.Cmd calls
        """End of input leaves the console."""
        if self.interactive:
            self.say()
        return True

    def close(self) -> None:
        medium = self.drive.medium
        if medium.present:
            medium.close()


def cmd_console(args: argparse.Namespace) -> int:
    """``emu console``: run the shell on stdin/stdout."""
    shell = TeachingConsole(args.iso, args.bus, args.device, empty=args.empty)
    try:
        while True:
            try:
                shell.cmdloop()
                break
            except KeyboardInterrupt:
                if not shell.interactive:
                    raise  # a script stopped by Ctrl-C: 'emu: stopped', status 130
                # At the prompt, as in a shell: Ctrl-C drops the line, the session goes on.
                shell.say("\n(interrupted; 'quit' or Ctrl-D leaves)")
                shell.intro = None
    finally:
        shell.close()
    return 1 if shell.failed and not shell.interactive else 0


def add_arguments(p: argparse.ArgumentParser,
                  drive_options: Callable[[argparse.ArgumentParser], None]) -> None:
    """The arguments of ``emu console`` (the CLI lists the command and its help)."""
    p.description = ("A shell in front of the emulated drive: raw port access (inb, outb), "
                     "packet commands by name (packet read10 16 1), sense, registers, the "
                     "host's eject and attach, and the trace under each command. Type 'help' "
                     "inside; 'quit' or Ctrl-D leaves (Ctrl-C drops the line). Without a "
                     "terminal it reads a script from stdin and echoes each command. Exit "
                     "status: 0, 1 when a scripted command failed, 130 stopped by Ctrl-C.")
    p.add_argument("iso", nargs="?", help="ISO image (default: the built-in sample)")
    p.add_argument("--empty", action="store_true", help="start with an empty drive")
    drive_options(p)
    p.set_defaults(func=cmd_console)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(cmd_console(argparse.Namespace(iso=None, bus=1, device=0, empty=False)))
