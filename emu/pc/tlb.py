"""Fast guest stores on Unicorn 2.1.4: a TLB fill in C while the guest runs without paging.

What Unicorn 2.1.4 does (measured, booting-on-unicorn.md; source: ``notdirty_write`` in
its ``cputlb.c``): a store through a TLB entry whose page is not yet marked dirty takes
the slow path, which looks for translated code on the page and then marks the entry
dirty — but only when the entry does not also allow instruction fetches and no memory
hook covers the address.  The x86 TLB fill of a CPU without paging makes every entry
readable, writable *and* executable, so every store takes the slow path forever: a store
loop runs at 50-100 M instructions/s against ~1,000 M/s for loads.

What the emulator does about it, without patching Unicorn:

* the unmapped-access hooks that report faults cover only the address ranges outside
  RAM (a hook over an address also keeps the slow path, and those hooks can only fire
  where nothing is mapped anyway) — :meth:`Cpu._fault_hook_ranges`;
* while paging is off, the engine runs in ``UC_TLB_VIRTUAL`` mode with ``bc_tlb_fill``
  from the native helper (``_blockclock.c``): linear = physical, a data access to a page
  that never held code gets a read/write entry, a fetch (and any access to a page code
  was fetched from) an executable one.  A data page becomes dirty after its first store
  and later stores take the fast path; code pages keep the slow path, which is what
  catches self-modifying code.  Region permissions (the ROM) are still checked by the
  engine on the slow path;
* when the guest turns paging on, the fill hook switches the engine back to its own TLB
  (which walks the page tables) and fails that one fill; the run ends with an error
  that :meth:`NativeTlb.recover` recognises, and the access is restarted.  From then on
  stores are slow again (the documented limit: fixing it needs the upstream change).

A Unicorn 2.1.4 trap, found by the Debian 6.1 kernel's decompressor (which writes next to
its own code): the engine marks a data-only entry dirty after one store even while other
translated blocks remain on its page, so later stores there would leave those blocks
stale (QEMU marks a page dirty only once no code is left on it).  The fill therefore keeps
executable entries — the slow, safe path — for every page code was ever fetched from (a
bitmap of 4 KiB pages); only pages that never held code get the fast path.

``EMU_TLB=cpu`` keeps the engine's own TLB throughout (for comparison; also what runs when
the helper is not built).
"""

from __future__ import annotations

import ctypes
import os
from functools import cache

from emu.pc.clock import _load_helper

TLB_ENV = "EMU_TLB"


RAM_RANGES = 4
"""RAM ranges the walk can read page tables from (``BC_RAM_RANGES``)."""
RETRY_RUNS = 64
"""Runs spent on the engine's TLB after the C walk met a paging form it does not walk,
before it is tried again."""
UC_MEM_FETCH = 18


class RamRange(ctypes.Structure):
    """``struct bc_ram_range``: guest physical ``[base, base + size)`` at host ram + offset."""

    _fields_ = (("base", ctypes.c_uint64), ("size", ctypes.c_uint64),
                ("offset", ctypes.c_uint64))


class TlbState(ctypes.Structure):
    """``struct bc_tlb`` of ``_blockclock.c``."""

    _fields_ = (
        ("reg_read", ctypes.c_void_p),
        ("ctl", ctypes.c_void_p),
        ("cr0_regid", ctypes.c_int),
        ("switched", ctypes.c_uint32),
        ("fills", ctypes.c_uint64),
        ("last_vaddr", ctypes.c_uint64),
        ("last_type", ctypes.c_int),
        ("code_pages", ctypes.c_void_p),
        ("code_pages_count", ctypes.c_uint64),
        ("cr3_regid", ctypes.c_int),
        ("cr4_regid", ctypes.c_int),
        ("cs_regid", ctypes.c_int),
        ("msr_regid", ctypes.c_int),
        ("ram", ctypes.c_void_p),
        ("ranges", RamRange * RAM_RANGES),
        ("nranges", ctypes.c_uint32),
        ("paging", ctypes.c_uint32),
        ("gb_pages", ctypes.c_uint32),
        ("phys_bits", ctypes.c_uint32),
        ("walks", ctypes.c_uint64),
        ("handoffs", ctypes.c_uint64),
    )


def wanted() -> bool:
    """Use the virtual TLB unless ``EMU_TLB=cpu`` (or the helper is not built)."""
    return (os.environ.get(TLB_ENV, "").strip().lower() != "cpu"
            and _load_helper() is not None)


@cache
def _cpu_model() -> tuple[int, bool]:
    """The engine CPU model's MAXPHYADDR and whether it has 1 GiB pages (what its own page
    walk checks reserved bits against), from CPUID 80000008h and 80000001h."""
    from emu.pc.engine import engine_cpuid

    phys_bits = engine_cpuid(0x8000_0008)[0] & 0xFF
    gb_pages = bool(engine_cpuid(0x8000_0001)[3] >> 26 & 1)
    return phys_bits or 36, gb_pages


class NativeTlb:
    """The C fill hook installed on one engine (see the module docstring)."""

    def __init__(self, uc: object, ram: int = 0,
                 ram_ranges: list[tuple[int, int]] | None = None) -> None:
        """``ram``: the host address of the buffer behind ``ram_ranges`` (guest physical
        ``(base, length)`` pairs laid out one after another in it, as the CPU maps them)."""
        lib = _load_helper()
        assert lib is not None
        from unicorn import UC_HOOK_TLB_FILL
        from unicorn import x86_const as X
        from unicorn.unicorn_const import UC_TLB_VIRTUAL
        from unicorn.unicorn_py3.unicorn import uclib

        ranges = ram_ranges or []
        if len(ranges) > RAM_RANGES:
            raise ValueError(f"at most {RAM_RANGES} RAM ranges for the TLB walk")
        self.uc = uc
        self.state = state = TlbState()
        state.reg_read = ctypes.cast(uclib.uc_reg_read, ctypes.c_void_p).value
        state.ctl = ctypes.cast(uclib.uc_ctl, ctypes.c_void_p).value
        state.cr0_regid = X.UC_X86_REG_CR0
        state.cr3_regid = X.UC_X86_REG_CR3
        state.cr4_regid = X.UC_X86_REG_CR4
        state.cs_regid = X.UC_X86_REG_CS
        state.msr_regid = X.UC_X86_REG_MSR
        state.ram = ram
        offset = 0
        for n, (base, length) in enumerate(ranges):
            state.ranges[n] = RamRange(base, length, offset)
            offset += length
        state.nranges = len(ranges)
        state.phys_bits, gb_pages = _cpu_model()
        state.gb_pages = int(gb_pages)
        # One bit per 4 KiB physical page: the 32-bit space and all RAM above it.
        top = max([1 << 32] + [base + length for base, length in ranges])
        pages = (top + 0xFFF) >> 12
        self._code_pages = (ctypes.c_uint8 * ((pages + 7) // 8))()
        state.code_pages = ctypes.addressof(self._code_pages)
        state.code_pages_count = pages
        state.paging = 1  # until the first fill says otherwise: ask the engine
        self._handle = ctypes.c_size_t()
        status = uclib.uc_hook_add(
            uc._uch, ctypes.byref(self._handle), UC_HOOK_TLB_FILL,  # type: ignore[attr-defined]
            ctypes.cast(lib.bc_tlb_fill, ctypes.c_void_p),
            ctypes.cast(ctypes.byref(state), ctypes.c_void_p), 1, 0)
        if status != 0:
            raise RuntimeError(f"uc_hook_add for the TLB fill failed ({status})")
        uc.ctl_set_tlb_mode(UC_TLB_VIRTUAL)  # type: ignore[attr-defined]
        self.virtual = True
        self._retry_in = 0
        self.handovers = 0
        """Runs that ended because the walk handed an access to the engine (statistics)."""

    def paging_address(self) -> int:
        """Where ``paging`` lives (the block clock reads it: CR0.PG as the last fill saw
        it; 1 from the start, which only means "ask the engine")."""
        return ctypes.addressof(self.state) + TlbState.paging.offset

    def recover(self) -> bool | None:
        """After a failed run: was it the fill handing an access to the engine's MMU?
        Then the TLB is flushed and the run can simply go on (the caller restarts the
        instruction).  Returns None if not, else whether the access was a data access
        (made by the instruction at RIP, inside a block already entered) rather than an
        instruction fetch (for a block not entered yet)."""
        if not self.state.switched or not self.virtual:
            return None
        self.virtual = False
        self.handovers += 1
        self._retry_in = RETRY_RUNS if self.state.switched == 2 else 0
        self._flush()
        return self.state.last_type != UC_MEM_FETCH

    def resume(self) -> None:
        """At the start of a run: back to the C fill after a hand-over (flushing the
        entries the engine's MMU made, which keep every store on the slow path).  A
        hand-over no run reported (a probing access the engine tolerates failing) is
        taken up here."""
        state = self.state
        if self.virtual:
            if not state.switched:
                return
            self.virtual = False
            self.handovers += 1
            self._retry_in = RETRY_RUNS if state.switched == 2 else 0
        if self._retry_in > 0:
            self._retry_in -= 1
            return
        from unicorn.unicorn_const import UC_TLB_VIRTUAL

        state.switched = 0
        self.uc.ctl_set_tlb_mode(UC_TLB_VIRTUAL)  # type: ignore[attr-defined]
        self._flush()
        self.virtual = True

    def _flush(self) -> None:
        from unicorn.unicorn_const import UC_CTL_IO_WRITE, UC_CTL_TLB_FLUSH
        from unicorn.unicorn_py3.unicorn import uclib

        # UC_CTL_WRITE(UC_CTL_TLB_FLUSH, 0): drop every entry.
        uclib.uc_ctl(self.uc._uch, UC_CTL_TLB_FLUSH | (UC_CTL_IO_WRITE << 30))  # type: ignore[attr-defined]
