"""The legacy PC chipset pieces a BIOS and boot loaders touch, kept minimal.

* :class:`Pic8259Pair` — master/slave 8259A (Intel 8259A datasheet: ICW1-4,
  OCW1-3), edge-triggered, fully nested priority, non-specific and specific EOI.
* :class:`Pit8254` — channel 0 (IRQ 0, the 18.2 Hz BIOS tick) and channel 2
  (speaker gate and OUT on port 61h, which GRUB polls to calibrate the TSC),
  counting on the CPU's :class:`~emu.cpu.VirtualClock` (Intel 8254 datasheet,
  modes 0, 2 and 3).
* :class:`Cmos` — the MC146818 RTC/NVRAM at 70h/71h: a fixed, deterministic
  date advanced by virtual time, and the memory-size bytes.
* :class:`Uart16550` — COM1 at 3F8h: transmitted bytes are captured.
* :class:`DebugPorts` — port 80h (POST codes) and port E9h (the Bochs/QEMU
  debug console: bytes written there are captured text).
* :class:`SystemPorts` — port 92h (fast A20) and the 8042's 60h/64h as far as
  A20 gating goes (this PC has no A20 mask: memory never wraps).

None of these reach into the CPU: the PIC answers ``pending``/``acknowledge``
and the PIT raises its IRQ line.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

from devices.bus import IrqLine, PortRange
from emu.cpu import VirtualClock

PIT_HZ = 1_193_182
"""The 8254 input clock (14.31818 MHz / 12)."""
RTC_EPOCH = datetime.datetime(2024, 1, 1, 0, 0, 0)
"""Virtual time zero: boots are deterministic, so the RTC starts at a fixed date."""


class _Pic:
    """One 8259A."""

    def __init__(self, vector_base: int) -> None:
        self.vector_base = vector_base
        self.reset()

    def reset(self) -> None:
        self.irr = 0
        self.isr = 0
        self.imr = 0
        self.init_step = 0
        self.icw4_needed = False
        self.read_isr = False
        self.auto_eoi = False

    def highest(self) -> int | None:
        """The highest-priority unmasked request not blocked by one in service."""
        pending = self.irr & ~self.imr
        for n in range(8):
            if self.isr & (1 << n):
                return None
            if pending & (1 << n):
                return n
        return None

    def write(self, port_offset: int, value: int) -> None:
        if port_offset == 0:
            if value & 0x10:  # ICW1
                self.irr = self.isr = self.imr = 0
                self.icw4_needed = bool(value & 1)
                self.init_step = 2
            elif value & 0x08:  # OCW3
                if value & 0x02:
                    self.read_isr = bool(value & 1)
            else:  # OCW2
                command = value >> 5
                if command == 0b001:  # non-specific EOI
                    for n in range(8):
                        if self.isr & (1 << n):
                            self.isr &= ~(1 << n)
                            break
                elif command == 0b011:  # specific EOI
                    self.isr &= ~(1 << (value & 7))
            return
        if self.init_step == 2:
            self.vector_base = value & 0xF8
            self.init_step = 3
        elif self.init_step == 3:
            self.init_step = 4 if self.icw4_needed else 0
        elif self.init_step == 4:
            self.auto_eoi = bool(value & 0x02)
            self.init_step = 0
        else:
            self.imr = value

    def read(self, port_offset: int) -> int:
        if port_offset == 0:
            return self.isr if self.read_isr else self.irr
        return self.imr


class Pic8259Pair:
    """The AT's cascaded pair: master at 20h/21h (IRQ 0-7), slave at A0h/A1h on IRQ 2."""

    def __init__(self) -> None:
        self.master = _Pic(0x08)
        self.slave = _Pic(0x70)

    def connect(self, lines: list[IrqLine]) -> None:
        for line in lines:
            line.listeners.append(self._line_changed)

    def _line_changed(self, number: int, level: bool) -> None:
        if level:  # edge-triggered: a rising edge latches the request
            self.request(number)

    def request(self, irq: int) -> None:
        if irq < 8:
            self.master.irr |= 1 << irq
        else:
            self.slave.irr |= 1 << (irq - 8)
            self.master.irr |= 1 << 2

    def pending(self) -> bool:
        n = self.master.highest()
        if n is None:
            return False
        return n != 2 or self.slave.highest() is not None

    def acknowledge(self) -> int:
        n = self.master.highest()
        if n is None:
            return self.master.vector_base | 7  # spurious IRQ 7
        self.master.irr &= ~(1 << n)
        if not self.master.auto_eoi:
            self.master.isr |= 1 << n
        if n != 2:
            return self.master.vector_base | n
        s = self.slave.highest()
        if s is None:
            return self.slave.vector_base | 7
        self.slave.irr &= ~(1 << s)
        if not self.slave.auto_eoi:
            self.slave.isr |= 1 << s
        return self.slave.vector_base | s

    def eoi(self, irq: int) -> None:
        """What a BIOS handler's ``out 20h, 20h`` (and A0h for the slave) does."""
        if irq >= 8:
            self.slave.write(0, 0x20)
        self.master.write(0, 0x20)

    def port_ranges(self) -> list[PortRange]:
        return [
            PortRange(0x20, 2, lambda p, w: self.master.read(p - 0x20),
                      lambda p, w, v: self.master.write(p - 0x20, v), name="pic-master"),
            PortRange(0xA0, 2, lambda p, w: self.slave.read(p - 0xA0),
                      lambda p, w, v: self.slave.write(p - 0xA0, v), name="pic-slave"),
        ]


class _PitChannel:
    def __init__(self) -> None:
        self.reload = 0x10000
        self.mode = 3
        self.access = 3  # lobyte/hibyte
        self.start = 0  # virtual ns at which counting (re)started
        self.write_low: int | None = None
        self.latched: int | None = None
        self.read_high = False
        self.gate = True


class Pit8254:
    """Channels 0 and 2 of the 8254 on the virtual clock."""

    def __init__(self, clock: VirtualClock, irq0: IrqLine) -> None:
        self.clock = clock
        self.irq0 = irq0
        self.channels = [_PitChannel(), _PitChannel(), _PitChannel()]
        self.channels[2].gate = False
        self.port61 = 0
        self._refresh = 0
        self.deadline: int | None = None
        self.ticks = 0
        clock.add_timer(self)
        self._schedule()

    # -- channel 0 as a clock timer ----------------------------------------------------
    def _period_instructions(self) -> int:
        return max(1, self.channels[0].reload * self.clock.ips // PIT_HZ)

    def _schedule(self) -> None:
        self.deadline = self.clock.instructions + self._period_instructions()

    def fire(self) -> None:
        self.ticks += 1
        self.irq0.raise_()
        self.irq0.lower()
        assert self.deadline is not None
        self.deadline += self._period_instructions()

    # -- counters ------------------------------------------------------------------------
    def _elapsed_ticks(self, ch: _PitChannel) -> int:
        return (self.clock.ns() - ch.start) * PIT_HZ // 1_000_000_000

    def _count(self, ch: _PitChannel) -> int:
        if not ch.gate:
            return ch.reload & 0xFFFF
        elapsed = self._elapsed_ticks(ch)
        if ch.mode == 0:
            return (ch.reload - elapsed) & 0xFFFF
        return (ch.reload - elapsed % ch.reload) & 0xFFFF

    def _out(self, ch: _PitChannel) -> bool:
        if not ch.gate:
            return ch.mode != 0
        elapsed = self._elapsed_ticks(ch)
        if ch.mode == 0:
            return elapsed >= ch.reload
        if ch.mode == 3:
            return elapsed % ch.reload < ch.reload // 2
        return True

    def _poll_nudge(self) -> None:
        # A polled timer must see time pass inside a slice: 1 us per access.
        self.clock.nudge(self.clock.ips // 1_000_000)

    def read(self, port: int, width: int) -> int:
        if port == 0x61:
            self._poll_nudge()
            self._refresh ^= 0x10
            out = 0x20 if self._out(self.channels[2]) else 0
            return (self.port61 & 0x0F) | self._refresh | out
        if port == 0x43:
            return 0xFF
        self._poll_nudge()
        ch = self.channels[port - 0x40]
        value = ch.latched if ch.latched is not None else self._count(ch)
        if ch.access == 1:
            ch.latched = None
            return value & 0xFF
        if ch.access == 2:
            ch.latched = None
            return value >> 8
        if not ch.read_high:
            ch.read_high = True
            if ch.latched is None:
                ch.latched = value
            return value & 0xFF
        ch.read_high = False
        ch.latched = None
        return (value >> 8) & 0xFF

    def write(self, port: int, width: int, value: int) -> None:
        if port == 0x61:
            self.port61 = value & 0x0F
            ch = self.channels[2]
            gate = bool(value & 1)
            if gate and not ch.gate:
                ch.start = self.clock.ns()
            ch.gate = gate
            return
        if port == 0x43:
            sel = value >> 6
            if sel == 3:
                return  # read-back command: not modelled
            ch = self.channels[sel]
            access = (value >> 4) & 3
            if access == 0:  # counter latch
                ch.latched = self._count(ch)
                ch.read_high = False
                return
            ch.access = access
            ch.mode = (value >> 1) & 7
            if ch.mode > 5:
                ch.mode &= 3
            ch.write_low = None
            ch.read_high = False
            ch.latched = None
            return
        ch = self.channels[port - 0x40]
        if ch.access == 3 and ch.write_low is None:
            ch.write_low = value & 0xFF
            return
        if ch.access == 3:
            reload = ch.write_low | ((value & 0xFF) << 8)  # type: ignore[operator]
            ch.write_low = None
        elif ch.access == 1:
            reload = value & 0xFF
        else:
            reload = (value & 0xFF) << 8
        ch.reload = reload or 0x10000
        ch.start = self.clock.ns()
        if ch is self.channels[0]:
            self._schedule()

    def port_ranges(self) -> list[PortRange]:
        return [PortRange(0x40, 4, self.read, self.write, name="pit"),
                PortRange(0x61, 1, self.read, self.write, name="port61")]


def _bcd(value: int) -> int:
    return ((value // 10) << 4) | (value % 10)


class Cmos:
    """MC146818 RTC and NVRAM: BCD, 24-hour mode, time = epoch + virtual time."""

    def __init__(self, clock: VirtualClock, memory_size: int) -> None:
        self.clock = clock
        self.index = 0
        self.nvram = bytearray(128)
        self.nvram[0x0A] = 0x26
        self.nvram[0x0B] = 0x02
        self.nvram[0x0D] = 0x80
        self.nvram[0x10] = 0x00  # no floppy drives
        self.nvram[0x14] = 0x06  # display: VGA/EGA, FPU
        ext_kb = min(0xFFFF, max(0, memory_size - (1 << 20)) // 1024)
        self.nvram[0x17] = self.nvram[0x30] = ext_kb & 0xFF
        self.nvram[0x18] = self.nvram[0x31] = ext_kb >> 8
        above16 = max(0, memory_size - (16 << 20)) >> 16
        self.nvram[0x34] = above16 & 0xFF
        self.nvram[0x35] = (above16 >> 8) & 0xFF
        self.nvram[0x32] = 0x20  # century

    def now(self) -> datetime.datetime:
        return RTC_EPOCH + datetime.timedelta(seconds=self.clock.seconds)

    def read_register(self, index: int) -> int:
        t = self.now()
        rtc = {0x00: t.second, 0x02: t.minute, 0x04: t.hour, 0x06: t.isoweekday() % 7 + 1,
               0x07: t.day, 0x08: t.month, 0x09: t.year % 100, 0x32: t.year // 100}
        if index in rtc:
            return _bcd(rtc[index])
        return self.nvram[index & 0x7F]

    def read(self, port: int, width: int) -> int:
        return self.read_register(self.index) if port == 0x71 else 0xFF

    def write(self, port: int, width: int, value: int) -> None:
        if port == 0x70:
            self.index = value & 0x7F
        elif self.index >= 0x0E:
            self.nvram[self.index] = value & 0xFF

    def port_ranges(self) -> list[PortRange]:
        return [PortRange(0x70, 2, self.read, self.write, name="cmos")]


class Uart16550:
    """COM1 as far as a polled transmitter goes: THR empty always, bytes captured."""

    def __init__(self, base: int = 0x3F8, on_output: Callable[[bytes], None] | None = None
                 ) -> None:
        self.base = base
        self.regs = bytearray(8)
        self.dlab = False
        self.output = bytearray()
        self.on_output = on_output

    def transmit(self, byte: int) -> None:
        self.output.append(byte)
        if self.on_output is not None:
            self.on_output(bytes([byte]))

    def read(self, port: int, width: int) -> int:
        reg = port - self.base
        if reg == 5:
            return 0x60  # LSR: THR empty, transmitter idle, no data ready
        if reg == 6:
            return 0xB0  # MSR: DCD, DSR, CTS
        if reg == 0 and not self.dlab:
            return 0  # RBR: nothing received
        return self.regs[reg]

    def write(self, port: int, width: int, value: int) -> None:
        reg = port - self.base
        if reg == 0 and not self.dlab:
            self.transmit(value & 0xFF)
            return
        if reg == 3:
            self.dlab = bool(value & 0x80)
        self.regs[reg] = value & 0xFF

    def port_ranges(self) -> list[PortRange]:
        return [PortRange(self.base, 8, self.read, self.write, name="com1")]


class DebugPorts:
    """Port 80h (POST code latch) and port E9h (debug console)."""

    def __init__(self, on_output: Callable[[bytes], None] | None = None) -> None:
        self.post_codes: list[int] = []
        self.output = bytearray()
        self.on_output = on_output

    def read(self, port: int, width: int) -> int:
        if port == 0xE9:
            return 0xE9  # the "is the debug port there" probe answer
        return self.post_codes[-1] if self.post_codes else 0

    def write(self, port: int, width: int, value: int) -> None:
        if port == 0xE9:
            self.output.append(value & 0xFF)
            if self.on_output is not None:
                self.on_output(bytes([value & 0xFF]))
        else:
            self.post_codes.append(value & 0xFF)

    def port_ranges(self) -> list[PortRange]:
        return [PortRange(0x80, 1, self.read, self.write, name="post"),
                PortRange(0xE9, 1, self.read, self.write, name="debugcon")]


class SystemPorts:
    """Port 92h (system control A, fast A20) and the 8042 at 60h/64h.

    This PC never masks A20, so the gate bits are stored and reported only.
    The 8042 accepts the A20 command (D1h + data) and reports an empty,
    idle controller; there is no keyboard scan-code path (the BIOS INT 16h
    serves keys).
    """

    def __init__(self) -> None:
        self.port92 = 0x02
        self.kbc_command = 0
        self.output_port = 0x03

    def read(self, port: int, width: int) -> int:
        if port == 0x92:
            return self.port92
        if port == 0x64:
            return 0x14  # system flag, last write was a command, buffers empty
        return 0x00

    def write(self, port: int, width: int, value: int) -> None:
        if port == 0x92:
            self.port92 = (value & 0xFE) | 0x02
        elif port == 0x64:
            self.kbc_command = value & 0xFF
        elif port == 0x60 and self.kbc_command == 0xD1:
            self.output_port = value & 0xFF
            self.kbc_command = 0

    def port_ranges(self) -> list[PortRange]:
        return [PortRange(0x92, 1, self.read, self.write, name="port92"),
                PortRange(0x60, 1, self.read, self.write, name="kbc-data"),
                PortRange(0x64, 1, self.read, self.write, name="kbc-status")]
