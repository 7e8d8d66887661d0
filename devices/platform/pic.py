"""The AT's pair of 8259A programmable interrupt controllers.

Intel 8259A datasheet (order 231468): initialisation by ICW1 (even port,
bit 4 set) followed by ICW2 (vector base, T7-T3), ICW3 (cascade wiring) and,
if ICW1 bit 0 asked for it, ICW4 (bit 1 AEOI); then OCW1 (odd port: the
interrupt mask register IMR), OCW2 (even port, bits 4-3 = 00: EOI commands)
and OCW3 (even port, bits 4-3 = 01: read IRR or ISR on the next even-port
read).  Requests latch in the IRR on a rising edge of the IR input
(edge-triggered mode, the PC's setting); the INTA cycle moves the
highest-priority unmasked request into the ISR (fully nested mode: IR0
highest) and returns ICW2's base | IR number.

The PC/AT wiring: the master at 20h/21h takes IRQ 0-7, the slave at
A0h/A1h takes IRQ 8-15 and drives the master's IR2 (the cascade).  The IDE
channels' INTRQ lines are IRQ 14 and 15, so they reach the CPU only through
the slave and the master's IR2, like every other line here.

The pair is the CPU's interrupt source (``pending`` = the INT pin,
``acknowledge`` = the INTA cycle) and never reaches into the CPU.
"""

from __future__ import annotations

from devices.bus import IrqLine, PortRange
from devices.state import apply, capture, part

CASCADE_IRQ = 2
"""The master input the slave's INT output drives."""


class Pic8259:
    """One 8259A: IRR, ISR and IMR, the ICW sequence and the OCWs."""

    def __init__(self, vector_base: int) -> None:
        self.vector_base = vector_base
        self.reset()

    def reset(self) -> None:
        """Power-on state: nothing requested, in service or masked."""
        self.irr = 0
        self.isr = 0
        self.imr = 0
        self.init_step = 0
        self.icw4_needed = False
        self.read_isr = False
        self.auto_eoi = False
        self.cascade = 0
        self.lines = 0
        """Current level of each IR input (for edge detection)."""

    STATE_FIELDS = ("vector_base", "irr", "isr", "imr", "init_step", "icw4_needed", "read_isr",
                    "auto_eoi", "cascade", "lines")
    """What :meth:`reset` sets (and ICW2's ``vector_base``): the chip's saved state."""

    def state(self) -> dict[str, object]:
        return capture(self, self.STATE_FIELDS)

    def load_state(self, state: dict[str, object]) -> None:
        apply(self, state, self.STATE_FIELDS)

    def highest(self) -> int | None:
        """The highest-priority unmasked request not blocked by one in service."""
        pending = self.irr & ~self.imr
        for n in range(8):
            bit = 1 << n
            if self.isr & bit:
                return None
            if pending & bit:
                return n
        return None

    def set_input(self, n: int, level: bool) -> None:
        """Drive IR input ``n``; a rising edge sets its IRR bit."""
        bit = 1 << n
        if level and not self.lines & bit:
            self.irr |= bit
        self.lines = (self.lines | bit) if level else (self.lines & ~bit)

    def take(self, n: int) -> None:
        """The INTA cycle for input ``n``: IRR → ISR (unless AEOI)."""
        self.irr &= ~(1 << n)
        if not self.auto_eoi:
            self.isr |= 1 << n

    def write(self, port_offset: int, value: int) -> None:
        """A write to the even (0) or odd (1) port."""
        value &= 0xFF
        if port_offset == 0:
            if value & 0x10:  # ICW1
                self.irr = 0
                self.isr = 0
                self.imr = 0
                self.read_isr = False
                self.icw4_needed = bool(value & 1)
                self.auto_eoi = False
                self.init_step = 2
            elif value & 0x08:  # OCW3
                if value & 0x02:
                    self.read_isr = bool(value & 1)
            else:  # OCW2
                command = value >> 5
                if command in (0b001, 0b101):  # non-specific EOI (and rotate: same here)
                    for n in range(8):
                        if self.isr & (1 << n):
                            self.isr &= ~(1 << n)
                            break
                elif command in (0b011, 0b111):  # specific EOI
                    self.isr &= ~(1 << (value & 7))
            return
        if self.init_step == 2:
            self.vector_base = value & 0xF8
            self.init_step = 3
        elif self.init_step == 3:
            self.cascade = value
            self.init_step = 4 if self.icw4_needed else 0
        elif self.init_step == 4:
            self.auto_eoi = bool(value & 0x02)
            self.init_step = 0
        else:
            self.imr = value

    def read(self, port_offset: int) -> int:
        """The even port reads IRR or ISR (per OCW3), the odd port the IMR."""
        if port_offset == 0:
            return self.isr if self.read_isr else self.irr
        return self.imr


class Pic8259Pair:
    """The AT's cascaded pair: master at 20h/21h (IRQ 0-7), slave at A0h/A1h on IRQ 2."""

    def __init__(self) -> None:
        self.master = Pic8259(0x08)
        self.slave = Pic8259(0x70)

    def state(self) -> dict[str, object]:
        """Both chips' state (the IRQ lines' levels are the board's)."""
        return {"master": self.master.state(), "slave": self.slave.state()}

    def load_state(self, state: dict[str, object]) -> None:
        self.master.load_state(part(state, "master"))
        self.slave.load_state(part(state, "slave"))

    def connect(self, lines: list[IrqLine]) -> None:
        """Listen to the 16 ISA IRQ lines (IRQ n → master IR n or slave IR n-8)."""
        for line in lines:
            line.listeners.append(self._line_changed)

    def _line_changed(self, number: int, level: bool) -> None:
        self.set_irq(number, level)

    def set_irq(self, irq: int, level: bool) -> None:
        """Drive ISA IRQ ``irq`` to ``level``."""
        if irq < 8:
            self.master.set_input(irq, level)
        else:
            self.slave.set_input(irq - 8, level)
            self._cascade_update()

    def _cascade_update(self) -> None:
        self.master.set_input(CASCADE_IRQ, self.slave.highest() is not None)

    def request(self, irq: int) -> None:
        """A pulse on ``irq`` (rising then falling edge): latch one request."""
        self.set_irq(irq, True)
        self.set_irq(irq, False)

    def pending(self) -> bool:
        """The CPU's INTR pin."""
        n = self.master.highest()
        if n is None:
            return False
        return n != CASCADE_IRQ or self.slave.highest() is not None

    def acknowledge(self) -> int:
        """The INTA cycle: the vector of the highest-priority request."""
        n = self.master.highest()
        if n is None:
            return self.master.vector_base | 7  # spurious IRQ 7
        self.master.take(n)
        if n != CASCADE_IRQ:
            return self.master.vector_base | n
        s = self.slave.highest()
        if s is None:
            vector = self.slave.vector_base | 7
        else:
            self.slave.take(s)
            vector = self.slave.vector_base | s
        self._cascade_update()
        return vector

    def eoi(self, irq: int) -> None:
        """What a BIOS handler's ``out 20h, 20h`` (and A0h for the slave) does."""
        if irq >= 8:
            self.slave.write(0, 0x20)
            self._cascade_update()
        self.master.write(0, 0x20)

    def _write_slave(self, port: int, width: int, value: int) -> None:
        self.slave.write(port - 0xA0, value)
        self._cascade_update()

    def port_ranges(self) -> list[PortRange]:
        """20h/21h and A0h/A1h."""
        return [
            PortRange(0x20, 2, lambda p, w: self.master.read(p - 0x20),
                      lambda p, w, v: self.master.write(p - 0x20, v), name="pic-master"),
            PortRange(0xA0, 2, lambda p, w: self.slave.read(p - 0xA0),
                      self._write_slave, name="pic-slave"),
        ]
