"""The optional speed model (devices/timing.py): virtual time, never wall-clock.

Expected durations are worked out by hand from the rates: 1× DVD moves
1,385,000 bytes/s, 1× CD 176,400 bytes/s; seek = 20 ms + 130 ms × distance /
capacity unless the read continues where the previous one ended.
"""

from __future__ import annotations

import time

import pytest

from devices.timing import CD_1X, DVD_1X, SpeedModel, TimedMedium, VirtualClock, attach_speed_model
from emu.firmware.ata import AtaHostDriver
from tests.conftest import expected

MS = 1_000_000


@pytest.fixture(autouse=True)
def no_sleeping(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(seconds: float) -> None:
        raise AssertionError("the speed model must never sleep")

    monkeypatch.setattr(time, "sleep", refuse)


def test_rates_are_the_1x_figures():
    assert DVD_1X == 1_385_000
    assert CD_1X == 75 * 2352
    assert SpeedModel(speed=16).rate == 22_160_000


def test_transfer_time_at_1x_and_16x():
    one = SpeedModel(speed=1)
    assert one.transfer_ns(1_385_000) == 1_000 * MS  # exactly one second of 1x DVD
    # 2048 bytes at 1x: 2048 / 1,385,000 s = 1,478,700.36 ns
    assert one.transfer_ns(2048) == 1_478_700
    # 16 sectors at 16x is the same time as one sector at 1x.
    assert SpeedModel(speed=16).transfer_ns(16 * 2048) == 1_478_700
    # 1x CD: 2048 / 176,400 s = 11,609,977.3 ns
    assert SpeedModel(speed=1, base_rate=CD_1X).transfer_ns(2048) == 11_609_977


def test_seek_is_free_only_for_sequential_reads():
    model = SpeedModel(speed=4)
    # First read at LBA 100 of 1000: head position unknown, counted from 0:
    # 20 ms + 130 ms * 100/1000 = 33 ms; 8 KiB at 4x = 8192/5,540,000 s = 1,478,700.36 ns
    assert model.read(100, 4, capacity=1000) == 33 * MS + 1_478_700
    assert model.next_lba == 104
    assert model.read(104, 4, capacity=1000) == 1_478_700  # sequential: no seek
    # Back to 4 from 108: distance 104 → 20 ms + 130 ms * 104/1000 = 33.52 ms.
    assert model.read(4, 4, capacity=1000) == 33_520_000 + 1_478_700
    # The clock holds the sum; nothing else moves it.
    assert model.clock.now_ns == 33 * MS + 33_520_000 + 3 * 1_478_700
    assert model.reads == 3 and model.bytes_read == 3 * 8192


def test_full_stroke_seek_and_distance_clamped_to_capacity():
    model = SpeedModel(speed=1, next_lba=0)
    assert model.seek_ns(1000, capacity=1000) == 150 * MS
    assert model.seek_ns(5000, capacity=1000) == 150 * MS
    assert model.seek_ns(0, capacity=1000) == 0


def test_without_auto_advance_the_experiment_moves_the_clock():
    clock = VirtualClock()
    model = SpeedModel(speed=1, clock=clock, auto_advance=False, next_lba=0)
    assert model.read(0, 1, capacity=100) == 1_478_700
    assert clock.now_ns == 0
    assert model.busy()
    # A second read queues behind the first.
    model.read(1, 1, capacity=100)
    assert model.busy_until_ns == 2 * 1_478_700
    clock.advance(2 * 1_478_700 - 1)
    assert model.busy()
    clock.advance(1)
    assert not model.busy()
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_disabled_model_charges_nothing():
    model = SpeedModel(enabled=False)
    assert model.read(50, 10, capacity=100) == 0
    assert model.clock.now_ns == 0


def test_bad_speeds_are_refused():
    with pytest.raises(ValueError):
        SpeedModel(speed=0)


def test_off_by_default_a_drive_reads_without_a_model(rig, pattern_lba):
    _, drive, _ = rig
    assert not isinstance(drive.target.medium, TimedMedium)


def test_model_on_a_drive_times_pio_and_dma_reads(rig, pattern_lba):
    m, drive, _ = rig
    model = attach_speed_model(drive, SpeedModel(speed=8))
    assert isinstance(drive.target.medium, TimedMedium)
    assert drive.target.medium.sector_count == 200
    capacity = 200
    fw = AtaHostDriver(m.ports, m.memory)
    dev = fw.probe()[0]
    fw.wait_ready(dev)
    assert model.reads == 0  # TEST UNIT READY reads nothing
    fw.read_sectors(dev, pattern_lba, 4, 0x100000)
    # Seek from LBA 0: 20 ms + 130 ms * lba/200; 8 KiB at 8x = 8192/11,080,000 s = 739,350.18 ns
    seek = 20 * MS + round(130 * MS * pattern_lba / capacity)
    assert model.last_ns == seek + 739_350
    first = model.clock.now_ns
    dma = AtaHostDriver(m.ports, m.memory, use_dma=True)
    dma.read_sectors(dev, pattern_lba + 4, 4, 0x200000)  # continues: no seek
    assert model.last_ns == 739_350
    assert model.clock.now_ns == first + 739_350
    assert m.memory.read(0x100000, 8192) + m.memory.read(0x200000, 8192) == expected(
        pattern_lba, 8)
    # Attaching again keeps the wrapper and swaps the model.
    other = attach_speed_model(drive, SpeedModel(speed=1))
    assert drive.target.medium.model is other
