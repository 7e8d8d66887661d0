"""Interrupt delivery by the CPU glue (emu/pc/delivery.py): cost per event.

Each group runs the same guest loop of 1,000 iterations twice: the baseline
(``kind="raw"``) with two ``nop`` where the emulated case (``kind="emu"``) has
``int 40h`` into a handler that only returns.  The difference is the glue's
delivery (Unicorn reports the INT to a Python hook; the glue pushes the frame
through the page tables and loads CS through the engine context) plus the
handler's IRET.  Run: ``.venv/bin/python -m pytest bench/test_delivery_bench.py
-p no:randomly``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from emu.pc.cpu import StopReason
from tests.test_cpu import assemble
from tests.test_delivery import CODE, HANDLERS, gate64, long_mode, make_cpu

pytestmark = pytest.mark.skipif(shutil.which("nasm") is None, reason="nasm is not installed")
LOOPS = 1000


def _real_mode(tmp_path: Path, body: str):
    cpu, memory = make_cpu()
    code = assemble(f"""
bits 16
org 0x7C00
    mov word [0x40 * 4], handler
    mov word [0x40 * 4 + 2], 0
    mov cx, {LOOPS}
again:
    {body}
    loop again
    cli
    hlt
    jmp $-2
handler:
    iret
""", tmp_path, "real")

    def one() -> None:
        memory.write(0x7C00, code)
        cpu.reset_real_mode(0, 0x7C00, sp=0x7000)
        assert cpu.run(1_000_000).reason is StopReason.HALTED

    return one


def _long_mode(tmp_path: Path, body: str):
    cpu, memory = make_cpu()
    memory.write(HANDLERS, assemble(f"bits 64\norg {HANDLERS:#x}\n    iretq\n", tmp_path, "h"))
    long_mode(cpu, memory, {0x40: gate64(HANDLERS, 0x08, 0xE)})
    code = assemble(f"""
bits 64
org {CODE:#x}
    mov ecx, {LOOPS}
again:
    {body}
    loop again
    cli
    hlt
    jmp $-2
""", tmp_path, "long")
    memory.write(CODE, code)

    def one() -> None:
        cpu.set_reg("rip", CODE)
        cpu.halted = False
        assert cpu.run(1_000_000).reason is StopReason.HALTED

    return one


@pytest.mark.parametrize("kind", ["raw", "emu"])
def test_real_mode_int_n_through_the_ivt(record, tmp_path, kind):
    one = _real_mode(tmp_path, "int 0x40" if kind == "emu" else "nop\n    nop")
    record(f"{LOOPS} INT n, real mode", kind, one)


@pytest.mark.parametrize("kind", ["raw", "emu"])
def test_long_mode_int_n_through_a_64bit_gate_with_paging(record, tmp_path, kind):
    one = _long_mode(tmp_path, "int 0x40" if kind == "emu" else "nop\n    nop")
    record(f"{LOOPS} INT n, long mode", kind, one)
