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

from emu.pc.clock import _load_helper

TLB_ENV = "EMU_TLB"


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
    )


def wanted() -> bool:
    """Use the virtual TLB unless ``EMU_TLB=cpu`` (or the helper is not built)."""
    return (os.environ.get(TLB_ENV, "").strip().lower() != "cpu"
            and _load_helper() is not None)


class NativeTlb:
    """The C fill hook installed on one engine (see the module docstring)."""

    def __init__(self, uc: object) -> None:
        lib = _load_helper()
        assert lib is not None
        from unicorn import UC_HOOK_TLB_FILL
        from unicorn import x86_const as X
        from unicorn.unicorn_const import UC_TLB_VIRTUAL
        from unicorn.unicorn_py3.unicorn import uclib

        self.uc = uc
        self.state = state = TlbState()
        state.reg_read = ctypes.cast(uclib.uc_reg_read, ctypes.c_void_p).value
        state.ctl = ctypes.cast(uclib.uc_ctl, ctypes.c_void_p).value
        state.cr0_regid = X.UC_X86_REG_CR0
        self._code_pages = (ctypes.c_uint8 * ((1 << 20) // 8))()  # 1 bit per 4 KiB page
        state.code_pages = ctypes.addressof(self._code_pages)
        self._handle = ctypes.c_size_t()
        status = uclib.uc_hook_add(
            uc._uch, ctypes.byref(self._handle), UC_HOOK_TLB_FILL,  # type: ignore[attr-defined]
            ctypes.cast(lib.bc_tlb_fill, ctypes.c_void_p),
            ctypes.cast(ctypes.byref(state), ctypes.c_void_p), 1, 0)
        if status != 0:
            raise RuntimeError(f"uc_hook_add for the TLB fill failed ({status})")
        uc.ctl_set_tlb_mode(UC_TLB_VIRTUAL)  # type: ignore[attr-defined]
        self.virtual = True

    def switched_address(self) -> int:
        """Where ``switched`` lives (the block clock reads it: no paging while it is 0)."""
        return ctypes.addressof(self.state) + TlbState.switched.offset

    def recover(self) -> bool:
        """After a failed run: was it the switch to the engine's TLB (paging turned on)?
        Then the TLB is flushed and the run can simply go on."""
        if not self.state.switched or not self.virtual:
            return False
        self.virtual = False
        from unicorn.unicorn_const import UC_CTL_IO_WRITE, UC_CTL_TLB_FLUSH
        from unicorn.unicorn_py3.unicorn import uclib

        # UC_CTL_WRITE(UC_CTL_TLB_FLUSH, 0): drop every entry the virtual fill made.
        uclib.uc_ctl(self.uc._uch, UC_CTL_TLB_FLUSH | (UC_CTL_IO_WRITE << 30))  # type: ignore[attr-defined]
        return True
