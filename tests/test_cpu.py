"""The Unicorn CPU: one regression test per pitfall in booting-on-unicorn.md, plus port I/O.

Guest code is assembled with nasm (Debian; CI installs it).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from unicorn import UC_MODE_16, UC_MODE_64

import emu.pc.cpu as cpu_module
from devices.bus import PortRange
from emu.pc.cpu import Cpu, StopReason
from emu.pc.memory import GuestMemory
from emu.pc.ports import PortBus

pytestmark = pytest.mark.usefixtures("both_clocks")  # every boot, with each clock

NASM = shutil.which("nasm")
needs_nasm = pytest.mark.skipif(NASM is None, reason="nasm is not installed")


def assemble(source: str, tmp_path: Path, name: str = "code") -> bytes:
    """Assemble a flat binary with nasm."""
    if NASM is None:
        pytest.skip("nasm is not installed")
    src = tmp_path / f"{name}.asm"
    out = tmp_path / f"{name}.bin"
    src.write_text(source)
    subprocess.run([NASM, "-f", "bin", "-o", str(out), str(src)], check=True,
                   capture_output=True)
    return out.read_bytes()


def make_cpu(size: int = 2 << 20) -> tuple[Cpu, GuestMemory, PortBus]:
    memory = GuestMemory(size)
    ports = PortBus()
    return Cpu(memory, ports), memory, ports


def run_at(cpu: Cpu, memory: GuestMemory, code: bytes, at: int = 0x7C00,
           limit: int = 1_000_000) -> StopReason:
    memory.write(at, code)
    cpu.reset_real_mode(0, at, ss=0, sp=0x7000)
    return cpu.run(limit).reason


# -- pitfall 1: real mode is UC_MODE_32 with CR0.PE clear ----------------------------


def test_cpu_is_created_in_mode_64_with_pe_clear_and_no_long_mode():
    cpu, _, _ = make_cpu()
    assert cpu.uc._mode == UC_MODE_64 and cpu.uc._mode != UC_MODE_16
    assert cpu.reg("cr0") & 1 == 0
    assert cpu.uc.msr_read(0xC000_0080) == 0  # EFER: LME and LMA clear
    assert not cpu.protected


@needs_nasm
def test_real_mode_segments_are_selector_times_16(tmp_path):
    cpu, memory, _ = make_cpu()
    code = assemble("bits 16\norg 0\nmov ax, [cs:data]\nmov bx, cs\nhalt: cli\nhlt\njmp halt\n"
                    "data: dw 0xBEEF\n", tmp_path)
    memory.write(0x7C00, code)
    cpu.reset_real_mode(0x07C0, 0)
    assert cpu.run(10_000).reason is StopReason.HALTED
    assert cpu.reg("ax") == 0xBEEF and cpu.reg("bx") == 0x07C0


@needs_nasm
def test_eip_above_64k_survives_resumption_across_slices(tmp_path, monkeypatch):
    """UC_MODE_16 loses EIP's top bits when emulation resumes (unicorn #1356).

    The guest enters protected mode and counts in 32-bit code at 1 MiB; slices
    of 7 instructions stop and resume it hundreds of times at EIP >= 0x100000.
    """
    monkeypatch.setattr(cpu_module, "MAX_SLICE", 7)
    cpu, memory, _ = make_cpu()
    boot = assemble("""
bits 16
org 0x7C00
    cli
    lgdt [gdtr]
    mov eax, cr0
    or eax, 1
    mov cr0, eax
    jmp dword 0x08:0x100000
align 8
gdt: dq 0
    dq 0x00CF9A000000FFFF   ; 0x08: flat 32-bit code
    dq 0x00CF92000000FFFF   ; 0x10: flat data
gdtr: dw 23
    dd gdt
""", tmp_path, "boot")
    pm = assemble("""
bits 32
org 0x100000
    mov ax, 0x10
    mov ds, ax
    mov ss, ax
    mov esp, 0x90000
    xor eax, eax
    mov ecx, 1000
count:
    inc eax
    loop count
    mov [0x5000], eax
halt:
    hlt
    jmp halt
""", tmp_path, "pm")
    memory.write(0x100000, pm)
    assert run_at(cpu, memory, boot) is StopReason.HALTED
    assert memory.read_u32(0x5000) == 1000
    assert cpu.reg("eip") >= 0x100000 and cpu.protected


# -- pitfall 2: no timeout= preemption; a deterministic virtual clock -----------------


@needs_nasm
def test_runs_never_pass_a_timeout_and_stop_at_their_instruction_budget(tmp_path, monkeypatch):
    """Pitfall 2: no ``timeout=`` preemption, ever.  Time is the instruction count:
    a 6 M-instruction loop under a 1 M limit stops at exactly 1 M with either clock
    (the native clock steps the block that crosses the limit), and the native
    clock's count of a finished program is exact."""
    cpu, memory, _ = make_cpu()
    timeouts: list[int] = []
    real_start = cpu.uc.emu_start

    def spy(begin, until, timeout=0, count=0):
        timeouts.append(timeout)
        return real_start(begin, until, timeout, count)

    monkeypatch.setattr(cpu.uc, "emu_start", spy)
    # 1 (mov) + 3,000,000 x 2 (dec, jnz) + cli + hlt = 6,000,003 instructions.
    code = assemble("bits 16\nmov ecx, 3000000\nl: dec ecx\njnz l\n"
                    "halt: cli\nhlt\njmp halt\n", tmp_path)
    memory.write(0x7C00, code)
    cpu.reset_real_mode(0, 0x7C00, ss=0, sp=0x7000)
    first = cpu.run(1_000_000)
    assert first.reason is StopReason.INSTRUCTION_LIMIT
    assert first.instructions == 1_000_000
    assert cpu.reg("ecx") == 2_500_000  # mov, 499,999 dec/jnz pairs, one more dec
    rest = cpu.run(50_000_000)
    assert rest.reason is StopReason.HALTED
    total = first.instructions + rest.instructions
    if cpu.clock_mode == "native":
        assert total == 6_000_003  # every block charged with its exact count
    else:
        # count= slices: the slice that ends in hlt reports no partial count.
        assert 1_000_000 < total <= 6_000_003
    assert len(timeouts) >= 3 and set(timeouts) == {0}


@needs_nasm
def test_the_virtual_clock_is_deterministic_and_drives_the_timer(tmp_path):
    from devices.platform.pic import Pic8259Pair
    from devices.platform.pit import Pit8254

    def one_run() -> tuple[int, int, int]:
        cpu, memory, ports = make_cpu()
        from devices.bus import IrqLine

        line = IrqLine(0)
        pic = Pic8259Pair()
        pic.connect([line])
        pit = Pit8254(cpu.clock, line)
        for rng in pic.port_ranges() + pit.port_ranges():
            ports.register(rng)
        cpu.interrupts = pic
        # IVT 08h -> handler: count ticks at 0x500, EOI, iret.
        handler = assemble("bits 16\ninc word [0x500]\npush ax\nmov al, 0x20\nout 0x20, al\n"
                           "pop ax\niret\n", tmp_path, "h")
        memory.write(0x6000, handler)
        memory.write(0x08 * 4, struct.pack("<HH", 0x6000, 0))
        code = assemble("bits 16\nsti\nmov ecx, 30000000\nl: dec ecx\njnz l\n"
                        "halt: cli\nhlt\njmp halt\n", tmp_path)
        assert run_at(cpu, memory, code, limit=200_000_000) is StopReason.HALTED
        return cpu.clock.instructions, memory.read_u16(0x500), pit.ticks

    first, second = one_run(), one_run()
    assert first == second
    assert first[1] >= 3  # 30 M loop iterations at 100 M instr/s ~ 0.3-0.6 s: several ticks


# -- pitfall 3: interrupts are delivered by us, through the IVT and the IDT -----------


@needs_nasm
def test_int_n_in_real_mode_goes_through_the_ivt_with_a_real_frame(tmp_path):
    cpu, memory, _ = make_cpu()
    handler = assemble("""
bits 16
    mov bp, sp
    mov ax, [bp+0]      ; IP
    mov [0x600], ax
    mov ax, [bp+2]      ; CS
    mov [0x602], ax
    mov ax, [bp+4]      ; FLAGS
    mov [0x604], ax
    pushf
    pop ax
    mov [0x606], ax     ; FLAGS inside the handler
    mov word [0x608], 0x1234
    iret
""", tmp_path, "h")
    memory.write(0x6000, handler)
    memory.write(0x80 * 4, struct.pack("<HH", 0x0000, 0x0600))  # 0600:0000
    code = assemble("bits 16\norg 0x7C00\nsti\nint 0x80\nafter: mov bx, 0xAAAA\n"
                    "halt: cli\nhlt\njmp halt\n", tmp_path)
    assert run_at(cpu, memory, code) is StopReason.HALTED
    assert memory.read_u16(0x608) == 0x1234
    assert memory.read_u16(0x600) == 0x7C03  # the return IP: past "int 0x80"
    assert memory.read_u16(0x602) == 0
    assert memory.read_u16(0x604) & 0x200  # caller's IF was set
    assert not memory.read_u16(0x606) & 0x200  # cleared on entry
    assert cpu.reg("bx") == 0xAAAA


@needs_nasm
def test_int_n_in_protected_mode_goes_through_the_idt(tmp_path):
    cpu, memory, _ = make_cpu()
    code = assemble("""
bits 16
org 0x7C00
    cli
    lgdt [gdtr]
    lidt [idtr]
    mov eax, cr0
    or eax, 1
    mov cr0, eax
    jmp 0x08:pm
bits 32
pm:
    mov ax, 0x10
    mov ds, ax
    mov ss, ax
    mov esp, 0x90000
    int 0x31
    mov [0x700], eax
halt:
    hlt
    jmp halt
handler:
    mov eax, [esp]          ; return EIP
    mov [0x704], eax
    mov eax, 0x600DF00D
    iretd
align 8
gdt: dq 0
    dq 0x00CF9A000000FFFF
    dq 0x00CF92000000FFFF
gdtr: dw 23
    dd gdt
idtr: dw 0x31*8+7
    dd 0x8000
""", tmp_path)
    # Interrupt gate for 0x31 -> 0x08:handler
    memory.write(0x7C00, code)
    handler = 0x7C00 + code.index(bytes.fromhex("8b0424"))
    gate = struct.pack("<HHBBH", handler & 0xFFFF, 0x08, 0, 0x8E, handler >> 16)
    memory.write(0x8000 + 0x31 * 8, gate)
    cpu.reset_real_mode(0, 0x7C00, ss=0, sp=0x7000)
    assert cpu.run(100_000).reason is StopReason.HALTED
    assert memory.read_u32(0x700) == 0x600DF00D
    int_at = code.index(bytes.fromhex("cd31"))
    assert memory.read_u32(0x704) == 0x7C00 + int_at + 2


# -- pitfall 4: host writes into RAM drop translated code -----------------------------


def test_a_host_write_into_ram_invalidates_translated_code():
    cpu, memory, _ = make_cpu()
    loop = b"\xfa\xf4\xeb\xfd"  # cli; hlt; jmp $-1

    def prog(value: int) -> bytes:
        return bytes([0xB8, value, 0x00]) + loop  # mov ax, value

    assert run_at(cpu, memory, prog(1)) is StopReason.HALTED
    assert cpu.reg("ax") == 1
    memory.data[0x7C01] = 2  # a raw numpy write: nobody told Unicorn
    cpu.reset_real_mode(0, 0x7C00)
    cpu.run(1000)
    assert cpu.reg("ax") == 1, "stale translated code ran (the pitfall this guards against)"
    memory.write(0x7C00, prog(3))  # through GuestMemory: the CPU listens
    cpu.reset_real_mode(0, 0x7C00)
    cpu.run(1000)
    assert cpu.reg("ax") == 3


def test_ram_is_shared_with_unicorn_not_copied():
    cpu, memory, _ = make_cpu()
    memory.data[0x1234] = 0x5A
    assert cpu.uc.mem_read(0x1234, 1) == b"\x5a"
    cpu.uc.mem_write(0x2000, b"\xa5")
    assert memory.data[0x2000] == 0xA5


# -- port I/O and the rep ins fast path -----------------------------------------------


class CountingPort:
    """A data port producing 0x0100, 0x0101, ... (words) and dwords likewise."""

    def __init__(self, string: bool = True) -> None:
        self.next = 0x100
        self.string_calls = 0
        self.string = string
        self.writes: list[tuple[int, int, int]] = []

    def read(self, port: int, width: int) -> int:
        value = self.next
        self.next += 1
        return value

    def read_string(self, port: int, width: int, out: np.ndarray) -> None:
        self.string_calls += 1
        out[:] = np.arange(self.next, self.next + out.size)
        self.next += out.size

    def write(self, port: int, width: int, value: int) -> None:
        self.writes.append((port, width, value))

    def port_range(self) -> PortRange:
        return PortRange(0x300, 8, self.read, self.write, name="counting",
                         string_read=self.read_string if self.string else None)


@needs_nasm
def test_in_and_out_reach_the_port_bus(tmp_path):
    cpu, memory, ports = make_cpu()
    dev = CountingPort()
    ports.register(dev.port_range())
    code = assemble("bits 16\nmov dx, 0x302\nin ax, dx\nmov bx, ax\nmov al, 0x42\nout dx, al\n"
                    "out 0x80, al\nin al, 0x90\nhalt: cli\nhlt\njmp halt\n", tmp_path)
    assert run_at(cpu, memory, code) is StopReason.HALTED
    assert cpu.reg("bx") == 0x100
    assert dev.writes == [(0x302, 1, 0x42)]
    assert cpu.reg("al") == 0xFF  # a floating port


REP_INS_CASES = [
    # (label, setup, instruction, width, direction)
    ("insw 16-bit up", "cld\nmov di, 0x1000\nmov cx, 300", "rep insw", 2, 1),
    ("insw 16-bit down", "std\nmov di, 0x2000\nmov cx, 300", "rep insw", 2, -1),
    ("insd 16-bit up", "cld\nmov di, 0x1000\nmov cx, 300", "rep insd", 4, 1),
    ("insw a32 up", "cld\nmov edi, 0x1000\nmov ecx, 300", "a32 rep insw", 2, 1),
    ("insd a32 down", "std\nmov edi, 0x3000\nmov ecx, 300", "a32 rep insd", 4, -1),
]


@needs_nasm
@pytest.mark.parametrize(("label", "setup", "insn", "width", "direction"), REP_INS_CASES,
                         ids=[c[0] for c in REP_INS_CASES])
def test_rep_ins_fast_path_matches_the_interpreter_exactly(tmp_path, label, setup, insn,
                                                           width, direction):
    source = (f"bits 16\norg 0x7C00\nmov ax, 0x2000\nmov es, ax\nmov dx, 0x300\n"
              f"mov ecx, 0xABCD0000\nmov edi, 0x55550000\n{setup}\n{insn}\n"
              f"halt: cli\nhlt\njmp halt\n")
    code = assemble(source, tmp_path)
    results = []
    for fast in (True, False):
        cpu, memory, ports = make_cpu()
        dev = CountingPort()
        ports.register(dev.port_range())
        cpu.string_fast_path = fast
        assert run_at(cpu, memory, code) is StopReason.HALTED
        results.append((memory.read(0x20000, 0x4000), cpu.reg("ecx"), cpu.reg("edi"),
                        cpu.reg("eflags") & 0x400, dev.next, cpu.string_fast_path_count,
                        dev.string_calls))
    fast, slow = results
    assert fast[:5] == slow[:5]
    assert fast[5] == 1 and fast[6] == 1  # one instruction, one string call
    assert slow[5] == 0
    assert fast[4] == 0x100 + 300  # exactly ECX elements were read
    assert fast[1] & 0xFFFF == 0


@needs_nasm
def test_rep_ins_on_a_port_without_string_read_is_left_to_the_interpreter(tmp_path):
    cpu, memory, ports = make_cpu()
    dev = CountingPort(string=False)
    ports.register(dev.port_range())
    code = assemble("bits 16\ncld\nxor ax, ax\nmov es, ax\nmov di, 0x1000\nmov cx, 10\n"
                    "mov dx, 0x300\nrep insw\nhalt: cli\nhlt\njmp halt\n", tmp_path)
    assert run_at(cpu, memory, code) is StopReason.HALTED
    assert cpu.string_fast_path_count == 0
    words = np.frombuffer(memory.read(0x1000, 20), dtype="<u2")
    assert list(words) == list(range(0x100, 0x10A))


@needs_nasm
def test_guest_reads_a_cd_sector_itself_with_rep_insw(tmp_path, patterned_iso, pattern_lba):
    """A guest ATAPI driver: PACKET + READ(10) + rep insw of a 2048-byte DRQ block."""
    from devices.media.iso import IsoImage
    from emu.pc.machine import Machine
    from tests.conftest import expected

    machine = Machine(2 << 20)
    with IsoImage(patterned_iso) as medium:
        machine.add_dvd_drive(0, 0, medium)
        cpu = Cpu(machine.memory, machine.ports)
        lba = pattern_lba.to_bytes(4, "big")
        code = assemble(f"""
bits 16
org 0x7C00
    xor ax, ax
    mov es, ax
    mov dx, 0x3F6
    mov al, 2           ; nIEN
    out dx, al
    mov dx, 0x1F6
    mov al, 0xA0
    out dx, al
    call wait_ready_unit    ; TEST UNIT READY until ready (clears the power-on UA)
    call packet
    mov si, read10
    call send_cdb
    call wait_drq
    mov dx, 0x1F0
    mov di, 0x8000
    mov cx, 1024
    cld
    rep insw
halt: cli
    hlt
    jmp halt
wait_ready_unit:
    call packet
    mov si, tur
    call send_cdb
    call wait_bsy
    mov dx, 0x1F7
    in al, dx
    test al, 1
    jnz wait_ready_unit
    ret
packet:
    call wait_bsy
    mov dx, 0x1F4
    mov al, 0x00
    out dx, al
    inc dx
    mov al, 0x08        ; byte count 2048
    out dx, al
    mov dx, 0x1F7
    mov al, 0xA0
    out dx, al
    jmp wait_drq
send_cdb:
    mov dx, 0x1F0
    mov cx, 6
    rep outsw
    ret
wait_bsy:
    mov dx, 0x3F6
.l: in al, dx
    test al, 0x80
    jnz .l
    ret
wait_drq:
    call wait_bsy
    in al, dx
    test al, 0x08
    jz wait_drq
    ret
tur: times 12 db 0
read10: db 0x28, 0, {lba[0]}, {lba[1]}, {lba[2]}, {lba[3]}, 0, 0, 1, 0, 0, 0
""", tmp_path)
        assert run_at(cpu, machine.memory, code, limit=5_000_000) is StopReason.HALTED
        assert cpu.string_fast_path_count == 1
        assert machine.memory.read(0x8000, 2048) == expected(pattern_lba, 1)


def test_cpuid_hides_rdrand_and_reports_osxsave_from_cr4():
    """CPUID leaf 1 without RDRAND (ECX bit 30): the engine would answer RDRAND from the
    host's random source and a kernel seeding from it would boot differently each run.
    OSXSAVE (bit 27) follows CR4.OSXSAVE; other leaves are the engine's own answers."""
    from emu.pc.engine import engine_cpuid

    cpu = Cpu(GuestMemory(1 << 20), PortBus())
    cpu.use_deterministic_cpuid()
    # mov eax, 1; cpuid; mov esi, ecx; xor eax, eax; cpuid; cli; hlt; jmp $-1
    cpu.memory.write(0x7C00, bytes.fromhex("66b8010000000fa26689ce6631c00fa2faf4ebfd"))

    def run(cr4: int) -> tuple[int, int]:
        cpu.reset_real_mode(0, 0x7C00)
        cpu.set_reg("cr4", cr4)
        assert cpu.run(10_000).reason is StopReason.HALTED
        return cpu.reg("esi"), cpu.reg("ebx")

    ecx, vendor = run(0)
    assert engine_cpuid(1)[2] & (1 << 30)  # the engine's model has it
    assert not ecx & (1 << 30) and not ecx & (1 << 27)
    assert ecx | (1 << 30) == engine_cpuid(1)[2] | (1 << 30)  # the rest is unchanged
    assert vendor == engine_cpuid(0)[1]  # leaf 0 ("Genu..."): the engine's
    ecx, _ = run(1 << 18)  # CR4.OSXSAVE
    assert ecx & (1 << 27)
