"""Interrupt and exception delivery, done by the glue because Unicorn does none.

Unicorn 2.1.4 reports every ``INT n``, exception and (through us) external
interrupt to ``UC_HOOK_INTR`` and delivers nothing (pitfall 3 of
booting-on-unicorn.md).  This module is the processor's delivery microcode,
following Intel SDM vol 3:

* **Real mode** (§20.1.4): the vector's IP:CS from the IVT at IDTR.base;
  FLAGS, CS, IP pushed on SS:SP; IF, TF and AC cleared.  The CS load sets
  selector and base only, as a real-mode segment load does (a big-real-mode
  limit survives).
* **Protected mode** (§6.10–§6.12, §7.7 for the TSS): 16- and 32-bit interrupt
  and trap gates; the gate's DPL checked against CPL for software interrupts
  (``#GP``), ``#NP`` for a gate not present; the target code segment's DPL
  decides the new CPL, and a more privileged non-conforming target switches to
  SS:ESP for that ring from the TSS (16- or 32-bit TSS) and pushes the old
  SS:ESP first; EFLAGS, CS, EIP and the error code follow.  Interrupt gates
  clear IF, trap gates keep it; TF, NT, RF and VM are cleared.
* **IA-32e mode** (§6.14): 16-byte gates that must be 64-bit interrupt or trap
  gates and point to a 64-bit code segment; RSP from the TSS's RSPn on a
  privilege change or from ISTn when the gate names an IST slot (§6.14.5);
  RSP aligned down to 16 bytes; SS:RSP always pushed; on a privilege change SS
  becomes a null selector with RPL = new CPL (§6.14.4).
* **Error codes** (§6.13, table 6-1): pushed for 8, 10–14, 17, 21; EXT set when
  the event is external or the fault happened while delivering another event.
  ``#PF``'s code and CR2 come from the engine for the guest's own accesses
  (``emu/pc/engine.py`` reads the code out of the saved context) and from the
  page walk (``emu/pc/paging.py``) for faults during delivery.
* **SYSCALL and SYSENTER** (SDM vol 2B): Unicorn hands both to an
  instruction hook and executes neither; the glue loads the flat ring-0 CS/SS
  they define, RCX/R11 (SYSCALL) and RSP/RIP from the MSRs.  SYSRET, SYSEXIT,
  RDMSR, WRMSR, CPUID and IRETQ are executed by the engine itself.
* **Double and triple faults** (§6.15, table 6-5, "Interrupt 8"): a fault while
  delivering an exception either is handled serially or becomes ``#DF``; a
  fault while delivering ``#DF`` is a triple fault, which this PC reports as a
  :class:`TripleFault` (a :class:`CpuFault`: "triple fault at CS:IP") instead of
  resetting.

Every read of a guest structure (IDT, GDT, LDT, TSS) and every push goes
through the guest's page tables when CR0.PG is set (the real-mode IVT is
physical, as paging needs protected mode); frames are translated as a
whole before the first byte is written, so a delivery that faults leaves
memory untouched.

TODO(SDM vol 3 §7.3): task gates and hardware task switches; TODO(§20.3):
interrupts in virtual-8086 mode; segment limit checks on the pushes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from enum import Enum
from typing import NamedTuple

from unicorn import Uc
from unicorn import x86_const as X

from emu.pc.engine import CS, SEGMENT_REGS, SS, Engine, RegisterBatch, Segment
from emu.pc.memory import GuestMemory
from emu.pc.paging import PageFault, Paging, RamRanges, ram_offset, translate

CR0_PE, CR0_PG = 0x1, 0x8000_0000
FLAG_TF, FLAG_IF, FLAG_NT = 0x100, 0x200, 0x4000
FLAG_RF, FLAG_VM, FLAG_AC = 0x1_0000, 0x2_0000, 0x4_0000
MSR_EFER = 0xC000_0080
EFER_SCE, EFER_LMA = 0x1, 0x400
MSR_STAR, MSR_LSTAR, MSR_FMASK = 0xC000_0081, 0xC000_0082, 0xC000_0084
MSR_SYSENTER_CS, MSR_SYSENTER_ESP, MSR_SYSENTER_EIP = 0x174, 0x175, 0x176
# Flat ring-0 segments as SYSCALL/SYSENTER load them (fixed, not read from the GDT):
# G, P, DPL 0, S, limit 19:16 = F; code execute/read accessed (L for 64-bit, D for
# 32-bit), data read/write accessed with B.
_FLAT_CODE64 = 0x00AF_9B00
_FLAT_CODE32 = 0x00CF_9B00
_FLAT_DATA = 0x00CF_9300

UD, DF, TS, NP, SS_FAULT, GP, PF = 6, 8, 10, 11, 12, 13, 14
ERROR_CODE_VECTORS = frozenset({8, 10, 11, 12, 13, 14, 17, 21})
"""Exceptions that push an error code (Intel SDM vol 3 table 6-1)."""
CONTRIBUTORY = frozenset({0, 10, 11, 12, 13})
"""Contributory exceptions for the double-fault rules (SDM vol 3 table 6-4)."""

_DESC_CODE = 0x1800  # S and the code bit of a descriptor's high dword
_DESC_CONFORMING = 0x400
_DESC_WRITABLE = 0x200
_DESC_P = 0x8000
_DESC_L, _DESC_B = 1 << 21, 1 << 22


class CpuFault(Exception):
    """The guest did something this PC cannot continue from (triple fault, bad fetch...)."""


class TripleFault(CpuFault):
    """A fault while delivering a double fault: a PC shuts down (SDM vol 3 §6.15, int 8)."""


class Kind(Enum):
    """Where an event comes from: it decides the DPL check and the EXT bit."""

    SOFTWARE = "software"
    """``INT n``, ``INT3``, ``INTO``: gate DPL checked against CPL; EXT = 0."""
    EXCEPTION = "exception"
    """A fault or trap the processor detected."""
    EXTERNAL = "external"
    """An interrupt from the interrupt controller (INTR); EXT = 1."""


class _State(NamedTuple):
    """The registers every delivery needs, read in one batch (each read costs µs)."""

    cr0: int
    flags: int
    cs: int
    rip: int
    ss: int
    rsp: int


_STATE_REGS = [X.UC_X86_REG_CR0, X.UC_X86_REG_RFLAGS, X.UC_X86_REG_CS, X.UC_X86_REG_RIP,
               X.UC_X86_REG_SS, X.UC_X86_REG_RSP]


class GuestFault(Exception):  # noqa: N818 - the architecture's word
    """An exception the delivery itself raised (``#GP``, ``#NP``, ``#TS``, ``#SS``, ``#PF``)."""

    def __init__(self, vector: int, error_code: int, cr2: int | None = None) -> None:
        super().__init__(f"exception {vector:#x} (error code {error_code:#x})")
        self.vector = vector
        self.error_code = error_code
        self.cr2 = cr2


def _base(lo: int, hi: int) -> int:
    return (lo >> 16) | ((hi & 0xFF) << 16) | (hi & 0xFF00_0000)


def _limit(lo: int, hi: int) -> int:
    limit = (lo & 0xFFFF) | (hi & 0xF_0000)
    return (limit << 12) | 0xFFF if hi & 0x80_0000 else limit


class Delivery:
    """Segments, guest memory through paging, and event delivery for one CPU."""

    def __init__(self, uc: Uc, memory: GuestMemory, engine: Engine,
                 ram_ranges: RamRanges | None = None) -> None:
        self.uc = uc
        self.memory = memory
        self.ram = memory.data
        self.engine = engine
        self.ram_ranges = ram_ranges
        """Where the RAM array sits in the physical address space (None: from 0)."""
        self.software_interrupt: Callable[[int], bool] | None = None
        """Real mode ``INT n`` before IVT delivery; True means the host served it."""
        self._state_regs = RegisterBatch(uc, _STATE_REGS)
        self._enter_regs = RegisterBatch(
            uc, [X.UC_X86_REG_RSP, X.UC_X86_REG_RFLAGS, X.UC_X86_REG_RIP])
        """What every delivery writes last: the new stack pointer, flags and handler."""

    # -- guest memory through the page tables (SDM vol 3 chapter 4) --------------------
    def paging(self) -> Paging:
        cr0, cr3, cr4 = self.uc.reg_read_batch(
            [X.UC_X86_REG_CR0, X.UC_X86_REG_CR3, X.UC_X86_REG_CR4])
        efer = self.uc.msr_read(MSR_EFER) if cr0 & CR0_PG else 0
        return Paging(cr0, cr3, cr4, efer)

    def long_mode(self) -> bool:
        return bool(self.uc.msr_read(MSR_EFER) & EFER_LMA)

    def linear_to_physical(self, linear: int, *, write: bool = False, user: bool = False,
                           fetch: bool = False, mark: bool = True) -> int:
        """Translate as the CPU would (raises :class:`PageFault`), A/D bits included
        unless ``mark`` is False (a host-side look that leaves the tables alone)."""
        return translate(self.ram, self.paging(), linear, write=write, user=user, fetch=fetch,
                         ranges=self.ram_ranges, mark=mark)

    def ram_offset(self, physical: int, size: int = 1) -> int | None:
        """Where ``physical`` is in the RAM array (None: not RAM)."""
        at = ram_offset(self.ram_ranges, physical, size)
        return None if at is None or at + size > self.memory.size else at

    def _pieces(self, linear: int, size: int, write: bool, paging: Paging
                ) -> list[tuple[int, int, int]]:
        """``(physical, RAM offset, length)`` pieces of a linear range, split at pages."""
        pieces = []
        while size > 0:
            step = min(size, 0x1000 - (linear & 0xFFF))
            try:
                physical = translate(self.ram, paging, linear, write=write,
                                     ranges=self.ram_ranges)
            except PageFault as exc:
                raise GuestFault(PF, exc.error_code, exc.linear) from None
            at = self.ram_offset(physical, step)
            if at is None:
                raise CpuFault(f"guest structure at {linear:#x} is outside RAM")
            pieces.append((physical, at, step))
            linear += step
            size -= step
        return pieces

    def read_linear(self, linear: int, size: int, paging: Paging | None = None) -> bytes:
        """Bytes at a linear address, read as a supervisor access (SDM vol 3 §4.6)."""
        paging = paging or self.paging()
        return b"".join(self.ram[at : at + n].tobytes()
                        for _, at, n in self._pieces(linear, size, False, paging))

    def write_linear(self, linear: int, data: bytes, paging: Paging | None = None) -> None:
        """Write at a linear address; all pages translated before the first byte lands."""
        paging = paging or self.paging()
        offset = 0
        for physical, _, n in self._pieces(linear, len(data), True, paging):
            self.uc.mem_write(physical, data[offset : offset + n])  # Unicorn drops stale code
            offset += n

    # -- segments (SDM vol 3 §3.4) -----------------------------------------------------
    def _raw_descriptor(self, selector: int, paging: Paging, ext: int = 0) -> tuple[int, int]:
        """The 8 bytes of a GDT/LDT descriptor; ``#GP(selector)`` beyond the table."""
        if selector & 4:
            _, base, limit, _ = self.uc.reg_read(X.UC_X86_REG_LDTR)
        else:
            _, base, limit, _ = self.uc.reg_read(X.UC_X86_REG_GDTR)
        index = selector & ~7
        if index + 7 > limit:
            raise GuestFault(GP, (selector & 0xFFFC) | ext)
        lo, hi = struct.unpack("<II", self.read_linear(base + index, 8, paging))
        return lo, hi

    def descriptor(self, selector: int) -> tuple[int, int, int]:
        """``(base, limit, flags_dword)`` of a GDT or LDT descriptor (SDM vol 3 §3.4.5)."""
        try:
            lo, hi = self._raw_descriptor(selector, self.paging())
        except GuestFault as exc:
            raise CpuFault(f"selector {selector:#06x} is unreadable ({exc})") from None
        return _base(lo, hi), _limit(lo, hi), hi

    def segment_base(self, seg: str) -> int:
        """The base the CPU uses for ``seg`` now (its hidden cache in protected mode)."""
        uc = self.uc
        if not uc.reg_read(X.UC_X86_REG_CR0) & CR0_PE:
            return uc.reg_read(getattr(X, f"UC_X86_REG_{seg.upper()}")) << 4
        index = SEGMENT_REGS[seg]
        cs = self.engine.segment(CS)
        if index not in (4, 5) and self.long_mode() and cs.flags & _DESC_L:
            return 0  # 64-bit mode: CS, DS, ES, SS bases are 0 (SDM vol 3 §3.4.4)
        return cs.base if index == CS else self.engine.segment(index).base

    def code_bits(self) -> int:
        """16, 32 or 64: the current code segment's default size (SDM vol 3 §5.2.1)."""
        if not self.uc.reg_read(X.UC_X86_REG_CR0) & CR0_PE:
            return 16
        if self.uc.reg_read(X.UC_X86_REG_EFLAGS) & FLAG_VM:
            return 16
        flags = self.engine.segment(CS).flags
        if flags & _DESC_L and self.long_mode():
            return 64
        return 32 if flags & _DESC_B else 16

    def code_is_32bit(self) -> bool:
        return self.code_bits() != 16

    def stack_is_32bit(self) -> bool:
        if not self.uc.reg_read(X.UC_X86_REG_CR0) & CR0_PE:
            return False
        return bool(self.engine.segment(SS).flags & _DESC_B)

    def linear_ip(self) -> int:
        return self.segment_base("cs") + self.uc.reg_read(X.UC_X86_REG_RIP)

    def push(self, value: int, size: int) -> None:
        """Push on SS:SP/ESP (16- or 32-bit stack by SS.B), through paging."""
        uc = self.uc
        rsp = uc.reg_read(X.UC_X86_REG_RSP)
        mask = 0xFFFF_FFFF if self.stack_is_32bit() else 0xFFFF
        sp = (rsp - size) & mask
        self._write_frame(self.segment_base("ss") + sp, value.to_bytes(size, "little",
                                                                        signed=False))
        uc.reg_write(X.UC_X86_REG_RSP, (rsp & ~mask) | sp)

    def _write_frame(self, linear: int, data: bytes) -> None:
        try:
            self.write_linear(linear, data)
        except GuestFault as exc:
            raise CpuFault(f"push to {linear:#x} faulted: {exc}") from None

    # -- the interrupt hook -------------------------------------------------------------
    def on_interrupt(self, intno: int) -> None:
        """``UC_HOOK_INTR``: an ``INT n`` (RIP past it) or an exception (RIP at the fault)."""
        code, software = self.engine.exception()
        state = self._state()
        protected = bool(state.cr0 & CR0_PE)
        if software:
            if (self.software_interrupt is not None and not protected
                    and self.software_interrupt(intno)):
                return
            self._deliver(intno, None, Kind.SOFTWARE, state)
            return
        error = code if protected and intno in ERROR_CODE_VECTORS else None
        self._deliver(intno, error, Kind.EXCEPTION, state)

    def on_invalid_opcode(self) -> None:
        """``UC_HOOK_INSN_INVALID``: ``#UD`` (a fault: RIP is at the instruction)."""
        self.deliver(UD, None, Kind.EXCEPTION)

    # -- fast system calls (SDM vol 2B SYSCALL, SYSENTER) -------------------------------
    # Unicorn 2.1.4 executes neither: it calls the UC_HOOK_INSN hook with RIP at the
    # instruction and then adds the instruction's length (2) to whatever RIP the hook
    # left.  Each handler therefore ends by leaving RIP two bytes before its target.
    def on_syscall(self) -> None:
        """SYSCALL in 64-bit mode: RCX ← next RIP, R11 ← RFLAGS, CS/SS from STAR, RIP ← LSTAR."""
        uc = self.uc
        efer = uc.msr_read(MSR_EFER)
        rip, rflags = uc.reg_read_batch([X.UC_X86_REG_RIP, X.UC_X86_REG_RFLAGS])
        if not efer & EFER_SCE or not efer & EFER_LMA or self.code_bits() != 64:
            self._fault_in_hook(UD)
            return
        star = uc.msr_read(MSR_STAR)
        selector = (star >> 32) & 0xFFFC
        self.engine.load_segments({
            CS: Segment(selector, 0, 0xFFFF_FFFF, _FLAT_CODE64),
            SS: Segment(selector + 8, 0, 0xFFFF_FFFF, _FLAT_DATA),
        })
        uc.reg_write_batch([
            (X.UC_X86_REG_RCX, rip + 2),
            (X.UC_X86_REG_R11, rflags & ~FLAG_RF),
            (X.UC_X86_REG_RFLAGS, rflags & ~uc.msr_read(MSR_FMASK) & ~FLAG_RF & 0xFFFF_FFFF),
            (X.UC_X86_REG_RIP, (uc.msr_read(MSR_LSTAR) - 2) & 0xFFFF_FFFF_FFFF_FFFF),
        ])

    def on_sysenter(self) -> None:
        """SYSENTER: CS/SS from IA32_SYSENTER_CS, RSP/RIP from its ESP/EIP MSRs, ring 0."""
        uc = self.uc
        if not uc.reg_read(X.UC_X86_REG_CR0) & CR0_PE:
            self._fault_in_hook(GP, 0)
            return
        selector = uc.msr_read(MSR_SYSENTER_CS) & 0xFFFC
        if not selector:
            self._fault_in_hook(GP, 0)
            return
        long_mode = self.long_mode()
        flags = uc.reg_read(X.UC_X86_REG_RFLAGS)
        self.engine.load_segments({
            CS: Segment(selector, 0, 0xFFFF_FFFF, _FLAT_CODE64 if long_mode else _FLAT_CODE32),
            SS: Segment(selector + 8, 0, 0xFFFF_FFFF, _FLAT_DATA),
        })
        mask = 0xFFFF_FFFF_FFFF_FFFF if long_mode else 0xFFFF_FFFF
        uc.reg_write_batch([
            (X.UC_X86_REG_RFLAGS, flags & ~(FLAG_VM | FLAG_IF | FLAG_RF)),
            (X.UC_X86_REG_RSP, uc.msr_read(MSR_SYSENTER_ESP) & mask),
            (X.UC_X86_REG_RIP, ((uc.msr_read(MSR_SYSENTER_EIP) & mask) - 2) & mask),
        ])

    def _fault_in_hook(self, vector: int, error_code: int | None = None) -> None:
        """Deliver a fault from an instruction hook (RIP at the instruction)."""
        self.deliver(vector, error_code, Kind.EXCEPTION)
        rip = self.uc.reg_read(X.UC_X86_REG_RIP)
        self.uc.reg_write(X.UC_X86_REG_RIP, (rip - 2) & 0xFFFF_FFFF_FFFF_FFFF)

    # -- delivery -----------------------------------------------------------------------
    def deliver(self, vector: int, error_code: int | None = None,
                kind: Kind = Kind.EXTERNAL) -> None:
        """Enter the guest's handler for ``vector`` as the processor would.

        Faults during delivery are combined with the event by SDM vol 3 table 6-5;
        a fault while delivering ``#DF`` raises :class:`TripleFault`.
        """
        self._deliver(vector, error_code, kind, self._state())

    def _state(self) -> _State:
        return _State(*self._state_regs.read())

    def _deliver(self, vector: int, error_code: int | None, kind: Kind, state: _State) -> None:
        uc = self.uc
        where = f"{state.cs:04X}:{state.rip:08X}"
        ext = 1 if kind is Kind.EXTERNAL else 0
        while True:
            try:
                self._deliver_once(vector, error_code, kind, ext, state)
                return
            except GuestFault as fault:
                if kind is Kind.SOFTWARE:
                    self._rewind_software_interrupt(vector)
                if fault.cr2 is not None:
                    uc.reg_write(X.UC_X86_REG_CR2, fault.cr2)
                if kind is Kind.EXCEPTION and vector == DF:
                    raise TripleFault(f"triple fault at {where}") from None
                first_pf = kind is Kind.EXCEPTION and vector == PF
                first_contributory = kind is Kind.EXCEPTION and vector in CONTRIBUTORY
                second_contributory = fault.vector in CONTRIBUTORY
                if (first_contributory and second_contributory) or (
                        first_pf and (second_contributory or fault.vector == PF)):
                    vector, error_code = DF, 0
                else:
                    vector, error_code = fault.vector, fault.error_code
                kind, ext = Kind.EXCEPTION, 1
                state = self._state()

    def _rewind_software_interrupt(self, vector: int) -> None:
        """A fault while delivering ``INT n`` is reported at the INT (SDM vol 3 §6.12.1.1).

        The engine hands the hook RIP past the instruction: ``CD nn`` is two
        bytes, ``INT3``/``INTO``/``INT1`` one.
        """
        uc = self.uc
        rip = uc.reg_read(X.UC_X86_REG_RIP)
        try:
            before = self.read_linear(self.segment_base("cs") + rip - 2, 2)
        except (GuestFault, CpuFault):
            before = b""
        length = 2 if before == bytes((0xCD, vector)) else 1
        uc.reg_write(X.UC_X86_REG_RIP, rip - length)

    def _deliver_once(self, vector: int, error_code: int | None, kind: Kind, ext: int,
                      state: _State) -> None:
        uc = self.uc
        cr0, flags = state.cr0, state.flags
        if not cr0 & CR0_PE:
            self._deliver_real(vector, state, kind)
            return
        if flags & FLAG_VM:
            raise CpuFault(f"interrupt {vector:#04x} in virtual-8086 mode is not supported")
        efer = uc.msr_read(MSR_EFER)
        if cr0 & CR0_PG:
            cr3, cr4 = uc.reg_read_batch([X.UC_X86_REG_CR3, X.UC_X86_REG_CR4])
            paging = Paging(cr0, cr3, cr4, efer)
        else:
            paging = Paging(cr0, 0, 0, efer)
        if efer & EFER_LMA:
            self._deliver_long(vector, error_code, kind, ext, state, paging)
        else:
            self._deliver_protected(vector, error_code, kind, ext, state, paging)

    def _deliver_real(self, vector: int, state: _State, kind: Kind) -> None:
        """SDM vol 3 §20.1.4: the IVT, a 6-byte frame on SS:SP, IF/TF/AC cleared."""
        uc = self.uc
        flags, ss, rsp, cs, rip = state.flags, state.ss, state.rsp, state.cs, state.rip
        _, ivt, ivt_limit, _ = uc.reg_read(X.UC_X86_REG_IDTR)
        if vector * 4 + 3 > ivt_limit:
            raise GuestFault(GP, 0)  # then #DF, then a triple fault (SDM vol 3 §20.1.4)
        entry = ivt + vector * 4
        if entry + 4 > self.memory.size:
            raise CpuFault(f"interrupt {vector:#04x}: the IVT entry is outside RAM")
        ip, seg = struct.unpack_from("<HH", self.ram, entry)
        sp = rsp & 0xFFFF
        frame = struct.pack("<HHH", rip & 0xFFFF, cs, flags & 0xFFFF)
        if sp >= 6 and (ss << 4) + sp <= self.memory.size:
            sp -= 6
            uc.mem_write((ss << 4) + sp, frame)
        else:  # the frame wraps at the segment's 64 KiB
            for value in (flags, cs, rip):
                sp = (sp - 2) & 0xFFFF
                if (ss << 4) + sp + 2 > self.memory.size:
                    raise CpuFault(f"interrupt {vector:#04x}: the stack is outside RAM")
                uc.mem_write((ss << 4) + sp, struct.pack("<H", value & 0xFFFF))
        self.engine.load_segments({CS: seg}, forget_exception=kind is Kind.EXCEPTION)
        self._enter_regs.write((rsp & ~0xFFFF) | sp, flags & ~(FLAG_IF | FLAG_TF | FLAG_AC), ip)

    def _gate_checks(self, hi: int, vector: int, kind: Kind, ext: int, cpl: int,
                     types: tuple[int, ...]) -> None:
        code = vector << 3 | 2 | ext  # IDT bit set: the error code names the gate
        gate_type = (hi >> 8) & 0x1F
        if gate_type == 0x05 and 0x05 not in types:
            raise CpuFault(f"interrupt {vector:#04x} through a task gate is not supported")
        if gate_type not in types:
            raise GuestFault(GP, code)
        if kind is Kind.SOFTWARE and (hi >> 13) & 3 < cpl:
            raise GuestFault(GP, code)
        if not hi & _DESC_P:
            raise GuestFault(NP, code)

    def _code_segment(self, selector: int, cpl: int, ext: int, paging: Paging,
                      long_mode: bool) -> tuple[int, int]:
        """The handler's code descriptor, checked as SDM vol 3 §6.12.1 says."""
        if not selector & 0xFFFC:
            raise GuestFault(GP, ext)
        lo, hi = self._raw_descriptor(selector, paging, ext)
        dpl = (hi >> 13) & 3
        if hi & _DESC_CODE != _DESC_CODE or dpl > cpl:
            raise GuestFault(GP, (selector & 0xFFFC) | ext)
        if long_mode and (not hi & _DESC_L or hi & _DESC_B):
            raise GuestFault(GP, (selector & 0xFFFC) | ext)
        if not hi & _DESC_P:
            raise GuestFault(NP, (selector & 0xFFFC) | ext)
        return lo, hi

    def _tss_read(self, offset: int, size: int, ext: int, paging: Paging) -> int:
        selector, base, limit, _ = self.uc.reg_read(X.UC_X86_REG_TR)
        if offset + size - 1 > limit:
            raise GuestFault(TS, (selector & 0xFFFC) | ext)
        return int.from_bytes(self.read_linear(base + offset, size, paging), "little")

    def _push_frame(self, ss_base: int, sp: int, mask: int, items: list[int], width: int,
                    paging: Paging) -> int:
        """Write ``items`` (first = highest address) below SS:SP; returns the new SP."""
        new_sp = (sp - width * len(items)) & mask
        frame = b"".join(v.to_bytes(width, "little") for v in reversed(
            [item & ((1 << (8 * width)) - 1) for item in items]))
        if new_sp + len(frame) - 1 <= mask:
            self.write_linear((ss_base + new_sp) & 0xFFFF_FFFF_FFFF_FFFF, frame, paging)
        else:  # a 16-bit stack that wraps: item by item, all pages checked first
            addresses = [(ss_base + ((sp - width * (n + 1)) & mask)) for n in range(len(items))]
            for address in addresses:
                self._pieces(address, width, True, paging)
            for address, value in zip(addresses, items, strict=True):
                self.write_linear(address, (value & ((1 << (8 * width)) - 1)).to_bytes(
                    width, "little"), paging)
        return new_sp

    def _deliver_protected(self, vector: int, error_code: int | None, kind: Kind, ext: int,
                           state: _State, paging: Paging) -> None:
        """SDM vol 3 §6.12.1: through a 16- or 32-bit interrupt or trap gate."""
        uc = self.uc
        flags, cs, rip, rsp = state.flags & 0xFFFF_FFFF, state.cs, state.rip, state.rsp
        cpl = cs & 3
        _, idt, idt_limit, _ = uc.reg_read(X.UC_X86_REG_IDTR)
        if vector * 8 + 7 > idt_limit:
            raise GuestFault(GP, vector << 3 | 2 | ext)
        lo, hi = struct.unpack("<II", self.read_linear(idt + vector * 8, 8, paging))
        self._gate_checks(hi, vector, kind, ext, cpl, (0x06, 0x07, 0x0E, 0x0F))
        gate32 = bool(hi & 0x800)
        selector = lo >> 16
        offset = (lo & 0xFFFF) | (hi & 0xFFFF_0000) if gate32 else lo & 0xFFFF
        clo, chi = self._code_segment(selector, cpl, ext, paging, False)
        new_cpl = cpl if chi & _DESC_CONFORMING else (chi >> 13) & 3
        width = 4 if gate32 else 2
        old_ss = self.engine.segment(SS)
        items: list[int] = []
        if new_cpl < cpl:
            _, _, _, tr_flags = uc.reg_read(X.UC_X86_REG_TR)
            if (tr_flags >> 8) & 0x8:  # a 32-bit TSS: ESPn at 4 + 8n, SSn at 8 + 8n
                new_sp = self._tss_read(4 + 8 * new_cpl, 4, ext, paging)
                new_ss_sel = self._tss_read(8 + 8 * new_cpl, 2, ext, paging)
            else:  # a 16-bit TSS: SPn at 2 + 4n, SSn at 4 + 4n
                new_sp = self._tss_read(2 + 4 * new_cpl, 2, ext, paging)
                new_ss_sel = self._tss_read(4 + 4 * new_cpl, 2, ext, paging)
            ss_seg = self._stack_segment(new_ss_sel, new_cpl, ext, paging)
            items = [old_ss.selector, rsp & (0xFFFF_FFFF if old_ss.flags & _DESC_B else 0xFFFF)]
            stack, sp = ss_seg, new_sp
        else:
            ss_seg, stack, sp = None, old_ss, rsp
        items += [flags, cs, rip]
        if error_code is not None:
            items.append(error_code)
        mask = 0xFFFF_FFFF if stack.flags & _DESC_B else 0xFFFF
        new_sp = self._push_frame(stack.base, sp & mask, mask, items, width, paging)
        segments = {CS: Segment((selector & 0xFFFC) | new_cpl, _base(clo, chi),
                                _limit(clo, chi), chi)}
        if ss_seg is not None:
            segments[SS] = ss_seg
        self.engine.load_segments(segments, forget_exception=kind is Kind.EXCEPTION)
        clear = FLAG_TF | FLAG_NT | FLAG_RF | FLAG_VM | (0 if hi & 0x100 else FLAG_IF)
        self._enter_regs.write((sp & ~mask & 0xFFFF_FFFF) | new_sp if ss_seg is None else new_sp,
                               flags & ~clear, offset)

    def _stack_segment(self, selector: int, cpl: int, ext: int, paging: Paging) -> Segment:
        """The inner stack's SS from the TSS, checked as SDM vol 3 §6.12.1 says (#TS)."""
        if not selector & 0xFFFC or selector & 3 != cpl:
            raise GuestFault(TS, (selector & 0xFFFC) | ext)
        try:
            lo, hi = self._raw_descriptor(selector, paging, ext)
        except GuestFault as exc:
            if exc.vector == GP:
                raise GuestFault(TS, (selector & 0xFFFC) | ext) from None
            raise
        if hi & _DESC_CODE != 0x1000 or not hi & _DESC_WRITABLE or (hi >> 13) & 3 != cpl:
            raise GuestFault(TS, (selector & 0xFFFC) | ext)
        if not hi & _DESC_P:
            raise GuestFault(SS_FAULT, (selector & 0xFFFC) | ext)
        return Segment(selector, _base(lo, hi), _limit(lo, hi), hi)

    def _deliver_long(self, vector: int, error_code: int | None, kind: Kind, ext: int,
                      state: _State, paging: Paging) -> None:
        """SDM vol 3 §6.14: a 64-bit gate, IST or RSPn, 16-byte alignment, SS:RSP pushed."""
        uc = self.uc
        flags, cs, rip, rsp, ss = state.flags, state.cs, state.rip, state.rsp, state.ss
        cpl = cs & 3
        _, idt, idt_limit, _ = uc.reg_read(X.UC_X86_REG_IDTR)
        if vector * 16 + 15 > idt_limit:
            raise GuestFault(GP, vector << 3 | 2 | ext)
        lo, hi, high_offset, _ = struct.unpack(
            "<IIII", self.read_linear(idt + vector * 16, 16, paging))
        self._gate_checks(hi, vector, kind, ext, cpl, (0x0E, 0x0F))
        selector = lo >> 16
        offset = (lo & 0xFFFF) | (hi & 0xFFFF_0000) | high_offset << 32
        clo, chi = self._code_segment(selector, cpl, ext, paging, True)
        new_cpl = cpl if chi & _DESC_CONFORMING else (chi >> 13) & 3
        ist = hi & 7
        if ist:
            new_rsp = self._tss_read(0x24 + 8 * (ist - 1), 8, ext, paging)
        elif new_cpl < cpl:
            new_rsp = self._tss_read(4 + 8 * new_cpl, 8, ext, paging)
        else:
            new_rsp = rsp
        new_rsp &= ~0xF
        items = [ss, rsp, flags, cs, rip]
        if error_code is not None:
            items.append(error_code)
        mask = 0xFFFF_FFFF_FFFF_FFFF
        new_rsp = self._push_frame(0, new_rsp, mask, items, 8, paging)
        segments = {CS: Segment((selector & 0xFFFC) | new_cpl, _base(clo, chi),
                                _limit(clo, chi), chi)}
        if new_cpl != cpl:
            segments[SS] = Segment(new_cpl, 0, 0, new_cpl << 13)
        self.engine.load_segments(segments, forget_exception=kind is Kind.EXCEPTION)
        clear = FLAG_TF | FLAG_NT | FLAG_RF | FLAG_VM | (0 if hi & 0x100 else FLAG_IF)
        self._enter_regs.write(new_rsp, flags & ~clear, offset)
