"""The 8254 (platform/pit.py) on the virtual clock: IRQ 0, counter reads, channel 2 + port 61h."""

from __future__ import annotations

from devices.bus import IrqLine
from devices.platform.pit import PIT_HZ, Pit8254
from emu.pc.cpu import VirtualClock


def _pit() -> tuple[VirtualClock, IrqLine, Pit8254, list[bool]]:
    clock = VirtualClock(100_000_000)
    line = IrqLine(0)
    edges: list[bool] = []
    line.listeners.append(lambda n, level: edges.append(level))
    return clock, line, Pit8254(clock, line), edges


def test_channel0_fires_irq0_at_18_2_hz() -> None:
    clock, _, pit, edges = _pit()
    clock.instructions = clock.ips  # one virtual second
    clock.fire_due()
    assert pit.ticks == int(PIT_HZ / 65536)
    assert edges.count(True) == pit.ticks


def test_channel0_reprogrammed_period() -> None:
    clock, _, pit, _ = _pit()
    pit.write(0x43, 1, 0x34)  # counter 0, LSB/MSB, mode 2
    pit.write(0x40, 1, 0x9C)
    pit.write(0x40, 1, 0x2E)  # 11932: 100 Hz
    clock.instructions += clock.ips // 10
    clock.fire_due()
    assert pit.ticks in (9, 10)


def test_latch_and_read_counts_down() -> None:
    clock, _, pit, _ = _pit()
    pit.write(0x43, 1, 0x00)  # latch counter 0
    clock.instructions += clock.ips // 1000  # later reads still return the latch
    lo = pit.read(0x40, 1)
    hi = pit.read(0x40, 1)
    first = lo | hi << 8
    pit.write(0x43, 1, 0x00)
    second = pit.read(0x40, 1) | pit.read(0x40, 1) << 8
    assert first != second
    assert (first - second) % 0x10000 >= PIT_HZ // 1000 - 5


def test_channel2_gate_and_out_on_port61() -> None:
    """The calibration loop of firmware: mode 0 on counter 2, gate on, poll bit 5 of 61h."""
    clock, _, pit, _ = _pit()
    pit.write(0x61, 1, 0x00)
    pit.write(0x43, 1, 0xB0)  # counter 2, LSB/MSB, mode 0
    pit.write(0x42, 1, 0xFF)
    pit.write(0x42, 1, 0x0F)  # 4095 counts ≈ 3.4 ms
    pit.write(0x61, 1, 0x01)  # gate on
    assert not pit.read(0x61, 1) & 0x20
    polls = 0
    while not pit.read(0x61, 1) & 0x20:
        polls += 1
        assert polls < 10_000
    assert 3000 <= polls <= 3500  # each poll is one virtual microsecond
    assert pit.read(0x61, 1) & 0x01


def test_port61_refresh_toggles() -> None:
    _, _, pit, _ = _pit()
    assert (pit.read(0x61, 1) ^ pit.read(0x61, 1)) & 0x10


def test_read_back_status() -> None:
    _, _, pit, _ = _pit()
    pit.write(0x43, 1, 0xB0)
    pit.write(0x43, 1, 0xE8)  # read-back: status only, counter 2
    status = pit.read(0x42, 1)
    assert status & 0x3F == 0x30  # LSB/MSB, mode 0
