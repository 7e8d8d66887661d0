"""The MC146818 real-time clock and its CMOS RAM at ports 70h/71h, IRQ 8.

Motorola MC146818A datasheet: 64 bytes (the AT's part, 128 on later
chipsets) behind an index register; bytes 00h-09h are the clock (seconds,
alarm seconds, minutes, alarm minutes, hours, alarm hours, day of week, day
of month, month, year), 0Ah-0Dh are the status registers:

* A: bit 7 UIP (update in progress), bits 6-4 DV (010b = 32.768 kHz time
  base, running), bits 3-0 RS (periodic interrupt rate: 1 = 256 Hz, 2 =
  128 Hz, n >= 3: 65536 >> n Hz, so 6 = 1024 Hz; 0 = none).
* B: bit 7 SET (updates inhibited), 6 PIE, 5 AIE, 4 UIE (interrupt
  enables), 3 SQWE, 2 DM (1 = binary), 1 24/12 (1 = 24-hour), 0 DSE.
* C (read-only, cleared by reading): bit 7 IRQF = (PF and PIE) or (AF and
  AIE) or (UF and UIE), 6 PF periodic, 5 AF alarm, 4 UF update-ended.  The
  flags are set whether or not their interrupt is enabled; IRQF drives the
  IRQ pin (ISA IRQ 8 on the AT) until C is read.
* D: bit 7 VRT (valid RAM and time).

Timing ("Update cycle" section): once a second the time registers advance
during an update cycle of 1984 us, and UIP rises 244 us before the cycle
starts, so a program that sees UIP = 0 has at least 244 us to read a
consistent time.  Here the new second becomes visible at each whole second
of virtual time, so UIP reads 1 during the 2228 us before it; at that
instant UF is set, and AF too when the new time matches the alarm bytes (a
value of C0h-FFh in an alarm byte matches any).  With SET = 1 there are no
updates: UIP reads 0 and UF does not rise.  The periodic flag rises every
period of the RS rate.

The IBM AT's CMOS layout (AT Technical Reference, with the common BIOS
extensions): 10h floppy types, 14h equipment, 15h/16h base memory in KiB,
17h/18h and 30h/31h extended memory above 1 MiB in KiB (capped at 65535),
32h century; QEMU's additions that SeaBIOS reads when there is no fw_cfg
memory map: 34h/35h RAM between 16 MiB and the PCI hole in 64 KiB units,
5Bh-5Dh RAM above 4 GiB in 64 KiB units, 5Fh number of CPUs minus one.

The clock is deterministic: a fixed date (:data:`RTC_EPOCH`) advanced by the
virtual clock, plus whatever offset the guest sets by writing the time
registers; BCD unless status B selects binary; 24- or 12-hour (bit 7 = PM).
"""

from __future__ import annotations

import datetime

from devices.bus import Clock, IrqLine, PortRange
from devices.state import apply, capture

RTC_EPOCH = datetime.datetime(2024, 1, 1, 0, 0, 0)
"""Virtual time zero: boots are deterministic, so the RTC starts at a fixed date."""
NMI_MASK = 0x80
"""Bit 7 of a port 70h write: NMI disabled while set."""
RTC_IRQ = 8
STATUS_A, STATUS_B, STATUS_C, STATUS_D = 0x0A, 0x0B, 0x0C, 0x0D
SECONDS, ALARM_SECONDS, MINUTES, ALARM_MINUTES, HOURS, ALARM_HOURS = 0, 1, 2, 3, 4, 5
WEEKDAY, DAY, MONTH, YEAR, CENTURY = 6, 7, 8, 9, 0x32
_CLOCK_FIELDS = (SECONDS, MINUTES, HOURS, WEEKDAY, DAY, MONTH, YEAR, CENTURY)

A_UIP, A_DV_MASK, A_DV_RUNNING, A_RS_MASK = 0x80, 0x70, 0x20, 0x0F
B_SET, B_PIE, B_AIE, B_UIE, B_DM_BINARY, B_24H = 0x80, 0x40, 0x20, 0x10, 0x04, 0x02
C_IRQF, C_PF, C_AF, C_UF = 0x80, 0x40, 0x20, 0x10
D_VRT = 0x80

SECOND_NS = 1_000_000_000
UIP_LEAD_NS = (244 + 1984) * 1000
"""UIP is set this long before each second's new time becomes visible (tBUC + tUC)."""
ALARM_DONT_CARE = 0xC0
"""An alarm byte of C0h-FFh matches every value."""
_MAX_ALARM_CHECKS = 86_400
"""Seconds checked for an alarm match between two reads: a day covers every pattern."""

# Extended memory fields (IBM AT, and the fields SeaBIOS reads beyond it)
BASE_MEMORY_KB = (0x15, 0x16)
EXT_MEMORY_KB = (0x17, 0x18, 0x30, 0x31)
MEMORY_ABOVE_16M = 0x34
"""34h/35h: RAM from 16 MiB to the PCI hole, in 64 KiB units."""
MEMORY_ABOVE_4G = 0x5B
"""5Bh-5Dh: RAM above 4 GiB, in 64 KiB units (24 bits)."""
CPU_COUNT_MINUS_ONE = 0x5F
LOW_RAM_LIMIT, PCI_HOLE_START = 0xE000_0000, 0xC000_0000
"""The default split (the board's): RAM up to 3.5 GiB sits below 4 GiB; more keeps 3 GiB
below the PCI hole and the rest above 4 GiB."""



def _bcd(value: int) -> int:
    return ((value // 10) << 4) | (value % 10)


def _from_bcd(value: int) -> int:
    return (value >> 4) * 10 + (value & 0x0F)


def periodic_ns(status_a: int) -> int | None:
    """The periodic interrupt period for status A's RS bits (datasheet Table 5), or None."""
    rs = status_a & A_RS_MASK
    if rs == 0:
        return None
    hz = {1: 256, 2: 128}.get(rs, 65536 >> rs)
    return SECOND_NS // hz


class Cmos:
    """MC146818 RTC and NVRAM: time = epoch + virtual time, IRQ 8 flags, the PC's config bytes.

    ``irq`` (ISA IRQ 8) is optional; with it, the chip registers itself as a timer on
    ``clock`` so a periodic, update-ended or alarm interrupt arrives on time.
    ``ram_below_4g`` is how much of the board's RAM sits below the PCI hole (by default
    the split of :data:`LOW_RAM_LIMIT` / :data:`PCI_HOLE_START`); the rest is above 4 GiB.
    """

    def __init__(self, clock: Clock, memory_size: int, cpus: int = 1,
                 irq: IrqLine | None = None, ram_below_4g: int | None = None) -> None:
        self.clock = clock
        self.irq = irq
        self.index = 0
        self.nmi_masked = False
        self.nvram = bytearray(128)
        self.offset_s = 0
        """Seconds the guest moved the clock by writing the time registers."""
        self.flags = 0
        """Status C's PF/AF/UF as of :attr:`_seen_ns`."""
        self._seen_ns = clock.ns()
        self.deadline: int | None = None
        self.nvram[STATUS_A] = A_DV_RUNNING | 0x06  # 32.768 kHz time base, 1024 Hz rate
        self.nvram[STATUS_B] = B_24H  # 24-hour, BCD, no interrupts
        self.nvram[STATUS_D] = D_VRT
        self.nvram[ALARM_SECONDS] = self.nvram[ALARM_MINUTES] = self.nvram[ALARM_HOURS] = 0
        self.nvram[0x10] = 0x00  # no floppy drives
        self.nvram[0x14] = 0x06  # equipment: VGA/EGA, FPU
        self._set_memory(memory_size, ram_below_4g)
        self.nvram[CPU_COUNT_MINUS_ONE] = max(0, cpus - 1)
        if irq is not None:
            clock.add_timer(self)

    STATE_FIELDS = ("index", "nmi_masked", "nvram", "offset_s", "flags", "_seen_ns", "deadline")
    """The chip's saved state; time itself is the board's clock."""

    def state(self) -> dict[str, object]:
        """The saved state: :attr:`STATE_FIELDS` as plain data (devices/state.py)."""
        return capture(self, self.STATE_FIELDS)

    def load_state(self, state: dict[str, object]) -> None:
        apply(self, state, self.STATE_FIELDS)

    def _set_memory(self, memory_size: int, ram_below_4g: int | None) -> None:
        if ram_below_4g is None:
            ram_below_4g = memory_size if memory_size <= LOW_RAM_LIMIT else PCI_HOLE_START
        low = ram_below_4g
        low = max(0, min(low, memory_size))
        self.nvram[BASE_MEMORY_KB[0]], self.nvram[BASE_MEMORY_KB[1]] = 640 & 0xFF, 640 >> 8
        ext_kb = min(0xFFFF, max(0, low - (1 << 20)) // 1024)
        for i, index in enumerate(EXT_MEMORY_KB):
            self.nvram[index] = (ext_kb >> (8 * (i & 1))) & 0xFF
        above16 = min(0xFFFF, max(0, low - (16 << 20)) >> 16)
        self.nvram[MEMORY_ABOVE_16M:MEMORY_ABOVE_16M + 2] = above16.to_bytes(2, "little")
        above4g = min(0xFF_FFFF, max(0, memory_size - low) >> 16)
        self.nvram[MEMORY_ABOVE_4G:MEMORY_ABOVE_4G + 3] = above4g.to_bytes(3, "little")

    # -- time ------------------------------------------------------------------------------
    def _seconds(self, ns: int) -> int:
        return ns // SECOND_NS + self.offset_s

    def now(self) -> datetime.datetime:
        """The RTC's current date and time."""
        return RTC_EPOCH + datetime.timedelta(seconds=self._seconds(self.clock.ns()))

    def _updating(self) -> bool:
        a, b = self.nvram[STATUS_A], self.nvram[STATUS_B]
        return not b & B_SET and a & A_DV_MASK == A_DV_RUNNING

    def update_in_progress(self) -> bool:
        """Status A bit 7 now: within 2228 us before the next second."""
        return self._updating() and self.clock.ns() % SECOND_NS >= SECOND_NS - UIP_LEAD_NS

    def _encode(self, value: int) -> int:
        return value if self.nvram[STATUS_B] & B_DM_BINARY else _bcd(value)

    def _decode(self, value: int) -> int:
        return value if self.nvram[STATUS_B] & B_DM_BINARY else _from_bcd(value & 0x7F)

    def _encode_hour(self, hour: int) -> int:
        if self.nvram[STATUS_B] & B_24H:
            return self._encode(hour)
        return self._encode(hour % 12 or 12) | (0x80 if hour >= 12 else 0)

    def _decode_hour(self, value: int) -> int:
        if self.nvram[STATUS_B] & B_24H:
            return self._decode(value)
        return self._decode(value & 0x7F) % 12 + (12 if value & 0x80 else 0)

    def _field(self, t: datetime.datetime, index: int) -> int:
        if index == HOURS:
            return self._encode_hour(t.hour)
        value = {SECONDS: t.second, MINUTES: t.minute, WEEKDAY: t.isoweekday() % 7 + 1,
                 DAY: t.day, MONTH: t.month, YEAR: t.year % 100, CENTURY: t.year // 100}[index]
        return self._encode(value)

    def _set_field(self, index: int, value: int) -> None:
        """The guest sets one time field: the clock moves by the difference."""
        t = self.now()
        try:
            if index == HOURS:
                new = t.replace(hour=self._decode_hour(value))
            elif index == WEEKDAY:
                return  # derived from the date here
            else:
                v = self._decode(value)
                new = {SECONDS: lambda: t.replace(second=v), MINUTES: lambda: t.replace(minute=v),
                       DAY: lambda: t.replace(day=v), MONTH: lambda: t.replace(month=v),
                       YEAR: lambda: t.replace(year=t.year // 100 * 100 + v),
                       CENTURY: lambda: t.replace(year=v * 100 + t.year % 100)}[index]()
        except ValueError:
            return  # an impossible date (day 31 in a short month...): the clock keeps its time
        self.offset_s += int((new - t).total_seconds())

    def _alarm_matches(self, seconds: int) -> bool:
        t = RTC_EPOCH + datetime.timedelta(seconds=seconds)
        for alarm, value in ((ALARM_SECONDS, self._encode(t.second)),
                             (ALARM_MINUTES, self._encode(t.minute)),
                             (ALARM_HOURS, self._encode_hour(t.hour))):
            byte = self.nvram[alarm]
            if byte & ALARM_DONT_CARE != ALARM_DONT_CARE and byte != value:
                return False
        return True

    # -- interrupt flags ---------------------------------------------------------------------
    def _advance(self) -> None:
        """Set the flags for every event between the last look and now."""
        now = self.clock.ns()
        seen, self._seen_ns = self._seen_ns, max(self._seen_ns, now)
        if now <= seen:
            return
        period = periodic_ns(self.nvram[STATUS_A])
        if period is not None and now // period > seen // period:
            self.flags |= C_PF
        if not self._updating():
            return
        first, last = seen // SECOND_NS + 1, now // SECOND_NS
        if last < first:
            return
        self.flags |= C_UF
        if not self.flags & C_AF:
            for second in range(max(first, last - _MAX_ALARM_CHECKS + 1), last + 1):
                if self._alarm_matches(second + self.offset_s):
                    self.flags |= C_AF
                    break

    def _irqf(self) -> bool:
        b = self.nvram[STATUS_B]
        return bool(self.flags & (b & (B_PIE | B_AIE | B_UIE)))  # PF/AF/UF line up with enables

    def _update_irq(self) -> None:
        """Drive IRQ 8 from IRQF and schedule the next event that could raise it."""
        level = self._irqf()
        if self.irq is not None:
            self.irq.set_level(level)
        self.deadline = None if level or self.irq is None else self._next_event()

    def _next_event(self) -> int | None:
        """Instruction count of the next enabled event, for the clock's timer list."""
        b = self.nvram[STATUS_B]
        seen = self._seen_ns
        times = []
        period = periodic_ns(self.nvram[STATUS_A])
        if b & B_PIE and period is not None:
            times.append((seen // period + 1) * period)
        if b & (B_UIE | B_AIE) and self._updating():
            times.append((seen // SECOND_NS + 1) * SECOND_NS)
        if not times:
            return None
        ips = self.clock.ips
        return -(-min(times) * ips // SECOND_NS)  # ceil: the event has happened by then

    def fire(self) -> None:
        """Timer callback: account for the events up to now and raise IRQ 8 if enabled."""
        self._advance()
        self._update_irq()
        if self.deadline is not None and self.deadline <= self.clock.instructions:
            self.deadline = self.clock.instructions + 1  # never fire twice at one instant

    # -- registers ---------------------------------------------------------------------------
    def read_register(self, index: int) -> int:
        """The value of CMOS byte ``index`` (clock fields computed, status C cleared by reading)."""
        index &= 0x7F
        if index in _CLOCK_FIELDS:
            return self._field(self.now(), index)
        if index == STATUS_A:
            self._poll_nudge()
            uip = A_UIP if self.update_in_progress() else 0
            return (self.nvram[STATUS_A] & 0x7F) | uip
        if index == STATUS_C:
            self._advance()
            value = self.flags | (C_IRQF if self._irqf() else 0)
            self.flags = 0
            self._update_irq()
            return value
        return self.nvram[index]

    def _poll_nudge(self) -> None:
        # A guest waiting for UIP to fall polls status A: let it see time pass inside a slice.
        self.clock.nudge(self.clock.ips // 1_000_000)

    def write_register(self, index: int, value: int) -> None:
        """Store a byte; time fields move the clock; status C and D are read-only."""
        index &= 0x7F
        value &= 0xFF
        if index in _CLOCK_FIELDS:
            self._set_field(index, value)
        elif index in (STATUS_A, STATUS_B):
            self._advance()  # flags up to now follow the old rate and enables
            self.nvram[index] = (value & 0x7F) if index == STATUS_A else value
            self._update_irq()
        elif index not in (STATUS_C, STATUS_D):
            self.nvram[index] = value

    def read(self, port: int, width: int) -> int:
        """Port 71h reads the indexed byte; port 70h (write-only on the AT) floats."""
        return self.read_register(self.index) if port == 0x71 else 0xFF

    def write(self, port: int, width: int, value: int) -> None:
        """Port 70h: index and NMI mask; port 71h: data."""
        if port == 0x70:
            self.index = value & 0x7F
            self.nmi_masked = bool(value & NMI_MASK)
        else:
            self.write_register(self.index, value)

    def port_ranges(self) -> list[PortRange]:
        """70h-71h."""
        return [PortRange(0x70, 2, self.read, self.write, name="cmos")]
