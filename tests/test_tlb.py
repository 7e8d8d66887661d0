"""Fast stores (emu/pc/tlb.py): the virtual TLB while paging is off, the engine's own after.

The expected behaviour is the x86 one whatever the TLB does: stores land, code that
rewrites itself runs its new bytes (SDM vol 3 §11.6, self-modifying code), a write to
the ROM faults as before, and a guest that turns paging on (SDM vol 3 §4.3, 32-bit
paging) keeps running through its page tables.
"""

from __future__ import annotations

import pytest

from emu.pc.cpu import CpuFault, StopReason
from tests.test_cpu import assemble, make_cpu, needs_nasm, run_at

pytestmark = [needs_nasm, pytest.mark.usefixtures("both_clocks")]


@pytest.fixture(params=["virtual", "cpu"])
def tlb_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("EMU_TLB", request.param)
    return str(request.param)


def test_the_virtual_tlb_is_used_unless_asked_not_to(tlb_mode):
    cpu, _, _ = make_cpu()
    assert (cpu.tlb is not None) == (tlb_mode == "virtual")


def test_stores_land_and_self_modifying_code_runs_its_new_bytes(tmp_path, tlb_mode):
    # A loop that stores to a data page, then patches the immediate of an instruction
    # it has already executed (same page as the code) and calls it again.
    code = assemble("""
bits 16
org 0x7C00
    xor ax, ax
    mov ds, ax
    mov cx, 2
again:
    call store
    mov word [patched], 0x2222   ; rewrite an instruction that already ran
    loop again
    mov di, 0xA000
    mov cx, 4096
fill:
    mov [di], cx
    add di, 2
    loop fill
    cli
    hlt
store:
    mov bx, 0x1111
patched equ $ - 2
    mov [0x9000], bx        ; a data page: stores take the fast path after the first
    ret
""", tmp_path)
    cpu, memory, _ = make_cpu()
    assert run_at(cpu, memory, code) is StopReason.HALTED
    assert memory.read_u16(0x9000) == 0x2222  # the second pass ran the patched bytes
    assert memory.read_u16(0xA000) == 4096 and memory.read_u16(0xA000 + 2 * 4095) == 1


def test_a_store_to_a_read_only_rom_still_faults(tmp_path, tlb_mode):
    from unicorn import UC_PROT_EXEC, UC_PROT_READ

    cpu, memory, _ = make_cpu()
    cpu.uc.mem_map(0xFFFF_0000, 0x1_0000, UC_PROT_READ | UC_PROT_EXEC)
    code = assemble("""
bits 16
org 0x7C00
    cli
    lgdt [gdtr]
    mov eax, cr0
    or eax, 1
    mov cr0, eax
    jmp dword 0x08:pm
bits 32
pm: mov ax, 0x10
    mov ds, ax
    mov eax, [0xFFFF0000]   ; reading the ROM is fine
    mov [0xFFFF0000], eax   ; writing it is not
    hlt
align 8
gdt: dq 0
    dq 0x00CF9A000000FFFF
    dq 0x00CF92000000FFFF
gdtr: dw 23
    dd gdt
""", tmp_path)
    with pytest.raises(CpuFault):
        run_at(cpu, memory, code)


def test_turning_paging_on_hands_over_to_the_engines_tlb(tmp_path, tlb_mode, both_clocks):
    # 32-bit paging: a page directory at 0x10000 whose first entry maps 0-4 MiB with a
    # 4 MiB page (PSE), plus linear 0x40000000 -> physical 0x20000 through a page table.
    code = assemble("""
bits 16
org 0x7C00
    cli
    lgdt [gdtr]
    mov eax, cr0
    or eax, 1
    mov cr0, eax
    jmp dword 0x08:pm
bits 32
pm: mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov esp, 0x9000
    mov edi, 0x10000        ; page directory and one page table: zero them
    xor eax, eax
    mov ecx, 2048
    rep stosd
    mov dword [0x10000], 0x00000083          ; 0-4 MiB, 4 MiB page, RW, present
    mov dword [0x10000 + 256*4], 0x11003     ; 0x40000000: page table at 0x11000
    mov dword [0x11000], 0x20003             ; first page -> 0x20000
    mov dword [0x20000], 0x5A5A5A5A
    mov eax, cr4
    or eax, 0x10            ; PSE
    mov cr4, eax
    mov eax, 0x10000
    mov cr3, eax
    mov eax, cr0
    or eax, 0x80000000      ; paging on
    mov cr0, eax
    jmp next
next:
    mov eax, [0x40000000]   ; through the page table
    mov [0x5000], eax
    mov dword [0x40000004], 0xC0FFEE
halt:
    hlt                     ; a halt loop: the count clock confirms hlt by resuming,
    jmp halt                ; and a bare hlt would run on into "add [eax], al"
align 8
gdt: dq 0
    dq 0x00CF9A000000FFFF
    dq 0x00CF92000000FFFF
gdtr: dw 23
    dd gdt
""", tmp_path)
    cpu, memory, _ = make_cpu()
    assert run_at(cpu, memory, code) is StopReason.HALTED
    assert memory.read_u32(0x5000) == 0x5A5A5A5A
    assert memory.read_u32(0x20004) == 0xC0FFEE  # the store went through the page table
    if cpu.tlb is not None:
        assert not cpu.tlb.virtual and cpu.tlb.state.switched
