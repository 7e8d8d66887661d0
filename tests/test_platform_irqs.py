"""The platform's interrupt paths end to end on the real CPU glue: a device raises its ISA
line, the interrupt source (devices/platform/intc.py) presents it, the CPU takes it through
the IVT; and the local APIC timer wakes a halted CPU at its deadline on the virtual clock.

The wiring is the one the board should use (see docs/booting.md, "Interrupt wiring"):
UART on IRQ 4, the 8259 pair through LINT0 ExtINT (virtual wire, MP spec §3.6.2.2),
the local APIC timer on the CPU's clock.
"""

from __future__ import annotations

import struct

from devices.bus import IrqLine
from devices.platform.apic import IoApic, LocalApic
from devices.platform.intc import InterruptController
from devices.platform.pic import Pic8259Pair
from devices.platform.uart import Uart16550
from emu.pc.cpu import StopReason
from tests.test_cpu import assemble, make_cpu, needs_nasm

CODE = 0x7C00


def _board(tmp_path):  # noqa: ANN001, ANN202
    cpu, memory, ports = make_cpu()
    lines = [IrqLine(n) for n in range(16)]
    pic = Pic8259Pair()
    pic.connect(lines)
    lapic = LocalApic(clock=cpu.clock)
    ioapic = IoApic(lapic=lapic)
    ioapic.connect(lines)
    uart = Uart16550(irq=lines[4])
    for device in (pic, uart):
        for rng in device.port_ranges():
            ports.register(rng)
    cpu.interrupts = InterruptController(pic, lapic, ioapic)
    return cpu, memory, lapic, uart


@needs_nasm
def test_uart_receive_interrupt_reaches_the_guest_through_the_8259_virtual_wire(tmp_path):
    cpu, memory, _, uart = _board(tmp_path)
    # IRQ 4 handler (vector 0Ch): drain RBR while LSR.DR into [0x600...], EOI, iret.
    handler = assemble(
        "bits 16\npusha\nmov dx, 0x3FD\n"
        "more: in al, dx\ntest al, 1\njz done\nmov dx, 0x3F8\nin al, dx\n"
        "mov bx, [0x5FE]\nmov [0x600+bx], al\ninc word [0x5FE]\nmov dx, 0x3FD\njmp more\n"
        "done: mov al, 0x20\nout 0x20, al\npopa\niret\n", tmp_path, "h")
    memory.write(0x6000, handler)
    memory.write(0x0C * 4, struct.pack("<HH", 0x6000, 0))
    # Main: FIFO on, IER = received data, MCR = OUT2, then sleep in hlt.
    main = assemble(
        "bits 16\nmov dx, 0x3FA\nmov al, 0xC7\nout dx, al\nmov dx, 0x3F9\nmov al, 1\nout dx, al\n"
        "mov dx, 0x3FC\nmov al, 0x0B\nout dx, al\nsti\n"
        "idle: cmp word [0x5FE], 5\njae fin\nhlt\njmp idle\nfin: cli\nhlt\njmp fin\n",
        tmp_path, "m")
    memory.write(CODE, main)
    cpu.reset_real_mode(0, CODE, ss=0, sp=0x7000)
    assert cpu.run(100_000).reason is StopReason.IDLE  # halted, IF on, nothing to wake it
    uart.receive(b"hello")  # the host types: IRQ 4 rises (character timeout, below 14)
    assert cpu.run(100_000).reason is StopReason.HALTED
    assert memory.read(0x600, 5) == b"hello"


@needs_nasm
def test_lapic_timer_wakes_a_halted_cpu_at_its_deadline(tmp_path):
    cpu, memory, lapic, _ = _board(tmp_path)
    handler = assemble("bits 16\ninc word [0x5FE]\niret\n", tmp_path, "h")
    memory.write(0x6000, handler)
    memory.write(0x40 * 4, struct.pack("<HH", 0x6000, 0))
    lapic.write(0xF0, 4, 0x1FF)  # software enable (the guest would store to FEE000F0h)
    lapic.write(0x3E0, 4, 0xB)  # divide by 1
    lapic.write(0x320, 4, 0x40)  # one-shot, vector 40h
    clock = cpu.clock
    ticks = 10_000_000  # 10 ms of the 1 GHz bus clock
    lapic.write(0x380, 4, ticks)
    deadline = lapic.deadline
    assert deadline == clock.instructions + ticks * clock.ips // 1_000_000_000
    main = assemble("bits 16\nsti\nhlt\nfin: cli\nhlt\njmp fin\n", tmp_path, "m")
    memory.write(CODE, main)
    cpu.reset_real_mode(0, CODE, ss=0, sp=0x7000)
    assert cpu.run(10 * ticks).reason is StopReason.HALTED
    assert memory.read_u16(0x5FE) == 1
    assert deadline <= clock.instructions < deadline + 1000  # slept exactly to the expiry
    assert lapic.isr == 1 << 0x40  # in service until the guest's EOI
