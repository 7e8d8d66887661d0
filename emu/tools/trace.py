"""The teaching trace: device trace events turned into words a student can follow.

Devices emit structured events (:mod:`devices.trace`); this module renders them
as the conversation between host and drive that ATA/ATAPI-7 vol 2 §11.8
describes (host states HP0-HP4 of the PACKET PIO data-in protocol)::

    host → Command (0x177) = 0xA0 PACKET
    drive: DRQ=1 CoD=1 IO=0 → send the 12-byte packet
    host → Data (0x170): 28 00 00 00 00 10 00 00 01 00 00 00 = READ(10) LBA 16, 1 block
    drive: DRQ block of 2048 bytes, INTRQ ↑

It also records the channel's signals as a VCD waveform (:class:`VcdRecorder`,
written with ``pyvcd``; GTKWave opens it), runs the scripted conversations of
``emu trace`` (:class:`TraceSession`) and writes JSON transcripts that the
golden tests in ``tests/golden/`` compare.

Rendering is stateful only to join what belongs on one line: a drive line
followed by INTRQ rising gets ``, INTRQ ↑``; INTRQ falling because the host
read Status is shown on that Status read; identical consecutive lines (the
polls of Alternate Status) collapse into one with ``(×n)``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from devices.ide.controller import IdeChannel
from devices.ide.registers import ata_command_name
from devices.media.iso import IsoImage
from devices.scsi.commands import command_name
from devices.scsi.sense import SenseKey
from devices.trace import TraceEvent, Tracer
from emu.firmware.ata import MAX_LBA, AtaHostDriver, AtapiDevice, FirmwareError, location_name
from emu.pc.machine import Machine
from emu.tools.args import even_byte_count, int_range
from images import SAMPLE_ISO

CHANNEL_BASES = {0: 0x1F0, 1: 0x170}
"""Command-block base port of each IDE channel (for naming the data port)."""

# -- register names and bit decoders ------------------------------------------------

_OUT_NAMES = {
    "DATA": "Data",
    "FEATURES": "Features",
    "SECTOR_COUNT": "Sector count",
    "LBA_LOW": "LBA low",
    "LBA_MID": "Byte count low",  # LBA Mid carries the byte count for packet commands
    "LBA_HIGH": "Byte count high",
    "DEVICE": "Device",
    "COMMAND": "Command",
    "DEVICE_CONTROL": "Device control",
}
_IN_NAMES = {
    "DATA": "Data",
    "ERROR": "Error",
    "SECTOR_COUNT": "Interrupt reason",  # Sector Count is the interrupt reason (vol 1 §7.17)
    "LBA_LOW": "LBA low",
    "LBA_MID": "Byte count low",
    "LBA_HIGH": "Byte count high",
    "DEVICE": "Device",
    "STATUS": "Status",
    "ALT_STATUS": "Alt status",
}
_BM_NAMES = {0: "BM command", 2: "BM status", 4: "PRD table address"}
"""Bus-master registers by offset (SFF-8038i §2)."""
_STATUS_BITS = (
    (0x80, "BSY"), (0x40, "DRDY"), (0x20, "DF"), (0x10, "DSC"), (0x08, "DRQ"), (0x01, "ERR"),
)
_CONTROL_BITS = ((0x80, "HOB"), (0x04, "SRST"), (0x02, "nIEN"))
_REASONS = {
    (0, 0): "data from the host",
    (0, 1): "send the packet",
    (1, 0): "data for the host",
    (1, 1): "command complete",
}


def status_text(value: int) -> str:
    """``0x58 DRDY DSC DRQ``: a Status value and its set bits (vol 1 §7.15)."""
    bits = [name for bit, name in _STATUS_BITS if value & bit]
    return f"0x{value:02X} " + (" ".join(bits) if bits else "(no bits set)")


def reason_text(value: int) -> str:
    """``IO=1 CoD=0: data for the host``: the packet interrupt reason (vol 1 §7.17)."""
    io, cod = (value >> 1) & 1, value & 1
    return f"IO={io} CoD={cod}: {_REASONS[(io, cod)]}"


def control_text(value: int) -> str:
    bits = [name for bit, name in _CONTROL_BITS if value & bit]
    return " ".join(bits) if bits else "interrupts enabled"


def error_text(value: int) -> str:
    """A packet device's Error register: sense key in bits 7-4, ABRT in bit 2."""
    if value == 0:
        return "no error"
    parts = []
    key = value >> 4
    if key:
        parts.append(f"sense key {key:X}h {_sense_key_name(key)}")
    if value & 0x04:
        parts.append("ABRT")
    if value == 0x01:
        return "diagnostic code 01h after a reset: passed"
    return ", ".join(parts) if parts else f"bits 0x{value:02X}"


def _sense_key_name(key: int) -> str:
    try:
        return SenseKey(key).name.replace("_", " ")
    except ValueError:
        return "reserved"


# -- CDB decoding (named fields, MMC-5 / SPC-3 layouts) ------------------------------

_FALLBACK_NAMES = {
    0x00: "TEST UNIT READY",
    0x03: "REQUEST SENSE",
    0x12: "INQUIRY",
    0x1A: "MODE SENSE(6)",
    0x1B: "START STOP UNIT",
    0x1E: "PREVENT ALLOW MEDIUM REMOVAL",
    0x25: "READ CAPACITY",
    0x28: "READ(10)",
    0x2B: "SEEK(10)",
    0x43: "READ TOC/PMA/ATIP",
    0x46: "GET CONFIGURATION",
    0x4A: "GET EVENT STATUS NOTIFICATION",
    0x51: "READ DISC INFORMATION",
    0x5A: "MODE SENSE(10)",
    0xA8: "READ(12)",
    0xAD: "READ DVD STRUCTURE",
    0xBB: "SET CD SPEED",
    0xBD: "MECHANISM STATUS",
    0xBE: "READ CD",
}
_GESN_CLASSES = ((1, "operational"), (2, "power"), (3, "external"), (4, "media"),
                 (5, "multi-host"), (6, "busy"))


def cdb_name(opcode: int) -> str:
    """The command's name: the drive's own table first, then the common MMC names."""
    name = command_name(opcode)
    if name.startswith("opcode"):
        name = _FALLBACK_NAMES.get(opcode, name)
    return name


def _u16(cdb: bytes, at: int) -> int:
    return int.from_bytes(cdb[at : at + 2], "big")


def _u32(cdb: bytes, at: int) -> int:
    return int.from_bytes(cdb[at : at + 4], "big")


def _blocks(n: int) -> str:
    return f"{n} block" if n == 1 else f"{n} blocks"


def describe_cdb(cdb: bytes) -> str:
    """The command name and its fields, e.g. ``READ(10) LBA 16, 1 block``."""
    cdb = bytes(cdb).ljust(12, b"\0")
    op = cdb[0]
    name = cdb_name(op)
    detail = ""
    if op == 0x28:  # READ(10): LBA bytes 2-5, transfer length bytes 7-8 (MMC-5 §6.19)
        detail = f"LBA {_u32(cdb, 2)}, {_blocks(_u16(cdb, 7))}"
    elif op == 0xA8:  # READ(12): transfer length bytes 6-9 (MMC-5 §6.20)
        detail = f"LBA {_u32(cdb, 2)}, {_blocks(_u32(cdb, 6))}"
    elif op == 0xBE:  # READ CD: transfer length bytes 6-8 (MMC-5 §6.21)
        detail = f"LBA {_u32(cdb, 2)}, {_blocks(int.from_bytes(cdb[6:9], 'big'))}"
    elif op == 0x2B:
        detail = f"LBA {_u32(cdb, 2)}"
    elif op in (0x03, 0x12):  # allocation length in byte 4 (SPC-3 §6.27, §6.4)
        evpd = f"VPD page 0x{cdb[2]:02X}, " if op == 0x12 and cdb[1] & 1 else ""
        detail = f"{evpd}allocation {cdb[4]} bytes"
    elif op == 0x1B:  # START STOP UNIT: LoEj bit 1, Start bit 0 of byte 4 (MMC-5 §6.40)
        loej, start = cdb[4] & 2, cdb[4] & 1
        detail = {(2, 0): "eject (open the tray)", (2, 1): "load (close the tray)",
                  (0, 1): "start the disc", (0, 0): "stop the disc"}[(loej, start)]
    elif op == 0x1E:
        detail = "prevent removal (lock)" if cdb[4] & 1 else "allow removal (unlock)"
    elif op == 0x4A:  # GESN: polled bit, class request byte 4, allocation 7-8 (MMC-5 §6.6)
        classes = [n for bit, n in _GESN_CLASSES if cdb[4] & (1 << bit)]
        mode = "polled" if cdb[1] & 1 else "asynchronous"
        detail = f"{mode}, classes {'+'.join(classes) or 'none'}, allocation {_u16(cdb, 7)} bytes"
    elif op == 0x43:  # READ TOC: format byte 2 low nibble, MSF bit, track byte 6
        msf = " MSF" if cdb[1] & 2 else ""
        detail = (f"format {cdb[2] & 0x0F}{msf}, track {cdb[6]}, "
                  f"allocation {_u16(cdb, 7)} bytes")
    elif op == 0x46:
        detail = (f"RT {cdb[1] & 3}, starting feature 0x{_u16(cdb, 2):04X}, "
                  f"allocation {_u16(cdb, 7)} bytes")
    elif op == 0x5A:
        detail = (f"page 0x{cdb[2] & 0x3F:02X}, control {cdb[2] >> 6}, "
                  f"allocation {_u16(cdb, 7)} bytes")
    elif op == 0x1A:
        detail = f"page 0x{cdb[2] & 0x3F:02X}, control {cdb[2] >> 6}, allocation {cdb[4]} bytes"
    elif op == 0xAD:
        detail = f"format 0x{cdb[7]:02X}, layer {cdb[6]}, allocation {_u16(cdb, 8)} bytes"
    elif op in (0x51, 0xBD):
        detail = f"allocation {_u16(cdb, 7) if op == 0x51 else _u16(cdb, 8)} bytes"
    return f"{name} {detail}" if detail else name


# -- the renderer -------------------------------------------------------------------


def _hex(value: int) -> str:
    return f"0x{value:02X}"


def _channel_of(source: str) -> int:
    """``ide1`` / ``ide1-0`` → 1."""
    digits = source.removeprefix("ide").split("-")[0]
    return int(digits) if digits.isdigit() else 0


@dataclass
class Renderer:
    """Turns trace events into lines, one :meth:`feed` at a time.

    ``collapse`` folds identical consecutive lines into one ``(×n)`` line;
    ``verbose`` also shows the events the default view folds into others.
    Call :meth:`flush` at the end (or whenever the output should be complete).
    """

    collapse: bool = True
    verbose: bool = False
    _pending: str | None = None
    """A line that the next event may extend (``, INTRQ ↑``)."""
    _pending_irq_down: tuple[str, str] | None = None
    """(source, line) of an INTRQ fall that the next Status read may absorb."""
    _last: str | None = None
    _count: int = 0
    _nien: dict[int, bool] = field(default_factory=dict)

    def feed(self, event: TraceEvent) -> list[str]:
        out: list[str] = []
        kind, f = event.kind, event.fields
        if kind == "irq" and f.get("level") and self._pending is not None:
            self._emit(out, self._pending + ", INTRQ ↑")
            self._pending = None
            return out
        if self._pending is not None:
            self._emit(out, self._pending)
            self._pending = None
        if self._pending_irq_down is not None:
            source, line = self._pending_irq_down
            self._pending_irq_down = None
            if (kind == "port" and f.get("reg") == "STATUS" and f.get("dir") == "in"
                    and source == event.source):
                self._emit(out, self._port_line(event) + ", INTRQ ↓ (reading Status acknowledges)")
                return out
            self._emit(out, line)
        self._render(event, out)
        return out

    def flush(self) -> list[str]:
        out: list[str] = []
        if self._pending is not None:
            self._emit(out, self._pending)
            self._pending = None
        if self._pending_irq_down is not None:
            self._emit(out, self._pending_irq_down[1])
            self._pending_irq_down = None
        if self._last is not None:
            out.append(self._counted())
            self._last, self._count = None, 0
        return out

    def _emit(self, out: list[str], line: str) -> None:
        if not self.collapse:
            out.append(line)
            return
        if line == self._last:
            self._count += 1
            return
        if self._last is not None:
            out.append(self._counted())
        self._last, self._count = line, 1

    def _counted(self) -> str:
        assert self._last is not None
        return self._last if self._count == 1 else f"{self._last} (×{self._count})"

    # -- one event ---------------------------------------------------------------
    def _render(self, event: TraceEvent, out: list[str]) -> None:
        kind, f = event.kind, event.fields
        if kind == "port":
            if f.get("reg") == "DEVICE_CONTROL" and f.get("dir") == "out":
                self._nien[_channel_of(event.source)] = bool(f["value"] & 0x02)
            self._emit(out, self._port_line(event))
        elif kind == "ata":
            if self.verbose:
                self._emit(out, f"drive {event.source}: ATA command {_hex(f['command'])} "
                                f"{f['name']}")
        elif kind == "phase":
            self._phase(event, out)
        elif kind == "cdb":
            cdb = bytes.fromhex(f["cdb"])
            port = CHANNEL_BASES.get(_channel_of(event.source), 0)
            self._emit(out, f"host → Data (0x{port:03x}): {cdb.hex(' ')} = {describe_cdb(cdb)}")
        elif kind == "drq":
            if f.get("dir") == "out":
                line = (f"drive: DRQ=1 IO=0 CoD=0 → send a parameter block of "
                        f"{f['bytes']} bytes")
            else:
                line = f"drive: DRQ block of {f['bytes']} bytes"
            self._pending = line + self._masked(event)
        elif kind == "sense":
            self._emit(out, f"drive: sense {f['key']:02X}/{f['asc']:02X}/{f['ascq']:02X} "
                            f"= {f['text']}")
        elif kind == "irq":
            arrow = "↑" if f.get("level") else "↓"
            line = f"INTRQ {arrow} (IRQ {f.get('line')})"
            if not f.get("level"):
                self._pending_irq_down = (event.source, line)
            else:
                self._emit(out, line)
        elif kind == "data":
            self._emit(out, self._data_line(event))
        elif kind == "media":
            what = f.get("event")
            name = Path(str(f.get("path", ""))).name
            if what == "insert":
                self._emit(out, f"host: disc {name} inserted, tray closed (the drive tells the "
                                f"guest by sense, GESN and INTRQ)")
            else:
                self._emit(out, f"host: disc {name} removed, tray open")
        elif kind == "dma":
            self._emit(out, self._dma_line(event))
        elif kind == "api":
            args = ", ".join(f"{v!r}" for v in f.get("args", ()))
            hr = f.get("hresult")
            result = f" → {f.get('name', '')} (0x{hr:08X})" if isinstance(hr, int) else ""
            self._emit(out, f"api: {f.get('call', '?')}({args}){result}")
        else:
            detail = " ".join(f"{k}={v}" for k, v in f.items())
            self._emit(out, f"{kind} {event.source}: {detail}")

    def _masked(self, event: TraceEvent) -> str:
        """Note when nIEN keeps the interrupt off the line (the host polls instead)."""
        return " (nIEN set: no INTRQ, the host polls)" if self._nien.get(
            _channel_of(event.source)) else ""

    def _port_line(self, event: TraceEvent) -> str:
        f = event.fields
        value, port = f["value"], f["port"]
        reg = f.get("reg")
        if reg is None:  # a register block without names in its events (bus-master DMA)
            name = _BM_NAMES.get(port & 7, f"register +{port & 7}")
            arrow = "→" if f["dir"] == "out" else "←"
            return f"host {arrow} {event.source} {name} (0x{port:04x}) = {_hex(value)}"
        if f["dir"] == "out":
            name = _OUT_NAMES.get(reg, reg)
            line = f"host → {name} (0x{port:03x}) = {_hex(value)}"
            if reg == "COMMAND":
                line += f" {ata_command_name(value)}"
            elif reg == "DEVICE":
                line += f" (select device {(value >> 4) & 1})"
            elif reg == "DEVICE_CONTROL":
                line += f" ({control_text(value)})"
            elif reg == "FEATURES" and value & 1:
                line += " (DMA)"
            return line
        name = _IN_NAMES.get(reg, reg)
        line = f"host ← {name} (0x{port:03x}) = "
        if reg in ("STATUS", "ALT_STATUS"):
            if value == 0xFF:
                return line + "0xFF (floating bus: no device drives it)"
            return line + status_text(value)
        if reg == "SECTOR_COUNT":
            if value > 7:  # not an interrupt reason: the value the host wrote (register echo)
                return line + _hex(value)
            return line + f"{_hex(value)} {reason_text(value)}"
        if reg == "ERROR":
            return line + f"{_hex(value)} ({error_text(value)})"
        if reg == "DEVICE":
            return line + f"{_hex(value)} (device {(value >> 4) & 1})"
        return line + _hex(value)

    def _phase(self, event: TraceEvent, out: list[str]) -> None:
        f = event.fields
        if f.get("phase") == "HP1":
            self._pending = "drive: DRQ=1 CoD=1 IO=0 → send the 12-byte packet" + self._masked(
                event)
            return
        if f.get("phase") == "complete":
            status, error = f.get("status", 0), f.get("error", 0)
            if status & 0x01:
                line = (f"drive: CHECK CONDITION, Status {status_text(status)}, "
                        f"Error {_hex(error)} ({error_text(error)}), IO=1 CoD=1")
            else:
                line = f"drive: command complete, Status {status_text(status)}, IO=1 CoD=1"
            self._pending = line + self._masked(event)
            return
        detail = " ".join(f"{k}={v}" for k, v in f.items())
        self._emit(out, f"drive: phase {detail}")

    def _data_line(self, event: TraceEvent) -> str:
        f = event.fields
        port = CHANNEL_BASES.get(_channel_of(event.source), 0)
        width = f.get("width", 2)
        op = {2: "w", 4: "d"}.get(width, "b")
        arrow, verb = ("←", f"rep ins{op}") if f.get("dir") == "in" else ("→", f"rep outs{op}")
        line = (f"host {arrow} Data (0x{port:03x}): {verb} × {f.get('count')} "
                f"= {f.get('bytes')} bytes")
        head = f.get("head")
        if head:
            line += f" [{head} …]"
        return line

    @staticmethod
    def _dma_line(event: TraceEvent) -> str:
        """Bus-master engine steps (SFF-8038i §3): start, one line per PRD entry, end."""
        f = event.fields
        what = f.get("event", "")
        src = event.source
        if what == "prd":
            last = " (EOT: last entry)" if f.get("eot") else ""
            return (f"dma {src}: PRD {f.get('index')}: {f.get('bytes')} bytes → guest "
                    f"0x{f.get('address', 0):08X}{last}")
        if what == "start":
            return (f"dma {src}: START, PRD table at 0x{f.get('prd_table', 0):08X}, "
                    f"{f.get('direction', '')}")
        if what == "transfer":
            tail = ", table exhausted" if f.get("exhausted") else ""
            left = f.get("remaining", 0)
            tail += f", {left} bytes still waiting" if left else ""
            return (f"dma {src}: moved {f.get('bytes')} bytes along {f.get('entries')} "
                    f"PRD entr{'y' if f.get('entries') == 1 else 'ies'}{tail}")
        if what == "stop":
            return f"dma {src}: STOP (engine halted)"
        if what == "error":
            return f"dma {src}: ERROR: {f.get('reason', '')}"
        detail = " ".join(f"{k}={v}" for k, v in f.items() if k != "event")
        return f"dma {src}: {what} {detail}".rstrip()


def render(events: Iterable[TraceEvent], *, collapse: bool = True,
           verbose: bool = False) -> list[str]:
    """All lines for ``events`` (a finished trace)."""
    renderer = Renderer(collapse=collapse, verbose=verbose)
    lines: list[str] = []
    for event in events:
        lines.extend(renderer.feed(event))
    lines.extend(renderer.flush())
    return lines


# -- transcripts --------------------------------------------------------------------


def _normalise(event: TraceEvent) -> dict[str, Any]:
    """An event as a JSON object; paths keep only their file name (portable goldens)."""
    data = event.as_dict()
    if "path" in data and data["path"]:
        data["path"] = Path(str(data["path"])).name
    return data


def transcript(events: Sequence[TraceEvent], scripts: Sequence[str] = ()) -> dict[str, Any]:
    """The JSON transcript of a trace: the events and the rendered lines."""
    return {
        "format": "emu-trace/1",
        "scripts": list(scripts),
        "events": [_normalise(e) for e in events],
        "lines": render(events),
    }


# -- the waveform -------------------------------------------------------------------

_STAGE_PHASES = {
    "idle": "HP0 idle",
    "packet": "HP1 send packet",
    "pio in": "HP4 data in",
    "pio out": "HP4 data out",
    "dma": "HP3 DMA",
    "dma out": "HP3 DMA out",
}
PHASE_CODES = {name.replace(" ", "_"): code for code, name in enumerate(
    ("absent", "HP0 idle", "HP1 send packet", "HP2 busy", "HP3 DMA", "HP3 DMA out",
     "HP4 data in", "HP4 data out"))}
"""``phase_code``: the host state as a number, for VCD readers without string signals."""
EVENT_CODES = {name: code for code, name in enumerate(
    ("start", "port", "ata", "phase", "cdb", "drq", "data", "sense", "irq", "media", "dma",
     "api", "end"))}
"""``event_code``: the event kind as a number (15 for a kind not listed)."""
VCD_STEP = 1
"""Time units per trace event: the VCD time axis counts events, not seconds."""
VCD_COMMENT = (
    "time axis: one unit per trace event, not a duration (VCD has no unit for events, so "
    "the timescale is nominal). phase_code: "
    + ", ".join(f"{code} {name}" for name, code in PHASE_CODES.items())
    + ". event_code: " + ", ".join(f"{code} {name}" for name, code in EVENT_CODES.items())
    + ", 15 other.")


class VcdRecorder:
    """Samples one IDE channel's signals at every trace event and writes a VCD file.

    Signals (scope ``ide<n>``): BSY, DRDY, DRQ, ERR, INTRQ, ``reason`` (the
    interrupt reason: bit 0 CoD, bit 1 IO, bit 2 REL), ``byte_count`` (LBA
    Mid/High), ``phase`` (the drive's host-state name, a string), ``dev`` (the
    selected device) and ``event`` (the kind of the event that caused the
    sample).  Use it as a :class:`~devices.trace.Tracer` sink, then :meth:`close`.

    ``phase`` and ``event`` are VCD string signals (GTKWave and pywellen show
    them; vcdvcd 2.6 reads them as empty), so each has a numeric twin,
    ``phase_code`` and ``event_code``, that every reader understands; the
    file's ``$comment`` lists the codes (:data:`PHASE_CODES`, :data:`EVENT_CODES`).
    The time axis counts trace events, one unit each.
    """

    def __init__(self, stream: TextIO, channel: IdeChannel) -> None:
        from vcd import VCDWriter  # imported here: only ``--vcd`` needs pyvcd

        self.channel = channel
        self.time = 0
        self._writer = VCDWriter(stream, timescale="1 ns", date="emu trace",
                                 comment=VCD_COMMENT)
        scope = f"ide{channel.number}"
        reg = self._writer.register_var
        self._vars = {
            "BSY": reg(scope, "BSY", "wire", size=1, init=0),
            "DRDY": reg(scope, "DRDY", "wire", size=1, init=0),
            "DRQ": reg(scope, "DRQ", "wire", size=1, init=0),
            "ERR": reg(scope, "ERR", "wire", size=1, init=0),
            "INTRQ": reg(scope, "INTRQ", "wire", size=1, init=0),
            "reason": reg(scope, "reason", "wire", size=3, init=0),
            "byte_count": reg(scope, "byte_count", "wire", size=16, init=0),
            "phase": reg(scope, "phase", "string", init=""),
            "dev": reg(scope, "dev", "wire", size=1, init=0),
            "event": reg(scope, "event", "string", init=""),
            "phase_code": reg(scope, "phase_code", "wire", size=3, init=0),
            "event_code": reg(scope, "event_code", "wire", size=4, init=0),
        }
        self.sample("start")

    def __call__(self, event: TraceEvent) -> None:
        intrq = None
        if event.kind == "irq" and event.source == f"ide{self.channel.number}":
            intrq = bool(event.fields.get("level"))  # emitted just before the line moves
        self.time += VCD_STEP
        self.sample(event.kind, intrq)

    def sample(self, label: str, intrq: bool | None = None) -> None:
        """Record the channel's signals now."""
        ch = self.channel
        unit = ch.units[ch.selected]
        status = unit.status if unit.present else 0
        stage = getattr(unit, "stage", None)
        phase = _STAGE_PHASES.get(getattr(stage, "value", ""), "") if unit.present else "absent"
        if phase == "HP0 idle" and status & 0x80:
            phase = "HP2 busy"
        values = {
            "BSY": (status >> 7) & 1,
            "DRDY": (status >> 6) & 1,
            "DRQ": (status >> 3) & 1,
            "ERR": status & 1,
            "INTRQ": int(ch.irq.level if intrq is None else intrq),
            "reason": unit.sector_count & 7 if unit.present else 0,
            "byte_count": ((unit.lba_high << 8) | unit.lba_mid) if unit.present else 0,
            "phase": phase.replace(" ", "_"),
            "dev": ch.selected,
            "event": label,
            "phase_code": PHASE_CODES.get(phase.replace(" ", "_"), 0),
            "event_code": EVENT_CODES.get(label, 15),
        }
        change = self._writer.change
        for name, value in values.items():
            change(self._vars[name], self.time, value)

    def close(self) -> None:
        self.time += VCD_STEP
        self.sample("end")
        self._writer.close(self.time)


# -- scripted conversations (``emu trace --script``) --------------------------------

READ_DEST = 0x100000
"""Guest address the trace scripts read sectors to."""


@dataclass
class TraceSession:
    """A machine with a DVD drive, the firmware driver and a tracer, for scripts.

    Scripts run in order; each brings the prerequisites it needs (``read``
    probes and waits for the drive first unless that already happened).  A
    script run with ``traced=False`` happens with tracing off, so a test can
    trace only the part it is about.
    """

    iso: str | None = None
    bus: int = 1
    device: int = 0
    lba: int = 16
    count: int = 1
    tracer: Tracer = field(default_factory=Tracer)
    output: list[str] = field(default_factory=list)
    """What the scripts report (found devices, loaded boot image), beside the trace."""

    def __post_init__(self) -> None:
        self.medium = IsoImage(self.iso or SAMPLE_ISO)
        self.machine = Machine()
        self.drive = self.machine.add_dvd_drive(self.bus, self.device, self.medium)
        self.driver = AtaHostDriver(self.machine.ports, self.machine.memory)
        self.dev: AtapiDevice | None = None
        self.ready = False
        self.scripts: dict[str, Callable[[], None]] = {
            "probe": self.script_probe,
            "ready": self.script_ready,
            "read": self.script_read,
            "eject": self.script_eject,
            "boot": self.script_boot,
            "dma": self.script_dma,
        }

    @property
    def channel(self) -> IdeChannel:
        return self.machine.ide.channel(self.bus)

    def run(self, name: str, traced: bool = True) -> None:
        """Run script ``name`` with tracing on (or off)."""
        if name not in self.scripts:
            raise ValueError(f"unknown script {name!r} (choose from {', '.join(SCRIPTS)})")
        self.machine.set_trace(self.tracer if traced else None)
        try:
            self.scripts[name]()
        finally:
            self.machine.set_trace(None)

    def close(self) -> None:
        self.medium.close()

    # -- the scripts -------------------------------------------------------------
    def script_probe(self) -> None:
        """The firmware's probe: register echo, SRST, IDENTIFY PACKET DEVICE."""
        found = self.driver.probe()
        for dev in found:
            self.output.append(f"found {dev.describe()}")
        mine = [d for d in found if (d.bus, d.device) == (self.bus, self.device)]
        if not mine:
            raise FirmwareError(f"no packet device at {location_name(self.bus, self.device)}")
        self.dev = mine[0]

    def _device(self) -> AtapiDevice:
        if self.dev is None:
            self.script_probe()
        assert self.dev is not None
        return self.dev

    def script_ready(self) -> None:
        """TEST UNIT READY / REQUEST SENSE until the drive is ready (SeaBIOS style)."""
        self.driver.wait_ready(self._device())
        self.ready = True

    def script_read(self) -> None:
        """READ(10) of ``count`` sectors from ``lba`` by polled PIO."""
        dev = self._device()
        if not self.ready:
            self.script_ready()
        self.driver.read_sectors(dev, self.lba, self.count, READ_DEST)
        self.output.append(f"read {self.count} sector(s) from LBA {self.lba} "
                           f"to guest 0x{READ_DEST:X}")

    def script_dma(self) -> None:
        """READ(10) of ``count`` sectors from ``lba`` by bus-master DMA (SFF-8038i §3)."""
        dev = self._device()
        if not self.ready:
            self.script_ready()
        self.driver.use_dma = True
        try:
            self.driver.read_sectors(dev, self.lba, self.count, READ_DEST)
        finally:
            self.driver.use_dma = False
        self.output.append(f"read {self.count} sector(s) from LBA {self.lba} by DMA "
                           f"to guest 0x{READ_DEST:X}")

    def script_eject(self) -> None:
        """A media change: the host takes the disc out, the guest sees NOT READY;
        the host puts it back, the guest waits until the drive is ready again."""
        dev = self._device()
        medium = self.drive.remove_medium()
        try:
            self.driver.packet(dev, bytes(12))
        except FirmwareError:
            key, asc, ascq = self.driver.request_sense(dev)
            self.output.append(f"with the tray open: sense {key:02X}/{asc:02X}/{ascq:02X}")
        self.drive.insert_medium(medium)
        self.driver.wait_ready(dev)
        self.ready = True
        self.output.append("after the disc came back: ready")

    def script_boot(self) -> None:
        """The firmware half of a boot: probe, El Torito catalog, boot image load."""
        from emu.firmware.eltorito import firmware_boot

        loaded = firmware_boot(self.driver)
        self.dev = loaded.device
        self.ready = True
        self.output.append(f"loaded {loaded.length} bytes at 0x{loaded.address:05X}, "
                           f"sha256 {loaded.sha256}")


SCRIPTS = ("probe", "ready", "read", "dma", "eject", "boot")
SETUP = {"probe": (), "ready": ("probe",), "read": ("probe", "ready"),
         "dma": ("probe", "ready"), "eject": ("probe",), "boot": ()}
"""What each script needs done first (the power-on preamble: probe, then wait until ready)."""
MAX_TRACE_SECTORS = (16 << 20) // 2048 - READ_DEST // 2048
"""Sectors that fit in guest memory above :data:`READ_DEST` (16 MiB machine)."""


def split_scripts(words: Sequence[str], iso: str | None) -> tuple[list[str], str | None]:
    """``--script probe read [ISO]`` → (scripts, ISO): one ISO may follow the script names.

    ``--script`` takes several names, so an ISO written after them (``emu trace
    --script read disc.iso``, the order every other subcommand accepts) arrives
    among them; it is recognised by not being a script name.  Names may also be
    joined with commas (``--script probe,read``).
    """
    scripts: list[str] = []
    extra: list[str] = []
    for word in words:
        for name in (word.split(",") if "," in word else [word]):
            (scripts if name in SCRIPTS else extra).append(name)
    if len(extra) == 1 and iso is None and not extra[0].isidentifier():
        return scripts or ["probe", "read"], extra[0]
    if extra:
        raise ValueError(f"unknown script {extra[0]!r} (choose from {', '.join(SCRIPTS)}"
                         + ("; the ISO is given once" if iso is not None else "") + ")")
    return scripts, iso


def _print_lines(lines: Iterable[str], out: TextIO) -> None:
    for line in lines:
        print(line, file=out)


def cmd_trace(args: argparse.Namespace) -> int:
    """``emu trace``: run scripts with tracing on and print the conversation."""
    try:
        scripts, iso = split_scripts(args.script, args.iso)
    except ValueError as exc:
        print(f"emu trace: error: {exc}", file=sys.stderr)
        return 2
    # Open the waveform file first: a path that cannot be written is refused
    # before the disc is opened.
    vcd_file = open(args.vcd, "w", encoding="ascii") if args.vcd else None  # noqa: SIM115
    try:
        session = TraceSession(iso, args.bus, args.device, args.lba, args.count)
    except BaseException:
        if vcd_file is not None:
            vcd_file.close()
        raise
    session.driver.interrupts = args.interrupts
    session.driver.byte_count_limit = args.bcl
    renderer = Renderer(collapse=not args.no_collapse, verbose=args.verbose)
    out = sys.stdout

    def show(event: TraceEvent) -> None:
        _print_lines(renderer.feed(event), out)

    session.tracer.sinks.append(show)
    recorder: VcdRecorder | None = None
    done: set[str] = set()

    def run(step: str, label: str | None) -> bool:
        """One script, traced under a ``## script:`` header (or untraced when label is None)."""
        if label is not None:
            print(f"## script: {label}", file=out)
        try:
            session.run(step, traced=label is not None)
        except FirmwareError as exc:
            _print_lines(renderer.flush(), out)
            print(f"## {step} failed: {exc}", file=out)
            return False
        done.add(step)
        _print_lines(renderer.flush(), out)
        if label is not None:
            _print_lines((f"## {line}" for line in session.output), out)
            session.output.clear()
        return True

    try:
        for name in scripts:
            setup = [s for s in SETUP[name] if s not in done]
            if setup and args.skip_setup:
                if not all(run(step, None) for step in setup):
                    return 1
                print(f"## setup, not traced: {' '.join(setup)}", file=out)
                _print_lines((f"## {line}" for line in session.output), out)
                session.output.clear()
                setup = []
            if vcd_file is not None and recorder is None:
                # The waveform starts with the first traced step, from the state
                # the untraced setup left (not the power-on state before it).
                recorder = VcdRecorder(vcd_file, session.channel)
                session.tracer.sinks.append(recorder)
            for step in setup:
                if not run(step, f"{step} (setup for {name})"):
                    return 1
            if not run(name, name):
                return 1
    finally:
        if recorder is not None:
            recorder.close()
        if vcd_file is not None:
            vcd_file.close()
        session.close()
        if args.json:
            Path(args.json).write_text(
                json.dumps(transcript(session.tracer.events, scripts), indent=1) + "\n",
                encoding="utf-8",
            )
    return 0


def add_arguments(p: argparse.ArgumentParser,
                  drive_options: Callable[[argparse.ArgumentParser], None]) -> None:
    """The arguments of ``emu trace`` (the CLI lists the command and its help)."""
    p.description = ("Run scripted host actions against the drive and print the register-level "
                     "conversation (ATA/ATAPI-7 vol 2 section 11.8). The ISO may come before or "
                     "after the options. Exit status: 0 done, 1 a script failed, 2 bad input.")
    p.add_argument("iso", nargs="?", help="ISO image (default: the built-in sample)")
    p.add_argument("--script", nargs="+", default=["probe", "read"], metavar="NAME",
                   help=f"what the host does, in order: {', '.join(SCRIPTS)} "
                        "(default: probe read)")
    p.add_argument("--lba", type=int_range(0, MAX_LBA, "LBA"), default=16,
                   help=f"first sector for read/dma (0-{MAX_LBA}, default 16)")
    p.add_argument("--count", type=int_range(1, MAX_TRACE_SECTORS, "sector count"), default=1,
                   help=f"sectors for read/dma (1-{MAX_TRACE_SECTORS}, default 1)")
    p.add_argument("--interrupts", action="store_true",
                   help="run packet commands with nIEN clear, so INTRQ rises and falls "
                        "(default: nIEN set and polled, as the firmware does)")
    p.add_argument("--bcl", type=even_byte_count, metavar="N",
                   help="byte-count limit for PIO data, even, 2-65534 (e.g. 0x800; default: "
                        "one whole transfer per DRQ block, as the firmware does)")
    p.add_argument("--skip-setup", action="store_true",
                   help="run the power-on preamble (probe, wait until ready) without tracing it")
    p.add_argument("--json", metavar="FILE", help="write the transcript (events + lines)")
    p.add_argument("--vcd", metavar="FILE",
                   help="write the channel's signals as a VCD waveform (its time axis counts "
                        "trace events, one unit each)")
    p.add_argument("--no-collapse", action="store_true",
                   help="do not fold repeated lines into one (×n) line")
    p.add_argument("--verbose", action="store_true", help="also show folded events")
    drive_options(p)
    p.set_defaults(func=cmd_trace)
