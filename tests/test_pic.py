"""The 8259A pair (devices/platform/pic.py): ICW sequence, IMR, IRR/ISR, EOI, cascade, IDE IRQs."""

from __future__ import annotations

from devices.bus import IrqLine
from devices.platform.pic import Pic8259Pair
from emu.pc.machine import Machine


def _init_pc(pic: Pic8259Pair, master_base: int = 0x08, slave_base: int = 0x70) -> None:
    """The PC BIOS initialisation: ICW1 (edge, cascade, ICW4), ICW2, ICW3, ICW4 (8086)."""
    ranges = {r.base: r for r in pic.port_ranges()}
    m, s = ranges[0x20], ranges[0xA0]
    for rng, base, icw3 in ((m, master_base, 0x04), (s, slave_base, 0x02)):
        rng.write(rng.base, 1, 0x11)
        rng.write(rng.base + 1, 1, base)
        rng.write(rng.base + 1, 1, icw3)
        rng.write(rng.base + 1, 1, 0x01)


def test_icw_sequence_sets_vector_bases_and_clears_mask() -> None:
    pic = Pic8259Pair()
    pic.master.imr = 0xFF
    _init_pc(pic, 0x20, 0x28)
    assert pic.master.vector_base == 0x20 and pic.slave.vector_base == 0x28
    assert pic.master.imr == 0 and pic.master.cascade == 0x04 and pic.slave.cascade == 0x02
    pic.request(1)
    assert pic.acknowledge() == 0x21


def test_priority_isr_blocks_lower_until_eoi() -> None:
    pic = Pic8259Pair()
    pic.request(3)
    pic.request(1)
    assert pic.acknowledge() == 0x09  # IR1 first (fully nested: IR0 highest)
    assert pic.master.isr == 0b10
    assert not pic.pending()  # IR3 is blocked by IR1 in service
    pic.master.write(0, 0x20)  # non-specific EOI
    assert pic.pending() and pic.acknowledge() == 0x0B
    pic.master.write(0, 0x63)  # specific EOI for IR3
    assert pic.master.isr == 0


def test_mask_and_ocw3_reads() -> None:
    pic = Pic8259Pair()
    pic.master.write(1, 0x01)  # OCW1: mask IR0
    pic.request(0)
    assert not pic.pending()
    assert pic.master.read(1) == 0x01
    pic.master.write(0, 0x0A)  # OCW3: read IRR
    assert pic.master.read(0) == 0x01
    pic.master.write(1, 0x00)
    pic.acknowledge()
    pic.master.write(0, 0x0B)  # OCW3: read ISR
    assert pic.master.read(0) == 0x01


def test_edge_triggered_level_held_high_latches_once() -> None:
    pic = Pic8259Pair()
    pic.set_irq(5, True)
    assert pic.acknowledge() == 0x0D
    pic.eoi(5)
    assert not pic.pending()  # still high, no new edge
    pic.set_irq(5, False)
    pic.set_irq(5, True)
    assert pic.pending()


def test_cascade_slave_through_master_ir2() -> None:
    pic = Pic8259Pair()
    pic.request(12)
    assert pic.master.irr & 0x04
    assert pic.acknowledge() == 0x74
    assert pic.master.isr == 0x04 and pic.slave.isr == 0x10
    pic.request(13)
    assert not pic.pending()  # slave IR4 and master IR2 still in service
    pic.eoi(12)
    assert pic.acknowledge() == 0x75


def test_slave_mask_hides_request_from_master() -> None:
    pic = Pic8259Pair()
    pic.slave.write(1, 0xFF)
    pic.request(14)
    assert not pic.pending()
    pic._write_slave(0xA1, 1, 0x00)  # unmask through the port: the cascade line rises
    assert pic.acknowledge() == 0x76


def test_ide_irqs_14_and_15_reach_the_cpu_through_the_pair() -> None:
    machine = Machine()
    pic = Pic8259Pair()
    pic.connect(machine.irqs)
    for rng in pic.port_ranges():
        machine.ports.register(rng)
    _init_pc(pic)
    machine.irqs[14].raise_()
    assert pic.pending() and pic.acknowledge() == 0x76
    machine.irqs[14].lower()
    machine.outb(0xA0, 0x20)
    machine.outb(0x20, 0x20)
    machine.irqs[15].raise_()
    assert pic.acknowledge() == 0x77


def test_irq_line_listener_interface() -> None:
    pic = Pic8259Pair()
    line = IrqLine(0)
    pic.connect([line])
    line.raise_()
    line.lower()
    assert pic.acknowledge() == 0x08


def test_spurious_when_nothing_pending() -> None:
    assert Pic8259Pair().acknowledge() == 0x0F
