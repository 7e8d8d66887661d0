"""The MC146818 RTC/CMOS (platform/cmos.py): clock, status registers, memory size, CPUs, NMI."""

from __future__ import annotations

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
    assert not _read(cmos, 0x0A) & 0x80  # never update-in-progress
    assert _read(cmos, 0x0D) & 0x80  # valid RAM and time
    cmos.nvram[0x0C] = 0x90
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
