"""A PIIX-style bus-master IDE DMA engine, one per channel.

Follows SFF-8038i rev 1.0 ("Bus Master Programming Interface for IDE ATA
Controllers"): §1.2 the Physical Region Descriptor table, §2.1 the Bus
Master IDE Command register, §2.2 the Bus Master IDE Status register (and
its table "Interrupt/Active bit interpretation"), §2.3 the Descriptor Table
Pointer register, §3 the standard programming sequence.  The register block
is 8 bytes per channel at a BAR-like I/O base (the PIIX's BAR 4: channel 0
at +0, channel 1 at +8)::

    +0  command  bit 0 START/STOP, bit 3 direction (1 = device to memory)
    +2  status   bit 0 ACTIVE (RO), bit 1 ERROR (R/W1C), bit 2 INTERRUPT (R/W1C),
                 bits 5/6 drive 0/1 DMA capable (R/W, set by firmware), bit 7 simplex (RO 0)
    +4  PRD table address (dword; bits 1-0 read as zero)

A PRD entry is 8 bytes: u32 physical base address (bit 0 ignored), u16 byte
count (bit 0 ignored; 0 means 64 KiB), u16 whose bit 15 marks the end of
the table (EOT).

How a transfer runs here.  A unit (the ATAPI drive) with data for the engine,
or waiting for data from it, calls its ``dma_request`` hook; the engine moves
data whenever START and ACTIVE are set and the unit has bytes waiting,
whichever happens last.  The
PRD list is walked from a cursor (entry, offset) that a START 0→1 write
resets to the table start and that otherwise persists, as in hardware.  For
each PRD entry the bytes go from the unit's ``dma_source()`` (for sector
reads a zero-copy view of the medium's memory map) into guest RAM with ONE
numpy copy; ``notify_written`` tells the CPU's translated-code cache; then
``dma_advance`` lets the unit complete the command.  Data-out (a MODE SELECT
parameter list) runs the same walk the other way: one numpy copy per PRD
entry from guest RAM into the unit's ``dma_sink()``.  Transfers are
synchronous: data lands in RAM by the time the port write that started them
returns.

Outcomes (SFF-8038i §2.2, Interrupt/Active table; QEMU's ide-test
``test_bmdma_*`` asserts the same):

* PRD list exactly as long as the transfer: INTERRUPT=1, ACTIVE=0.
* PRD list longer: INTERRUPT=1, ACTIVE=1 (the cursor stays inside the list;
  a further DMA command without a restart continues from it).
* PRD list shorter: INTERRUPT=0, ACTIVE=0, ERROR=0 (the "PRDs smaller than
  the IDE transfer" case).  The bytes the PRDs cover are moved; the unit
  keeps the rest and stays in its data phase (DRQ, no INTRQ, no ERR), as a
  real drive keeps DMARQ asserted.  The host recovers with DEVICE RESET, or
  restarts the engine (START 0→1) on a new table to take the rest.
* A PRD entry, or the PRD table itself, outside guest RAM, or a direction bit
  that does not match the unit's transfer (memory-to-device while the unit
  has data for memory, or device-to-memory while it waits for data; SFF-8038i
  §2.1 makes the bit the transfer's direction): ERROR=1, ACTIVE=0, **nothing**
  is written or consumed (the whole walk is checked before the first byte
  moves — a deliberate simplification: a real controller would have moved
  the regions before the bad one), and the
  unit is told through ``dma_fault()``; the ATAPI drive ends the command
  with CHECK CONDITION, ABORTED COMMAND / DATA PHASE ERROR (0B/4B/00), whose
  INTRQ sets INTERRUPT.
* Clearing START stops the engine: ACTIVE=0.  A transfer that had not
  finished is abandoned (SFF-8038i §2.1: bus-master operation cannot be
  stopped and resumed; data may be discarded); the unit keeps its data phase
  until the host resets it.
* INTERRUPT latches on every rising edge of the channel's interrupt line
  (SFF-8038i §2.2; PIO commands set it too, as on a PIIX), so at completion
  the IRQ line level equals the INTERRUPT bit; writing 1 clears the bit and
  it stays clear until the next edge.

A walk reads at most 8192 entries (a 64 KiB table: SFF-8038i §1.2 forbids a
table crossing a 64 KiB boundary); running past that counts as the end of the
table.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag
from typing import TYPE_CHECKING, Protocol

import numpy as np

from devices.bus import PortRange
from devices.state import apply, capture

if TYPE_CHECKING:
    from devices.ide.controller import IdeChannel
    from devices.ide.device import IdeDevice

PIIX_BM_BASE = 0xC000
"""Default I/O base of the bus-master block (BAR 4): channel 0 here, channel 1 at +8."""
BM_CHANNEL_STRIDE = 8
"""Register bytes per channel (SFF-8038i §2)."""
PRD_ENTRY_SIZE = 8
MAX_PRD_ENTRIES = 0x10000 // PRD_ENTRY_SIZE
"""A PRD table never crosses a 64 KiB boundary (SFF-8038i §1.2): at most 8192 entries."""
PRD_EOT = 0x8000
"""Bit 15 of the last word of a PRD entry: end of table."""


class BmReg(IntEnum):
    """Register offsets inside a channel's bus-master block (SFF-8038i §2)."""

    COMMAND = 0
    STATUS = 2
    PRD_TABLE = 4


class BmCommand(IntFlag):
    """Bus Master IDE Command register (SFF-8038i §2.1)."""

    START = 0x01
    """Start/Stop Bus Master: 1 enables the engine, 0 halts it."""
    READ = 0x08
    """Read/Write Control: 1 = the engine writes memory (device to memory, a disc read)."""


class BmStatus(IntFlag):
    """Bus Master IDE Status register (SFF-8038i §2.2)."""

    ACTIVE = 0x01
    """Set by START; cleared when the PRD list is exhausted or START is cleared."""
    ERROR = 0x02
    """A memory transfer failed (write 1 to clear)."""
    INTERRUPT = 0x04
    """The device raised its interrupt line (write 1 to clear)."""
    DRIVE0_DMA = 0x20
    """Firmware says drive 0 is configured for DMA (plain read/write bit)."""
    DRIVE1_DMA = 0x40
    """Firmware says drive 1 is configured for DMA (plain read/write bit)."""
    SIMPLEX = 0x80
    """Only one channel may do DMA at a time (read-only; 0: both may)."""


# Plain ints for the bit arithmetic (IntFlag's ``~`` keeps only defined members).
_START, _READ = int(BmCommand.START), int(BmCommand.READ)
_ACTIVE, _ERROR, _INTR = int(BmStatus.ACTIVE), int(BmStatus.ERROR), int(BmStatus.INTERRUPT)
_W1C = _ERROR | _INTR
_RW = int(BmStatus.DRIVE0_DMA | BmStatus.DRIVE1_DMA)
_COMMAND_BITS = _START | _READ


class DmaMemory(Protocol):
    """What the engine needs from guest RAM (``emu.pc.memory.GuestMemory`` satisfies it).

    ``view`` returns a writable ``uint8`` view of ``[address, address+length)``;
    the engine checks ranges against ``size`` itself before asking, so a guest
    address outside RAM never reaches ``view``.
    """

    @property
    def size(self) -> int: ...

    def view(self, address: int, length: int) -> np.ndarray: ...

    def notify_written(self, address: int, length: int) -> None: ...


class _Fault(Exception):  # noqa: N818 - internal signal, never escapes the engine
    """The walk touched memory outside RAM."""


class BusMasterDma:
    """The bus-master engine of one IDE channel.

    State fields: ``command``, ``status``, ``prd_table``, and the PRD cursor
    ``entry`` / ``entry_offset`` — all set by :meth:`reset`.
    """

    def __init__(self, channel: IdeChannel, memory: DmaMemory, base: int) -> None:
        self.channel = channel
        self.memory = memory
        self.base = base
        self.name = f"bmdma{channel.number}"
        self.bus_master_enabled = True
        """The PCI command register's bus master bit (PCI 2.1 §6.2.2): with it clear
        the engine cannot start bus cycles and moves nothing.  A board without PCI
        configuration leaves it set."""
        channel.irq.listeners.append(self._irq_changed)
        self.reset()

    def reset(self) -> None:
        """Power-on state: engine stopped, status 0, table pointer 0."""
        self.command = 0
        self.status = 0
        self.prd_table = 0
        self.entry = 0
        """Index of the PRD entry the next byte goes to."""
        self.entry_offset = 0
        """Bytes of that entry already used."""

    STATE_FIELDS = ("base", "bus_master_enabled", "command", "status", "prd_table", "entry",
                    "entry_offset")
    """What :meth:`reset` sets, plus where BAR 4 placed the engine and the PCI bit."""

    def state(self) -> dict[str, object]:
        """The saved state: :attr:`STATE_FIELDS` as plain data (devices/state.py)."""
        return capture(self, self.STATE_FIELDS)

    def load_state(self, state: dict[str, object]) -> None:
        apply(self, state, self.STATE_FIELDS)

    # -- ports ----------------------------------------------------------------------
    def port_range(self) -> PortRange:
        return PortRange(self.base, BM_CHANNEL_STRIDE, self.read, self.write, name=self.name)

    def _register_bytes(self) -> bytes:
        return bytes((self.command, 0, self.status, 0)) + self.prd_table.to_bytes(4, "little")

    def read(self, port: int, width: int) -> int:
        """Byte, word or dword read of the register block (little-endian, like PCI I/O)."""
        offset = port - self.base
        regs = self._register_bytes()
        value = int.from_bytes(regs[offset : offset + width].ljust(width, b"\0"), "little")
        trace = self.channel.trace
        if trace is not None:
            trace.emit("port", self.name, dir="in", port=port, width=width, value=value)
        return value

    def write(self, port: int, width: int, value: int) -> None:
        """Byte, word or dword write; each byte lands in its own register."""
        offset = port - self.base
        trace = self.channel.trace
        if trace is not None:
            trace.emit("port", self.name, dir="out", port=port, width=width, value=value)
        for i in range(width):
            if offset + i < BM_CHANNEL_STRIDE:
                self._write_byte(offset + i, (value >> (8 * i)) & 0xFF)

    def _write_byte(self, offset: int, value: int) -> None:
        if offset == BmReg.COMMAND:
            self._write_command(value)
        elif offset == BmReg.STATUS:
            self.status = (self.status & ~(_RW | (value & _W1C)) & 0xFF) | (value & _RW)
        elif BmReg.PRD_TABLE <= offset < BmReg.PRD_TABLE + 4:
            shift = 8 * (offset - BmReg.PRD_TABLE)
            table = (self.prd_table & ~(0xFF << shift)) | (value << shift)
            self.prd_table = table & 0xFFFFFFFC  # dword aligned (SFF-8038i §2.3)

    def _write_command(self, value: int) -> None:
        """SFF-8038i §2.1: START 0→1 starts at the table's first entry; 1→0 halts."""
        old = self.command
        self.command = value & _COMMAND_BITS
        started = self.command & _START and not old & _START
        stopped = old & _START and not self.command & _START
        if stopped:
            self.status &= ~_ACTIVE & 0xFF
            self._trace("stop")
        elif started:
            self.entry = self.entry_offset = 0
            self.status |= _ACTIVE
            self._trace("start", prd_table=self.prd_table,
                        direction="to memory" if self.command & _READ else "from memory")
            self.service()

    # -- the interrupt edge ---------------------------------------------------------
    def _irq_changed(self, line: int, level: bool) -> None:
        """INTERRUPT latches on the rising edge of the channel's IRQ (SFF-8038i §2.2)."""
        if level:
            self.status |= _INTR

    # -- transfers ------------------------------------------------------------------
    def service(self) -> None:
        """Move data if START and ACTIVE are set and a unit has data for the engine.

        Called when START is set and from the channel when a unit enters its
        DMA data phase (``IdeDevice.dma_request``).
        """
        if not (self.command & _START and self.status & _ACTIVE and self.bus_master_enabled):
            return
        request = self._requesting_unit()
        if request is None:
            return
        unit, buffer, to_memory = request
        if bool(self.command & _READ) != to_memory:
            # SFF-8038i §2.1: the direction bit must match the device's transfer.
            self._fail(unit, "direction bit says " + ("memory to device" if to_memory
                                                      else "device to memory"))
            return
        try:
            segments, exhausted = self._walk(buffer.size)
        except _Fault as fault:
            self._fail(unit, str(fault))
            return
        memory = self.memory
        trace = self.channel.trace
        done = 0
        for entry, address, length, eot in segments:  # one numpy copy per PRD entry
            if to_memory:
                np.copyto(memory.view(address, length), buffer[done : done + length])
                memory.notify_written(address, length)
            else:
                np.copyto(buffer[done : done + length], memory.view(address, length))
            done += length
            if trace is not None:
                trace.emit("dma", self.name, event="prd", index=entry, address=address,
                           bytes=length, eot=eot)
        if exhausted:
            self.status &= ~_ACTIVE & 0xFF
        self._trace("transfer", bytes=done, entries=len(segments), exhausted=exhausted,
                    remaining=buffer.size - done)
        unit.dma_advance(done)  # completion raises INTRQ, whose edge sets INTERRUPT

    def _requesting_unit(self) -> tuple[IdeDevice, np.ndarray, bool] | None:
        """The unit waiting for the engine (the selected one first), its buffer and
        whether that goes to memory (``dma_source``) or comes from it (``dma_sink``)."""
        units = self.channel.units
        selected = self.channel.selected
        for unit in (units[selected], units[1 - selected]):
            if not unit.present:
                continue
            source = unit.dma_source()
            if source.size:
                return unit, source, True
            sink = unit.dma_sink()
            if sink.size:
                return unit, sink, False
        return None

    def _walk(self, total: int) -> tuple[list[tuple[int, int, int, bool]], bool]:
        """Plan ``total`` bytes along the PRD list from the cursor, advancing it.

        Returns the (entry, address, length, eot) segments — one per PRD entry
        used — and whether the list was exhausted (the EOT entry fully used).  Raises
        :class:`_Fault`, leaving the cursor untouched, if an entry needed or a
        region to be written or read lies outside RAM.
        """
        size = self.memory.size
        segments: list[tuple[int, int, int, bool]] = []
        entry, offset = self.entry, self.entry_offset
        planned = 0
        exhausted = False
        while planned < total:
            if entry >= MAX_PRD_ENTRIES:
                exhausted = True  # past a 64 KiB table: treated as its end
                break
            at = self.prd_table + entry * PRD_ENTRY_SIZE
            if at + PRD_ENTRY_SIZE > size:
                raise _Fault(f"PRD entry {entry} at {at:#x} is outside RAM")
            raw = self.memory.view(at, PRD_ENTRY_SIZE).tobytes()
            base = int.from_bytes(raw[0:4], "little") & ~1
            count = int.from_bytes(raw[4:6], "little") & 0xFFFE or 0x10000
            eot = bool(int.from_bytes(raw[6:8], "little") & PRD_EOT)
            length = min(count - offset, total - planned)
            address = base + offset
            if address + length > size:
                raise _Fault(f"PRD entry {entry}: {address:#x}+{length:#x} is outside RAM")
            segments.append((entry, address, length, eot))
            planned += length
            offset += length
            if offset == count:
                if eot:
                    exhausted = True
                    break
                entry, offset = entry + 1, 0
        self.entry, self.entry_offset = entry, offset
        return segments, exhausted

    def _fail(self, unit: IdeDevice, why: str) -> None:
        """A memory-side failure: ERROR, engine inactive, nothing written, unit told."""
        self.status = (self.status | _ERROR) & ~_ACTIVE & 0xFF
        self._trace("error", reason=why)
        unit.dma_fault()

    def _trace(self, event: str, **fields: object) -> None:
        trace = self.channel.trace
        if trace is not None:
            trace.emit("dma", self.name, event=event, status=int(self.status), **fields)


__all__ = [
    "BM_CHANNEL_STRIDE",
    "PIIX_BM_BASE",
    "BmCommand",
    "BmReg",
    "BmStatus",
    "BusMasterDma",
    "DmaMemory",
]
