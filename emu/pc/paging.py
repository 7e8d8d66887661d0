"""Guest page-table walks: what the glue reads and writes when CR0.PG is set.

Unicorn translates the guest's own accesses itself; this module is for the
glue's accesses to guest structures (GDT, LDT, IDT, TSS, the stacks it pushes
interrupt frames to, the instruction bytes it inspects), which are at linear
addresses once paging is on.  It follows Intel SDM vol 3 chapter 4:

* **32-bit paging** (CR0.PG = 1, CR4.PAE = 0; §4.3): a page directory at CR3,
  4-KByte pages, and 4-MByte pages when CR4.PSE = 1 and PDE.PS = 1 (physical
  bits 39:32 of a 4-MByte page from PDE bits 20:13).
* **PAE paging** (CR4.PAE = 1, EFER.LMA = 0; §4.4): four PDPTEs at CR3 (only
  P counts there), 2-MByte pages with PDE.PS, XD (bit 63) when EFER.NXE.
* **4-level paging** (EFER.LMA = 1; §4.5): PML4 → PDPT (1-GByte pages with
  PS) → PD (2-MByte pages) → PT; linear bits 47:0.
* **Access rights** (§4.6): a write needs R/W = 1 at every level (a supervisor
  write ignores R/W when CR0.WP = 0); a user-mode access needs U/S = 1 at every
  level; with EFER.NXE (PAE and 4-level), an instruction fetch faults if any
  level has XD = 1; with CR4.SMEP, a supervisor fetch from a user page faults.
* **Accessed and dirty flags** (§4.8): a translation that succeeds sets A in
  every entry it used, and D in the final entry for a write.
* **Page-fault error code** (§4.7, figure 4-12): P (0 = not present, 1 =
  protection), W/R, U/S, RSVD (a reserved bit was set: here XD without NXE and
  a PS bit in a PML4E), I/D (an instruction fetch, when NXE or SMEP is on).

TODO(SDM vol 3 §4.6.1): SMAP and protection keys are not modelled; reserved
physical-address bits above MAXPHYADDR are not checked.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CR0_WP, CR0_PG = 1 << 16, 1 << 31
CR4_PSE, CR4_PAE, CR4_SMEP = 1 << 4, 1 << 5, 1 << 20
EFER_NXE, EFER_LMA = 1 << 11, 1 << 10

PF_P, PF_W, PF_U, PF_RSVD, PF_I = 0x1, 0x2, 0x4, 0x8, 0x10
"""Page-fault error code bits (SDM vol 3 figure 4-12)."""

_P, _RW, _US, _A, _D, _PS = 0x1, 0x2, 0x4, 0x20, 0x40, 0x80
_XD = 1 << 63
_ADDR = 0x000F_FFFF_FFFF_F000


class PageFault(Exception):  # noqa: N818 - the architecture's name for it
    """A translation failed: ``#PF`` with CR2 = ``linear`` and ``error_code``."""

    def __init__(self, linear: int, error_code: int) -> None:
        super().__init__(f"#PF at {linear:#x} (error code {error_code:#x})")
        self.linear = linear
        self.error_code = error_code


@dataclass(frozen=True)
class Paging:
    """The control-register bits that decide how linear addresses translate."""

    cr0: int
    cr3: int
    cr4: int
    efer: int

    @property
    def enabled(self) -> bool:
        return bool(self.cr0 & CR0_PG)


RamRanges = Sequence[tuple[int, int]]
"""``(physical base, length)`` of each RAM range, in the order the RAM array holds them
(the board maps the array's tail from 4 GiB up, above the PCI hole)."""


def ram_offset(ranges: RamRanges | None, physical: int, size: int = 1) -> int | None:
    """Where ``size`` bytes at ``physical`` are in the RAM array; None outside RAM."""
    if ranges is None:
        return physical
    offset = 0
    for base, length in ranges:
        if base <= physical and physical + size <= base + length:
            return offset + physical - base
        offset += length
    return None


def translate(ram: np.ndarray, paging: Paging, linear: int, *, write: bool = False,
              user: bool = False, fetch: bool = False, ranges: RamRanges | None = None,
              mark: bool = True) -> int:
    """The physical address of ``linear``, or :class:`PageFault` (SDM vol 3 §4.3–§4.7).

    Sets the accessed and dirty flags a successful access sets (not with ``mark`` False:
    a look at the tables on the host's behalf, which the guest must not see).  Paging
    structures are read from ``ram`` at their physical addresses (mapped by
    ``ranges`` when RAM is split around the PCI hole).
    """
    if not paging.enabled:
        return linear
    cr4, efer = paging.cr4, paging.efer
    long_mode = bool(efer & EFER_LMA)
    pae = long_mode or bool(cr4 & CR4_PAE)
    nxe = pae and bool(efer & EFER_NXE)
    rsvd = 0
    entries: list[tuple[int, int, int]] = []  # (physical address, value, size)
    writable = user_ok = True
    no_exec = False

    def fault(present: bool) -> PageFault:
        code = (PF_P if present else 0) | (PF_W if write else 0) | (PF_U if user else 0)
        code |= rsvd
        if fetch and (nxe or cr4 & CR4_SMEP):
            code |= PF_I
        return PageFault(linear, code)

    def read(address: int, size: int) -> int:
        at = ram_offset(ranges, address, size)
        if at is None or at + size > len(ram):
            return 0  # a table outside RAM reads as "not present"
        return struct.unpack_from("<Q" if size == 8 else "<I", ram, at)[0]

    if long_mode:
        linear &= 0xFFFF_FFFF_FFFF_FFFF
        table = paging.cr3 & _ADDR
        shifts = (39, 30, 21, 12)
    elif pae:
        linear &= 0xFFFF_FFFF
        pdpte_at = (paging.cr3 & 0xFFFF_FFE0) + ((linear >> 30) & 3) * 8
        pdpte = read(pdpte_at, 8)
        if not pdpte & _P:
            raise fault(False)
        table = pdpte & _ADDR
        shifts = (21, 12)
    else:
        linear &= 0xFFFF_FFFF
        table = paging.cr3 & 0xFFFF_F000
        shifts = (22, 12)
    size = 8 if pae else 4
    index_mask = 0x1FF if pae else 0x3FF
    frame = 0
    page_bits = 12
    for level, shift in enumerate(shifts):
        at = table + ((linear >> shift) & index_mask) * size
        entry = read(at, size)
        if not entry & _P:
            raise fault(False)
        if entry & _XD and not nxe:
            rsvd = PF_RSVD
            raise fault(True)
        entries.append((at, entry, size))
        writable = writable and bool(entry & _RW)
        user_ok = user_ok and bool(entry & _US)
        no_exec = no_exec or bool(nxe and entry & _XD)
        last = shift == 12
        if not last and entry & _PS:
            if long_mode and level == 0:
                rsvd = PF_RSVD  # no large pages in a PML4E
                raise fault(True)
            if not pae and not cr4 & CR4_PSE:
                table = entry & 0xFFFF_F000  # PS ignored without PSE: a page table
                continue
            page_bits = shift
            if pae:
                frame = entry & _ADDR & ~((1 << shift) - 1)
            else:  # a 4-MByte page: bits 39:32 of its address in PDE bits 20:13
                frame = (entry & 0xFFC0_0000) | ((entry >> 13) & 0xFF) << 32
            break
        if last:
            frame = entry & (_ADDR if pae else 0xFFFF_F000)
            break
        table = entry & (_ADDR if pae else 0xFFFF_F000)
    if user and not user_ok:
        raise fault(True)
    if write and not writable and (user or paging.cr0 & CR0_WP):
        raise fault(True)
    if fetch and (no_exec or (not user and user_ok and cr4 & CR4_SMEP)):
        raise fault(True)
    for n, (at, entry, entry_size) in enumerate(entries if mark else ()):
        flags = _A | (_D if write and n == len(entries) - 1 else 0)
        if entry & flags != flags:
            where = ram_offset(ranges, at, entry_size)
            assert where is not None  # it was read from there
            struct.pack_into("<Q" if entry_size == 8 else "<I", ram, where, entry | flags)
    return frame | (linear & ((1 << page_bits) - 1))
