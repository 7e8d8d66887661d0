"""Fast stores (emu/pc/tlb.py): the virtual TLB while paging is off, the engine's own after.

The expected behaviour is the x86 one whatever the TLB does: stores land, code that
rewrites itself runs its new bytes (SDM vol 3 §11.6, self-modifying code), a write to
the ROM faults as before, and a guest that turns paging on (SDM vol 3 §4.3, 32-bit
paging) keeps running through its page tables.

With IA-32e paging the C fill walks the tables itself (SDM vol 3 §4.5): the tests below
lay them out from Python (tests/test_delivery.py's machine) and check what the CPU would
do — Accessed and Dirty flags (§4.8), page faults with their error code and CR2 (§4.7,
delivered through the engine), code rewritten through a second mapping of its page, and
the block clock's exact counts under paging — with the C walk and with the engine's TLB.
"""

from __future__ import annotations

import struct

import pytest
from unicorn import x86_const as X

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
    if cpu.tlb is not None:  # 32-bit paging: the C walk leaves it to the engine
        assert not cpu.tlb.virtual and cpu.tlb.state.switched == 2


# -- IA-32e paging: the C walk (emu/pc/_blockclock.c, bc_walk) ---------------------------

A, D, PS, XD = 0x20, 0x40, 0x80, 1 << 63


def _paged(tmp_path, handlers: dict[int, bytes] | None = None):
    """tests/test_delivery.py's long-mode machine: ring 0, 4 KiB identity pages for the
    first 2 MiB (P | RW | US, Accessed and Dirty clear), a #PF handler at vector 14 that
    records error code, CR2 and RIP at OUT and halts."""
    from tests import test_delivery as tdm

    cpu, memory = tdm.make_cpu()
    handler = assemble(f"""
bits 64
org {tdm.HANDLERS:#x}
    mov rax, [rsp]
    mov [{tdm.OUT:#x}], rax
    mov rax, cr2
    mov [{tdm.OUT + 8:#x}], rax
    mov rax, [rsp + 8]
    mov [{tdm.OUT + 16:#x}], rax
    cli
    hlt
    jmp $-2
""", tmp_path, "pf")
    memory.write(tdm.HANDLERS, handler)
    tdm.long_mode(cpu, memory, {14: tdm.gate64(tdm.HANDLERS, 0x08, 0xE)})
    return cpu, memory, tdm


def _entry(memory, at: int) -> int:
    return int.from_bytes(memory.data[at : at + 8].tobytes(), "little")


def _run64(cpu, memory, tdm, tmp_path, source: str, name: str = "c") -> StopReason:
    code = assemble(f"bits 64\norg {tdm.CODE:#x}\n{source}\n    cli\n    hlt\n"
                    "    jmp $-2\n", tmp_path, name)
    return tdm.run(cpu, memory, code)


def test_accessed_and_dirty_flags_are_set_as_the_cpu_sets_them(tmp_path, tlb_mode):
    # A read sets Accessed on the PML4E, PDPTE, PDE and PTE and leaves Dirty clear; the
    # store that follows (the TLB entry of a clean page allows no write) sets Dirty.
    # A 2 MiB page (PD entry 1: 2-4 MiB) gets both flags in its PDE.
    cpu, memory, tdm = _paged(tmp_path)
    memory.write(tdm.PD + 8, (0x20_0000 | 0x83).to_bytes(8, "little"))  # P | RW | PS
    page = 0x6_0000
    pte = tdm.PT + (page >> 12) * 8
    assert _run64(cpu, memory, tdm, tmp_path, f"""
    mov eax, [{page:#x}]
    mov [{tdm.OUT + 0x100:#x}], eax
    mov rax, [{tdm.PT + (page >> 12) * 8:#x}]   ; the PTE as the read left it
    mov [{tdm.OUT + 0x108:#x}], rax
    mov dword [{page + 8:#x}], 0x1234
    mov eax, [0x200010]
    mov dword [0x300000], 7""") is StopReason.HALTED
    seen_after_read = _entry(memory, tdm.OUT + 0x108)
    assert seen_after_read & (A | D) == A
    assert _entry(memory, pte) & (A | D) == A | D
    for table in (tdm.PML4, tdm.PDPT, tdm.PD):
        assert _entry(memory, table) & A, hex(table)
    assert _entry(memory, tdm.PD + 8) & (A | D) == A | D
    assert memory.read_u32(0x300000) == 7 and memory.read_u32(page + 8) == 0x1234
    # A page only read from keeps Dirty clear; one never touched keeps Accessed clear.
    code_pte = tdm.PT + (tdm.CODE >> 12) * 8
    assert _entry(memory, code_pte) & (A | D) == A
    assert _entry(memory, tdm.PT + (0x7_8000 >> 12) * 8) & A == 0
    if cpu.tlb is not None:
        assert cpu.tlb.state.walks > 0 and cpu.tlb.handovers == 0


@pytest.mark.parametrize("name, source, setup, expected", [
    # Supervisor write to a read-only page with CR0.WP: P | W.
    ("supervisor write, WP", "mov dword [{page:#x}], 1", "read-only", 0b011),
    # Supervisor fetch from a user page with CR4.SMEP: P | I/D.
    ("supervisor fetch, SMEP", "jmp {page:#x}", "smep", 0b10001),
    # A reserved bit in a 2 MiB PDE (bit 13): P | RSVD.
    ("reserved bit in a 2 MiB page", "mov eax, [0x200000]", "rsvd", 0b01001),
    # Not present at the PDPT level, write: W.
    ("not present above the leaf", "mov dword [0x40000000], 1", "absent", 0b010),
])
def test_page_faults_arrive_through_the_engine_with_error_code_and_cr2(
        tmp_path, tlb_mode, name, source, setup, expected):
    cpu, memory, tdm = _paged(tmp_path)
    page = 0x6_0000
    if setup == "read-only":
        memory.write(tdm.PT + (page >> 12) * 8, (page | 0x5).to_bytes(8, "little"))
    if setup == "smep":  # the code and the handler on supervisor pages, the target not
        memory.write(page, bytes([0xF4]))
        for at in (tdm.CODE, tdm.HANDLERS):
            memory.write(tdm.PT + (at >> 12) * 8, (at | 0x3).to_bytes(8, "little"))
        cpu.uc.reg_write(X.UC_X86_REG_CR4, cpu.uc.reg_read(X.UC_X86_REG_CR4) | 1 << 20)
    if setup == "rsvd":
        memory.write(tdm.PD + 8, (0x20_0000 | 1 << 13 | 0x83).to_bytes(8, "little"))
    assert _run64(cpu, memory, tdm, tmp_path, "    " + source.format(page=page)) is (
        StopReason.HALTED), name
    error, cr2, rip = struct.unpack_from("<3Q", memory.data, tdm.OUT)
    assert error == expected, f"{name}: {error:#b}"
    assert cr2 == {"rsvd": 0x200000, "absent": 0x40000000}.get(setup, page)
    assert rip == (page if setup == "smep" else tdm.CODE)
    if cpu.tlb is not None:
        assert cpu.tlb.handovers >= 1  # the engine's MMU raised it


def test_without_cr0_wp_a_supervisor_write_to_a_read_only_page_lands(tmp_path, tlb_mode):
    cpu, memory, tdm = _paged(tmp_path)
    page = 0x6_0000
    memory.write(tdm.PT + (page >> 12) * 8, (page | 0x5).to_bytes(8, "little"))
    cpu.uc.reg_write(X.UC_X86_REG_CR0, cpu.uc.reg_read(X.UC_X86_REG_CR0) & ~0x10000)
    assert _run64(cpu, memory, tdm, tmp_path, f"    mov dword [{page:#x}], 0x55") is (
        StopReason.HALTED)
    assert memory.read_u32(page) == 0x55
    assert _entry(memory, tdm.OUT) == 0  # no #PF recorded


def test_code_rewritten_through_a_second_mapping_of_its_page_runs_its_new_bytes(
        tmp_path, tlb_mode):
    # The routine at CODE + 0x800 runs, is rewritten through linear 0x100000 + 0x800
    # (another PTE for the same physical page: the executable-page bitmap is by physical
    # page, so the alias gets an executable entry and the engine's slow, code-checking
    # store path; a data-only entry would be marked dirty by the first store and the
    # patch would leave the routine's translation stale), and runs again.
    cpu, memory, tdm = _paged(tmp_path)
    alias = 0x10_0000
    memory.write(tdm.PT + (alias >> 12) * 8, (tdm.CODE | 0x3).to_bytes(8, "little"))
    code = assemble(f"""
bits 64
org {tdm.CODE:#x}
    call routine
    mov [{tdm.OUT + 0x100:#x}], eax
    mov dword [{alias + 0xF00:#x}], 0                   ; stores away from the code first
    mov dword [{alias + 0xF04:#x}], 0                   ; (a data-only entry turns dirty)
    mov dword [{alias:#x} + routine - $$ + 1], 0x2222   ; the immediate of "mov eax"
    call routine
    mov [{tdm.OUT + 0x104:#x}], eax
    cli
    hlt
    jmp $-2
    times 0x800 - ($ - $$) db 0x90
routine:
    mov eax, 0x1111
    ret
""", tmp_path, "smc")
    assert tdm.run(cpu, memory, code) is StopReason.HALTED
    assert memory.read_u32(tdm.OUT + 0x100) == 0x1111
    assert memory.read_u32(tdm.OUT + 0x104) == 0x2222


def test_a_host_write_to_a_code_page_under_paging_drops_its_code(tmp_path, tlb_mode):
    # Code at linear 0xFFFF_8000_0002_0000 (a kernel-half mapping of CODE): run it, let
    # the host rewrite it by physical address (a device's DMA), run it again.
    cpu, memory, tdm = _paged(tmp_path)
    memory.write(tdm.PML4 + 256 * 8, (tdm.PDPT | 0x3).to_bytes(8, "little"))
    high = 0xFFFF_8000_0000_0000
    first = assemble(f"bits 64\norg {high + tdm.CODE:#x}\n    mov dword [{tdm.OUT:#x}], 1\n"
                     "    cli\n    hlt\n    jmp $-2\n", tmp_path, "a")
    second = first.replace((1).to_bytes(4, "little"), (2).to_bytes(4, "little"))
    memory.write(tdm.CODE, first)
    for code, expected in ((first, 1), (second, 2)):
        memory.write(tdm.CODE, code)
        cpu.set_reg("rip", high + tdm.CODE)
        cpu.halted = False
        assert cpu.run(10_000).reason is StopReason.HALTED
        assert memory.read_u32(tdm.OUT) == expected


def test_the_clock_counts_exactly_under_paging_when_code_at_an_address_changes(
        tmp_path, tlb_mode):
    """The native block clock's count cache under paging (emu/pc/clock.py): refreshed
    when a block is translated again."""
    # The same 4 bytes at the same linear address: two instructions, then four.  The
    # block is translated again after the host write, and its count follows.
    cpu, memory, tdm = _paged(tmp_path)
    counts = []
    loop = 1000
    for body in (bytes([0x31, 0xC0, 0x31, 0xDB]),   # xor eax, eax ; xor ebx, ebx
                 bytes([0x90, 0x90, 0x90, 0x90])):  # nop x 4
        head = bytes([0xB9]) + loop.to_bytes(4, "little")          # mov ecx, loop
        tail = bytes([0xFF, 0xC9, 0x75, (-(len(body) + 4)) & 0xFF])  # dec ecx ; jnz body
        memory.write(tdm.CODE, head + body + tail + bytes([0xFA, 0xF4, 0xEB, 0xFD]))
        cpu.set_reg("rip", tdm.CODE)
        cpu.halted = False
        result = cpu.run(1_000_000)
        assert result.reason is StopReason.HALTED
        counts.append(result.instructions)
    if cpu.clock_mode == "native":  # the count clock moves by whole slices
        assert counts[1] - counts[0] == 2 * loop


def test_code_on_a_page_written_earlier_through_another_mapping_is_caught(tmp_path, tlb_mode):
    # A data-only entry made before the page held code (a store through the alias) must
    # not keep the fast store path once code runs there: the engine marks such an entry
    # dirty after one store, and a later patch through it would leave the code stale.
    cpu, memory, tdm = _paged(tmp_path)
    page, alias = 0x6_8000, 0x10_1000
    memory.write(tdm.PT + (alias >> 12) * 8, (page | 0x3).to_bytes(8, "little"))
    memory.write(page, bytes([0xB8, 0x11, 0x11, 0, 0, 0xC3]))           # mov eax, 1111h; ret
    memory.write(page + 0x800, bytes([0xB8, 0x33, 0x33, 0, 0, 0xC3]))   # mov eax, 3333h; ret
    assert _run64(cpu, memory, tdm, tmp_path, f"""
    mov dword [{alias + 0xF00:#x}], 0      ; a data-only entry for the page, then dirty
    mov rbx, {page:#x}
    call rbx                               ; the page becomes a code page
    mov rbx, {page + 0x800:#x}
    call rbx
    mov [{tdm.OUT + 0x100:#x}], eax
    mov dword [{alias + 0xF04:#x}], 0      ; stores through the alias again
    mov dword [{alias + 0x801:#x}], 0x4444 ; patch the second routine's immediate
    mov rbx, {page + 0x800:#x}
    call rbx
    mov [{tdm.OUT + 0x104:#x}], eax""") is StopReason.HALTED
    assert memory.read_u32(tdm.OUT + 0x100) == 0x3333
    assert memory.read_u32(tdm.OUT + 0x104) == 0x4444


def test_accesses_handed_to_the_engine_leave_the_instruction_count_as_it_was(
        tmp_path, monkeypatch):
    """Twenty page faults (reads and writes of pages the #PF handler maps) give the same
    guest-visible instruction count with the C walk, which hands each fault to the engine's
    MMU and restarts the instruction, as with the engine's TLB throughout."""
    from tests import test_delivery as tdm

    pages = [0x6_0000 + n * 0x1000 for n in range(20)]
    source = "bits 64\norg 0x20000\n" + "".join(
        f"    mov dword [{page:#x}], {n}\n" if n % 2 else f"    mov eax, [{page:#x}]\n"
        for n, page in enumerate(pages)) + (
        "    mov ecx, 1000\n.l: dec ecx\n    jnz .l\n    cli\n    hlt\n    jmp $-2\n")
    code = assemble(source, tmp_path, "faults")
    handler = assemble(tdm.PF_HANDLER_64, tmp_path, "pf")
    counts = {}
    for mode in ("virtual", "cpu"):
        monkeypatch.setenv("EMU_TLB", mode)
        cpu, memory = tdm.make_cpu()
        memory.write(tdm.HANDLERS, handler)
        tdm.long_mode(cpu, memory, {14: tdm.gate64(tdm.HANDLERS, 0x08, 0xE, ist=1)})
        for page in pages:
            tdm.unmap(memory, page)
        assert tdm.run(cpu, memory, code, limit=1_000_000) is StopReason.HALTED
        assert struct.unpack_from("<Q", memory.data, tdm.OUT)[0] == len(pages)  # faults
        counts[mode] = cpu.clock.instructions
        if mode == "virtual":
            assert cpu.tlb is not None and cpu.tlb.handovers >= 1
    assert counts["virtual"] == counts["cpu"]
