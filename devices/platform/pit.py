"""The 8254 programmable interval timer, counting on a virtual clock.

Intel 8254 datasheet (order 231164): three 16-bit down-counters clocked at
1.193182 MHz; the control word at 43h selects a counter (SC1-SC0), its
read/write access (RW1-RW0: latch, LSB, MSB, LSB then MSB) and its mode
(M2-M0).  The PC wiring: counter 0's OUT drives IRQ 0 (mode 2 or 3, the
18.2 Hz BIOS tick with the full 65536 count), counter 2's GATE is bit 0 of
port 61h and its OUT reads back as bit 5 of port 61h (the speaker channel,
which firmware such as SeaBIOS and GRUB gate and poll to calibrate the TSC).

Time comes from a clock object (``instructions``, ``ips``, ``ns()``,
``nudge()``, ``add_timer()``) — the CPU's virtual clock — so every count
is a pure function of the guest's instruction count.  Counter 0 registers
itself as a timer on that clock and pulses its IRQ line at each terminal
count.  A polling read of a counter or of port 61h nudges the clock by one
microsecond, so a guest's busy-wait sees time pass even inside one CPU
slice.

Busy-wait fast-forward: firmware and loaders time delays and calibrate the CPU by
polling port 61h until counter 2's OUT (bit 5) changes — GRUB reads it ~55,000 times
to time 50 ms, iPXE ~250,000 times in its delays.  When a read of 61h follows another
read of 61h within :data:`POLL_WINDOW` instructions, with no PIT write between and OUT
unchanged, the guest is polling a timer that cannot change before virtual time
reaches its next OUT edge; the clock is moved to that edge (never past the next
timer deadline on the clock, so IRQ 0 and the other timers keep their order) and the
read returns the value it has then.  The guest sees exactly what a slower loop — one
whose iterations took longer — would see: the same values in the same order (bit 4
still toggles on every read), the same OUT edge at the same virtual time, fewer reads
of the unchanged value.
"""

from __future__ import annotations

from devices.bus import Clock, IrqLine, PortRange
from devices.state import StateError, apply, capture, part

PIT_HZ = 1_193_182
"""The 8254 input clock (14.31818 MHz / 12)."""
POLL_WINDOW_US = 10
"""Two reads of port 61h at most this many virtual microseconds apart are a busy-wait."""



class PitChannel:
    """One counter's programmed state."""

    def __init__(self) -> None:
        self.reload = 0x10000
        self.mode = 3
        self.access = 3  # LSB then MSB
        self.start = 0  # virtual ns at which counting (re)started
        self.write_low: int | None = None
        self.latched: int | None = None
        self.status_latched: int | None = None
        self.read_high = False
        self.gate = True

    STATE_FIELDS = ("reload", "mode", "access", "start", "write_low", "latched",
                    "status_latched", "read_high", "gate")
    """Everything :meth:`__init__` sets: the counter's saved state."""

    def state(self) -> dict[str, object]:
        """The saved state: :attr:`STATE_FIELDS` as plain data (devices/state.py)."""
        return capture(self, self.STATE_FIELDS)

    def load_state(self, state: dict[str, object]) -> None:
        apply(self, state, self.STATE_FIELDS)


class Pit8254:
    """Counters 0 and 2 of the 8254 on the virtual clock (counter 1, DRAM refresh, is inert)."""

    def __init__(self, clock: Clock, irq0: IrqLine) -> None:
        self.clock = clock
        self.irq0 = irq0
        self.channels = [PitChannel(), PitChannel(), PitChannel()]
        self.channels[2].gate = False
        self.port61 = 0
        self._refresh = 0
        self.deadline: int | None = None
        self.ticks = 0
        self.fast_forward = True
        """Skip a busy-wait on port 61h to counter 2's next OUT edge (module docstring)."""
        self.fast_forwards = 0
        self._poll_window = max(1, clock.ips * POLL_WINDOW_US // 1_000_000)
        self._last_poll: tuple[int, bool] | None = None  # (clock, OUT) at the last 61h read
        clock.add_timer(self)
        self._schedule()

    STATE_FIELDS = ("port61", "_refresh", "deadline", "ticks", "fast_forward", "fast_forwards",
                    "_last_poll")
    """The timer's own state besides the three counters (deadline: counter 0's next
    terminal count on the virtual clock)."""

    def state(self) -> dict[str, object]:
        state = capture(self, self.STATE_FIELDS)
        state["channels"] = [ch.state() for ch in self.channels]
        return state

    def load_state(self, state: dict[str, object]) -> None:
        channels = part(state, "channels")
        if not isinstance(channels, list) or len(channels) != len(self.channels):
            raise StateError("pit: expected three counters")
        apply(self, state, self.STATE_FIELDS)
        for ch, saved in zip(self.channels, channels, strict=True):
            ch.load_state(saved)

    # -- counter 0 as a clock timer ------------------------------------------------------
    def _period_instructions(self) -> int:
        return max(1, self.channels[0].reload * self.clock.ips // PIT_HZ)

    def _schedule(self) -> None:
        self.deadline = self.clock.instructions + self._period_instructions()

    def fire(self) -> None:
        """Terminal count of counter 0: a pulse on IRQ 0, then the next period."""
        self.ticks += 1
        self.irq0.raise_()
        self.irq0.lower()
        assert self.deadline is not None
        self.deadline += self._period_instructions()

    # -- counters ------------------------------------------------------------------------
    def _elapsed_ticks(self, ch: PitChannel) -> int:
        return (self.clock.ns() - ch.start) * PIT_HZ // 1_000_000_000

    def count(self, number: int) -> int:
        """Counter ``number``'s current count (as a latch command would capture it)."""
        return self._count(self.channels[number])

    def _count(self, ch: PitChannel) -> int:
        if not ch.gate:
            return ch.reload & 0xFFFF
        elapsed = self._elapsed_ticks(ch)
        if ch.mode == 0:
            return (ch.reload - elapsed) & 0xFFFF
        return (ch.reload - elapsed % ch.reload) & 0xFFFF

    def out(self, number: int) -> bool:
        """Counter ``number``'s OUT pin."""
        return self._out(self.channels[number])

    def _out(self, ch: PitChannel) -> bool:
        if not ch.gate:
            return ch.mode != 0
        elapsed = self._elapsed_ticks(ch)
        if ch.mode == 0:
            return elapsed >= ch.reload
        if ch.mode == 3:
            return elapsed % ch.reload < ch.reload // 2
        return True

    def _instructions_at_tick(self, ch: PitChannel, tick: int) -> int:
        """The first clock count at which ``tick`` input clocks have elapsed for ``ch``."""
        ns = ch.start + -(-tick * 1_000_000_000 // PIT_HZ)
        ips = self.clock.ips
        at = -(-ns * ips // 1_000_000_000)
        while (at * 1_000_000_000 // ips - ch.start) * PIT_HZ // 1_000_000_000 < tick:
            at += 1
        return at

    def _next_out_edge(self, ch: PitChannel) -> int | None:
        """The clock count of ``ch``'s next OUT change, if one is coming (8254 modes 0, 3)."""
        if not ch.gate:
            return None
        elapsed = self._elapsed_ticks(ch)
        if ch.mode == 0:
            return self._instructions_at_tick(ch, ch.reload) if elapsed < ch.reload else None
        if ch.mode == 3 and ch.reload >= 2:
            base = elapsed - elapsed % ch.reload
            phase = elapsed % ch.reload
            tick = base + (ch.reload // 2 if phase < ch.reload // 2 else ch.reload)
            return self._instructions_at_tick(ch, tick)
        return None

    def _skip_to_out_edge(self, ch: PitChannel, out: bool) -> bool:
        """A busy-wait on OUT: move the clock to its next edge (not past a timer deadline)."""
        edge = self._next_out_edge(ch)
        if edge is None:
            return out
        deadline = self.clock.next_deadline()
        if deadline is not None:
            edge = min(edge, deadline)
        if edge > self.clock.instructions:
            self.clock.advance_to(edge)
            self.fast_forwards += 1
        return self._out(ch)

    def _poll_nudge(self) -> None:
        # A polled timer must see time pass inside a slice: 1 us per access.
        self.clock.nudge(self.clock.ips // 1_000_000)

    def read(self, port: int, width: int) -> int:
        """Ports 40h-42h (counters), 43h (reads as floating) and 61h."""
        if port == 0x61:
            self._poll_nudge()
            self._refresh ^= 0x10
            ch = self.channels[2]
            out = self._out(ch)
            last = self._last_poll
            now = self.clock.instructions
            if (self.fast_forward and last is not None and last[1] == out
                    and now - last[0] <= self._poll_window):
                out = self._skip_to_out_edge(ch, out)
            self._last_poll = (self.clock.instructions, out)
            return (self.port61 & 0x0F) | self._refresh | (0x20 if out else 0)
        if port == 0x43:
            return 0xFF
        self._poll_nudge()
        ch = self.channels[port - 0x40]
        if ch.status_latched is not None:
            status, ch.status_latched = ch.status_latched, None
            return status
        value = ch.latched if ch.latched is not None else self._count(ch)
        if ch.access == 1:
            ch.latched = None
            return value & 0xFF
        if ch.access == 2:
            ch.latched = None
            return (value >> 8) & 0xFF
        if not ch.read_high:
            ch.read_high = True
            if ch.latched is None:
                ch.latched = value
            return value & 0xFF
        ch.read_high = False
        ch.latched = None
        return (value >> 8) & 0xFF

    def _read_back(self, value: int) -> None:
        # Read-back command (8254 datasheet): bit 5 clear = latch counts,
        # bit 4 clear = latch status; bits 3-1 select counters 2-0.
        for number in range(3):
            if not value & (2 << number):
                continue
            ch = self.channels[number]
            if not value & 0x20 and ch.latched is None:
                ch.latched = self._count(ch)
                ch.read_high = False
            if not value & 0x10 and ch.status_latched is None:
                ch.status_latched = ((0x80 if self._out(ch) else 0) | (ch.access << 4)
                                     | (ch.mode << 1))

    def write(self, port: int, width: int, value: int) -> None:
        """Ports 40h-42h (counts), 43h (control word) and 61h (gate, speaker)."""
        value &= 0xFF
        self._last_poll = None
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
                self._read_back(value)
                return
            ch = self.channels[sel]
            access = (value >> 4) & 3
            if access == 0:  # counter latch
                if ch.latched is None:
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
            ch.write_low = value
            return
        if ch.access == 3:
            reload = (ch.write_low or 0) | (value << 8)
            ch.write_low = None
        elif ch.access == 1:
            reload = value
        else:
            reload = value << 8
        ch.reload = reload or 0x10000
        ch.start = self.clock.ns()
        if ch is self.channels[0]:
            self._schedule()

    def port_ranges(self) -> list[PortRange]:
        """40h-43h and 61h."""
        return [PortRange(0x40, 4, self.read, self.write, name="pit"),
                PortRange(0x61, 1, self.read, self.write, name="port61")]
