"""The MC146818 real-time clock and its CMOS RAM at ports 70h/71h.

Motorola MC146818A datasheet: 64 bytes (the AT's part, 128 on later
chipsets) behind an index register; bytes 00h-09h are the clock (seconds,
alarm seconds, minutes, alarm minutes, hours, alarm hours, day of week, day
of month, month, year), 0Ah-0Dh are status registers A-D (A bit 7 UIP, B bit
2 DM = binary, bit 1 24/12, C the interrupt flags, cleared by reading, D bit
7 VRT = valid RAM and time).  On the PC, bit 7 of a write to port 70h is the
NMI mask, not part of the index.

The IBM AT's CMOS layout (AT Technical Reference, with the common BIOS
extensions): 10h floppy types, 14h equipment, 15h/16h base memory in KiB,
17h/18h and 30h/31h extended memory above 1 MiB in KiB (capped at 65535),
32h century; QEMU's additions that SeaBIOS reads when there is no fw_cfg
memory map: 34h/35h memory above 16 MiB in 64 KiB units, 5Bh-5Dh memory
above 4 GiB, 5Fh number of CPUs minus one.

The clock is deterministic: a fixed date (:data:`RTC_EPOCH`) advanced by the
virtual clock's seconds, in BCD unless status B selects binary, 24-hour mode.
"""

from __future__ import annotations

import datetime
from typing import Protocol

from devices.bus import PortRange

RTC_EPOCH = datetime.datetime(2024, 1, 1, 0, 0, 0)
"""Virtual time zero: boots are deterministic, so the RTC starts at a fixed date."""
NMI_MASK = 0x80
"""Bit 7 of a port 70h write: NMI disabled while set."""
STATUS_A, STATUS_B, STATUS_C, STATUS_D = 0x0A, 0x0B, 0x0C, 0x0D
_CLOCK_FIELDS = (0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x32)


class Seconds(Protocol):
    """Anything with a ``seconds`` attribute: the virtual clock."""

    @property
    def seconds(self) -> float: ...


def _bcd(value: int) -> int:
    return ((value // 10) << 4) | (value % 10)


class Cmos:
    """MC146818 RTC and NVRAM: time = epoch + virtual time, and the PC's configuration bytes."""

    def __init__(self, clock: Seconds, memory_size: int, cpus: int = 1) -> None:
        self.clock = clock
        self.index = 0
        self.nmi_masked = False
        self.nvram = bytearray(128)
        self.nvram[STATUS_A] = 0x26  # 32.768 kHz time base, 1024 Hz rate
        self.nvram[STATUS_B] = 0x02  # 24-hour, BCD
        self.nvram[STATUS_D] = 0x80  # valid RAM and time
        self.nvram[0x10] = 0x00  # no floppy drives
        self.nvram[0x14] = 0x06  # equipment: VGA/EGA, FPU
        self.nvram[0x15], self.nvram[0x16] = 640 & 0xFF, 640 >> 8
        ext_kb = min(0xFFFF, max(0, memory_size - (1 << 20)) // 1024)
        self.nvram[0x17] = self.nvram[0x30] = ext_kb & 0xFF
        self.nvram[0x18] = self.nvram[0x31] = ext_kb >> 8
        above16 = min(0xFFFF, max(0, min(memory_size, 0xE000_0000) - (16 << 20)) >> 16)
        self.nvram[0x34] = above16 & 0xFF
        self.nvram[0x35] = (above16 >> 8) & 0xFF
        above4g = max(0, memory_size - (1 << 32)) >> 16
        self.nvram[0x5B:0x5E] = above4g.to_bytes(3, "little")
        self.nvram[0x5F] = max(0, cpus - 1)

    def now(self) -> datetime.datetime:
        """The RTC's current date and time."""
        return RTC_EPOCH + datetime.timedelta(seconds=self.clock.seconds)

    def read_register(self, index: int) -> int:
        """The value of CMOS byte ``index`` (clock fields computed, status C cleared by reading)."""
        index &= 0x7F
        if index in _CLOCK_FIELDS:
            t = self.now()
            value = {0x00: t.second, 0x02: t.minute, 0x04: t.hour,
                     0x06: t.isoweekday() % 7 + 1, 0x07: t.day, 0x08: t.month,
                     0x09: t.year % 100, 0x32: t.year // 100}[index]
            return value if self.nvram[STATUS_B] & 0x04 else _bcd(value)
        value = self.nvram[index]
        if index == STATUS_C:
            self.nvram[STATUS_C] = 0
        elif index == STATUS_A:
            value &= 0x7F  # never mid-update: the time is computed on read
        return value

    def write_register(self, index: int, value: int) -> None:
        """Store a configuration byte; clock fields and status C/D are read-only here."""
        index &= 0x7F
        if index in _CLOCK_FIELDS[:-1] or index in (STATUS_C, STATUS_D) or index < 0x0A:
            return
        self.nvram[index] = value & 0xFF

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
