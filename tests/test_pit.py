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


def _calibration_poll(fast_forward: bool, body: int = 0) -> tuple[list[int], int, int]:
    """The calibration loop of firmware: mode 0 on counter 2 (4095 counts ≈ 3.4 ms),
    gate on, poll bit 5 of 61h (each iteration ``body`` instructions besides the read).
    Returns the values read, the clock when OUT went high and the clock at gate-on."""
    clock, _, pit, _ = _pit()
    pit.fast_forward = fast_forward
    pit.write(0x61, 1, 0x00)
    pit.write(0x43, 1, 0xB0)  # counter 2, LSB/MSB, mode 0
    pit.write(0x42, 1, 0xFF)
    pit.write(0x42, 1, 0x0F)
    pit.write(0x61, 1, 0x01)  # gate on
    started = clock.instructions
    values = [pit.read(0x61, 1)]
    while not values[-1] & 0x20:
        clock.nudge(body)
        values.append(pit.read(0x61, 1))
        assert len(values) < 10_000
    ended = clock.instructions
    assert pit.read(0x61, 1) & 0x01  # the gate bit reads back
    return values, ended, started


def test_channel2_gate_and_out_on_port61() -> None:
    values, _, _ = _calibration_poll(fast_forward=False)
    assert 3000 <= len(values) <= 3500  # each poll is one virtual microsecond


def test_a_busy_wait_on_port61_skips_to_the_out_edge_and_sees_what_a_slow_loop_sees() -> None:
    slow, slow_end, slow_start = _calibration_poll(fast_forward=False)
    fast, fast_end, fast_start = _calibration_poll(fast_forward=True, body=7)
    # Fewer reads of the unchanged value; the same kinds of values in the same order.
    assert len(fast) <= 3 < 3000 <= len(slow)
    assert [v & 0x2F for v in fast] == [v & 0x2F for v in slow[: len(fast) - 1]] + [slow[-1] & 0x2F]
    for seq in (fast, slow):  # the refresh bit toggles on every read, as before
        assert all((a ^ b) & 0x10 for a, b in zip(seq, seq[1:], strict=False))
    # OUT goes high at the same virtual time: 4095 ticks of 1.193182 MHz after gate-on,
    # so a CPU calibrated against this loop measures the same speed either way.
    expected = 4095 * 100_000_000 // 1_193_182
    assert abs((fast_end - fast_start) - expected) <= 2
    assert abs((slow_end - slow_start) - expected) <= 100  # one poll's nudge


def test_the_fast_forward_stops_at_the_next_timer_deadline() -> None:
    clock, _, pit, _ = _pit()
    pit.write(0x43, 1, 0x34)  # counter 0, LSB/MSB, mode 2: IRQ 0 every 1000 counts
    pit.write(0x40, 1, 0xE8)
    pit.write(0x40, 1, 0x03)
    pit.write(0x43, 1, 0xB0)
    pit.write(0x42, 1, 0xFF)
    pit.write(0x42, 1, 0xFF)  # 65535 counts ≈ 55 ms: far past IRQ 0's next tick
    pit.write(0x61, 1, 0x01)
    tick = pit.deadline
    assert tick is not None
    while not pit.read(0x61, 1) & 0x20:
        assert clock.instructions <= tick  # never skips over a timer's deadline
        if clock.instructions == tick:
            break
    assert clock.instructions == tick and pit.fast_forwards >= 1


def test_port61_refresh_toggles() -> None:
    _, _, pit, _ = _pit()
    assert (pit.read(0x61, 1) ^ pit.read(0x61, 1)) & 0x10


def test_read_back_status() -> None:
    _, _, pit, _ = _pit()
    pit.write(0x43, 1, 0xB0)
    pit.write(0x43, 1, 0xE8)  # read-back: status only, counter 2
    status = pit.read(0x42, 1)
    assert status & 0x3F == 0x30  # LSB/MSB, mode 0
