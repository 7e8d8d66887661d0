"""Interrupt and exception delivery with paging and in long mode (emu/pc/delivery.py).

The machine state (GDT, IDT, TSS, page tables, control registers) is laid out
from Python as Intel SDM vol 3 describes it; the guest code and handlers are
assembled with nasm.  Handlers store what they find (error code, CR2, the
frame, RSP) at fixed addresses, and the tests check them bit by bit.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from unicorn import x86_const as X

from emu.pc.cpu import Cpu, CpuFault, PageFault, StopReason
from emu.pc.engine import CS, DS, ES, SS, Segment
from emu.pc.memory import GuestMemory
from emu.pc.ports import PortBus
from tests.test_cpu import assemble, needs_nasm

GDT, IDT, TSS = 0x1000, 0x2000, 0x3000
PML4, PDPT, PD, PT = 0x10000, 0x11000, 0x12000, 0x13000
CODE, HANDLERS, USER = 0x20000, 0x30000, 0x40000
OUT = 0x8000
"""Where handlers record what they saw."""
KSTACK, ISTSTACK, USTACK = 0x9_0000, 0xA_0008, 0x7_0000
HOLE = 0x5_0000
"""A page left not present until the #PF handler maps it."""
P, RW, US = 0x1, 0x2, 0x4


def gdt_entry(base: int, limit: int, access: int, flags: int) -> bytes:
    lo = (limit & 0xFFFF) | (base & 0xFFFF) << 16
    hi = ((base >> 16) & 0xFF) | access << 8 | ((limit >> 16) & 0xF) << 16 | flags << 20 | (
        base & 0xFF00_0000)
    return struct.pack("<II", lo, hi)


def gate64(offset: int, selector: int, gate_type: int, dpl: int = 0, ist: int = 0) -> bytes:
    hi = (offset & 0xFFFF_0000) | 0x8000 | dpl << 13 | gate_type << 8 | ist
    return struct.pack("<IIII", (offset & 0xFFFF) | selector << 16, hi, offset >> 32, 0)


def gate32(offset: int, selector: int, gate_type: int, dpl: int = 0) -> bytes:
    hi = (offset & 0xFFFF_0000) | 0x8000 | dpl << 13 | gate_type << 8
    return struct.pack("<II", (offset & 0xFFFF) | selector << 16, hi)


def make_cpu() -> tuple[Cpu, GuestMemory]:
    memory = GuestMemory(4 << 20)
    return Cpu(memory, PortBus()), memory


def seg(selector: int, access: int, flags: int) -> Segment:
    return Segment(selector, 0, 0xFFFF_FFFF, access << 8 | flags << 20 | 0xF << 16)


def long_mode(cpu: Cpu, memory: GuestMemory, gates: dict[int, bytes]) -> None:
    """IA-32e mode, ring 0, identity-mapped 4 KiB pages for the first 2 MiB (user too)."""
    gdt = b"".join([
        bytes(8),
        gdt_entry(0, 0xFFFFF, 0x9A, 0xA),   # 08h: 64-bit code, DPL 0
        gdt_entry(0, 0xFFFFF, 0x92, 0xC),   # 10h: data, DPL 0
        gdt_entry(0, 0xFFFFF, 0xFA, 0xA),   # 18h: 64-bit code, DPL 3
        gdt_entry(0, 0xFFFFF, 0xF2, 0xC),   # 20h: data, DPL 3
        gdt_entry(TSS, 0x67, 0x89, 0x0),    # 28h: 64-bit TSS (16 bytes)
        bytes(8),
    ])
    memory.write(GDT, gdt)
    tss = bytearray(0x68)
    struct.pack_into("<Q", tss, 4, KSTACK)          # RSP0
    struct.pack_into("<Q", tss, 0x24, ISTSTACK)     # IST1 (not 16-byte aligned on purpose)
    memory.write(TSS, bytes(tss))
    idt = bytearray(256 * 16)
    for vector, gate in gates.items():
        idt[vector * 16 : vector * 16 + 16] = gate
    memory.write(IDT, bytes(idt))
    memory.write(PML4, struct.pack("<Q", PDPT | P | RW | US))
    memory.write(PDPT, struct.pack("<Q", PD | P | RW | US))
    memory.write(PD, struct.pack("<Q", PT | P | RW | US))
    memory.write(PT, b"".join(struct.pack("<Q", (n << 12) | P | RW | US) for n in range(512)))
    unmap(memory, HOLE)
    uc = cpu.uc
    uc.reg_write(X.UC_X86_REG_GDTR, (0, GDT, len(gdt) - 1, 0))
    uc.reg_write(X.UC_X86_REG_IDTR, (0, IDT, len(idt) - 1, 0))
    uc.reg_write(X.UC_X86_REG_TR, (0x28, TSS, 0x67, 0x8900))
    uc.reg_write(X.UC_X86_REG_CR4, 0x20)                 # PAE
    uc.reg_write(X.UC_X86_REG_CR3, PML4)
    uc.msr_write(0xC000_0080, 0x100)                     # EFER.LME
    uc.reg_write(X.UC_X86_REG_CR0, 0x8001_0011)          # PG, WP, ET, PE → LMA
    cpu.engine.load_segments({CS: seg(0x08, 0x9B, 0xA), SS: seg(0x10, 0x93, 0xC),
                              DS: seg(0x10, 0x93, 0xC), ES: seg(0x10, 0x93, 0xC)})
    uc.reg_write(X.UC_X86_REG_RSP, KSTACK)


def unmap(memory: GuestMemory, page: int) -> None:
    memory.write(PT + (page >> 12) * 8, struct.pack("<Q", 0))


def run(cpu: Cpu, memory: GuestMemory, code: bytes, at: int = CODE, limit: int = 100_000
        ) -> StopReason:
    memory.write(at, code)
    cpu.set_reg("rip", at)
    cpu.halted = False
    return cpu.run(limit).reason


# The #PF handler (IST1): records error code, CR2, RSP before the pop and the
# five-qword frame, maps the faulting page (PTE = CR2 | P | RW | US), counts.
PF_HANDLER_64 = f"""
bits 64
org {HANDLERS:#x}
pf:
    push rax
    push rbx
    mov rbx, [{OUT:#x}]          ; record number n
    shl rbx, 6
    add rbx, {OUT + 0x40:#x}
    lea rax, [rsp + 16]
    mov [rbx], rax               ; RSP at entry (points at the error code)
    mov rax, [rsp + 16]
    mov [rbx + 8], rax           ; error code
    mov rax, cr2
    mov [rbx + 16], rax
    mov rax, [rsp + 24]
    mov [rbx + 24], rax          ; RIP
    mov rax, [rsp + 32]
    mov [rbx + 32], rax          ; CS
    mov rax, [rsp + 40]
    mov [rbx + 40], rax          ; RFLAGS
    mov rax, [rsp + 48]
    mov [rbx + 48], rax          ; RSP
    mov rax, [rsp + 56]
    mov [rbx + 56], rax          ; SS
    inc qword [{OUT:#x}]
    mov rax, cr2
    shr rax, 12
    lea rbx, [{PT:#x} + rax * 8]
    mov rax, cr2
    and rax, ~0xFFF
    or rax, 7
    mov [rbx], rax
    mov rax, cr2
    invlpg [rax]
    pop rbx
    pop rax
    add rsp, 8                   ; drop the error code
    iretq
"""


@needs_nasm
def test_long_mode_three_page_faults_in_a_row_through_ist(tmp_path: Path):
    """Three #PFs (read, write, fetch... as kernel code) arrive as #PF each time.

    Without clearing the engine's remembered exception, the second would come as
    #DF (vector 8) and the third would stop the engine.
    """
    cpu, memory = make_cpu()
    handler = assemble(PF_HANDLER_64, tmp_path, "pf")
    memory.write(HANDLERS, handler)
    long_mode(cpu, memory, {14: gate64(HANDLERS, 0x08, 0xE, ist=1)})
    unmap(memory, HOLE + 0x1000)
    unmap(memory, HOLE + 0x2000)
    code = assemble(f"""
bits 64
org {CODE:#x}
    mov rax, [{HOLE + 0x10:#x}]
    mov dword [{HOLE + 0x1020:#x}], 0x12345678
    mov rbx, [{HOLE + 0x2ff8:#x}]
    mov r8, 0x1122334455667788
    cli
    hlt
    jmp $-2
""", tmp_path)
    assert run(cpu, memory, code) is StopReason.HALTED
    assert memory.read_u32(OUT) == 3
    records = [struct.unpack_from("<8Q", memory.data, OUT + 0x40 + 64 * n) for n in range(3)]
    codes = [r[1] for r in records]
    assert codes == [0b000, 0b010, 0b000]  # read NP, write NP, read NP (supervisor)
    assert [r[2] for r in records] == [HOLE + 0x10, HOLE + 0x1020, HOLE + 0x2FF8]
    for entry_rsp, _, _, rip, cs, rflags, rsp, ss in records:
        # IST1 = A0008h aligned down to A0000h; five qwords plus the error code below it.
        assert entry_rsp == 0xA_0000 - 6 * 8
        assert cs == 0x08 and ss == 0x10 and rsp == KSTACK
        assert CODE <= rip < CODE + len(code)
        assert rflags & 0x2
    assert memory.read_u32(HOLE + 0x1020) == 0x12345678
    assert cpu.reg("r8") == 0x1122334455667788  # 64-bit registers from Python


@needs_nasm
def test_long_mode_user_int_n_switches_to_rsp0_and_gp_on_dpl(tmp_path: Path):
    """Ring 3 → ring 0 through a DPL-3 trap gate (RSP0, SS null with RPL 0), and
    INT n through a DPL-0 gate from ring 3 is #GP(vector×8+2)."""
    cpu, memory = make_cpu()
    int80 = assemble(f"""
bits 64
org {HANDLERS:#x}
    mov [{OUT + 0x100:#x}], rsp
    mov rax, [rsp]
    mov [{OUT + 0x108:#x}], rax    ; RIP
    mov rax, [rsp + 8]
    mov [{OUT + 0x110:#x}], rax    ; CS
    mov rax, [rsp + 16]
    mov [{OUT + 0x118:#x}], rax    ; RFLAGS
    mov rax, [rsp + 24]
    mov [{OUT + 0x120:#x}], rax    ; RSP
    mov rax, [rsp + 32]
    mov [{OUT + 0x128:#x}], rax    ; SS
    mov [{OUT + 0x130:#x}], ss
    pushfq
    pop rax
    mov [{OUT + 0x138:#x}], rax    ; RFLAGS inside: IF kept by a trap gate
    iretq
""", tmp_path, "int80")
    gp = assemble(f"""
bits 64
org {HANDLERS + 0x200:#x}
    mov rax, [rsp]
    mov [{OUT + 0x140:#x}], rax    ; error code
    mov rax, [rsp + 8]
    mov [{OUT + 0x148:#x}], rax    ; RIP: the INT instruction (a fault)
    cli
    hlt
    jmp $-2
""", tmp_path, "gp")
    memory.write(HANDLERS, int80)
    memory.write(HANDLERS + 0x200, gp)
    long_mode(cpu, memory, {
        0x80: gate64(HANDLERS, 0x08, 0xF, dpl=3),
        0x81: gate64(HANDLERS, 0x08, 0xE, dpl=0),
        13: gate64(HANDLERS + 0x200, 0x08, 0xE),
    })
    user = assemble(f"""
bits 64
org {USER:#x}
    mov rsp, {USTACK + 8:#x}
    int 0x80
    mov [{OUT + 0x150:#x}], rsp
    int 0x81
""", tmp_path, "u")
    memory.write(USER, user)
    # Enter ring 3 with IF set: CS 1Bh, SS 23h.
    cpu.engine.load_segments({CS: seg(0x1B, 0xFB, 0xA), SS: seg(0x23, 0xF3, 0xC)})
    cpu.set_reg("rflags", 0x202)
    cpu.set_reg("rip", USER)
    assert cpu.run(100_000).reason is StopReason.HALTED
    q = lambda at: struct.unpack_from("<Q", memory.data, OUT + at)[0]  # noqa: E731
    assert q(0x100) == KSTACK - 40                   # RSP0 (already aligned), five qwords
    assert q(0x108) == USER + 5 + 2                  # past "mov esp, imm" and "int 0x80"
    assert q(0x110) == 0x1B and q(0x120) == USTACK + 8 and q(0x128) == 0x23
    assert q(0x118) & 0x200                          # user RFLAGS had IF
    assert q(0x130) == 0                             # SS = null selector, RPL 0
    assert q(0x138) & 0x200                          # trap gate keeps IF
    assert q(0x150) == USTACK + 8                    # iretq back to ring 3's stack
    assert q(0x140) == 0x81 << 3 | 2                 # #GP(IDT entry 81h)
    assert q(0x148) == USER + 5 + 2 + 8              # at "int 0x81", after the store


@needs_nasm
def test_long_mode_ud_irq_and_triple_fault(tmp_path: Path):
    """#UD through the IDT (it never reaches UC_HOOK_INTR), an external IRQ with
    IF cleared by the interrupt gate, then a #PF with no usable gate: #PF → #GP
    delivery fails → #DF has no gate either → triple fault, reported as CpuFault."""
    cpu, memory = make_cpu()
    ud = assemble(f"""
bits 64
org {HANDLERS:#x}
    mov rax, [rsp]
    mov [{OUT:#x}], rax            ; RIP of ud2
    add qword [rsp], 2             ; skip it
    iretq
""", tmp_path, "ud")
    irq = assemble(f"""
bits 64
org {HANDLERS + 0x100:#x}
    pushfq
    pop rax
    mov [{OUT + 8:#x}], rax        ; RFLAGS inside: IF clear
    mov rax, [rsp + 16]
    mov [{OUT + 16:#x}], rax       ; RFLAGS pushed: IF set
    iretq
""", tmp_path, "irq")
    memory.write(HANDLERS, ud)
    memory.write(HANDLERS + 0x100, irq)
    long_mode(cpu, memory, {6: gate64(HANDLERS, 0x08, 0xE),
                            0x30: gate64(HANDLERS + 0x100, 0x08, 0xE)})
    code = assemble(f"""
bits 64
org {CODE:#x}
    ud2
    mov dword [{OUT + 24:#x}], 1
    sti
    cli
    hlt
    jmp $-2
""", tmp_path)
    assert run(cpu, memory, code) is StopReason.HALTED
    assert struct.unpack_from("<Q", memory.data, OUT)[0] == CODE
    assert memory.read_u32(OUT + 24) == 1
    cpu.set_reg("rflags", 0x202)
    cpu.deliver(0x30)                                  # an IRQ from the controller
    assert cpu.run(10_000).reason is StopReason.HALTED
    assert not struct.unpack_from("<Q", memory.data, OUT + 8)[0] & 0x200
    assert struct.unpack_from("<Q", memory.data, OUT + 16)[0] & 0x200
    fault = assemble(f"bits 64\norg {CODE + 0x100:#x}\n    mov rax, [{HOLE:#x}]\n", tmp_path,
                     "f")
    with pytest.raises(CpuFault, match="triple fault at 0008:"):
        run(cpu, memory, fault, at=CODE + 0x100)


def protected_paged(cpu: Cpu, memory: GuestMemory, gates: dict[int, bytes]) -> None:
    """32-bit protected mode, 32-bit paging (PD at PML4, one table at PT), ring 0."""
    gdt = b"".join([
        bytes(8),
        gdt_entry(0, 0xFFFFF, 0x9A, 0xC),   # 08h: 32-bit code, DPL 0
        gdt_entry(0, 0xFFFFF, 0x92, 0xC),   # 10h: data, DPL 0
        gdt_entry(0, 0xFFFFF, 0xFA, 0xC),   # 18h: 32-bit code, DPL 3
        gdt_entry(0, 0xFFFFF, 0xF2, 0xC),   # 20h: data, DPL 3
        gdt_entry(TSS, 0x67, 0x89, 0x0),    # 28h: 32-bit TSS
    ])
    memory.write(GDT, gdt)
    tss = bytearray(0x68)
    struct.pack_into("<IH", tss, 4, KSTACK, 0x10)    # ESP0, SS0
    memory.write(TSS, bytes(tss))
    idt = bytearray(256 * 8)
    for vector, gate in gates.items():
        idt[vector * 8 : vector * 8 + 8] = gate
    memory.write(IDT, bytes(idt))
    memory.write(PML4, struct.pack("<I", PT | P | RW | US))
    memory.write(PT, b"".join(struct.pack("<I", (n << 12) | P | RW | US) for n in range(1024)))
    memory.write(PT + (HOLE >> 12) * 4, struct.pack("<I", 0))
    uc = cpu.uc
    uc.reg_write(X.UC_X86_REG_GDTR, (0, GDT, len(gdt) - 1, 0))
    uc.reg_write(X.UC_X86_REG_IDTR, (0, IDT, len(idt) - 1, 0))
    uc.reg_write(X.UC_X86_REG_TR, (0x28, TSS, 0x67, 0x8900))
    uc.reg_write(X.UC_X86_REG_CR3, PML4)
    uc.reg_write(X.UC_X86_REG_CR0, 0x8001_0011)
    cpu.engine.load_segments({CS: seg(0x08, 0x9B, 0xC), SS: seg(0x10, 0x93, 0xC),
                              DS: seg(0x10, 0x93, 0xC), ES: seg(0x10, 0x93, 0xC)})
    uc.reg_write(X.UC_X86_REG_RSP, KSTACK)


@needs_nasm
def test_32bit_paging_user_page_faults_switch_to_esp0_from_the_tss(tmp_path: Path):
    """Ring-3 code faults twice (read, then write) on a not-present page: each #PF
    arrives through the 32-bit interrupt gate on SS0:ESP0 with SS, ESP, EFLAGS, CS,
    EIP and an error code with U/S set; the handler maps the page and retries."""
    cpu, memory = make_cpu()
    handler = assemble(f"""
bits 32
org {HANDLERS:#x}
    push eax
    push ebx
    mov ebx, [{OUT:#x}]
    shl ebx, 5
    add ebx, {OUT + 0x40:#x}
    lea eax, [esp + 8]
    mov [ebx], eax               ; ESP at entry
    mov eax, [esp + 8]
    mov [ebx + 4], eax           ; error code
    mov eax, cr2
    mov [ebx + 8], eax
    mov eax, [esp + 12]
    mov [ebx + 12], eax          ; EIP
    mov eax, [esp + 16]
    mov [ebx + 16], eax          ; CS
    mov eax, [esp + 24]
    mov [ebx + 20], eax          ; ESP
    mov eax, [esp + 28]
    mov [ebx + 24], eax          ; SS
    mov [ebx + 28], ss
    inc dword [{OUT:#x}]
    mov eax, cr2
    shr eax, 12
    mov dword [{PT:#x} + eax * 4], 0
    mov ebx, cr2
    and ebx, ~0xFFF
    or ebx, 7
    mov [{PT:#x} + eax * 4], ebx
    mov eax, cr2
    invlpg [eax]
    pop ebx
    pop eax
    add esp, 4
    iretd
""", tmp_path, "pf32")
    memory.write(HANDLERS, handler)
    protected_paged(cpu, memory, {14: gate32(HANDLERS, 0x08, 0xE)})
    memory.write(PT + ((HOLE + 0x1000) >> 12) * 4, struct.pack("<I", 0))
    user = assemble(f"""
bits 32
org {USER:#x}
    mov eax, [{HOLE + 0x44:#x}]
    mov dword [{HOLE + 0x1048:#x}], 0xCAFE
    mov [{OUT + 0x20:#x}], eax
    int3
""", tmp_path, "u32")
    memory.write(USER, user)
    cpu.engine.load_segments({CS: seg(0x1B, 0xFB, 0xC), SS: seg(0x23, 0xF3, 0xC),
                              DS: seg(0x23, 0xF3, 0xC), ES: seg(0x23, 0xF3, 0xC)})
    cpu.set_reg("rsp", USTACK)
    cpu.set_reg("rip", USER)
    with pytest.raises(CpuFault):
        cpu.run(100_000)  # the int3 at the end has no gate: #GP, #DF, triple fault
    assert memory.read_u32(OUT) == 2
    for n, (code, cr2, eip) in enumerate([(0b100, HOLE + 0x44, USER),
                                          (0b110, HOLE + 0x1048, USER + 5)]):
        rec = struct.unpack_from("<8I", memory.data, OUT + 0x40 + 32 * n)
        assert rec[0] == KSTACK - 24             # SS, ESP, EFLAGS, CS, EIP, error code
        assert rec[1] == code and rec[2] == cr2 and rec[3] == eip
        assert rec[4] == 0x1B and rec[5] == USTACK and rec[6] == 0x23 and rec[7] == 0x10
    assert memory.read_u32(HOLE + 0x1048) == 0xCAFE


@needs_nasm
def test_syscall_and_sysretq_round_trip_from_ring_3(tmp_path: Path):
    """SYSCALL (carried out by the glue: Unicorn skips it) and SYSRETQ (the engine's).

    SDM vol 2B: RCX = next RIP, R11 = RFLAGS, RFLAGS &= ~FMASK, CS = STAR[47:32],
    SS = STAR[47:32] + 8, RIP = LSTAR; SYSRETQ: CS = STAR[63:48] + 16 | 3,
    SS = STAR[63:48] + 8 | 3, RIP = RCX.
    """
    cpu, memory = make_cpu()
    entry = assemble(f"""
bits 64
org {HANDLERS:#x}
    inc qword [{OUT:#x}]
    cmp qword [{OUT:#x}], 1
    jne .second
    mov [{OUT + 8:#x}], rcx
    mov [{OUT + 16:#x}], r11
    mov [{OUT + 24:#x}], cs
    mov [{OUT + 32:#x}], ss
    pushfq
    pop rax
    mov [{OUT + 40:#x}], rax
    o64 sysret
.second:
    cli
    hlt
    jmp .second
""", tmp_path, "entry")
    memory.write(HANDLERS, entry)
    long_mode(cpu, memory, {})
    uc = cpu.uc
    uc.msr_write(0xC000_0080, uc.msr_read(0xC000_0080) | 1)       # EFER.SCE
    uc.msr_write(0xC000_0081, 0x08 << 32 | 0x10 << 48)             # STAR
    uc.msr_write(0xC000_0082, HANDLERS)                            # LSTAR
    uc.msr_write(0xC000_0084, 0x200)                               # FMASK: IF
    user = assemble(f"""
bits 64
org {USER:#x}
    syscall
    mov [{OUT + 48:#x}], cs
    mov [{OUT + 56:#x}], ss
    syscall
""", tmp_path, "user")
    memory.write(USER, user)
    cpu.engine.load_segments({CS: seg(0x1B, 0xFB, 0xA), SS: seg(0x23, 0xF3, 0xC)})
    cpu.set_reg("rflags", 0x202)
    cpu.set_reg("rsp", USTACK)
    cpu.set_reg("rip", USER)
    assert cpu.run(10_000).reason is StopReason.HALTED
    q = lambda at: struct.unpack_from("<Q", memory.data, OUT + at)[0]  # noqa: E731
    assert q(0) == 2
    assert q(8) == USER + 2                       # RCX: the instruction after SYSCALL
    assert q(16) & 0x200                          # R11: the user's RFLAGS, IF set
    assert q(24) == 0x08 and q(32) == 0x10        # STAR[47:32] and + 8
    assert not q(40) & 0x200                      # FMASK cleared IF
    assert q(48) == 0x10 + 16 | 3 and q(56) == 0x10 + 8 | 3  # back in ring 3
    assert cpu.reg("rcx") == USER + 2 + 7 + 7 + 2  # the second SYSCALL's RCX


@needs_nasm
def test_syscall_without_efer_sce_is_ud_at_the_instruction(tmp_path: Path):
    cpu, memory = make_cpu()
    ud = assemble(f"bits 64\norg {HANDLERS:#x}\n    mov rax, [rsp]\n"
                  f"    mov [{OUT:#x}], rax\n    cli\n    hlt\n    jmp $-2\n", tmp_path, "ud")
    memory.write(HANDLERS, ud)
    long_mode(cpu, memory, {6: gate64(HANDLERS, 0x08, 0xE)})
    code = assemble(f"bits 64\norg {CODE:#x}\n    nop\n    syscall\n", tmp_path)
    assert run(cpu, memory, code) is StopReason.HALTED
    assert struct.unpack_from("<Q", memory.data, OUT)[0] == CODE + 1


@needs_nasm
def test_sysenter_and_sysexit_in_32bit_protected_mode(tmp_path: Path):
    """SYSENTER from ring 3 (the glue) and SYSEXIT back (the engine): SDM vol 2B."""
    cpu, memory = make_cpu()
    entry = assemble(f"""
bits 32
org {HANDLERS:#x}
    inc dword [{OUT:#x}]
    cmp dword [{OUT:#x}], 1
    jne .second
    mov [{OUT + 4:#x}], esp
    mov [{OUT + 8:#x}], cs
    mov [{OUT + 12:#x}], ss
    mov ecx, {USTACK:#x}
    mov edx, {USER + 2:#x}
    sysexit
.second:
    cli
    hlt
    jmp .second
""", tmp_path, "entry32")
    memory.write(HANDLERS, entry)
    protected_paged(cpu, memory, {})
    uc = cpu.uc
    uc.msr_write(0x174, 0x08)
    uc.msr_write(0x175, KSTACK - 0x100)
    uc.msr_write(0x176, HANDLERS)
    user = assemble(f"""
bits 32
org {USER:#x}
    sysenter
    mov [{OUT + 16:#x}], cs
    mov [{OUT + 20:#x}], ss
    mov [{OUT + 24:#x}], esp
    sysenter
""", tmp_path, "user32")
    memory.write(USER, user)
    cpu.engine.load_segments({CS: seg(0x1B, 0xFB, 0xC), SS: seg(0x23, 0xF3, 0xC),
                              DS: seg(0x23, 0xF3, 0xC), ES: seg(0x23, 0xF3, 0xC)})
    cpu.set_reg("rsp", USTACK)
    cpu.set_reg("rip", USER)
    assert cpu.run(10_000).reason is StopReason.HALTED
    d = lambda at: memory.read_u32(OUT + at)  # noqa: E731
    assert d(0) == 2
    assert d(4) == KSTACK - 0x100 and d(8) == 0x08 and d(12) == 0x10
    assert d(16) == 0x08 + 16 | 3 and d(20) == 0x08 + 24 | 3 and d(24) == USTACK


@needs_nasm
@pytest.mark.parametrize(("name", "code", "setup", "expected"), [
    # Ring-3 write to a supervisor-only page: P | W | U.
    ("user write to a supervisor page", "mov dword [{page:#x}], 1", "supervisor", 0b0111),
    # Ring-3 read of a page that is not present: U only.
    ("user read, not present", "mov eax, [{page:#x}]", "absent", 0b0100),
    # Ring-3 instruction fetch from an XD page with EFER.NXE: P | U | I/D.
    ("user fetch from an XD page", "jmp {page:#x}", "xd", 0b10101),
    # A reserved bit (XD without EFER.NXE): P | U | RSVD.
    ("XD without NXE is reserved", "mov eax, [{page:#x}]", "xd-no-nxe", 0b01101),
])
def test_long_mode_page_fault_error_code_bits_from_user_mode(tmp_path: Path, name: str,
                                                              code: str, setup: str,
                                                              expected: int):
    """The #PF error code (SDM vol 3 figure 4-12) as the handler sees it, bit by bit."""
    cpu, memory = make_cpu()
    handler = assemble(f"""
bits 64
org {HANDLERS:#x}
    mov rax, [rsp]
    mov [{OUT:#x}], rax
    mov rax, cr2
    mov [{OUT + 8:#x}], rax
    mov rax, [rsp + 8]
    mov [{OUT + 16:#x}], rax
    cli
    hlt
    jmp $-2
""", tmp_path, "pfcode")
    memory.write(HANDLERS, handler)
    long_mode(cpu, memory, {14: gate64(HANDLERS, 0x08, 0xE)})
    page = 0x6_0000
    pte = {"supervisor": page | P | RW, "absent": 0, "xd": page | P | RW | US | 1 << 63,
           "xd-no-nxe": page | P | RW | US | 1 << 63}[setup]
    memory.write(PT + (page >> 12) * 8, struct.pack("<Q", pte))
    if setup == "xd":
        cpu.uc.msr_write(0xC000_0080, cpu.uc.msr_read(0xC000_0080) | 0x800)   # EFER.NXE
    user = assemble(f"bits 64\norg {USER:#x}\n    {code.format(page=page)}\n", tmp_path, "u")
    memory.write(USER, user)
    cpu.engine.load_segments({CS: seg(0x1B, 0xFB, 0xA), SS: seg(0x23, 0xF3, 0xC)})
    cpu.set_reg("rsp", USTACK)
    cpu.set_reg("rip", USER)
    assert cpu.run(10_000).reason is StopReason.HALTED, name
    error, cr2, rip = struct.unpack_from("<3Q", memory.data, OUT)
    assert error == expected, f"{name}: {error:#b}"
    assert cr2 == page
    assert rip == (page if setup == "xd" else USER)
    # The glue's own page walk agrees with the engine's error code.
    with pytest.raises(PageFault) as info:
        cpu.linear_to_physical(page, write="dword" in code, user=True, fetch="jmp" in code)
    assert info.value.error_code == expected


@needs_nasm
def test_long_mode_code_in_the_kernel_half_survives_slicing(tmp_path: Path, monkeypatch):
    import emu.pc.cpu as cpu_module

    monkeypatch.setattr(cpu_module, "MAX_SLICE", 5)
    cpu, memory = make_cpu()
    long_mode(cpu, memory, {})
    # PML4[511] → PDPT[510] → the same PD: FFFF_FFFF_8000_0000 maps physical 0.
    high_pdpt = 0x14000
    memory.write(PML4 + 511 * 8, struct.pack("<Q", high_pdpt | P | RW))
    memory.write(high_pdpt + 510 * 8, struct.pack("<Q", PD | P | RW))
    base = 0xFFFF_FFFF_8000_0000
    code = assemble(f"""
bits 64
org {base + CODE:#x}
    mov ecx, 100
.loop:
    dec ecx
    jnz .loop
    mov [{OUT:#x}], rcx
    lea rax, [rel .loop]
    mov [{OUT + 8:#x}], rax
    cli
    hlt
    jmp $-2
""", tmp_path)
    memory.write(CODE, code)
    cpu.set_reg("rip", base + CODE)
    cpu.halted = False
    assert cpu.run(10_000).reason is StopReason.HALTED
    assert struct.unpack_from("<Q", memory.data, OUT + 8)[0] == base + CODE + 5


@needs_nasm
def test_real_mode_divide_errors_in_a_row_through_a_relocated_ivt(tmp_path: Path):
    """#DE is contributory: without clearing the engine's memory of the first, the
    second would arrive as #DF.  The IVT is at IDTR.base (here 8000h, set by lidt),
    the frame is FLAGS, CS, IP with IP at the DIV (a fault), IF/TF cleared."""
    cpu, memory = make_cpu()
    code = assemble("""
bits 16
org 0x7C00
    lidt [idtr]
    mov word [0x8000], de         ; vector 0 of the relocated IVT
    mov word [0x8002], 0
    xor bx, bx
    sti
first:
    div bl
second:
    div bl
    cli
    hlt
    jmp $-2
de:
    mov bp, sp
    mov ax, [bp]                  ; IP
    mov si, [0x6000]              ; count
    shl si, 1
    mov [0x6002 + si], ax         ; IPs
    mov ax, [bp + 4]              ; FLAGS
    mov [0x6006 + si], ax
    pushf
    pop ax
    mov [0x600A + si], ax         ; FLAGS inside the handler
    inc word [0x6000]
    add word [bp], 2              ; skip the 2-byte div bl
    iret
align 2
idtr: dw 0x3FF
    dd 0x8000
""", tmp_path, "de")
    memory.write(0x7C00, code)
    cpu.reset_real_mode(0, 0x7C00, sp=0x7000)
    assert cpu.run(10_000).reason is StopReason.HALTED
    at = code.index(bytes.fromhex("f6f3"))  # div bl
    values = struct.unpack_from("<7H", memory.data, 0x6000)
    assert values[0] == 2
    assert values[1:3] == (0x7C00 + at, 0x7C00 + at + 2)
    assert all(f & 0x200 for f in values[3:5])             # IF was set when it happened
    assert not any(f & 0x300 for f in values[5:7])         # IF and TF clear in the handler


@needs_nasm
def test_real_mode_frame_wraps_at_the_stack_segment_end(tmp_path: Path):
    """SP = 2: FLAGS at SS:0000, CS at SS:FFFE, IP at SS:FFFC (16-bit wrap)."""
    cpu, memory = make_cpu()
    code = assemble("""
bits 16
org 0x7C00
    mov ax, 0x2000
    mov ss, ax
    mov sp, 2
    int 0x40
    cli
    hlt
    jmp $-2
handler:
    iret
""", tmp_path, "wrap")
    memory.write(0x7C00, code)
    memory.write(0x40 * 4, struct.pack("<HH", 0x7C00 + len(code) - 1, 0))
    cpu.reset_real_mode(0, 0x7C00)
    assert cpu.run(10_000).reason is StopReason.HALTED
    assert memory.read_u16(0x2_0000) & 0x2                  # FLAGS at SS:0000
    assert memory.read_u16(0x2_FFFE) == 0                   # CS at SS:FFFE
    assert memory.read_u16(0x2_FFFC) == 0x7C00 + 10         # IP after int 40h
    assert cpu.reg("sp") == 2                               # iret popped it back


@needs_nasm
def test_pae_kernel_half_gdt_idt_tss_and_stack_are_read_through_the_page_tables(
        tmp_path: Path):
    """Linux's layout: GDTR, IDTR, TR and ESP0 are virtual addresses in the kernel half
    (C000_0000h + physical).  Read as physical they would be outside RAM; the glue
    walks the PAE tables for every one of them and for the frame it pushes."""
    high = 0xC000_0000
    cpu, memory = make_cpu()
    pdpt, pd_low, pd_high, pt_low = 0x10000, 0x11000, 0x12000, 0x13000
    memory.write(pdpt, struct.pack("<4Q", pd_low | P, 0, 0, pd_high | P))
    memory.write(pd_low, struct.pack("<2Q", 0 | P | RW | US | 0x80, pt_low | P | RW | US))
    memory.write(pd_high, struct.pack("<Q", 0 | P | RW | 0x80))   # C000_0000h → 0, ring 0
    memory.write(pt_low, b"".join(struct.pack("<Q", (0x20_0000 + (n << 12)) | P | RW | US)
                                  for n in range(512)))
    absent = 0x20_5000
    memory.write(pt_low + 5 * 8, struct.pack("<Q", 0))
    gdt = b"".join([bytes(8), gdt_entry(0, 0xFFFFF, 0x9A, 0xC), gdt_entry(0, 0xFFFFF, 0x92, 0xC),
                    gdt_entry(0, 0xFFFFF, 0xFA, 0xC), gdt_entry(0, 0xFFFFF, 0xF2, 0xC),
                    gdt_entry(high + TSS, 0x67, 0x89, 0x0)])
    memory.write(GDT, gdt)
    tss = bytearray(0x68)
    struct.pack_into("<IH", tss, 4, high + KSTACK, 0x10)
    memory.write(TSS, bytes(tss))
    pf = assemble(f"""
bits 32
org {high + HANDLERS:#x}
    push eax
    lea eax, [esp + 4]
    mov [{high + OUT:#x}], eax        ; ESP at entry (virtual)
    mov eax, cr2
    mov [{high + OUT + 4:#x}], eax
    mov eax, [esp + 4]
    mov [{high + OUT + 8:#x}], eax    ; error code
    mov dword [{high + pt_low + 5 * 8:#x}], {absent | P | RW | US:#x}
    mov eax, cr2
    invlpg [eax]
    pop eax
    add esp, 4
    iretd
""", tmp_path, "pfhigh")
    stop = assemble(f"bits 32\norg {high + HANDLERS + 0x100:#x}\n"
                    f"    mov [{high + OUT + 12:#x}], esp\n    cli\n    hlt\n    jmp $-2\n",
                    tmp_path, "stop")
    memory.write(HANDLERS, pf)
    memory.write(HANDLERS + 0x100, stop)
    idt = bytearray(256 * 8)
    idt[14 * 8 : 15 * 8] = gate32(high + HANDLERS, 0x08, 0xE)
    idt[0x82 * 8 : 0x83 * 8] = gate32(high + HANDLERS + 0x100, 0x08, 0xE, dpl=3)
    memory.write(IDT, bytes(idt))
    user = assemble(f"""
bits 32
org {USER:#x}
    mov eax, [{absent + 0x10:#x}]
    mov [{absent:#x}], eax
    int 0x82
""", tmp_path, "userpae")
    memory.write(USER, user)
    memory.write(absent + 0x10, b"\x78\x56\x34\x12")  # identity-mapped below 4 MiB
    uc = cpu.uc
    uc.reg_write(X.UC_X86_REG_GDTR, (0, high + GDT, len(gdt) - 1, 0))
    uc.reg_write(X.UC_X86_REG_IDTR, (0, high + IDT, len(idt) - 1, 0))
    uc.reg_write(X.UC_X86_REG_TR, (0x28, high + TSS, 0x67, 0x8900))
    uc.reg_write(X.UC_X86_REG_CR4, 0x20)
    uc.reg_write(X.UC_X86_REG_CR3, pdpt)
    uc.reg_write(X.UC_X86_REG_CR0, 0x8001_0011)
    cpu.engine.load_segments({CS: seg(0x1B, 0xFB, 0xC), SS: seg(0x23, 0xF3, 0xC),
                              DS: seg(0x23, 0xF3, 0xC), ES: seg(0x23, 0xF3, 0xC)})
    cpu.set_reg("rsp", USTACK)
    cpu.set_reg("rip", USER)
    assert cpu.run(10_000).reason is StopReason.HALTED
    entry_esp, cr2, error, stop_esp = struct.unpack_from("<4I", memory.data, OUT)
    assert entry_esp == high + KSTACK - 24          # SS, ESP, EFLAGS, CS, EIP, error code
    assert cr2 == absent + 0x10 and error == 0b100  # user read, not present
    assert stop_esp == high + KSTACK - 20           # no error code for INT 82h
    frame = struct.unpack_from("<5I", memory.data, KSTACK - 20)
    assert frame == (USER + 5 + 5 + 2, 0x1B, frame[2], USTACK, 0x23)
    assert memory.read_u32(0x20_5000) == 0x12345678  # the retried read found the page


class OneIrq:
    """An interrupt controller with one request pending (vector 20h)."""

    def __init__(self) -> None:
        self.waiting = True

    def pending(self) -> bool:
        return self.waiting

    def acknowledge(self) -> int:
        self.waiting = False
        return 0x20


@needs_nasm
def test_irq_from_ring_3_through_a_32bit_interrupt_gate_with_paging(tmp_path: Path):
    """The run loop injects the IRQ while ring-3 code spins with IF set: SS0:ESP0 from the
    TSS, no error code, IF cleared by the interrupt gate, EFLAGS pushed with IF set."""
    cpu, memory = make_cpu()
    irq = assemble(f"""
bits 32
org {HANDLERS:#x}
    mov [{OUT:#x}], esp
    pushfd
    pop eax
    mov [{OUT + 4:#x}], eax
    cli
    hlt
    jmp $-2
""", tmp_path, "irq32")
    memory.write(HANDLERS, irq)
    protected_paged(cpu, memory, {0x20: gate32(HANDLERS, 0x08, 0xE)})
    memory.write(USER, assemble(f"bits 32\norg {USER:#x}\nspin: inc ecx\n    jmp spin\n",
                                tmp_path, "spin"))
    cpu.engine.load_segments({CS: seg(0x1B, 0xFB, 0xC), SS: seg(0x23, 0xF3, 0xC)})
    cpu.set_reg("rsp", USTACK)
    cpu.set_reg("rflags", 0x202)
    cpu.set_reg("rip", USER)
    cpu.interrupts = OneIrq()
    assert cpu.run(100_000).reason is StopReason.HALTED
    esp, inside = struct.unpack_from("<2I", memory.data, OUT)
    assert esp == KSTACK - 20 and not inside & 0x200
    eip, cs, eflags, user_esp, ss = struct.unpack_from("<5I", memory.data, KSTACK - 20)
    assert USER <= eip < USER + 4 and cs == 0x1B and eflags & 0x200
    assert user_esp == USTACK and ss == 0x23


@needs_nasm
def test_wrmsr_rdmsr_and_cpuid_are_executed_by_the_engine(tmp_path: Path):
    """No hook needed (SDM vol 2B): WRMSR/RDMSR of LSTAR round-trip, CPUID reports long
    mode, SYSCALL and NX.  An MSR the engine does not know reads as 0 (the SDM says #GP)."""
    cpu, memory = make_cpu()
    long_mode(cpu, memory, {})
    code = assemble(f"""
bits 64
org {CODE:#x}
    mov ecx, 0xC0000082
    mov eax, 0x89ABCDEF
    mov edx, 0xFFFFFFFF
    wrmsr
    xor eax, eax
    xor edx, edx
    rdmsr
    mov [{OUT:#x}], eax
    mov [{OUT + 4:#x}], edx
    mov eax, 0x80000001
    cpuid
    mov [{OUT + 8:#x}], edx
    mov ecx, 0x1234
    rdmsr
    mov [{OUT + 12:#x}], eax
    cli
    hlt
    jmp $-2
""", tmp_path)
    assert run(cpu, memory, code) is StopReason.HALTED
    low, high, ext, unknown = struct.unpack_from("<4I", memory.data, OUT)
    assert (high << 32 | low) == 0xFFFF_FFFF_89AB_CDEF
    assert cpu.uc.msr_read(0xC000_0082) == 0xFFFF_FFFF_89AB_CDEF
    assert ext >> 29 & 1 and ext >> 20 & 1 and ext >> 11 & 1   # LM, NX, SYSCALL
    assert unknown == 0


def _read_tsc_three_ways(tmp_path: Path) -> tuple[list[int], int, int]:
    cpu, memory = make_cpu()
    cpu.use_virtual_tsc()
    long_mode(cpu, memory, {})
    cpu.uc.msr_write(0xC000_0103, 0x5A5A_0003)            # IA32_TSC_AUX
    # As Linux's rdtsc(): ``rax | rdx << 32`` from the full registers, so the top
    # halves must come back clear (they are all ones before each read here).
    read = "mov rax, -1\n    mov rdx, rax\n    mov rcx, rax\n    {insn}\n" \
        "    shl rdx, 32\n    or rax, rdx\n    mov [{at:#x}], rax\n"
    code = assemble(f"""
bits 64
org {CODE:#x}
{read.format(insn="rdtsc", at=OUT)}
{read.format(insn="rdtscp", at=OUT + 8)}
    mov [{OUT + 32:#x}], rcx
{read.format(insn="rdtsc", at=OUT + 16)}
{read.format(insn="rdtscp", at=OUT + 24)}
    cli
    hlt
""", tmp_path)
    assert run(cpu, memory, code) is StopReason.HALTED
    reads = list(struct.unpack_from("<4Q", memory.data, OUT))
    return reads, struct.unpack_from("<Q", memory.data, OUT + 32)[0], cpu.clock.instructions


@needs_nasm
def test_rdtsc_and_rdtscp_both_read_the_virtual_clock(tmp_path: Path):
    """Linux reads the TSC with RDTSCP (``rdtsc_ordered``, CPUID 80000001h EDX bit 27
    is set) and with RDTSC (``sched_clock``): both must be the one virtual counter,
    strictly increasing and the same every run, with the top halves of RAX and RDX
    cleared; RDTSCP also loads RCX with IA32_TSC_AUX (SDM vol 2B).  Unicorn's own
    RDTSCP counts host nanoseconds; a kernel reading garbage high halves got a
    "negative" TSC and printk times of 18444899453 s."""
    reads, aux, clock = _read_tsc_three_ways(tmp_path)
    assert all(a < b for a, b in zip(reads, reads[1:], strict=False)), [hex(r) for r in reads]
    assert reads[-1] <= clock < reads[-1] + 1000   # the clock itself, not host time
    assert aux == 0x5A5A_0003
    assert _read_tsc_three_ways(tmp_path)[0] == reads


@needs_nasm
def test_an_exact_limit_inside_a_long_kernel_half_block_makes_progress(tmp_path: Path,
                                                                       monkeypatch):
    """The run loop's exact limit steps the block that would cross it under a code hook.
    Unicorn translates that block again and, with a hook call per instruction, may cut
    it shorter than the block the clock measured (a 565-byte block of Linux's SHA-256
    came back 556 bytes).  The stepped block must still be recognised, or the stepping
    stops before its first instruction every time: the guest never moves and ``run``
    never returns (how Linux hung after "Asymmetric key parser 'x509' registered")."""
    import emu.pc.cpu as cpu_module

    cpu, memory = make_cpu()
    if cpu.clock_mode != "native":
        pytest.skip("the exact stepping belongs to the native block clock")
    long_mode(cpu, memory, {})
    high_pdpt = 0x14000
    memory.write(PML4 + 511 * 8, struct.pack("<Q", high_pdpt | P | RW))
    memory.write(high_pdpt + 510 * 8, struct.pack("<Q", PD | P | RW))
    base = 0xFFFF_FFFF_8000_0000
    body = "\n".join(["    rol ecx, 13", "    add eax, ecx", "    xor edx, eax"] * 100)
    code = assemble(f"""
bits 64
org {base + CODE:#x}
    xor eax, eax
    xor ecx, ecx
.loop:
{body}
    inc rbx
    jmp .loop
""", tmp_path)
    memory.write(CODE, code)
    cpu.set_reg("rip", base + CODE)
    cpu.set_reg("rbx", 0)
    steps = [0]
    original = cpu_module.Cpu._step_partial_block

    def counted(self: Cpu) -> int:
        steps[0] += 1
        assert steps[0] < 1000, "the stepped block never runs"
        return original(self)

    monkeypatch.setattr(cpu_module.Cpu, "_step_partial_block", counted)
    for n in range(1, 40):
        result = cpu.run(37)
        assert result.reason is StopReason.INSTRUCTION_LIMIT
        assert result.instructions == 37 and cpu.clock.instructions == 37 * n
    assert cpu.reg("rbx") >= 4          # the loop went round (302 instructions a turn)
    assert steps[0] >= 30
