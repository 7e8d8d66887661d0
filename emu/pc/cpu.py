"""An x86 CPU for running real boot code: Unicorn's TCG core with our own plumbing.

What Unicorn (2.1.4) gives us is an instruction interpreter; the PC around it
is ours.  Each piece below answers one of the pitfalls recorded in
``booting-on-unicorn.md``:

* **Real mode without ``UC_MODE_16``** (pitfall 1).  The core is created in
  ``UC_MODE_64`` (so RIP, RSP and R8–R15 are 64-bit from Python) and put in
  real mode, CR0 = 0x10, EFER = 0, by ``emu/pc/engine.py``: genuine real mode
  (segment bases are selector × 16, 16-bit default sizes) that survives
  resumption with a full EIP, which ``UC_MODE_16`` does not.  The guest's own
  real↔protected↔long mode switches work unchanged.  Segment registers are
  loaded through the engine's context (a ``UC_MODE_64`` register write sets
  only the selector).
* **No ``timeout=`` preemption** (pitfall 2).  Runs end at an instruction budget
  kept by the virtual clock (:mod:`emu.pc.clock`): by default the native block
  clock, a C block hook that counts each block's instructions and stops the
  engine itself, so blocks stay chained; or ``emu_start(count=N)`` slices
  (``EMU_CLOCK=count``).  The only other stops are cooperative
  (:meth:`Cpu.request_stop` calls ``emu_stop`` from inside our own hooks).  Guest
  time is a pure function of guest execution, so runs are deterministic.
  ``emu_start``'s ``until`` is inert: the engine is created with Unicorn's
  "exits" on, because a ``until`` address is looked up in the guest's page
  tables and, unmapped, leaves a hidden fault behind (``emu/pc/engine.py``).
* **Interrupt delivery is ours** (pitfall 3).  Unicorn reports every ``int n``
  at ``UC_HOOK_INTR`` with EIP already past the instruction and delivers
  nothing; ``emu/pc/delivery.py`` does what the processor would in real,
  protected and IA-32e mode (IVT, IDT gates, privilege changes, IST, error
  codes, ``#DF`` and triple faults), reading guest structures through the page
  tables (``emu/pc/paging.py``).  ``#UD`` never reaches the interrupt hook: it
  arrives at ``UC_HOOK_INSN_INVALID``.  Hardware IRQs are injected between
  slices when IF is set.
* **Host writes invalidate translated code** (pitfall 4).  Guest RAM is the
  machine's numpy array mapped with ``mem_map_ptr`` (shared, never copied), so
  a device or the BIOS writing it from Python bypasses Unicorn's dirty-page
  tracking; the CPU listens to :attr:`GuestMemory.write_listeners` and drops the
  translated code of every written range by its RAM address
  (:class:`~emu.pc.engine.CodeCache`: right with paging on, where a physical
  range is not a linear one).

Port I/O goes to the :class:`PortBus` through ``UC_HOOK_INSN`` (IN/OUT).  On
unicorn 2.1.4 the IN hook runs *before* the store of a string input, with EIP
still at the instruction's first prefix byte, and TCG re-reads ECX/EDI after
the hook.  That allows the ``rep insw``/``rep insd`` fast path: when the port's
:class:`PortRange` has ``string_read``, the hook decodes the instruction bytes
at CS:EIP, fetches the whole count in one numpy copy, returns the first element
for Unicorn to store at ES:EDI, writes the rest straight into RAM, and leaves
ECX = 1 and EDI advanced so the interpreter's own final iteration finishes the
instruction with exact ECX, EDI and direction-flag semantics.

``hlt`` makes ``emu_start`` return with EIP past the ``F4`` byte.  The native clock
knows whether its budget stopped the run, so anything else ending a run on an F4 is
a ``hlt``.  Under the count clock there is no way to tell a ``hlt`` from a count stop
after an instruction ending in F4 (for example ``mov eax, [ebp-0Ch]``).  With IF
set the difference is harmless (the clock skips to the next timer tick).  With IF
clear the CPU is only called halted after it stops at the same ``F4`` again on
resumption, which a real halt loop (``hlt; jmp $-1``) does at once and a count stop
practically never does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

import numpy as np
from unicorn import (
    UC_HOOK_CODE,
    UC_HOOK_INSN,
    UC_HOOK_INSN_INVALID,
    UC_HOOK_INTR,
    UC_HOOK_MEM_FETCH_UNMAPPED,
    UC_HOOK_MEM_READ_UNMAPPED,
    UC_HOOK_MEM_WRITE_UNMAPPED,
    UC_PROT_ALL,
    Uc,
    UcError,
)
from unicorn import x86_const as X

from emu.pc.clock import DEFAULT_IPS, BlockClock, VirtualClock, default_mode
from emu.pc.clock import Timer as Timer  # re-exported: the old home of the clock
from emu.pc.delivery import ERROR_CODE_VECTORS, CpuFault, Delivery, Kind, TripleFault
from emu.pc.engine import (
    CS,
    DS,
    ES,
    FS,
    GS,
    MSR_EFER,
    SEGMENT_REGS,
    SS,
    UC_SEGMENT,
    CodeCache,
    Engine,
    RegisterBatch,
    Registers,
    Segment,
    engine_cpuid,
    new_engine,
)
from emu.pc.memory import GuestMemory
from emu.pc.paging import PageFault
from emu.pc.ports import PortBus
from emu.pc.tlb import NativeTlb
from emu.pc.tlb import wanted as tlb_wanted

__all__ = ["ERROR_CODE_VECTORS", "Cpu", "CpuFault", "Kind", "PageFault", "RunResult",
           "StopReason", "TripleFault", "VirtualClock"]

CR0_PE, CR0_ET, CR0_PG = 0x1, 0x10, 0x8000_0000
FLAG_CF, FLAG_ZF, FLAG_TF, FLAG_IF, FLAG_DF = 0x1, 0x40, 0x100, 0x200, 0x400
FLAG_NT, FLAG_RF, FLAG_VM, FLAG_AC = 0x4000, 0x1_0000, 0x2_0000, 0x4_0000

CR4_OSXSAVE = 1 << 18
CPUID1_ECX_OSXSAVE, CPUID1_ECX_RDRAND = 1 << 27, 1 << 30
"""CPUID leaf 1 ECX feature bits (SDM vol 2A, CPUID, table 3-10)."""

MSR_TSC_AUX = 0xC000_0103
"""IA32_TSC_AUX: what RDTSCP loads into ECX (SDM vol 4, table 2-2)."""

MAX_SLICE = 2_000_000
"""Longest run between two visits of the run loop (a ``count=`` slice, or a native
budget); bounds the latency of an IRQ that a device raised during a run."""
_FAR = 1 << 48
CONTEXT_HOST_TAIL = 8
"""Bytes at the end of Unicorn 2.1.4's x86 CPU context that hold a host pointer."""
"""An ``until`` address no guest reaches: slices end by count or by our stops."""

_PREFIXES = frozenset({0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65, 0x66, 0x67, 0xF0, 0xF2, 0xF3})
_DTYPES = {2: np.dtype("<u2"), 4: np.dtype("<u4")}


class StopReason(Enum):
    """Why :meth:`Cpu.run` returned."""

    HALTED = "halted"
    """``hlt`` with interrupts disabled: nothing can wake the CPU."""
    STOPPED = "stopped"
    """A hook asked to stop (:meth:`Cpu.request_stop`)."""
    INSTRUCTION_LIMIT = "instruction limit"
    WALL_CLOCK = "wall clock"
    """The caller's :attr:`Cpu.wall_deadline` passed while the run was still going."""
    IDLE = "idle"
    """``hlt`` with interrupts enabled and no timer or event left to wake it."""


class InterruptSource(Protocol):
    """An interrupt controller as the CPU sees it (INTR pin + INTA cycle)."""

    def pending(self) -> bool:
        """Is an unmasked interrupt request waiting?"""
        ...

    def acknowledge(self) -> int:
        """The INTA cycle: take the highest-priority request, return its vector."""
        ...


@dataclass
class RunResult:
    """What a :meth:`Cpu.run` call did."""

    reason: StopReason
    instructions: int


class Cpu:
    """Unicorn in real mode over the machine's RAM and port bus."""

    def __init__(self, memory: GuestMemory, ports: PortBus, ips: int = DEFAULT_IPS,
                 ram_ranges: list[tuple[int, int]] | None = None,
                 clock_mode: str | None = None) -> None:
        self.memory = memory
        self.ports = ports
        self.ram = memory.data
        self._ram_address: int = self.ram.ctypes.data
        self.clock = VirtualClock(ips)
        self.uc = new_engine()
        self.engine = Engine(self.uc)
        self.code = CodeCache(self.uc)
        self.delivery = Delivery(self.uc, memory, self.engine, ram_ranges)
        # Shared, not copied: Unicorn's TLB points into the numpy buffer.  RAM above the
        # PCI hole is the array's tail mapped from 4 GiB up (``ram_ranges``).
        offset = 0
        for base, length in ram_ranges or [(0, memory.size)]:
            self.uc.mem_map_ptr(base, length, UC_PROT_ALL, self.ram.ctypes.data + offset)
            offset += length
        self.clock_mode = clock_mode or default_mode()
        """``"native"`` (the C block clock) or ``"count"`` (``count=`` slices)."""
        self._block_clock = (BlockClock(self.uc, self.clock)
                             if self.clock_mode == "native" else None)
        memory.write_listeners.append(self.invalidate)
        self.interrupts: InterruptSource | None = None
        self.on_stop_check: Callable[[], None] | None = None
        self.irq_window: tuple[int, int] | None = None
        """Linear range ``[start, end)`` of firmware code that opens short ``sti``
        windows (``sti; nop; cli``).  While an IRQ waits with IF clear, a code hook
        over this range stops at the first instruction that runs with IF set, so the
        IRQ is delivered in the window as on hardware instead of only between slices."""
        self._window_hook: int | None = None
        self._window_shadow = False
        self._window_stopped = False
        self._tsc_hooks: list[int] = []
        self._tsc_callbacks: list[object] = []
        self._cpuid_hook: int | None = None
        self._cpuid_callback: object = None
        self.string_fast_path = True
        self.string_fast_path_count = 0
        """How many ``rep ins`` instructions moved their whole count in one copy."""
        self.halted = False
        self.wall_deadline: float | None = None
        """Host ``time.monotonic()`` at which :meth:`run` returns (checked between engine
        runs; never used to preempt the engine: pitfall 2)."""
        self.idle_waits = 0
        """How often the CPU waited for an interrupt (``hlt`` with IF set, or a BIOS wait):
        a session reads it to tell a guest that waits from one that computes."""
        self._sleeping = False
        self._halt_at: int | None = None
        self._stop_reason: StopReason | None = None
        self._fault: CpuFault | None = None
        self._hooks = [
            self.uc.hook_add(UC_HOOK_INSN, self._hook_in, None, 1, 0, X.UC_X86_INS_IN),
            self.uc.hook_add(UC_HOOK_INSN, self._hook_out, None, 1, 0, X.UC_X86_INS_OUT),
            self.uc.hook_add(UC_HOOK_INTR, self._hook_intr),
            self.uc.hook_add(UC_HOOK_INSN_INVALID, self._hook_invalid),
            self.uc.hook_add(UC_HOOK_INSN, self._hook_syscall, None, 1, 0,
                             X.UC_X86_INS_SYSCALL),
            self.uc.hook_add(UC_HOOK_INSN, self._hook_sysenter, None, 1, 0,
                             X.UC_X86_INS_SYSENTER),
        ]
        # Fault reports for accesses where nothing is mapped.  The hooks cover only the
        # ranges outside RAM: a memory hook over a RAM address keeps every store to it
        # on Unicorn's slow path (emu/pc/tlb.py), and these can only fire outside RAM.
        for begin, end in self._fault_hook_ranges(ram_ranges or [(0, memory.size)]):
            self._hooks.append(self.uc.hook_add(
                UC_HOOK_MEM_READ_UNMAPPED | UC_HOOK_MEM_WRITE_UNMAPPED
                | UC_HOOK_MEM_FETCH_UNMAPPED, self._hook_unmapped, None, begin, end))
        self.tlb = (NativeTlb(self.uc, self._ram_address, ram_ranges or [(0, memory.size)])
                    if tlb_wanted() else None)
        """The fast-store TLB fill (None: the engine's own TLB throughout)."""
        if self._block_clock is not None:
            low = min(memory.size, (ram_ranges or [(0, memory.size)])[0][1])
            self._block_clock.use_count_cache(
                self._ram_address, low,
                self.tlb.paging_address() if self.tlb is not None else None)
        self.reset_real_mode(0, 0)

    @staticmethod
    def _fault_hook_ranges(ram: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Inclusive ``(begin, end)`` ranges of the address space outside ``ram``."""
        ranges, at = [], 0
        for base, length in sorted(ram):
            if base > at:
                ranges.append((at, base - 1))
            at = max(at, base + length)
        ranges.append((at, (1 << 64) - 1))
        return ranges

    # -- saved state (emu/pc/state.py) ------------------------------------------------
    GLUE_FIELDS = ("halted", "idle_waits", "_sleeping", "_halt_at", "_window_shadow",
                   "string_fast_path", "string_fast_path_count")
    """The glue's own fields between runs (``_stop_reason``, ``_fault`` and
    ``_window_stopped`` are always clear then).  Unicorn's registers, descriptor caches,
    MSRs and FPU state are its context (:meth:`context_bytes`)."""

    def glue_state(self) -> dict[str, object]:
        state: dict[str, object] = {name: getattr(self, name) for name in self.GLUE_FIELDS}
        state["window_armed"] = self._window_hook is not None
        return state

    def load_glue_state(self, state: dict[str, object]) -> None:
        for name in self.GLUE_FIELDS:
            if name not in state:
                raise ValueError(f"cpu: missing field {name!r}")
            value = state[name]
            if value is not None and not isinstance(value, (bool, int)):
                raise ValueError(f"cpu: field {name!r} = {value!r} is not a number")
        for name in self.GLUE_FIELDS:
            setattr(self, name, state[name])
        self._stop_reason = None
        self._fault = None
        self._window_stopped = False
        self._arm_irq_window(bool(state.get("window_armed")))

    def context_bytes(self) -> bytes:
        """Unicorn's CPU state (``uc_context_save``) as bytes: the engine's own layout.

        Only the CPU part, without the context's header (its data size, and fields that
        hold this process's pointers), and with the last :data:`CONTEXT_HOST_TAIL` bytes
        zeroed: on the pinned build they hold a host pointer the engine sets as it runs
        (found by comparing two engines in the same guest state).  Equal CPU states give
        equal bytes, in any process."""
        raw = bytes(self.uc.context_save())
        data = raw[len(raw) - int.from_bytes(raw[:8], "little"):]
        return data[:-CONTEXT_HOST_TAIL] + bytes(CONTEXT_HOST_TAIL)

    def context_size(self) -> int:
        """The length of :meth:`context_bytes` on this Unicorn build."""
        return len(self.context_bytes())

    def load_context_bytes(self, data: bytes) -> None:
        """Put back a CPU state from :meth:`context_bytes` (same Unicorn build only), then
        drop every translated block (the code in RAM may have changed under it).  The
        host-pointer tail keeps this engine's own value (never another process's)."""
        import ctypes

        context = self.uc.context_save()
        raw = bytes(context)
        size = int.from_bytes(raw[:8], "little")
        if len(data) != size:
            raise ValueError(f"CPU context of {len(data)} bytes; this Unicorn's is {size}")
        address = ctypes.cast(context.context, ctypes.c_void_p).value
        assert address is not None
        ctypes.memmove(address + len(raw) - size, data, size - CONTEXT_HOST_TAIL)
        self.uc.context_restore(context)
        self.flush_code()

    # -- state ----------------------------------------------------------------------
    def reset_real_mode(self, cs: int, ip: int, ss: int = 0, sp: int = 0x7C00) -> None:
        """Real mode (pitfall 1: CR0.PE clear, EFER = 0), CS:IP and SS:SP set.

        Segments are as after RESET (SDM vol 3 table 9-1): limit FFFFh, present,
        read/write, accessed; CS a code segment.
        """
        uc = self.uc
        uc.reg_write(X.UC_X86_REG_CR0, CR0_ET)  # PG off also leaves long mode
        uc.msr_write(MSR_EFER, 0)
        uc.reg_write(X.UC_X86_REG_IDTR, (0, 0, 0xFFFF, 0))  # as after RESET (SDM vol 3 §9.1.1)
        uc.reg_write(X.UC_X86_REG_CR4, 0)
        data = 0x9300  # present, S, read/write, accessed
        self.engine.load_segments({
            CS: Segment(cs, cs << 4, 0xFFFF, 0x9B00),
            SS: Segment(ss, ss << 4, 0xFFFF, data),
            DS: Segment(0, 0, 0xFFFF, data), ES: Segment(0, 0, 0xFFFF, data),
            FS: Segment(0, 0, 0xFFFF, data), GS: Segment(0, 0, 0xFFFF, data),
        }, forget_exception=True)
        uc.reg_write(X.UC_X86_REG_RSP, sp)
        uc.reg_write(X.UC_X86_REG_RIP, ip)
        uc.reg_write(X.UC_X86_REG_EFLAGS, 0x2)
        self.halted = False
        self._halt_at = None

    def reg(self, name: str) -> int:
        """Read a register by name (``"eax"``, ``"cs"``...), for tests and reports."""
        return self.uc.reg_read(getattr(X, f"UC_X86_REG_{name.upper()}"))

    def set_reg(self, name: str, value: int) -> None:
        """Write a register by name; segment registers load as ``mov sreg`` would."""
        if name.lower() in SEGMENT_REGS:
            self.load_segment(name.lower(), value)
            return
        self.uc.reg_write(getattr(X, f"UC_X86_REG_{name.upper()}"), value)

    @property
    def protected(self) -> bool:
        return bool(self.uc.reg_read(X.UC_X86_REG_CR0) & CR0_PE)

    def where(self) -> str:
        """``CS:EIP`` for messages."""
        uc = self.uc
        return f"{uc.reg_read(X.UC_X86_REG_CS):04X}:{uc.reg_read(X.UC_X86_REG_RIP):08X}"

    def invalidate(self, start: int, end: int) -> None:
        """The host wrote RAM ``[start, end)`` (offsets in the RAM array, which are
        physical addresses below :attr:`GuestMemory.phys_limit`): drop the translated
        code made from it (pitfall 4)."""
        if end > start:
            self.code.drop_host(self._ram_address + start, end - start, start)

    def flush_code(self) -> None:
        """Drop every translated block (all of RAM was replaced)."""
        self.uc.ctl_flush_tb()

    def retranslate(self, start: int, end: int) -> None:
        """Drop translated code at *linear* ``[start, end)`` so it is translated again
        (with a code hook added or removed since).

        By RAM address, page by page: with paging on each page is looked up in the guest's
        tables without marking them (an unmapped page holds no code to drop).  Never
        ``ctl_remove_cache``: its lookup of an unmapped page raises a hidden ``#PF`` that
        the engine remembers and that overwrites CR2 (docs/booting.md, pitfall 13)."""
        paging = bool(self.uc.reg_read(X.UC_X86_REG_CR0) & CR0_PG)
        at = start
        while at < end:
            step = min(end, (at | 0xFFF) + 1) - at
            physical: int | None = at & 0xFFFF_FFFF
            if paging:
                try:
                    physical = self.delivery.linear_to_physical(at, mark=False)
                except (PageFault, CpuFault):
                    physical = None
            if physical is not None:
                offset = self.delivery.ram_offset(physical, step)
                if offset is not None:
                    self.code.drop_host(self._ram_address + offset, step, physical)
            at += step

    def write_ram(self, address: int, data: bytes) -> None:
        """A host-side write into RAM, with translated code dropped for the range."""
        self.memory.write(address, data)

    # -- segments (emu/pc/delivery.py reads them through the page tables) ---------
    def load_segment(self, seg: str | int, selector: int) -> None:
        """Load a segment register as ``mov sreg, r16`` would (real mode: selector × 16).

        ``seg`` is a name (``"es"``), an index (:data:`~emu.pc.engine.ES`...) or a
        Unicorn register id: in ``UC_MODE_64`` a plain ``reg_write`` of CS, DS, ES
        or SS would set the selector only.
        """
        if isinstance(seg, str):
            index = SEGMENT_REGS[seg]
        else:
            index = UC_SEGMENT.get(seg, seg)
        if not self.protected or self.uc.reg_read(X.UC_X86_REG_EFLAGS) & FLAG_VM:
            self.engine.load_segments({index: selector})
            return
        if not selector & 0xFFFC:
            self.engine.load_segments({index: Segment(selector, 0, 0, 0)})
            return
        base, limit, flags = self.delivery.descriptor(selector)
        self.engine.load_segments({index: Segment(selector, base, limit, flags)})

    def descriptor(self, selector: int) -> tuple[int, int, int]:
        """``(base, limit, flags_dword)`` of a GDT/LDT descriptor (SDM vol 3 §3.4.5)."""
        return self.delivery.descriptor(selector)

    def segment_base(self, seg: str) -> int:
        return self.delivery.segment_base(seg)

    def code_is_32bit(self) -> bool:
        return self.delivery.code_is_32bit()

    def stack_is_32bit(self) -> bool:
        return self.delivery.stack_is_32bit()

    def linear_to_physical(self, linear: int, *, write: bool = False, user: bool = False,
                           fetch: bool = False) -> int:
        """Translate through the guest's page tables (raises :class:`PageFault`)."""
        return self.delivery.linear_to_physical(linear, write=write, user=user, fetch=fetch)

    # -- stack and interrupt delivery (pitfall 3; emu/pc/delivery.py) --------------
    def push16(self, value: int) -> None:
        self.delivery.push(value & 0xFFFF, 2)

    def push32(self, value: int) -> None:
        self.delivery.push(value & 0xFFFF_FFFF, 4)

    @property
    def software_interrupt(self) -> Callable[[int], bool] | None:
        """Called for ``int n`` in real mode before IVT delivery; True means served."""
        return self.delivery.software_interrupt

    @software_interrupt.setter
    def software_interrupt(self, handler: Callable[[int], bool] | None) -> None:
        self.delivery.software_interrupt = handler

    def deliver(self, vector: int, error_code: int | None = None,
                kind: Kind = Kind.EXTERNAL) -> None:
        """Enter the guest's handler for ``vector`` as the hardware would (see delivery.py).

        Raises :class:`CpuFault` for a triple fault or what this PC does not model.
        """
        self.delivery.deliver(vector, error_code, kind)
        self.halted = False

    def _hook_intr(self, uc: Uc, intno: int, _user: object) -> None:
        try:
            self.delivery.on_interrupt(intno)
            self.halted = False
        except CpuFault as exc:
            self.fail(exc)

    def _hook_invalid(self, uc: Uc, _user: object) -> bool:
        # #UD never reaches UC_HOOK_INTR: the engine stops with UC_ERR_INSN_INVALID
        # unless this hook takes it (RIP is at the instruction, a fault).
        try:
            self.delivery.on_invalid_opcode()
        except CpuFault as exc:
            self.fail(exc)
        return True

    def _hook_syscall(self, uc: Uc, _user: object) -> None:
        try:
            self.delivery.on_syscall()
        except CpuFault as exc:
            self.fail(exc)

    def _hook_sysenter(self, uc: Uc, _user: object) -> None:
        try:
            self.delivery.on_sysenter()
        except CpuFault as exc:
            self.fail(exc)

    # -- time stamp counter ---------------------------------------------------------
    def use_virtual_tsc(self) -> None:
        """Make RDTSC and RDTSCP read the virtual clock (one tick per instruction).

        Unicorn's RDTSC and RDTSCP count host nanoseconds, so firmware that calibrates
        the TSC against the 8254 (SeaBIOS, GRUB) would see a different CPU speed on
        every run, and a kernel reading both (Linux's ``rdtsc_ordered`` is RDTSCP when
        CPUID says so, its ``sched_clock`` plain RDTSC) would see time jump between
        two clocks.  Each read moves the clock on by one microsecond, so the TSC is
        strictly increasing and a loop that only polls it sees time pass inside a
        slice.  RDTSCP also loads ECX with IA32_TSC_AUX (SDM vol 2B, RDTSCP).  The
        Python binding lists no hook for either; the core has them, so they are
        registered through the binding's own low-level entry.
        """
        if self._tsc_hooks:
            return
        import ctypes

        from unicorn.unicorn_py3.arch import intel
        from unicorn.unicorn_py3.unicorn import uccallback

        clock = self.clock
        step = max(1, clock.ips // 1_000_000)

        tsc_regs = RegisterBatch(self.uc, [X.UC_X86_REG_RAX, X.UC_X86_REG_RDX])
        tscp_regs = RegisterBatch(self.uc, [X.UC_X86_REG_RAX, X.UC_X86_REG_RDX,
                                            X.UC_X86_REG_RCX])

        def read_tsc(with_aux: bool) -> int:
            clock.nudge(step)
            tsc = clock.instructions
            # The whole RAX/RDX/RCX: the instruction clears their top halves in 64-bit
            # mode, and a write of EAX through Unicorn would keep them (Linux reads
            # ``low | high << 32`` from the full registers).
            if with_aux:
                tscp_regs.write(tsc & 0xFFFF_FFFF, (tsc >> 32) & 0xFFFF_FFFF,
                                self.uc.msr_read(MSR_TSC_AUX) & 0xFFFF_FFFF)
            else:
                tsc_regs.write(tsc & 0xFFFF_FFFF, (tsc >> 32) & 0xFFFF_FFFF)
            return 1  # the instruction is done

        @uccallback(self.uc, intel.HOOK_INSN_CPUID_CFUNC)
        def _rdtsc(_uc: object, _key: int) -> int:
            return read_tsc(False)

        @uccallback(self.uc, intel.HOOK_INSN_CPUID_CFUNC)
        def _rdtscp(_uc: object, _key: int) -> int:
            return read_tsc(True)

        self._tsc_callbacks = [_rdtsc, _rdtscp]
        for callback, insn in ((_rdtsc, X.UC_X86_INS_RDTSC), (_rdtscp, X.UC_X86_INS_RDTSCP)):
            self._tsc_hooks.append(self.uc._Uc__do_hook_add(  # type: ignore[attr-defined]
                UC_HOOK_INSN, callback, 1, 0, ctypes.c_int(insn)))

    # -- CPUID ----------------------------------------------------------------------
    def use_deterministic_cpuid(self) -> None:
        """Hide RDRAND from CPUID (leaf 1, ECX bit 30; SDM vol 2A, CPUID).

        The engine's CPU model reports RDRAND and executes it with the host's random
        numbers, so a kernel that seeds from it (Linux: its random pool, stack canaries,
        user-space address randomisation) runs differently on every boot, which breaks
        the rule that guest time and guest behaviour are a pure function of the guest.
        Leaf 1 is answered here from the engine's own answer with RDRAND cleared (and
        OSXSAVE, bit 27, following CR4.OSXSAVE as the processor's does); every other leaf
        is executed by the engine.  A guest that runs RDRAND without asking CPUID still
        gets host randomness: the engine has no hook for it.
        """
        if self._cpuid_hook is not None:
            return
        import ctypes

        from unicorn.unicorn_py3.arch import intel
        from unicorn.unicorn_py3.unicorn import uccallback

        eax, ebx, ecx, edx = engine_cpuid(1)
        ecx &= ~(CPUID1_ECX_RDRAND | CPUID1_ECX_OSXSAVE)
        uc = self.uc

        regs = Registers(uc)
        answer = RegisterBatch(uc, [X.UC_X86_REG_RAX, X.UC_X86_REG_RBX, X.UC_X86_REG_RCX,
                                    X.UC_X86_REG_RDX])

        @uccallback(uc, intel.HOOK_INSN_CPUID_CFUNC)
        def _cpuid(_uc: object, _key: int) -> int:
            if regs.read(X.UC_X86_REG_EAX) != 1:
                return 0  # the engine answers
            osxsave = CPUID1_ECX_OSXSAVE if regs.read(X.UC_X86_REG_CR4) & CR4_OSXSAVE else 0
            answer.write(eax, ebx, ecx | osxsave, edx)
            return 1  # the instruction is done

        self._cpuid_callback = _cpuid
        self._cpuid_hook = uc._Uc__do_hook_add(  # type: ignore[attr-defined]
            UC_HOOK_INSN, _cpuid, 1, 0, ctypes.c_int(X.UC_X86_INS_CPUID))

    # -- port I/O -------------------------------------------------------------------
    def _hook_out(self, uc: Uc, port: int, size: int, value: int, _user: object) -> None:
        self.ports.write(port, size, value)

    def _hook_in(self, uc: Uc, port: int, size: int, _user: object) -> int:
        if size > 1 and self.string_fast_path:
            rng = self.ports.claimed(port)
            if rng is not None and rng.string_read is not None:
                first = self._rep_ins(port, size)
                if first is not None:
                    return first
        return self.ports.read(port, size)

    def _rep_ins(self, port: int, size: int) -> int | None:
        """The ``rep insw``/``rep insd`` fast path; None when this is not one."""
        uc = self.uc
        if uc.reg_read(X.UC_X86_REG_CR0) & CR0_PG:
            return None  # linear ≠ physical: the interpreter does it
        cs_base = self.segment_base("cs")
        eip = uc.reg_read(X.UC_X86_REG_EIP)
        code = self.ram[cs_base + eip : cs_base + eip + 15].tobytes()
        rep = False
        addr32 = self.code_is_32bit()
        for byte in code:
            if byte in (0xF3, 0xF2):
                rep = True
            elif byte == 0x67:
                addr32 = not addr32
            elif byte not in _PREFIXES:
                if byte != 0x6D or not rep:
                    return None
                break
        else:
            return None
        ecx, edi, flags = uc.reg_read_batch(
            [X.UC_X86_REG_ECX, X.UC_X86_REG_EDI, X.UC_X86_REG_EFLAGS])
        mask = 0xFFFF_FFFF if addr32 else 0xFFFF
        count = ecx & mask
        di = edi & mask
        if count < 2:
            return None
        step = -size if flags & FLAG_DF else size
        low = di if step > 0 else di - (count - 1) * size
        high = di + count * size if step > 0 else di + size
        if low < 0 or high > mask + 1:
            return None  # the offset would wrap: leave it to the interpreter
        es_base = self.segment_base("es")
        if es_base + high > self.memory.size:
            return None
        out = np.empty(count, dtype=_DTYPES[size])
        self.ports.read_string_into(port, size, out)
        rest = out[1:]
        if step > 0:
            start = es_base + di + size
            self.ram[start : start + rest.nbytes] = rest.view(np.uint8)
        else:
            start = es_base + low
            self.ram[start : start + rest.nbytes] = rest[::-1].copy().view(np.uint8)
        self.invalidate(start, start + rest.nbytes)
        new_di = (di + (count - 1) * step) & mask
        uc.reg_write(X.UC_X86_REG_ECX, (ecx & ~mask) | 1)
        uc.reg_write(X.UC_X86_REG_EDI, (edi & ~mask) | new_di)
        self.string_fast_path_count += 1
        return int(out[0])

    # -- faults ---------------------------------------------------------------------
    def _hook_unmapped(self, uc: Uc, access: int, address: int, size: int, value: int,
                       _user: object) -> bool:
        self.fail(f"access to {address:#x} outside RAM at {self.where()}")
        return False

    def fail(self, message: str | CpuFault) -> None:
        """Stop the run with a CPU fault (raised from :meth:`run`)."""
        if self._fault is None:
            self._fault = message if isinstance(message, CpuFault) else CpuFault(message)
        self.request_stop(StopReason.STOPPED)

    def sleep(self) -> None:
        """Called from a hook: wait for the next timer event (a BIOS wait loop's ``hlt``)."""
        self._sleeping = True
        self.uc.emu_stop()

    def request_stop(self, reason: StopReason = StopReason.STOPPED) -> None:
        """Cooperative stop: only ever called from inside our own hooks (pitfall 2)."""
        self._stop_reason = reason
        self.uc.emu_stop()

    # -- the run loop ---------------------------------------------------------------
    def _linear_ip(self) -> int:
        """Where CS:IP is in the RAM array (through the page tables with paging on).

        0 when it is not in RAM or not mapped.
        """
        try:
            linear = self.delivery.linear_ip()
            if self.uc.reg_read(X.UC_X86_REG_CR0) & CR0_PG:
                linear = self.delivery.linear_to_physical(linear)
        except (PageFault, CpuFault):
            return 0
        at = self.delivery.ram_offset(linear)
        return 0 if at is None else at

    def _inject_irq(self) -> bool:
        """Deliver one pending hardware interrupt if IF allows; True if delivered."""
        if self.interrupts is None or not self.interrupts.pending():
            self._arm_irq_window(False)
            return False
        if not self.uc.reg_read(X.UC_X86_REG_EFLAGS) & FLAG_IF:
            self._arm_irq_window(True)
            return False
        self.deliver(self.interrupts.acknowledge())
        return True

    def _arm_irq_window(self, armed: bool) -> None:
        """Install or remove the :attr:`irq_window` code hook (between slices only).

        Only for firmware, which runs without paging: once an OS has paging on, the
        range means nothing (and it is not armed again)."""
        if armed and self.uc.reg_read(X.UC_X86_REG_CR0) & CR0_PG:
            armed = False
        if self.irq_window is None or armed == (self._window_hook is not None):
            return
        start, end = self.irq_window
        if armed:
            self._window_hook = self.uc.hook_add(UC_HOOK_CODE, self._hook_window, None,
                                                 start, end - 1)
        else:
            assert self._window_hook is not None
            self.uc.hook_del(self._window_hook)
            self._window_hook = None
        # Code translated before a code hook existed has no call to it (and code
        # translated while it existed keeps calling it): retranslate the range.  The
        # count clock hid this, its own code hook putting a call on every instruction.
        self.retranslate(start, end)

    def _hook_window(self, uc: Uc, address: int, size: int, _user: object) -> None:
        # Interrupts are recognised after the instruction that follows STI, MOV SS
        # or POP SS (the interrupt shadow, SDM vol 3 §6.8.3), never right after them.
        shadow, self._window_shadow = self._window_shadow, False
        code = self.ram[address : address + 2]
        first = int(code[0]) if len(code) else 0
        if first in (0xFB, 0x17) or (first == 0x8E and len(code) > 1
                                      and (int(code[1]) >> 3) & 7 == 2):
            self._window_shadow = True
        if not shadow and uc.reg_read(X.UC_X86_REG_EFLAGS) & FLAG_IF:
            self._window_stopped = True
            uc.emu_stop()

    def run(self, max_instructions: int | None = None) -> RunResult:
        """Run until halted, stopped by a hook, idle, or ``max_instructions`` more.

        Raises :class:`CpuFault` if the guest crashes the machine.
        """
        uc = self.uc
        clock = self.clock
        start = clock.instructions
        limit = None if max_instructions is None else start + max_instructions
        self._stop_reason = None
        spins = 0
        while True:
            spins += 1
            if not spins & 0xFF and self.wall_deadline is not None and (
                    time.monotonic() >= self.wall_deadline):
                # Engine runs this short (a guest the engine keeps stopping) must not
                # keep the caller from its wall-clock limit.
                return RunResult(StopReason.WALL_CLOCK, clock.instructions - start)
            clock.fire_due()
            try:
                self._inject_irq()
            except CpuFault as exc:
                self.fail(exc)
            if self._fault is not None:
                fault, self._fault = self._fault, None
                raise fault
            if self._stop_reason is not None:
                reason, self._stop_reason = self._stop_reason, None
                return RunResult(reason, clock.instructions - start)
            if limit is not None and clock.instructions >= limit:
                return RunResult(StopReason.INSTRUCTION_LIMIT, clock.instructions - start)
            if self.halted:
                flags = uc.reg_read(X.UC_X86_REG_EFLAGS)
                deadline = clock.next_deadline()
                if not flags & FLAG_IF:
                    return RunResult(StopReason.HALTED, clock.instructions - start)
                if deadline is None:
                    return RunResult(StopReason.IDLE, clock.instructions - start)
                # Halted with IF set: skip idle time to the next timer event.
                self.idle_waits += 1
                clock.advance_to(deadline if limit is None else min(deadline, limit))
                if self.interrupts is not None and self.interrupts.pending():
                    self.halted = False
                continue
            now = clock.instructions
            target = now + MAX_SLICE
            deadline = clock.next_deadline()
            if deadline is not None:
                target = min(target, max(now + 1, deadline))
            if limit is not None:
                target = min(target, max(now + 1, limit))
            if self._block_clock is not None:
                self._run_native(target, exact=limit is not None and target == limit)
            else:
                self._run_count(target - now)

    def _emu_start(self, count: int) -> None:
        uc = self.uc
        if self.tlb is not None:
            self.tlb.resume()
        while True:
            try:
                uc.emu_start(uc.reg_read(X.UC_X86_REG_RIP), _FAR, 0, count)
                return
            except UcError as exc:
                data_access = None if self.tlb is None else self.tlb.recover()
                if data_access is None:
                    raise CpuFault(f"{exc} at {self.where()}") from exc
            # The C fill handed an access to the engine's own MMU (a page fault, a
            # paging form it does not walk): the instruction is restarted under it.  A
            # data access came from the block being run, already charged even when the
            # instruction is its first; an instruction fetch from a block not entered.
            if self._block_clock is not None:
                self._block_clock.stopped_at(self._linear_ip(), inclusive=data_access)

    def _run_native(self, budget: int, exact: bool = False) -> None:
        """One run under the native block clock, until ``budget`` or a stop.

        ``exact`` (the caller's own limit): the block that would cross the budget is
        not entered by the block clock; :meth:`_step_partial_block` runs its first
        instructions under a code hook over that one block, so the run ends on the
        budget exactly.
        """
        block_clock = self._block_clock
        assert block_clock is not None
        if self.tlb is None:
            block_clock.paging.value = self.uc.reg_read(X.UC_X86_REG_CR0) >> 31
        block_clock.arm(budget, exact)
        try:
            self._emu_start(0)
        finally:
            by_budget = block_clock.disarm()
        if by_budget == 2:
            by_budget = self._step_partial_block()
        if by_budget:
            self._halt_at = None
            return
        block_clock.stopped_at(self._linear_ip())
        if self._fault is not None or self._stop_reason is not None:
            return
        if self._window_stopped:
            self._window_stopped = False  # the count is exact: nothing to add
            return
        if self._sleeping:
            self._sleeping = False
            self.idle_waits += 1
            deadline = self.clock.next_deadline()
            if deadline is not None:
                self.clock.advance_to(deadline)
            return
        # Nothing of ours stopped the engine and the budget was not spent: hlt.
        ip = self._linear_ip()
        if ip and self.ram[ip - 1] == 0xF4:
            self.halted = True

    def _step_partial_block(self) -> int:
        """Run the first ``partial_left`` instructions of the block the native clock
        stopped before; returns 1 if the run ended on the budget (else 0: a hook or a
        ``hlt`` ended it first, and the usual checks apply)."""
        block_clock = self._block_clock
        assert block_clock is not None
        state = block_clock.state
        left, start, end = state.partial_left, state.partial_pc, state.partial_end
        stepped = [0, False]

        def count(uc: Uc, _address: int, _size: int, _user: object) -> None:
            if stepped[0] == left:
                stepped[1] = True
                uc.emu_stop()  # before the instruction: it does not run
                return
            stepped[0] += 1

        uc = self.uc
        hook = uc.hook_add(UC_HOOK_CODE, count, None, start, end - 1)
        self.retranslate(start, end)  # translate the block again, with the hook
        block_clock.skip_first_block(start, end)
        block_clock.arm(state.executed)  # leaving the block ends the run too
        try:
            self._emu_start(0)
        finally:
            by_budget = block_clock.disarm()
            uc.hook_del(hook)
            self.retranslate(start, end)
            state.resume_end = 0
            self.clock.nudge(stepped[0])
        return 1 if stepped[1] or by_budget else 0

    def _run_count(self, count: int) -> None:
        """One ``emu_start(count=...)`` slice (the fallback clock)."""
        self._emu_start(count)
        if self._fault is not None or self._stop_reason is not None:
            return
        if self._window_stopped:
            # Cut short at an IRQ window: Unicorn reports no partial count, so the
            # slice counts as one instruction (counting all of it would make guest
            # time leap ahead at every poll).
            self._window_stopped = False
            self.clock.nudge(1)
            return
        if self._sleeping:
            # The BIOS waits: time moves on to the next timer event.
            self._sleeping = False
            self.idle_waits += 1
            deadline = self.clock.next_deadline()
            # Never backwards: a TSC read inside the slice may have nudged past it.
            self.clock.advance_to(deadline if deadline is not None else (
                self.clock.instructions + count))
            return
        self._check_halt(count)

    def _check_halt(self, count: int) -> None:
        """Count clock: advance the clock after a slice and decide whether it ended
        in ``hlt`` (see the module docstring)."""
        ip = self._linear_ip()
        if ip == 0 or self.ram[ip - 1] != 0xF4:
            self.clock.nudge(count)
            self._halt_at = None
            return
        flags = self.uc.reg_read(X.UC_X86_REG_EFLAGS)
        if flags & FLAG_IF:
            # Either a real hlt or a count stop after a byte F4: waiting for
            # the next tick is right for the first and harmless for the second.
            self.halted = True
            self._halt_at = None
            return
        if self._halt_at == ip:
            self.halted = True
            return
        # First sighting with IF clear: resume once to confirm (see module docstring).
        self._halt_at = ip
        self.clock.nudge(1)
