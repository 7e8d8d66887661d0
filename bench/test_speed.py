"""Guest speed: whole-process boots against QEMU TCG, and guest MIPS against raw Unicorn.

Two kinds of pair, each measured in the same run (see conftest.py for the ratio table):

* **boots** (``boot-*``): the same ISO booted to the same screen text, whole process, by
  ``emu boot ISO --until TEXT`` (from process start to its exit) and by QEMU 7.2 TCG
  (:mod:`bench.qemu_reference`: from process start to the text seen on its screen).  QEMU is
  the baseline, so the ratio printed is QEMU time / emu time: ≥ 1.0 means emu is faster.
  Skipped when ``qemu-system-x86_64`` is not installed.  Rounds alternate emu and QEMU so
  both see the same machine load.
* **guest MIPS** (``mips-*``): a guest loop on the emulator's CPU (native block clock, the
  fast-store TLB, port hooks) against the same bytes on a bare Unicorn engine with nothing
  attached, run unbounded.  The ratio is raw time / emu time; ``extra_info`` holds the
  guest MIPS of both.  ``mips-paged-*``: the compute and store loops in 64-bit code with
  4-level identity paging (the Linux kernel's setting: the C page walk, the block clock's
  count cache under paging), against a bare engine with the same page tables.

Run: ``.venv/bin/python -m pytest bench/test_speed.py -p no:randomly -s``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bench.qemu_reference import boot as qemu_boot
from bench.qemu_reference import qemu_available
from emu.pc.cpu import Cpu, StopReason
from emu.pc.memory import GuestMemory
from emu.pc.ports import PortBus

EMU = Path(sys.executable).with_name("emu")
GRUB_RESCUE_ISO = Path("/usr/lib/grub-rescue/grub-rescue-cdrom.iso")
IPXE_ISO = Path("/usr/lib/ipxe/ipxe.iso")
ROUNDS = 3



def _emu_boot(iso: Path, until: str, firmware: str, memory: str = "256M",
              timeout: float = 120) -> float:
    start = time.monotonic()
    done = subprocess.run([str(EMU), "boot", str(iso), "--until", until, "--no-interactive",
                           "--firmware", firmware, "--memory", memory,
                           "--timeout", str(timeout)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.monotonic() - start
    assert done.returncode == 0, done.stderr[-500:]
    return seconds


def _qemu_boot(iso: Path, until: str, memory: str = "256M", com1_only: bool = False,
               timeout: float = 120) -> float:
    run = qemu_boot(iso, until, timeout=timeout, memory=memory,
                    screen_poll=None if com1_only else 0.02)
    assert run.found, f"QEMU never showed {until!r}"
    return run.seconds


BOOTS = {
    # name: (image fixture, path or guest name, text, emu firmware)
    "boot-isolinux-builtin": ("isolinux", "boot:", "builtin"),
    "boot-isolinux-seabios": ("isolinux", "boot:", "seabios"),
    "boot-grub-builtin": (GRUB_RESCUE_ISO, "keys to select", "builtin"),
    "boot-ipxe-builtin": (IPXE_ISO, "Press Ctrl-B", "builtin"),
    # Debian's kernel (images/guests.py), 512 MiB, watched on COM1: to the first line the
    # kernel prints once its XZ decompressor handed over (earlyprintk), and to /init's md5
    # of the file it read from the drive by DMA (issue 12, milestone 6).
    "boot-linux-decompressed-builtin": ("linux-early", "Linux version", "builtin"),
    "boot-linux-md5-builtin": ("linux", "INIT: md5 ok", "builtin"),
    "boot-linux-md5-seabios": ("linux", "INIT: md5 ok", "seabios"),
}
TARGETS = {"boot-ipxe-builtin": "≥ 0.67 (QEMU/emu)",
           "boot-linux-decompressed-builtin": "≥ 0.5 (QEMU/emu)"}


def _image(image: str | Path, isolinux_iso: Path) -> Path:
    if image == "isolinux":
        return isolinux_iso
    if image in ("linux", "linux-early"):
        from images import guests

        try:
            return guests.linux_iso(**({"append": guests.EARLY_SERIAL_APPEND}
                                       if image == "linux-early" else {}))
        except guests.GuestUnavailable as exc:
            pytest.skip(f"{exc} (.ci/run fetches the packages)")
    return Path(image)


@pytest.mark.parametrize("group", list(BOOTS))
def test_boot_against_qemu(group, isolinux_iso, record_pair):
    if not qemu_available():
        pytest.skip("qemu-system-x86_64 is not installed")
    image, until, firmware = BOOTS[group]
    iso = _image(image, isolinux_iso)
    if not iso.exists():
        pytest.skip(f"{iso} is not installed")
    linux = str(image).startswith("linux")
    memory, timeout = ("512M", 300.0) if linux else ("256M", 120.0)
    emu_times, qemu_times = [], []
    for _ in range(ROUNDS):  # alternate, so both see the same machine load
        qemu_times.append(_qemu_boot(iso, until, memory, com1_only=linux, timeout=timeout))
        emu_times.append(_emu_boot(iso, until, firmware, memory, timeout))
    record_pair(group, emu_times, qemu_times,
                target=TARGETS.get(group, "≥ 1.0 (QEMU/emu)"))


# -- guest MIPS ---------------------------------------------------------------------------

LOOPS = {
    # 16-bit real-mode loops, ECX iterations; each leaves with cli; hlt.
    "compute": bytes([0x66, 0x01, 0xC8, 0x66, 0x31, 0xC3, 0x66, 0xC1, 0xC0, 0x03]),
    #   add eax, ecx ; xor ebx, eax ; rol eax, 3
    "store": bytes([0x66, 0x89, 0x07, 0x83, 0xC3, 0x04, 0x81, 0xE3, 0xFC, 0x3F]),
    #   mov [bx], eax ; add bx, 4 ; and bx, 0x3FFC   (a 16 KiB buffer at DS:0)
    "port": bytes([0xE4, 0x80, 0x90]),
    #   in al, 0x80 ; nop   (a Python port callback each iteration)
}
ITERATIONS = {"compute": 20_000_000, "store": 10_000_000, "port": 100_000}
CODE_AT, DATA_SEG = 0x7C00, 0x2000


def _program(body: bytes, iterations: int) -> tuple[bytes, int]:
    """mov ecx, N ; body ; dec ecx ; jnz body ; cli ; hlt ; jmp $-1 — and its count."""
    head = bytes([0x66, 0xB9]) + iterations.to_bytes(4, "little")
    loop = body + bytes([0x66, 0x49])
    jnz = bytes([0x75, (-(len(loop) + 2)) & 0xFF])
    count = 1 + iterations * (_instructions(body) + 2) + 2
    return head + loop + jnz + bytes([0xFA, 0xF4, 0xEB, 0xFD]), count  # cli; hlt; jmp $-1


def _instructions(body: bytes) -> int:
    return {LOOPS["compute"]: 3, LOOPS["store"]: 3, LOOPS["port"]: 2}[body]


def _emu_cpu(code: bytes) -> Cpu:
    memory = GuestMemory(1 << 20)
    ports = PortBus()
    from devices.platform.debugport import DebugPorts

    for rng in DebugPorts().port_ranges():
        ports.register(rng)
    cpu = Cpu(memory, ports)
    memory.write(CODE_AT, code)
    cpu.reset_real_mode(0, CODE_AT, ss=0, sp=0x7000)
    cpu.set_reg("ds", DATA_SEG)
    return cpu


def _raw_run(code: bytes, port: bool) -> float:
    from unicorn import UC_ARCH_X86, UC_HOOK_INSN, UC_MODE_32, UC_PROT_ALL, Uc
    from unicorn import x86_const as X

    ram = np.zeros(1 << 20, dtype=np.uint8)
    uc = Uc(UC_ARCH_X86, UC_MODE_32)
    uc.mem_map_ptr(0, 1 << 20, UC_PROT_ALL, ram.ctypes.data)
    if port:
        uc.hook_add(UC_HOOK_INSN, lambda _uc, _p, _s, _u: 0, None, 1, 0, X.UC_X86_INS_IN)
    uc.mem_write(CODE_AT, code)
    uc.reg_write(X.UC_X86_REG_CR0, 0x10)
    for reg, value in ((X.UC_X86_REG_CS, 0), (X.UC_X86_REG_SS, 0),
                       (X.UC_X86_REG_ESP, 0x7000), (X.UC_X86_REG_DS, DATA_SEG)):
        uc.reg_write(reg, value)
    start = time.perf_counter()
    uc.emu_start(CODE_AT, CODE_AT + len(code))
    return time.perf_counter() - start


def _mips_pair(record_pair, group: str, count: int, raw_run, make_cpu,
               target: str = "") -> None:
    """``ROUNDS`` of the bare engine (``raw_run()``: seconds) against the emulator's CPU
    (``make_cpu()``, run until it halts), recorded as one pair with both MIPS."""
    emu_times, raw_times = [], []
    for _ in range(ROUNDS):
        raw_times.append(raw_run())
        cpu = make_cpu()
        start = time.perf_counter()
        result = cpu.run(count * 2)
        emu_times.append(time.perf_counter() - start)
        assert result.reason is StopReason.HALTED
        if cpu.clock_mode == "native":
            assert cpu.clock.instructions == count  # the clock counted every instruction
    record_pair(group, emu_times, raw_times, target=target,
                emu_mips=round(count / min(emu_times) / 1e6, 1),
                raw_mips=round(count / min(raw_times) / 1e6, 1))


@pytest.mark.parametrize("loop", list(LOOPS))
def test_guest_mips(loop, record_pair):
    code, count = _program(LOOPS[loop], ITERATIONS[loop])
    _mips_pair(record_pair, f"mips-{loop}", count,
               lambda: _raw_run(code, port=loop == "port"), lambda: _emu_cpu(code),
               target="compute ≥ 250 M instr/s" if loop == "compute" else "")


# -- guest MIPS with paging (IA-32e, 4-level, 4 KiB identity pages for the first 2 MiB) ---

PAGED_LOOPS = {
    "compute": bytes([0x01, 0xC8, 0x31, 0xC3, 0xC1, 0xC0, 0x03]),
    #   add eax, ecx ; xor ebx, eax ; rol eax, 3
    "store": bytes([0x89, 0x83, 0x00, 0x00, 0x06, 0x00, 0x83, 0xC3, 0x04, 0x81, 0xE3, 0xFC,
                    0x3F, 0x00, 0x00]),
    #   mov [rbx + 0x60000], eax ; add ebx, 4 ; and ebx, 0x3FFC
}
PAGED_CODE, PML4 = 0x20000, 0x10000
PAGED_MEMORY = 4 << 20


def _paged_program(body: bytes, iterations: int) -> tuple[bytes, int]:
    """mov ecx, N ; body ; dec ecx ; jnz body ; cli ; hlt ; jmp $-2 — and its count."""
    head = bytes([0xB9]) + iterations.to_bytes(4, "little")
    loop = body + bytes([0xFF, 0xC9])
    jnz = bytes([0x75, (-(len(loop) + 2)) & 0xFF])
    count = 1 + iterations * (3 + 2) + 2
    return head + loop + jnz + bytes([0xFA, 0xF4, 0xEB, 0xFD]), count


def _page_tables(ram: np.ndarray) -> None:
    """PML4 → PDPT → PD → PT at 0x10000-0x13FFF: the first 2 MiB, 4 KiB pages, RW."""
    def put(at: int, value: int) -> None:
        ram[at : at + 8] = np.frombuffer(value.to_bytes(8, "little"), dtype=np.uint8)

    put(PML4, (PML4 + 0x1000) | 3)
    put(PML4 + 0x1000, (PML4 + 0x2000) | 3)
    put(PML4 + 0x2000, (PML4 + 0x3000) | 3)
    for n in range(512):
        put(PML4 + 0x3000 + n * 8, (n << 12) | 3)


def _paged_cpu(code: bytes) -> Cpu:
    from tests import test_delivery as tdm

    memory = GuestMemory(PAGED_MEMORY)
    cpu = Cpu(memory, PortBus())
    tdm.long_mode(cpu, memory, {})  # the same tables, plus a GDT for its 64-bit CS
    memory.write(PAGED_CODE, code)
    cpu.set_reg("rip", PAGED_CODE)
    return cpu


def _raw_paged_run(code: bytes) -> float:
    from unicorn import UC_ARCH_X86, UC_MODE_64, UC_PROT_ALL, Uc
    from unicorn import x86_const as X

    ram = np.zeros(PAGED_MEMORY, dtype=np.uint8)
    _page_tables(ram)
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    uc.mem_map_ptr(0, PAGED_MEMORY, UC_PROT_ALL, ram.ctypes.data)
    uc.mem_write(PAGED_CODE, code)
    uc.reg_write(X.UC_X86_REG_CR4, 0x20)                 # PAE
    uc.reg_write(X.UC_X86_REG_CR3, PML4)
    uc.msr_write(0xC000_0080, 0x500)                     # EFER.LME | LMA
    uc.reg_write(X.UC_X86_REG_CR0, 0x8000_0011)          # PG, ET, PE
    start = time.perf_counter()
    uc.emu_start(PAGED_CODE, PAGED_CODE + len(code))
    return time.perf_counter() - start


@pytest.mark.parametrize("loop", list(PAGED_LOOPS))
def test_guest_mips_with_paging(loop, record_pair):
    code, count = _paged_program(PAGED_LOOPS[loop], ITERATIONS[loop])
    _mips_pair(record_pair, f"mips-paged-{loop}", count, lambda: _raw_paged_run(code),
               lambda: _paged_cpu(code))
