"""Local APIC, I/O APIC and the combined interrupt source (devices/platform/apic.py, intc.py).

Expected values from the Intel SDM vol. 3A ch. 10 (register map Table 10-1, priorities
§10.8.3.1, EOI §10.8.5, software disable §10.4.7.2, timer §10.5.4), the 82093AA datasheet
(IOREGSEL/IOWIN, redirection entry layout, remote IRR) and MP spec 1.4 §3.6.2 (virtual
wire), driven through the MMIO entry points as a guest's loads and stores would.
"""

from __future__ import annotations

from devices.bus import IrqLine
from devices.platform.apic import (
    APIC_BASE_ENABLE,
    LAPIC_BASE,
    IoApic,
    LocalApic,
)
from devices.platform.intc import InterruptController
from devices.platform.pic import Pic8259Pair
from emu.pc.cpu import VirtualClock

GHZ = 1_000_000_000  # one instruction per ns: instruction counts read as ns and timer ticks


def _enable(lapic: LocalApic, spurious: int = 0xFF) -> None:
    lapic.write(0xF0, 4, 0x100 | spurious)


def _ioapic_set(io: IoApic, pin: int, low: int, high: int = 0) -> None:
    io.write(0x00, 4, 0x10 + 2 * pin + 1)
    io.write(0x10, 4, high)
    io.write(0x00, 4, 0x10 + 2 * pin)
    io.write(0x10, 4, low)


def _ioapic_get(io: IoApic, pin: int) -> int:
    io.write(0x00, 4, 0x10 + 2 * pin)
    return io.read(0x10, 4)


# -- local APIC registers ---------------------------------------------------------------
def test_reset_state_and_read_only_registers() -> None:
    lapic = LocalApic(apic_id=0)
    assert lapic.read(0x20, 4) == 0
    assert lapic.read(0x30, 4) == 0x0005_0014  # version 14h, max LVT 5
    assert lapic.read(0xF0, 4) == 0xFF  # software-disabled, spurious vector FFh
    assert lapic.read(0xE0, 4) == 0xFFFF_FFFF  # flat model
    for lvt in range(0x320, 0x380, 0x10):
        assert lapic.read(lvt, 4) & (1 << 16), hex(lvt)  # all read masked while disabled
    lapic.write(0x30, 4, 0)
    lapic.write(0x390, 4, 1234)
    assert lapic.read(0x30, 4) == 0x0005_0014 and lapic.read(0x390, 4) == 0
    assert lapic.apic_base == LAPIC_BASE | APIC_BASE_ENABLE | 0x100  # BSP, enabled


def test_lvt_cannot_be_unmasked_while_software_disabled() -> None:
    lapic = LocalApic()
    lapic.write(0x320, 4, 0x20030)  # periodic, vector 30h, unmasked
    assert lapic.read(0x320, 4) == 0x30030
    _enable(lapic)
    lapic.write(0x320, 4, 0x20030)
    assert lapic.read(0x320, 4) == 0x20030
    lapic.write(0xF0, 4, 0xFF)  # software disable masks every LVT entry
    _enable(lapic)
    assert lapic.read(0x320, 4) == 0x30030 and lapic.read(0x350, 4) & (1 << 16)


def test_fixed_interrupts_priority_tpr_and_eoi() -> None:
    lapic = LocalApic()
    _enable(lapic)
    assert lapic.accept(0x31) and lapic.accept(0x52)
    assert lapic.read(0x200 + 0x10 * 1, 4) == 1 << (0x31 - 32)
    assert lapic.read(0x200 + 0x10 * 2, 4) == 1 << (0x52 - 64)
    assert lapic.deliverable() == 0x52
    assert lapic.acknowledge() == 0x52
    assert lapic.read(0x100 + 0x10 * 2, 4) == 1 << (0x52 - 64)
    assert lapic.read(0xA0, 4) == 0x50  # PPR = ISRV class
    assert lapic.deliverable() is None  # 31h is not above class 5
    lapic.write(0xB0, 4, 0)  # EOI retires 52h
    assert lapic.read(0x100 + 0x10 * 2, 4) == 0 and lapic.deliverable() == 0x31
    lapic.write(0x80, 4, 0x35)  # TPR class 3 blocks 31h
    assert lapic.read(0xA0, 4) == 0x35 and lapic.deliverable() is None
    assert lapic.acknowledge() == 0xFF  # nothing deliverable at INTA: spurious, no ISR
    assert lapic.isr == 0
    lapic.write(0x80, 4, 0x20)
    assert lapic.acknowledge() == 0x31


def test_illegal_vector_sets_esr_and_disabled_apic_refuses() -> None:
    lapic = LocalApic()
    assert not lapic.accept(0x40)  # software-disabled: not accepted
    _enable(lapic)
    lapic.write(0x370, 4, 0xFE)  # LVT error: vector FEh
    assert not lapic.accept(0x05)
    assert lapic.read(0x280, 4) == 0  # not latched yet
    assert lapic.deliverable() == 0xFE  # the error interrupt
    lapic.write(0x280, 4, 0)  # the write latches the errors seen since the last one
    assert lapic.read(0x280, 4) == 0x40
    lapic.write(0x280, 4, 0)
    assert lapic.read(0x280, 4) == 0


def test_self_ipi_and_other_processors() -> None:
    lapic = LocalApic()
    _enable(lapic)
    lapic.write(0x300, 4, 0x000C4500)  # INIT to all excluding self: nobody
    lapic.write(0x300, 4, 0x000C4608)  # SIPI: nobody
    assert lapic.irr == 0 and not lapic.read(0x300, 4) & (1 << 12)
    lapic.write(0x300, 4, 0x00040041)  # fixed 41h to self
    assert lapic.deliverable() == 0x41
    lapic.write(0x310, 4, 0x0100_0000)  # physical destination 1: not us
    lapic.write(0x300, 4, 0x00000042)
    assert lapic.highest_irr() == 0x41
    lapic.write(0x310, 4, 0)
    lapic.write(0x300, 4, 0x00000400)  # NMI to APIC 0 (us)
    assert lapic.nmi_count == 1


def test_logical_destination_flat_and_cluster() -> None:
    lapic = LocalApic()
    lapic.write(0xD0, 4, 0x0200_0000)  # logical ID 02h
    assert lapic.matches(0x02, True) and lapic.matches(0x03, True)
    assert not lapic.matches(0x01, True) and lapic.matches(0xFF, True)
    lapic.write(0xE0, 4, 0x0FFF_FFFF)  # cluster model
    lapic.write(0xD0, 4, 0x1200_0000)  # cluster 1, member bit 2
    assert lapic.matches(0x12, True) and not lapic.matches(0x22, True)
    assert lapic.matches(0x00, False) and not lapic.matches(0x01, False)


# -- the timer -------------------------------------------------------------------------
def test_divide_configuration_values() -> None:
    lapic = LocalApic()
    for value, divisor in ((0x0, 2), (0x1, 4), (0x2, 8), (0x3, 16), (0x8, 32), (0x9, 64),
                           (0xA, 128), (0xB, 1)):
        lapic.write(0x3E0, 4, value)
        assert lapic.timer_divisor() == divisor and lapic.read(0x3E0, 4) == value


def test_one_shot_timer_counts_on_the_virtual_clock_and_interrupts_once() -> None:
    clock = VirtualClock(GHZ)
    lapic = LocalApic(clock=clock)
    _enable(lapic)
    lapic.write(0x3E0, 4, 0x3)  # divide by 16
    lapic.write(0x320, 4, 0x40)  # one-shot, vector 40h
    lapic.write(0x380, 4, 1000)  # 16,000 ns
    assert lapic.read(0x390, 4) == 1000 and lapic.deadline == 16_000
    clock.instructions = 8_000
    assert lapic.read(0x390, 4) == 500
    assert clock.next_deadline() == 16_000  # a halted CPU sleeps until exactly then
    clock.instructions = 16_000
    clock.fire_due()
    assert lapic.deliverable() == 0x40 and lapic.deadline is None
    assert lapic.read(0x390, 4) == 0
    lapic.acknowledge()
    lapic.write(0xB0, 4, 0)
    clock.instructions = 100_000
    clock.fire_due()
    assert lapic.irr == 0


def test_periodic_timer_reloads() -> None:
    clock = VirtualClock(GHZ)
    lapic = LocalApic(clock=clock)
    _enable(lapic)
    lapic.write(0x3E0, 4, 0xB)  # divide by 1
    lapic.write(0x320, 4, 0x20041)  # periodic, vector 41h
    lapic.write(0x380, 4, 5000)
    fired = 0
    for t in range(5000, 25001, 5000):
        clock.instructions = t
        clock.fire_due()
        if lapic.deliverable() == 0x41:
            fired += 1
            lapic.acknowledge()
            lapic.write(0xB0, 4, 0)
    assert fired == 5 and lapic.deadline == 30_000
    clock.instructions = 27_000
    assert lapic.read(0x390, 4) == 3000


def test_masked_timer_counts_but_does_not_schedule() -> None:
    clock = VirtualClock(GHZ)
    lapic = LocalApic(clock=clock)
    _enable(lapic)
    lapic.write(0x3E0, 4, 0xB)
    lapic.write(0x320, 4, 0x10040)  # masked one-shot
    lapic.write(0x380, 4, 1000)
    assert lapic.deadline is None
    clock.instructions = 400
    assert lapic.read(0x390, 4) == 600
    lapic.write(0x320, 4, 0x40)  # unmask: the expiry is still ahead
    assert lapic.deadline == 1000
    lapic.write(0x380, 4, 0)  # a zero initial count stops it
    assert lapic.deadline is None and lapic.read(0x390, 4) == 0


# -- I/O APIC --------------------------------------------------------------------------
def test_ioapic_registers() -> None:
    io = IoApic(apic_id=1)
    io.write(0x00, 4, 0)
    assert io.read(0x10, 4) == 0x0100_0000
    io.write(0x00, 4, 1)
    assert io.read(0x10, 4) == 0x0017_0011  # 24 entries, version 11h
    assert io.read(0x00, 4) == 1
    assert _ioapic_get(io, 5) == 0x10000  # masked at reset
    _ioapic_set(io, 5, 0x0000_A035 | (1 << 12) | (1 << 14), 0x0F00_0000)
    assert _ioapic_get(io, 5) == 0xA035  # delivery status and remote IRR are read-only
    io.write(0x00, 4, 0x10 + 11)
    assert io.read(0x10, 4) == 0x0F00_0000


def _apic_pc() -> tuple[LocalApic, IoApic, list[IrqLine]]:
    lapic = LocalApic()
    _enable(lapic)
    io = IoApic(lapic=lapic)
    lines = [IrqLine(n) for n in range(16)]
    io.connect(lines)
    return lapic, io, lines


def test_edge_isa_irq_routed_to_the_lapic_and_irq0_on_pin_2() -> None:
    lapic, io, lines = _apic_pc()
    _ioapic_set(io, 2, 0x30)  # edge, fixed, vector 30h, physical APIC 0
    _ioapic_set(io, 14, 0x3E)
    lines[0].raise_()
    lines[0].lower()
    assert lapic.deliverable() == 0x30 and not lapic.tmr
    lines[14].raise_()
    assert lapic.highest_irr() == 0x3E
    lines[14].raise_()  # no new edge: nothing new
    assert lapic.acknowledge() == 0x3E
    assert lapic.irr == 1 << 0x30


def test_masked_edge_is_lost_and_wrong_destination_drops() -> None:
    lapic, io, lines = _apic_pc()
    _ioapic_set(io, 4, 0x10034)  # masked
    lines[4].raise_()
    _ioapic_set(io, 4, 0x34)  # unmasked while asserted: an edge entry does not deliver
    assert lapic.irr == 0
    lines[4].lower()
    _ioapic_set(io, 4, 0x34, 0x0300_0000)  # to APIC 3: nobody
    lines[4].raise_()
    assert lapic.irr == 0


def test_level_triggered_remote_irr_and_eoi_broadcast() -> None:
    lapic, io, lines = _apic_pc()
    _ioapic_set(io, 11, 0xA059)  # level, active low (stored), vector 59h
    lines[11].raise_()
    assert _ioapic_get(io, 11) & (1 << 14)  # remote IRR set
    assert lapic.tmr & (1 << 0x59) and lapic.acknowledge() == 0x59
    lines[11].lower()
    lines[11].raise_()  # remote IRR still set: no second message
    assert lapic.irr == 0
    lapic.write(0xB0, 4, 0)  # EOI: broadcast, remote IRR clears, line still high: again
    assert lapic.irr == 1 << 0x59 and _ioapic_get(io, 11) & (1 << 14)
    assert lapic.acknowledge() == 0x59
    lines[11].lower()
    lapic.write(0xB0, 4, 0)
    assert lapic.irr == 0 and not _ioapic_get(io, 11) & (1 << 14)


def test_unmasking_an_asserted_level_input_delivers() -> None:
    lapic, io, lines = _apic_pc()
    _ioapic_set(io, 9, 0x18061)  # level, masked
    lines[9].raise_()
    assert lapic.irr == 0
    _ioapic_set(io, 9, 0x8061)
    assert lapic.deliverable() == 0x61


# -- the combined interrupt source -----------------------------------------------------
def _pc() -> tuple[InterruptController, Pic8259Pair, LocalApic, IoApic, list[IrqLine]]:
    pic = Pic8259Pair()
    lines = [IrqLine(n) for n in range(16)]
    pic.connect(lines)
    lapic = LocalApic()
    io = IoApic(lapic=lapic)
    io.connect(lines)
    return InterruptController(pic, lapic, io), pic, lapic, io, lines


def test_reset_state_is_virtual_wire_the_8259_reaches_the_cpu() -> None:
    intc, pic, lapic, _, lines = _pc()
    assert intc.pic_routed() and not intc.pending()
    lines[1].raise_()
    assert intc.pending() and intc.acknowledge() == 0x09  # 8259 vector: BIOS keyboard


def test_apic_hardware_disabled_passes_the_8259_straight() -> None:
    intc, _, lapic, _, lines = _pc()
    _enable(lapic)
    lapic.write(0x350, 4, 0x10700)  # LINT0 masked
    assert not intc.pic_routed()
    lapic.set_apic_base(0)
    assert intc.pic_routed()
    lines[0].raise_()
    assert intc.acknowledge() == 0x08


def test_symmetric_io_mode_routes_isa_through_the_ioapic() -> None:
    intc, pic, lapic, io, lines = _pc()
    _enable(lapic)
    lapic.write(0x350, 4, 0x10700)  # LINT0 ExtINT masked, as an OS in APIC mode leaves it
    _ioapic_set(io, 14, 0x3E)
    lines[14].raise_()
    assert pic.pending()  # the 8259 sees it too, but is not wired through
    assert intc.pending() and intc.acknowledge() == 0x3E
    assert not intc.pending()
    assert intc.acknowledge() == 0xFF  # spurious vector from the APIC


def test_virtual_wire_through_the_ioapic_pin_0() -> None:
    intc, _, lapic, io, lines = _pc()
    _enable(lapic)
    lapic.write(0x350, 4, 0x10700)
    _ioapic_set(io, 0, 0x700)  # pin 0 ExtINT, unmasked
    assert intc.pic_routed()
    lines[3].raise_()
    assert intc.acknowledge() == 0x0B


def test_apic_interrupts_go_before_the_8259() -> None:
    intc, _, lapic, _, lines = _pc()
    _enable(lapic)
    lines[1].raise_()
    lapic.accept(0xEF)
    assert intc.acknowledge() == 0xEF
    assert intc.acknowledge() == 0x09


def test_lint1_nmi_reaches_take_nmi() -> None:
    intc, _, lapic, _, _ = _pc()
    _enable(lapic)
    lapic.write(0x360, 4, 0x400)  # LINT1 NMI
    lapic.set_lint1(True)
    assert intc.take_nmi() and not intc.take_nmi()
    lapic.set_lint1(True)  # still asserted: no new edge
    assert not intc.take_nmi()
    lapic.write(0x360, 4, 0x10400)
    lapic.set_lint1(False)
    lapic.set_lint1(True)
    assert not intc.take_nmi()


def test_an_os_in_symmetric_io_mode_gets_the_pit_through_pin_2_and_its_apic_timer() -> None:
    """What Linux sets up on a PC with an MP table / MADT: 8259 masked, LINT0 masked
    ExtINT, LINT1 NMI, logical flat destination 01h, ISA IRQ 0 → pin 2 (edge, high), and
    the local APIC timer periodic; each tick is EOIed at the local APIC."""
    from devices.platform.pit import Pit8254

    clock = VirtualClock()
    lines = [IrqLine(n) for n in range(16)]
    pic = Pic8259Pair()
    pic.connect(lines)
    pit = Pit8254(clock, lines[0])
    lapic = LocalApic(clock=clock)
    io = IoApic(lapic=lapic)
    io.connect(lines)
    intc = InterruptController(pic, lapic, io)
    pic.master.write(1, 0xFF)
    pic.slave.write(1, 0xFF)
    lapic.write(0xE0, 4, 0xFFFF_FFFF)  # flat model
    lapic.write(0xD0, 4, 0x0100_0000)  # logical ID 01h
    lapic.write(0x80, 4, 0)
    lapic.write(0xF0, 4, 0x1FF)
    lapic.write(0x350, 4, 0x10700)  # LINT0: ExtINT, masked
    lapic.write(0x360, 4, 0x400)  # LINT1: NMI
    _ioapic_set(io, 2, 0x0830, 0x0100_0000)  # vector 30h, logical, edge, active high
    lapic.write(0x3E0, 4, 0x3)  # divide by 16
    lapic.write(0x320, 4, 0x200EC)  # periodic, vector ECh
    lapic.write(0x380, 4, 250_000)  # 4 ms at 62.5 MHz
    assert not intc.pic_routed()
    seen: dict[int, int] = {}
    step = clock.ips // 1000  # 1 ms
    for _ in range(200):
        clock.instructions += step
        clock.fire_due()
        while intc.pending():
            vector = intc.acknowledge()
            seen[vector] = seen.get(vector, 0) + 1
            lapic.write(0xB0, 4, 0)
    assert pit.ticks == 3  # 200 ms of 54.9 ms periods
    assert seen == {0x30: 3, 0xEC: 50}  # no 8259 vector ever

