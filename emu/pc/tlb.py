"""Fast guest stores on Unicorn 2.1.4: a TLB fill in C, with its own IA-32e page walk.

What Unicorn 2.1.4 does (measured, booting-on-unicorn.md; source: ``notdirty_write`` in
its ``cputlb.c``): a store through a TLB entry whose page is not yet marked dirty takes
the slow path, which looks for translated code on the page and then marks the entry
dirty — but only when the entry does not also allow instruction fetches and no memory
hook covers the address.  The engine's own x86 TLB fill makes every entry the page
permits executable, so every store takes the slow path forever: a store loop runs at
50-130 M instructions/s against ~1,000 M/s for loads, with paging or without.

What the emulator does about it, without patching Unicorn:

* the unmapped-access hooks that report faults cover only the address ranges outside
  RAM (a hook over an address also keeps the slow path, and those hooks can only fire
  where nothing is mapped anyway) — :meth:`Cpu._fault_hook_ranges`;
* the engine runs in ``UC_TLB_VIRTUAL`` mode with ``bc_tlb_fill`` from the native helper
  (``_blockclock.c``) answering its TLB misses.  Without paging, linear = physical.  With
  IA-32e paging (CR0.PG, CR4.PAE, EFER.LMA; 4-level; SDM vol 3 §4.5) the fill walks the
  guest's page tables itself: permissions as the CPU computes them for the current CPL
  (§4.6: R/W with CR0.WP, U/S, XD with EFER.NXE, SMEP), Accessed set on every entry used
  and Dirty on the leaf for a write, written into the guest's tables in RAM (§4.8); a
  read or fetch of a clean page gets no write permission, so the first store misses and
  sets Dirty.  4 KiB, 2 MiB and (when the CPU model has them) 1 GiB pages; tables in any
  RAM range (above the PCI hole too).  In both cases a data access to a page that never
  held code gets an entry without execute permission: the page becomes dirty after its
  first store and later stores take the fast path.  A fetch (and any access to a page
  code was fetched from) gets an executable one: code pages keep the slow path, which
  is what catches self-modifying code.  Region permissions (the ROM) and device regions
  are still the engine's (it maps the physical page returned);
* everything the walk does not answer exactly goes to the engine's own MMU: a page-table
  entry not present or with a reserved bit set, an access the permissions forbid (a real
  ``#PF``, also an implicit supervisor access made at CPL 3, which the fill cannot tell
  from a user access), a non-canonical address, tables outside RAM, and the paging forms
  it does not walk (32-bit paging, PAE without long mode, LA57, CR4.PKE, CR4.SMAP — the
  CPU model has neither PKU nor SMAP).  The fill switches the engine to its own TLB
  (``UC_TLB_CPU``) and fails; the run ends with an error that :meth:`NativeTlb.recover`
  recognises, the TLB is flushed and the instruction restarts under the engine's MMU,
  whose fault path (``UC_HOOK_INTR``, the ``#PF`` error code from the context,
  ``emu/pc/delivery.py``) is unchanged.  :meth:`NativeTlb.resume` goes back to the C
  fill (with a flush) at the start of the next run, or after :data:`RETRY_RUNS` runs
  when the paging form was the reason.  The restart is invisible to the guest and to the
  clock (the block being run is not charged twice: ``BlockClock.stopped_at``), so guest
  time stays a pure function of the guest's execution even though whether a TLB miss
  happens at all depends on the engine's TLB sizing;
* the engine's TLB is never asked from outside a run (``Cpu.retranslate`` walks the
  tables itself and drops code by RAM address), and a hand-over no run reported (a
  probing access the engine tolerates failing) is taken up by :meth:`NativeTlb.resume`
  at the next run.

A Unicorn 2.1.4 trap, found by the Debian 6.1 kernel's decompressor (which writes next to
its own code): the engine marks a data-only entry dirty after one store even while other
translated blocks remain on its page, so later stores there would leave those blocks
stale (QEMU marks a page dirty only once no code is left on it).  The fill therefore keeps
executable entries — the slow, safe path — for every page code was ever fetched from (a
bitmap of 4 KiB *physical* pages, so a second mapping of a code page is covered too); only
pages that never held code get the fast path.

Limit: the fill makes 4 KiB entries, and the engine records no large page for them, so an
``INVLPG`` of one address inside a 2 MiB or 1 GiB page drops only that 4 KiB of it (MOV to
CR3 or CR4 drops everything, as before).  Linux flushes the whole TLB when it splits or
changes a large page.

``EMU_TLB=cpu`` keeps the engine's own TLB throughout (for comparison; also what runs when
the helper is not built).
"""

from __future__ import annotations

import ctypes
import os
from functools import cache

from emu.pc.clock import _load_helper, add_native_hook

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
        ("data_pages", ctypes.c_void_p),
        ("code_flushes", ctypes.c_uint64),
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
        self._data_pages = (ctypes.c_uint8 * ((pages + 7) // 8))()
        state.data_pages = ctypes.addressof(self._data_pages)
        state.code_pages_count = pages
        state.paging = 1  # until the first fill says otherwise: ask the engine
        self._handle = add_native_hook(uc, UC_HOOK_TLB_FILL, lib.bc_tlb_fill, state,
                                       "the TLB fill")
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
