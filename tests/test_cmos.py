"""The MC146818 RTC/CMOS (platform/cmos.py): clock, status registers, memory size, CPUs, NMI."""

from __future__ import annotations

from devices.bus import IrqLine
from devices.platform.cmos import NMI_MASK, Cmos
from emu.pc.cpu import VirtualClock


def _read(cmos: Cmos, index: int) -> int:
    cmos.write(0x70, 1, index | NMI_MASK)
    return cmos.read(0x71, 1)


def test_memory_size_bytes_and_one_cpu() -> None:
    cmos = Cmos(VirtualClock(), 64 << 20)
    assert _read(cmos, 0x15) | _read(cmos, 0x16) << 8 == 640
    assert _read(cmos, 0x30) | _read(cmos, 0x31) << 8 == 63 * 1024
    assert _read(cmos, 0x17) | _read(cmos, 0x18) << 8 == 63 * 1024
    assert (_read(cmos, 0x34) | _read(cmos, 0x35) << 8) << 16 == 48 << 20
    assert _read(cmos, 0x5B) == _read(cmos, 0x5C) == _read(cmos, 0x5D) == 0
    assert _read(cmos, 0x5F) == 0


def test_clock_is_bcd_and_advances_with_virtual_time() -> None:
    clock = VirtualClock(100)
    cmos = Cmos(clock, 16 << 20)
    assert _read(cmos, 0x09) == 0x24 and _read(cmos, 0x32) == 0x20
    assert _read(cmos, 0x08) == 0x01 and _read(cmos, 0x07) == 0x01
    clock.instructions = 100 * 75  # 75 s
    assert _read(cmos, 0x00) == 0x15 and _read(cmos, 0x02) == 0x01


def test_binary_mode_from_status_b() -> None:
    clock = VirtualClock(100)
    cmos = Cmos(clock, 16 << 20)
    clock.instructions = 100 * 59
    cmos.write(0x70, 1, 0x0B)
    cmos.write(0x71, 1, 0x06)
    assert _read(cmos, 0x00) == 59


def test_status_registers() -> None:
    cmos = Cmos(VirtualClock(), 16 << 20)
    assert _read(cmos, 0x0A) == 0x26  # not updating at t = 0; 32.768 kHz, 1024 Hz
    assert _read(cmos, 0x0D) & 0x80  # valid RAM and time
    cmos.flags = 0x10
    cmos.write(0x70, 1, 0x0B)
    cmos.write(0x71, 1, 0x12)  # UIE
    assert _read(cmos, 0x0C) == 0x90 and _read(cmos, 0x0C) == 0  # read clears
    cmos.write(0x70, 1, 0x0D)
    cmos.write(0x71, 1, 0x00)
    assert _read(cmos, 0x0D) == 0x80  # read-only


def test_nmi_mask_bit_is_not_part_of_the_index() -> None:
    cmos = Cmos(VirtualClock(), 16 << 20)
    cmos.write(0x70, 1, 0x8F)
    assert cmos.nmi_masked and cmos.index == 0x0F
    cmos.write(0x71, 1, 0x5A)
    cmos.write(0x70, 1, 0x0F)
    assert not cmos.nmi_masked and cmos.read(0x71, 1) == 0x5A


def test_more_cpus() -> None:
    assert _read(Cmos(VirtualClock(), 16 << 20, cpus=4), 0x5F) == 3


# -- MC146818A timing, interrupt flags and IRQ 8 --------------------------------------------
MHZ = 1_000_000  # one instruction per microsecond: instruction counts read as microseconds


def _write(cmos: Cmos, index: int, value: int) -> None:
    cmos.write(0x70, 1, index)
    cmos.write(0x71, 1, value)


def test_uip_is_set_2228_us_before_each_second_and_only_then() -> None:
    clock = VirtualClock(MHZ)
    cmos = Cmos(clock, 16 << 20)
    cmos.clock.nudge = lambda n: None  # type: ignore[method-assign]  # look without moving
    for us, uip in ((0, False), (500_000, False), (997_771, False), (997_772, True),
                    (999_999, True), (1_000_000, False), (1_997_800, True)):
        clock.instructions = us
        assert bool(_read(cmos, 0x0A) & 0x80) == uip, us
    clock.instructions = 999_000
    _write(cmos, 0x0B, 0x82)  # SET: updates inhibited, UIP reads 0
    assert not _read(cmos, 0x0A) & 0x80


def test_polling_status_a_lets_time_pass_so_uip_falls() -> None:
    clock = VirtualClock(MHZ)
    cmos = Cmos(clock, 16 << 20)
    clock.instructions = 998_000
    polls = 0
    while _read(cmos, 0x0A) & 0x80:
        polls += 1
    assert 0 < polls < 2228 and _read(cmos, 0x00) == 0x01


def test_update_ended_flag_and_irq8_on_the_virtual_clock() -> None:
    clock = VirtualClock(MHZ)
    irq = IrqLine(8)
    cmos = Cmos(clock, 16 << 20, irq=irq)
    assert cmos.deadline is None  # no interrupt enabled: no timer event
    _write(cmos, 0x0B, 0x12)  # UIE, 24-hour
    assert cmos.deadline == 1_000_000
    clock.instructions = 999_999
    clock.fire_due()
    assert not irq.level
    clock.instructions = 1_000_000
    clock.fire_due()
    assert irq.level and cmos.deadline is None
    assert _read(cmos, 0x0C) == 0xD0  # IRQF | PF (1024 Hz, not enabled) | UF
    assert not irq.level and cmos.deadline == 2_000_000
    assert _read(cmos, 0x0C) == 0x00


def test_flags_rise_without_their_enable_but_irqf_does_not() -> None:
    clock = VirtualClock(MHZ)
    irq = IrqLine(8)
    cmos = Cmos(clock, 16 << 20, irq=irq)
    clock.instructions = 3_000_000
    assert _read(cmos, 0x0C) == 0x50  # PF (1024 Hz) and UF, no IRQF
    assert not irq.level


def test_periodic_interrupt_rate_from_status_a() -> None:
    clock = VirtualClock(MHZ)
    irq = IrqLine(8)
    cmos = Cmos(clock, 16 << 20, irq=irq)
    _write(cmos, 0x0A, 0x2F)  # RS = 15: 2 Hz
    _write(cmos, 0x0B, 0x42)  # PIE
    assert cmos.deadline == 500_000
    clock.instructions = 500_000
    clock.fire_due()
    assert irq.level and _read(cmos, 0x0C) == 0xC0
    _write(cmos, 0x0A, 0x23)  # RS = 3: 8192 Hz, 122.07 us
    assert cmos.deadline == 500_121  # periods count from time 0: 4097 x 122.07 us
    _write(cmos, 0x0A, 0x20)  # RS = 0: no periodic interrupt
    assert cmos.deadline is None


def test_alarm_with_dont_care_bytes() -> None:
    clock = VirtualClock(MHZ)
    irq = IrqLine(8)
    cmos = Cmos(clock, 16 << 20, irq=irq)
    _write(cmos, 0x01, 0x30)  # alarm at hh:mm:30 (BCD)
    _write(cmos, 0x03, 0xC0)  # any minute
    _write(cmos, 0x05, 0xFF)  # any hour
    _write(cmos, 0x0B, 0x22)  # AIE
    clock.instructions = 29_000_000
    clock.fire_due()
    assert not irq.level
    clock.instructions = 30_000_000
    clock.fire_due()
    assert irq.level and _read(cmos, 0x0C) == 0xF0  # IRQF | PF | AF | UF


def test_guest_sets_the_time_and_12_hour_mode() -> None:
    clock = VirtualClock(MHZ)
    cmos = Cmos(clock, 16 << 20)
    _write(cmos, 0x0B, 0x82)  # SET while writing
    _write(cmos, 0x04, 0x15)
    _write(cmos, 0x02, 0x42)
    _write(cmos, 0x09, 0x25)
    _write(cmos, 0x0B, 0x02)
    assert (_read(cmos, 0x04), _read(cmos, 0x02), _read(cmos, 0x09)) == (0x15, 0x42, 0x25)
    clock.instructions = 60_000_000
    assert _read(cmos, 0x02) == 0x43
    _write(cmos, 0x0B, 0x00)  # 12-hour BCD
    assert _read(cmos, 0x04) == 0x83  # 3 PM
    _write(cmos, 0x07, 0x31)  # 31 January; then February 31 does not exist: ignored
    _write(cmos, 0x08, 0x02)
    assert _read(cmos, 0x07) == 0x31 and _read(cmos, 0x08) == 0x01


def test_memory_fields_for_512m_and_above_4g() -> None:
    cmos = Cmos(VirtualClock(), 512 << 20)
    assert (_read(cmos, 0x34) | _read(cmos, 0x35) << 8) == (512 - 16) << 4
    assert _read(cmos, 0x30) | _read(cmos, 0x31) << 8 == 0xFFFF
    big = Cmos(VirtualClock(), 6 << 30, ram_below_4g=3 << 30)
    assert (_read(big, 0x34) | _read(big, 0x35) << 8) << 16 == (3 << 30) - (16 << 20)
    above = _read(big, 0x5B) | _read(big, 0x5C) << 8 | _read(big, 0x5D) << 16
    assert above << 16 == 3 << 30  # 6 GiB - 3 GiB below the hole
    default = Cmos(VirtualClock(), 5 << 30)
    above = _read(default, 0x5B) | _read(default, 0x5C) << 8 | _read(default, 0x5D) << 16
    assert above << 16 == (5 << 30) - (3 << 30)  # the board's split: 3 GiB below the hole
    assert (_read(default, 0x34) | _read(default, 0x35) << 8) << 16 == (3 << 30) - (16 << 20)
