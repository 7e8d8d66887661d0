"""Property-based tests: whatever the guest does, no exception escapes a port access,
and the register invariants of a settled drive hold (ATA/ATAPI-7 vol 1 §7.15)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.media.iso import IsoImage
from emu.pc.machine import Machine
from tests.guest import Guest

PORTS = [0x1F0 + i for i in range(8)] + [0x3F6] + [0x170 + i for i in range(8)] + [0x376]
SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def check_invariants(m: Machine) -> None:
    for ch in m.ide.channels:
        for unit in ch.units:
            if not unit.present:
                continue
            status = int(unit.status)
            assert not (status & 0x80 and status & 0x08), f"BSY with DRQ: {status:#x}"
            if status & 0x40:  # a settled command (DRDY); reset leaves a diagnostic code
                assert bool(status & 0x01) == (unit.error != 0), (status, unit.error)


def build(path: Path) -> tuple[Machine, IsoImage]:
    m = Machine()
    image = IsoImage(path)
    m.add_dvd_drive(0, 0, image)
    m.add_dvd_drive(1, 1)
    return m, image


cdbs = st.binary(min_size=12, max_size=12)
limits = st.sampled_from([0, 1, 2, 18, 512, 2047, 2048, 5120, 0xFFFE, 0xFFFF])


@SETTINGS
@given(cdb=cdbs, bcl=limits, first=st.integers(0, 255))
def test_random_cdbs_never_raise_and_settle(patterned_iso, cdb, bcl, first):
    m, image = build(patterned_iso)
    g = Guest(m, 0)
    try:
        g.packet(bytes([first]) + cdb[1:], bcl)
        for _ in range(64):  # drain any data phase
            if not g.alt_status() & 0x08:
                break
            n = g.byte_count() or 2
            g.read_words((n + 1) // 2)
        status = g.status()
        assert not status & 0x88, f"left mid-transfer: {status:#x}"
        check_invariants(m)
        g.packet([0x12, 0, 0, 0, 36, 0], 0xFFFE)  # the drive still answers
        assert g.read_reply()[0] == 0x05
        assert g.status() == 0x50
    finally:
        image.close()


op = st.one_of(
    st.tuples(st.just("inb"), st.sampled_from(PORTS), st.just(0)),
    st.tuples(st.just("inw"), st.sampled_from(PORTS), st.just(0)),
    st.tuples(st.just("inl"), st.sampled_from([0x1F0, 0x170]), st.just(0)),
    st.tuples(st.just("outb"), st.sampled_from(PORTS), st.integers(0, 255)),
    st.tuples(st.just("outw"), st.sampled_from([0x1F0, 0x170]), st.integers(0, 0xFFFF)),
    st.tuples(st.just("outl"), st.sampled_from([0x1F0, 0x170]), st.integers(0, 0xFFFFFFFF)),
    st.tuples(st.just("insw"), st.sampled_from([0x1F0, 0x170]), st.integers(0, 3000)),
    st.tuples(st.just("outsw"), st.sampled_from([0x1F0, 0x170]), st.integers(0, 12)),
    st.tuples(st.just("cmd"), st.sampled_from([0x1F7, 0x177]),
              st.sampled_from([0xA0, 0xA1, 0xEC, 0x08, 0x90, 0xEF, 0x00, 0xE7, 0x20, 0xE5])),
    st.tuples(st.just("host"), st.sampled_from(["eject", "insert"]), st.just(0)),
)


@SETTINGS
@given(ops=st.lists(op, max_size=60))
def test_random_port_sequences_never_raise(patterned_iso, ops):
    m, image = build(patterned_iso)
    drive = m.ide.unit(0, 0)
    spare = IsoImage(patterned_iso)
    try:
        for kind, port, value in ops:
            if kind == "inb":
                assert 0 <= m.inb(port) <= 0xFF
            elif kind == "inw":
                assert 0 <= m.inw(port) <= 0xFFFF
            elif kind == "inl":
                m.inl(port)
            elif kind == "outb" or kind == "cmd":
                m.outb(port, value)
            elif kind == "outw":
                m.outw(port, value)
            elif kind == "outl":
                m.outl(port, value)
            elif kind == "insw":
                assert m.ports.insw(port, value).size == value
            elif kind == "outsw":
                m.ports.outsw(port, bytes(range(value * 2)))
            elif port == "eject":
                with m.lock:
                    drive.remove_medium()
            else:
                with m.lock:
                    if not drive.medium.present:
                        drive.insert_medium(spare)
            check_invariants(m)
    finally:
        image.close()
        spare.close()
