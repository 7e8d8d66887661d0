"""TEST UNIT READY and Linux's GESN media poll as full port round trips (target ≤ 8 µs)."""

from __future__ import annotations


def test_test_unit_ready_round_trip(rig, record):
    assert rig.tur() == 0x50
    record("tur", "emu", rig.tur, "≤ 8 µs")


def test_gesn_poll_round_trip(rig, record):
    # 4a 01 00 00 10 00 00 00 08 00: polled, media class, 8 bytes (what Linux's sr sends).
    assert rig.gesn() == 0x50
    record("gesn", "emu", rig.gesn, "≤ 8 µs")
