"""A National Semiconductor 16550A UART (PC16550D datasheet), as COM1 at 3F8h / IRQ 4.

Registers (PC16550D Table II), offset from the base, DLAB = LCR bit 7:

=====  ===========================  ===========================
 off    read                         write
=====  ===========================  ===========================
  0     RBR (DLAB=0) / DLL (DLAB=1)  THR (DLAB=0) / DLL (DLAB=1)
  1     IER (DLAB=0) / DLM (DLAB=1)  IER (DLAB=0) / DLM (DLAB=1)
  2     IIR                          FCR
  3     LCR                          LCR
  4     MCR                          MCR
  5     LSR                          (factory test: ignored)
  6     MSR                          (ignored)
  7     SCR                          SCR
=====  ===========================  ===========================

What is modelled, with the datasheet's rules:

* **Interrupts** (Table IV): IIR reports the highest-priority enabled source —
  receiver line status (06h, cleared by reading LSR), received data available
  (04h, the FIFO at or above its trigger level, or a byte in RBR outside FIFO
  mode; cleared by reading RBR), character timeout (0Ch, FIFO mode, data below
  the trigger level), THR empty (02h, cleared by reading IIR when it is the
  source or by writing THR), modem status (00h, cleared by reading MSR) — or
  01h for none.  Bits 7-6 read 11b while FCR0 enables the FIFOs (so IIR reads
  C1h when idle), bits 5-4 read 0.  Enabling ETBEI while THR is empty raises a
  THRE interrupt, as does changing FCR0 ("the first transmitter interrupt after
  changing FCR0 will be immediate").
* **FIFOs** (FCR): 16 bytes each way; FCR0 enables (changing it clears both),
  FCR1/FCR2 reset the receive/transmit FIFO and clear themselves, FCR7-6 pick
  the receive trigger level (1, 4, 8 or 14 bytes); the other bits are only
  programmed while FCR0 is written as 1.  A byte that arrives with the receive
  FIFO full sets OE and is lost; outside FIFO mode it overwrites RBR and sets OE.
* **LSR**: DR, OE (cleared by reading LSR), THRE and TEMT.
* **MCR / loopback** (MCR bit 4): the transmitter's output is looped to the
  receiver and nothing leaves the chip; DTR→DSR, RTS→CTS, OUT1→RI and OUT2→DCD
  are looped to the MSR inputs.  **MSR** bits 3-0 are the delta bits (DCTS,
  DDSR, TERI on RI going inactive, DDCD), cleared by reading MSR.
* **The PC's IRQ gate**: a PC drives IRQ 4 from the INTR pin only while OUT2 is
  set; in loopback the chip forces OUT2 inactive, so no interrupt leaves it.

Deliberate simplifications, all invisible to a driver: transmission takes no
time (THR and the transmitter are empty again as soon as a byte is written, so
THRE and TEMT read set and, with ETBEI, the THRE interrupt comes straight back
after each write), and the character timeout's four character times are zero
(data below the trigger level is reported at once), because the console on the
other side has no wire.  Host input (:meth:`Uart16550.receive`) waits in a host
queue until the receiver has room, like a sender under flow control: a fast
paste is never lost to an overrun.  Parity, framing errors and break are never
produced (TODO(PC16550D LCR6): break in loopback), and the word length (LCR1-0)
does not mask bytes: firmware that never programs LCR (reset value 0: five data
bits) still reaches the host with whole bytes.

This passes Linux's 8250 autodetection (drivers/tty/serial/8250/8250_port.c,
``autoconfig``): the IER existence test (bits 3-0 writable, 7-4 read 0), the
loopback test (MCR 1Ah gives MSR high nibble 9h), the FIFO test (FCR 01h gives
IIR bits 7-6 = 11b: a 16550A), and the variant probes (no EFR behind LCR BFh,
no 64-byte mode in IIR bit 5, IER bit 6 not writable, 16 bytes counted through
the FIFO in loopback): tests/test_uart.py replays that sequence.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from enum import IntEnum

from devices.bus import IrqLine, PortRange
from devices.state import apply, capture

COM1_BASE, COM1_IRQ = 0x3F8, 4
FIFO_SIZE = 16
TRIGGER_LEVELS = (1, 4, 8, 14)
"""Receive FIFO trigger levels selected by FCR bits 7-6."""


class Reg(IntEnum):
    """Register offsets from the base (the DLAB=0 names)."""

    RBR_THR = 0
    IER = 1
    IIR_FCR = 2
    LCR = 3
    MCR = 4
    LSR = 5
    MSR = 6
    SCR = 7


# IER (PC16550D "Interrupt Enable Register")
IER_RDA, IER_THRE, IER_RLS, IER_MS = 0x01, 0x02, 0x04, 0x08
IER_MASK = 0x0F
"""Bits 7-4 are always 0 on a 16550A (Linux's Xscale probe relies on bit 6)."""

# IIR interrupt identification codes, in priority order (Table IV)
IIR_NONE, IIR_RLS, IIR_RDA, IIR_TIMEOUT, IIR_THRE, IIR_MODEM = 0x01, 0x06, 0x04, 0x0C, 0x02, 0x00
IIR_FIFO_ENABLED = 0xC0

# FCR
FCR_ENABLE, FCR_CLEAR_RX, FCR_CLEAR_TX, FCR_DMA_MODE = 0x01, 0x02, 0x04, 0x08

# LCR
LCR_BREAK, LCR_DLAB = 0x40, 0x80

# MCR
MCR_DTR, MCR_RTS, MCR_OUT1, MCR_OUT2, MCR_LOOP = 0x01, 0x02, 0x04, 0x08, 0x10
MCR_MASK = 0x1F

# LSR
LSR_DR, LSR_OE, LSR_PE, LSR_FE, LSR_BI = 0x01, 0x02, 0x04, 0x08, 0x10
LSR_THRE, LSR_TEMT, LSR_RX_FIFO_ERROR = 0x20, 0x40, 0x80
LSR_ERRORS = LSR_OE | LSR_PE | LSR_FE | LSR_BI

# MSR
MSR_DCTS, MSR_DDSR, MSR_TERI, MSR_DDCD = 0x01, 0x02, 0x04, 0x08
MSR_CTS, MSR_DSR, MSR_RI, MSR_DCD = 0x10, 0x20, 0x40, 0x80

HOST_MODEM_LINES = MSR_CTS | MSR_DSR | MSR_DCD
"""What the host end of the line drives by default: a terminal that is there and ready."""


class Uart16550:
    """A 16550A at ``base`` whose output lines go to ``on_output`` and whose INTR drives ``irq``.

    ``irq`` is optional (the built-in BIOS polls); on a PC it is ISA IRQ 4 for COM1.
    """

    def __init__(self, base: int = COM1_BASE, on_output: Callable[[bytes], None] | None = None,
                 irq: IrqLine | None = None) -> None:
        self.base = base
        self.on_output = on_output
        self.irq = irq
        self.output = bytearray()
        """Every byte that left the transmitter (not the loopback ones)."""
        self.host_queue: deque[int] = deque()
        """Bytes from the host waiting for room in the receiver."""
        self.modem_lines = HOST_MODEM_LINES
        """MSR bits 7-4 as the host end of the line drives them (outside loopback)."""
        self.scr = 0
        self.reset()

    def reset(self) -> None:
        """Master reset (PC16550D Table IV): everything but the divisor, SCR and host side."""
        # State fields: ier, lcr, mcr, fcr, divisor, rx, rbr, lsr_errors, thre_pending,
        # msr_deltas, inputs (plus scr, host_queue, modem_lines, output set in __init__).
        self.ier = 0
        self.lcr = 0
        self.mcr = 0
        self.fcr = 0
        self.divisor = 0x000C  # 9600 baud from 1.8432 MHz (the datasheet leaves it undefined)
        self.rx: deque[int] = deque()
        self.rbr = 0
        """The last byte the receiver delivered (what RBR reads when nothing new is there)."""
        self.lsr_errors = 0
        self.thre_pending = False
        self.msr_deltas = 0
        self.inputs = self.modem_lines
        self._update_irq()

    STATE_FIELDS = ("ier", "lcr", "mcr", "fcr", "divisor", "rx", "rbr", "lsr_errors",
                    "thre_pending", "msr_deltas", "inputs", "scr", "host_queue", "modem_lines",
                    "output")
    """What :meth:`reset` and ``__init__`` set: the UART's saved state."""

    def state(self) -> dict[str, object]:
        """The saved state: :attr:`STATE_FIELDS` as plain data (devices/state.py)."""
        return capture(self, self.STATE_FIELDS)

    def load_state(self, state: dict[str, object]) -> None:
        apply(self, state, self.STATE_FIELDS)

    # -- derived state -------------------------------------------------------------------
    @property
    def dlab(self) -> bool:
        """LCR bit 7: offsets 0 and 1 address the divisor latch."""
        return bool(self.lcr & LCR_DLAB)

    @property
    def fifo_enabled(self) -> bool:
        return bool(self.fcr & FCR_ENABLE)

    @property
    def loopback(self) -> bool:
        return bool(self.mcr & MCR_LOOP)

    @property
    def trigger_level(self) -> int:
        """Receive FIFO trigger level in bytes."""
        return TRIGGER_LEVELS[self.fcr >> 6]

    def _rx_capacity(self) -> int:
        return FIFO_SIZE if self.fifo_enabled else 1

    def interrupt_id(self) -> int:
        """IIR bits 3-0: the highest-priority enabled source (Table IV), or 01h for none."""
        ier = self.ier
        if ier & IER_RLS and self.lsr_errors:
            return IIR_RLS
        if ier & IER_RDA and self.rx:
            if not self.fifo_enabled or len(self.rx) >= self.trigger_level:
                return IIR_RDA
            return IIR_TIMEOUT
        if ier & IER_THRE and self.thre_pending:
            return IIR_THRE
        if ier & IER_MS and self.msr_deltas:
            return IIR_MODEM
        return IIR_NONE

    @property
    def intr(self) -> bool:
        """The chip's INTR pin (before the PC's OUT2 gate)."""
        return self.interrupt_id() != IIR_NONE

    def _update_irq(self) -> None:
        if self.irq is None:
            return
        gate = self.mcr & MCR_OUT2 and not self.mcr & MCR_LOOP
        self.irq.set_level(bool(gate) and self.intr)

    # -- the line ------------------------------------------------------------------------
    def transmit(self, byte: int) -> None:
        """Put ``byte`` on the serial output (the host side sees it)."""
        self.output.append(byte & 0xFF)
        if self.on_output is not None:
            self.on_output(bytes([byte & 0xFF]))

    def _receive_byte(self, byte: int) -> None:
        """A character completes in the receive shift register."""
        if len(self.rx) >= self._rx_capacity():
            self.lsr_errors |= LSR_OE
            if self.fifo_enabled:
                return  # the shift register is overwritten, the FIFO keeps its bytes
            self.rx.clear()  # outside FIFO mode the new byte destroys RBR's
        self.rx.append(byte & 0xFF)

    def _feed_from_host(self) -> None:
        if self.loopback:
            return  # the serial input is disconnected in loopback
        while self.host_queue and len(self.rx) < self._rx_capacity():
            self._receive_byte(self.host_queue.popleft())

    def receive(self, data: bytes) -> None:
        """Host input: queue ``data`` for the receiver (a serial console's keystrokes)."""
        self.host_queue.extend(data)
        self._feed_from_host()
        self._update_irq()

    def set_modem_lines(self, lines: int) -> None:
        """Host side: drive CTS, DSR, RI and DCD (MSR bits 7-4) as ``lines`` says."""
        self.modem_lines = lines & 0xF0
        if not self.loopback:
            self._set_inputs(self.modem_lines)
        self._update_irq()

    def _set_inputs(self, new: int) -> None:
        changed = self.inputs ^ new
        if changed & MSR_CTS:
            self.msr_deltas |= MSR_DCTS
        if changed & MSR_DSR:
            self.msr_deltas |= MSR_DDSR
        if changed & MSR_RI and not new & MSR_RI:
            self.msr_deltas |= MSR_TERI  # trailing edge only
        if changed & MSR_DCD:
            self.msr_deltas |= MSR_DDCD
        self.inputs = new

    def _looped_inputs(self) -> int:
        mcr = self.mcr
        return ((MSR_CTS if mcr & MCR_RTS else 0) | (MSR_DSR if mcr & MCR_DTR else 0)
                | (MSR_RI if mcr & MCR_OUT1 else 0) | (MSR_DCD if mcr & MCR_OUT2 else 0))

    # -- register access -----------------------------------------------------------------
    def read(self, port: int, width: int) -> int:
        """A guest read of ``port`` (one byte; wider reads see the byte)."""
        reg = (port - self.base) & 7
        if reg == Reg.RBR_THR:
            if self.dlab:
                return self.divisor & 0xFF
            if self.rx:
                self.rbr = self.rx.popleft()
                self._feed_from_host()
                self._update_irq()
            return self.rbr
        if reg == Reg.IER:
            return (self.divisor >> 8) if self.dlab else self.ier
        if reg == Reg.IIR_FCR:
            iid = self.interrupt_id()
            if iid == IIR_THRE:
                self.thre_pending = False  # reading IIR clears a THRE interrupt it reports
                self._update_irq()
            return iid | (IIR_FIFO_ENABLED if self.fifo_enabled else 0)
        if reg == Reg.LCR:
            return self.lcr
        if reg == Reg.MCR:
            return self.mcr
        if reg == Reg.LSR:
            value = LSR_THRE | LSR_TEMT | self.lsr_errors | (LSR_DR if self.rx else 0)
            if self.lsr_errors:
                self.lsr_errors = 0
                self._update_irq()
            return value
        if reg == Reg.MSR:
            value = self.inputs | self.msr_deltas
            if self.msr_deltas:
                self.msr_deltas = 0
                self._update_irq()
            return value
        return self.scr

    def write(self, port: int, width: int, value: int) -> None:
        """A guest write of ``value`` to ``port``."""
        reg = (port - self.base) & 7
        value &= 0xFF
        if reg == Reg.RBR_THR:
            if self.dlab:
                self.divisor = (self.divisor & 0xFF00) | value
                return
            self._write_thr(value)
        elif reg == Reg.IER:
            if self.dlab:
                self.divisor = (self.divisor & 0x00FF) | (value << 8)
                return
            old, self.ier = self.ier, value & IER_MASK
            if self.ier & IER_THRE and not old & IER_THRE:
                self.thre_pending = True  # THR is empty: the interrupt comes at once
        elif reg == Reg.IIR_FCR:
            self._write_fcr(value)
        elif reg == Reg.LCR:
            self.lcr = value
        elif reg == Reg.MCR:
            self.mcr = value & MCR_MASK
            self._set_inputs(self._looped_inputs() if self.loopback else self.modem_lines)
            self._feed_from_host()
        elif reg == Reg.SCR:
            self.scr = value
        self._update_irq()

    def _write_thr(self, value: int) -> None:
        self.thre_pending = False  # writing THR clears the THRE interrupt ...
        if self.loopback:
            self._receive_byte(value)
        else:
            self.transmit(value)
        self.thre_pending = True  # ... and THR empties again at once (no wire time)

    def _write_fcr(self, value: int) -> None:
        if (value ^ self.fcr) & FCR_ENABLE:
            self.rx.clear()  # changing FCR0 clears both FIFOs
            self.thre_pending = True
        if not value & FCR_ENABLE:
            self.fcr = 0  # the other bits are only programmed with FCR0 = 1
            self._feed_from_host()
            return
        if value & FCR_CLEAR_RX:
            self.rx.clear()
        if value & FCR_CLEAR_TX:
            self.thre_pending = True  # the transmit FIFO is empty (it always is here)
        self.fcr = value & (0xC0 | FCR_DMA_MODE | FCR_ENABLE)
        self._feed_from_host()

    def port_ranges(self) -> list[PortRange]:
        """The eight registers at ``base``."""
        return [PortRange(self.base, 8, self.read, self.write, name="com1")]
