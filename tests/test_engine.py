"""Unicorn 2.1.4 facts the CPU glue is built on (emu/pc/engine.py), one test per pitfall.

Each test shows the engine's raw behaviour first (so a Unicorn upgrade that
changes it is noticed) and then the glue's answer.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
from unicorn import (
    UC_ARCH_X86,
    UC_ERR_INSN_INVALID,
    UC_HOOK_INTR,
    UC_MODE_32,
    UC_MODE_64,
    Uc,
    UcError,
)
from unicorn import x86_const as X

from emu.pc.cpu import Cpu, StopReason
from emu.pc.engine import CS, ES, CodeCache, Engine, RegisterBatch, new_engine, probe_layout
from emu.pc.memory import GuestMemory
from emu.pc.ports import PortBus


def paged_engine(mode: int = UC_MODE_64) -> Uc:
    """32-bit paging over 0–FFFFh; 3000h read-only, 4000h not present (as the probe)."""
    uc = new_engine() if mode == UC_MODE_64 else Uc(UC_ARCH_X86, mode)
    uc.mem_map(0, 0x10000)
    uc.mem_write(0x1000, struct.pack("<I", 0x2000 | 3))
    table = bytearray(4096)
    for page in range(16):
        struct.pack_into("<I", table, page * 4, page << 12 | 3)
    struct.pack_into("<I", table, 3 * 4, 3 << 12 | 1)
    struct.pack_into("<I", table, 4 * 4, 0)
    uc.mem_write(0x2000, bytes(table))
    uc.reg_write(X.UC_X86_REG_CR3, 0x1000)
    uc.reg_write(X.UC_X86_REG_CR0, 0x8001_0011)
    return uc


def test_mode_32_hides_64bit_registers_and_mode_64_shows_them():
    narrow = Uc(UC_ARCH_X86, UC_MODE_32)
    narrow.reg_write(X.UC_X86_REG_R8, 0x1122_3344_5566_7788)
    assert narrow.reg_read(X.UC_X86_REG_R8) == 0           # the pitfall
    cpu = Cpu(GuestMemory(1 << 20), PortBus())
    cpu.set_reg("r8", 0x1122_3344_5566_7788)
    cpu.set_reg("rip", 0xFFFF_FFFF_8100_0000)
    assert cpu.reg("r8") == 0x1122_3344_5566_7788
    assert cpu.reg("rip") == 0xFFFF_FFFF_8100_0000
    assert not cpu.protected and cpu.uc.msr_read(0xC000_0080) == 0


def test_new_engine_is_in_real_mode_at_the_reset_vector():
    cpu = Cpu(GuestMemory(2 << 20), PortBus())
    # F000:FFF0 → linear FFFF0h; mov ax, cs; mov bx, 1234h; push bx; cli; hlt; jmp $-2
    cpu.memory.write(0xFFFF0, bytes.fromhex("8cc8bb341253faf4ebfd"))
    cpu.reset_real_mode(0xF000, 0xFFF0, ss=0, sp=0x7C00)
    assert cpu.run(1000).reason is StopReason.HALTED
    assert cpu.reg("ax") == 0xF000 and cpu.memory.read_u16(0x7BFE) == 0x1234
    assert cpu.reg("eip") == 0xFFF0 + 8


def test_mode_64_segment_write_sets_only_the_selector():
    uc = new_engine()
    engine = Engine(uc)
    uc.reg_write(X.UC_X86_REG_ES, 0x1000)
    assert uc.reg_read(X.UC_X86_REG_ES) == 0x1000
    assert engine.segment(ES).base == 0                      # the pitfall: base unchanged
    cpu = Cpu(GuestMemory(2 << 20), PortBus())
    cpu.memory.write(0x10000, b"\x5a")
    cpu.memory.write(0x7C00, bytes.fromhex("26a00000faf4ebfd"))  # mov al, [es:0]; cli; hlt
    cpu.reset_real_mode(0, 0x7C00)
    cpu.set_reg("es", 0x1000)
    assert cpu.engine.segment(ES).base == 0x10000
    assert cpu.run(1000).reason is StopReason.HALTED
    assert cpu.reg("al") == 0x5A


def test_the_engine_remembers_the_last_exception_until_the_glue_clears_it():
    seen: list[int] = []
    uc = paged_engine()
    uc.hook_add(UC_HOOK_INTR, lambda engine, intno, _: (seen.append(intno), engine.emu_stop()))
    uc.mem_write(0x5000, bytes.fromhex("a100400000"))        # mov eax, [4000h]
    for _ in range(2):
        uc.emu_start(0x5000, 0, 0, 1)
    assert seen == [14, 8]                                   # the second #PF looks like #DF
    engine = Engine(uc)
    for _ in range(3):
        engine.forget_exception()
        uc.emu_start(0x5000, 0, 0, 1)
    assert seen[2:] == [14, 14, 14]


def test_probe_finds_each_context_field_once():
    layout = probe_layout()
    offsets = [layout.hflags, layout.segments, layout.error_code, layout.is_int,
               layout.old_exception]
    assert len(set(offsets)) == len(offsets)
    assert layout.stride >= 20  # selector, base, limit, flags


def test_error_code_and_int_flag_come_from_the_context():
    uc = paged_engine()
    engine = Engine(uc)
    uc.ctl_exits_enabled(True)
    found: list[tuple[int, int, bool]] = []

    def hook(_uc: Uc, intno: int, _user: object) -> None:
        found.append((intno, *engine.exception()))
        engine.forget_exception()
        _uc.emu_stop()

    uc.hook_add(UC_HOOK_INTR, hook)
    for code in ("c7050030000001000000",  # write to read-only 3000h: P|W
                 "c7050040000001000000",  # write to absent 4000h: W
                 "cd30"):                 # int 30h
        uc.mem_write(0x5000, bytes.fromhex(code))
        uc.ctl_remove_cache(0x5000, 0x5010)
        uc.emu_start(0x5000, 0, 0, 1)
    assert found == [(14, 3, False), (14, 2, False), (0x30, 0, True)]


def test_ud_never_reaches_the_interrupt_hook():
    seen: list[int] = []
    uc = paged_engine()
    uc.hook_add(UC_HOOK_INTR, lambda engine, intno, _: seen.append(intno))
    uc.mem_write(0x5000, bytes.fromhex("0f0b"))              # ud2
    with pytest.raises(UcError) as info:
        uc.emu_start(0x5000, 0x6000, 0, 1)
    assert info.value.errno == UC_ERR_INSN_INVALID and seen == []
    # The glue takes it at UC_HOOK_INSN_INVALID and delivers #UD through the IVT.
    cpu = Cpu(GuestMemory(2 << 20), PortBus())
    cpu.memory.write(6 * 4, struct.pack("<HH", 0x8000, 0))
    cpu.memory.write(0x8000, bytes.fromhex("faf4ebfd"))
    cpu.memory.write(0x7C00, bytes.fromhex("0f0b"))
    cpu.reset_real_mode(0, 0x7C00, sp=0x7000)
    assert cpu.run(1000).reason is StopReason.HALTED
    assert cpu.memory.read_u16(0x7000 - 6) == 0x7C00        # IP of ud2: a fault


def test_emu_start_until_is_translated_unless_exits_are_on():
    """With paging on, emu_start looks ``until`` up in the guest's page tables first."""
    seen: list[int] = []
    uc = paged_engine()
    uc.ctl_exits_enabled(False)                              # Unicorn's default
    engine = Engine(uc)
    uc.hook_add(UC_HOOK_INTR, lambda e, intno, _: (seen.append(intno), e.emu_stop()))
    uc.mem_write(0x5000, bytes.fromhex("a100400000"))        # mov eax, [4000h]
    uc.mem_write(0x5010, bytes.fromhex("90"))                # nop
    uc.emu_start(0x5000, 0x5005, 0, 1)                       # until mapped: a plain #PF
    engine.forget_exception()
    uc.emu_start(0x5010, 0x5011, 0, 1)                       # until mapped: nothing hidden
    uc.emu_start(0x5000, 0x5005, 0, 1)
    engine.forget_exception()
    assert seen == [14, 14]
    uc.emu_start(0x5010, 0x2_0000, 0, 1)                     # until: beyond the table
    uc.emu_start(0x5000, 0x5005, 0, 1)
    assert seen == [14, 14, 8]                               # the hidden #PF made it a #DF
    seen.clear()
    uc = paged_engine()                                      # new_engine: exits are on
    engine = Engine(uc)
    uc.hook_add(UC_HOOK_INTR, lambda e, intno, _: (seen.append(intno), e.emu_stop()))
    uc.mem_write(0x5000, bytes.fromhex("a100400000"))
    uc.mem_write(0x5010, bytes.fromhex("90"))
    uc.emu_start(0x5010, 0x2_0000, 0, 1)
    uc.emu_start(0x5000, 0x4000, 0, 1)
    assert seen == [14]
    assert engine.segment(CS).selector == 0


def aliased_engine() -> tuple[Uc, np.ndarray]:
    """32-bit paging over host RAM (a numpy array, as the PC maps it) where linear 9000h
    is physical A000h, linear A000h is physical 9000h and 4000h is not present."""
    ram = np.zeros(0x10000, dtype=np.uint8)
    uc = new_engine()
    uc.mem_map_ptr(0, ram.size, 7, ram.ctypes.data)
    ram[0x1000:0x1004] = np.frombuffer(struct.pack("<I", 0x2000 | 3), np.uint8)
    table = np.frombuffer(bytearray(4096), np.uint32).copy()
    table[:16] = np.arange(16, dtype=np.uint32) << 12 | 3
    table[4], table[9], table[10] = 0, 0xA000 | 3, 0x9000 | 3
    ram[0x2000:0x3000] = table.view(np.uint8)
    uc.reg_write(X.UC_X86_REG_CR3, 0x1000)
    uc.reg_write(X.UC_X86_REG_CR0, 0x8001_0011)
    return uc, ram


def test_remove_cache_is_linear_and_faults_where_nothing_is_mapped():
    """What Linux found: dropping code for a physical range the host wrote (its DMA into
    the page cache) with ``ctl_remove_cache`` looks the address up as a linear one."""
    seen: list[int] = []
    uc, ram = aliased_engine()
    engine = Engine(uc)
    uc.hook_add(UC_HOOK_INTR, lambda e, intno, _: (seen.append(intno), e.emu_stop()))
    ram[0x5000:0x5005] = np.frombuffer(bytes.fromhex("a100400000"), np.uint8)  # mov eax,[4000h]
    uc.ctl_remove_cache(0x4000, 0x4010)                       # unmapped: a hidden #PF
    assert engine.remembered_exception() == 14
    uc.emu_start(0x5000, 0, 0, 1)
    assert seen == [8]                                        # the guest's own #PF is a #DF
    engine.forget_exception()
    seen.clear()
    code = CodeCache(uc)
    assert code.native
    code.drop_host(ram.ctypes.data + 0x4000, 16, 0x4000)      # by RAM address: no lookup
    assert engine.remembered_exception() == -1
    uc.emu_start(0x5000, 0, 0, 1)
    assert seen == [14]


def test_a_remove_cache_lookup_clobbers_cr2():
    """The hidden fault also writes CR2, a register the guest reads: a lookup between the
    delivery of a real ``#PF`` and the guest's handler reading CR2 hands the handler the
    looked-up address (what SeaBIOS's IRQ-window hook did to a Linux user process: a
    SIGSEGV "at f0000" for a demand fault on its own code).  ``Cpu.retranslate`` looks the
    pages up itself and drops by RAM address: CR2 stays."""
    uc, ram = aliased_engine()
    uc.reg_write(X.UC_X86_REG_CR2, 0x41_6690)                 # a fault being handled
    uc.ctl_remove_cache(0x4000, 0x4010)
    assert uc.reg_read(X.UC_X86_REG_CR2) == 0x4000            # the pitfall
    memory = GuestMemory(1 << 20)
    cpu = Cpu(memory, PortBus())
    memory.write(0x1000, struct.pack("<I", 0x2000 | 3))      # 32-bit paging, 4000h absent
    table = np.arange(256, dtype=np.uint32) << 12 | 3
    table[4] = 0
    memory.write(0x2000, table.tobytes())
    cpu.set_reg("cr3", 0x1000)
    cpu.set_reg("cr0", 0x8001_0011)
    cpu.set_reg("cr2", 0x41_6690)
    cpu.retranslate(0x3000, 0x5000)                           # spans the absent page
    assert cpu.reg("cr2") == 0x41_6690
    assert cpu.engine.remembered_exception() == -1


@pytest.mark.parametrize("how", ["linear", "ram"])
def test_host_writes_drop_code_by_where_it_is_in_ram(how: str):
    """Code at physical 9000h runs at linear A000h: a host write at physical 9000h must
    drop it.  ``ctl_remove_cache(9000h)`` drops linear 9000h (physical A000h) instead."""
    uc, ram = aliased_engine()
    code = CodeCache(uc)
    ram[0x9000:0x9006] = np.frombuffer(bytes.fromhex("b801000000f4"), np.uint8)  # mov eax,1; hlt
    uc.emu_start(0xA000, 0, 0, 0)
    assert uc.reg_read(X.UC_X86_REG_EAX) == 1
    ram[0x9001] = 2                                           # the host rewrites the code
    if how == "linear":
        uc.ctl_remove_cache(0x9000, 0x9006)
    else:
        code.drop_host(ram.ctypes.data + 0x9000, 6, 0x9000)
    uc.emu_start(0xA000, 0, 0, 0)
    assert uc.reg_read(X.UC_X86_REG_EAX) == (1 if how == "linear" else 2)


def test_register_batch_matches_the_binding_for_every_width():
    cpu = Cpu(GuestMemory(1 << 20), PortBus())
    regs = [X.UC_X86_REG_CS, X.UC_X86_REG_EFLAGS, X.UC_X86_REG_RIP, X.UC_X86_REG_R15,
            X.UC_X86_REG_CR0]
    batch = RegisterBatch(cpu.uc, regs)
    cpu.set_reg("r15", 0xFEDC_BA98_7654_3210)
    cpu.set_reg("rip", 0xFFFF_FFFF_8123_4567)
    cpu.set_reg("cs", 0xF000)
    assert batch.read() == list(cpu.uc.reg_read_batch(regs))
    writer = RegisterBatch(cpu.uc, [X.UC_X86_REG_RSP, X.UC_X86_REG_RFLAGS, X.UC_X86_REG_RIP])
    writer.write(0x1_0000_7000, 0x246, 0x7C00)
    assert (cpu.reg("rsp"), cpu.reg("rflags"), cpu.reg("rip")) == (0x1_0000_7000, 0x246, 0x7C00)
