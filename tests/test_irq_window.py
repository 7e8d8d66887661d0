"""``Cpu.irq_window``: a waiting IRQ is delivered inside firmware's short ``sti`` windows.

SeaBIOS keeps interrupts disabled and opens them for two instructions while it
polls (``sti; nop; cli``).  IRQs injected only between slices would almost never
land there; the window hook stops at the first instruction of the range that runs
with IF set, after the interrupt shadow of STI / MOV SS / POP SS (SDM vol 3 §6.8.3).
"""

from __future__ import annotations

import struct

import pytest

from devices.platform.pic import Pic8259Pair
from emu.pc.cpu import StopReason
from tests.test_cpu import assemble, make_cpu, needs_nasm

pytestmark = pytest.mark.usefixtures("both_clocks")  # every boot, with each clock

WINDOW = 0x10000


def _setup(tmp_path, body: str):  # noqa: ANN001, ANN202
    cpu, memory, ports = make_cpu()
    pic = Pic8259Pair()
    for rng in pic.port_ranges():
        ports.register(rng)
    cpu.interrupts = pic
    # IVT 09h: record the interrupted IP and SS:SP, count, EOI, iret.
    handler = assemble("bits 16\nmov bp, sp\nmov ax, [bp]\nmov [0x600], ax\nmov [0x602], sp\n"
                       "inc word [0x604]\npush ax\nmov al, 0x20\nout 0x20, al\npop ax\niret\n",
                       tmp_path, "h")
    memory.write(0x6000, handler)
    memory.write(0x09 * 4, struct.pack("<HH", 0x6000, 0))
    code = assemble(f"bits 16\norg {WINDOW:#x}\n{body}\nhalt: cli\nhlt\njmp halt\n", tmp_path)
    memory.write(WINDOW, code)
    cpu.reset_real_mode(WINDOW >> 4, 0, ss=0, sp=0x7000)
    pic.request(1)  # waiting with IF clear
    return cpu, memory


@needs_nasm
def test_without_the_window_the_irq_is_missed(tmp_path):
    cpu, memory = _setup(tmp_path, "cli\nmov cx, 100\nl: sti\nnop\ncli\nloop l")
    assert cpu.run(1_000_000).reason is StopReason.HALTED
    assert memory.read_u16(0x604) == 0  # the slices never ended inside a window


@needs_nasm
def test_the_irq_arrives_after_the_sti_shadow(tmp_path):
    cpu, memory = _setup(tmp_path, "cli\nmov cx, 100\nl: sti\nnop\nw: cli\nloop l")
    cpu.irq_window = (WINDOW, WINDOW + 0x1000)
    assert cpu.run(1_000_000).reason is StopReason.HALTED
    assert memory.read_u16(0x604) == 1
    # Returned to the CLI after "sti; nop": offset of w = 3 (mov cx) + 1 (cli) + 2.
    assert memory.read_u16(0x600) == 6


@needs_nasm
def test_no_delivery_between_mov_ss_and_the_stack_pointer_load(tmp_path):
    # The STI shadow covers MOV SS, whose own shadow covers MOV SP: the first point
    # where the IRQ may arrive is the NOP, on the new stack.
    body = "cli\nmov ax, 0\nsti\nmov ss, ax\nmov sp, 0x5000\nnop\ncli"
    cpu, memory = _setup(tmp_path, body)
    cpu.irq_window = (WINDOW, WINDOW + 0x1000)
    assert cpu.run(1_000_000).reason is StopReason.HALTED
    assert memory.read_u16(0x604) == 1
    assert memory.read_u16(0x600) == 10  # cli 1 + mov ax 3 + sti 1 + mov ss 2 + mov sp 3
    assert memory.read_u16(0x602) == 0x5000 - 6  # the frame went on the new stack
