"""Guest page walks (emu/pc/paging.py): 32-bit, PAE and 4-level, A/D bits, #PF error codes.

Each case builds the tables in a numpy RAM as the SDM vol 3 chapter 4 figures
lay them out and checks the translation or the error code bit by bit
(figure 4-12: P=1, W/R=2, U/S=4, RSVD=8, I/D=10h).
"""

from __future__ import annotations

import struct

import numpy as np
import pytest

from emu.pc.paging import (
    CR0_PG,
    CR0_WP,
    CR4_PAE,
    CR4_PSE,
    CR4_SMEP,
    EFER_LMA,
    EFER_NXE,
    PF_I,
    PF_P,
    PF_RSVD,
    PF_U,
    PF_W,
    PageFault,
    Paging,
    ram_offset,
    translate,
)

P, RW, US, A, D, PS = 0x1, 0x2, 0x4, 0x20, 0x40, 0x80
XD = 1 << 63


def put32(ram: np.ndarray, at: int, value: int) -> None:
    struct.pack_into("<I", ram, at, value)


def put64(ram: np.ndarray, at: int, value: int) -> None:
    struct.pack_into("<Q", ram, at, value)


def get64(ram: np.ndarray, at: int) -> int:
    return struct.unpack_from("<Q", ram, at)[0]


def fault_code(ram: np.ndarray, paging: Paging, linear: int, **access: bool) -> int:
    with pytest.raises(PageFault) as info:
        translate(ram, paging, linear, **access)
    assert info.value.linear == linear
    return info.value.error_code


@pytest.fixture
def ram() -> np.ndarray:
    return np.zeros(4 << 20, dtype=np.uint8)


def test_paging_off_is_identity(ram):
    assert translate(ram, Paging(0x11, 0, 0, 0), 0x12345) == 0x12345


def test_32bit_paging_4k_page_sets_accessed_then_dirty(ram):
    put32(ram, 0x1000 + 1 * 4, 0x2000 | P | RW | US)        # PDE for 400000h-7FFFFFh
    put32(ram, 0x2000 + 5 * 4, 0x9000 | P | RW | US)        # PTE for 405000h
    paging = Paging(CR0_PG | 1, 0x1000, 0, 0)
    assert translate(ram, paging, 0x405ABC) == 0x9ABC
    assert struct.unpack_from("<I", ram, 0x1000 + 4)[0] & (A | D) == A
    assert struct.unpack_from("<I", ram, 0x2000 + 20)[0] & (A | D) == A
    translate(ram, paging, 0x405000, write=True)
    assert struct.unpack_from("<I", ram, 0x2000 + 20)[0] & D
    assert not struct.unpack_from("<I", ram, 0x1000 + 4)[0] & D  # D only in the last level


def test_32bit_paging_4m_page_needs_pse(ram):
    put32(ram, 0x1000 + 2 * 4, 0x00C0_0000 | (0x1 << 13) | P | RW | PS)  # 4 MiB page, bit 32 set
    with_pse = Paging(CR0_PG | 1, 0x1000, CR4_PSE, 0)
    assert translate(ram, with_pse, 0x0081_2345) == 0x1_00C1_2345


def test_32bit_error_codes_bit_by_bit(ram):
    put32(ram, 0x1000, 0x2000 | P | RW | US)
    put32(ram, 0x2000 + 1 * 4, 0x5000 | P | US)          # 1000h: user, read-only
    put32(ram, 0x2000 + 2 * 4, 0x6000 | P | RW)          # 2000h: supervisor, writable
    wp = Paging(CR0_PG | CR0_WP | 1, 0x1000, 0, 0)
    assert fault_code(ram, wp, 0x3000) == 0                               # read, not present
    assert fault_code(ram, wp, 0x3000, write=True) == PF_W                # write, not present
    assert fault_code(ram, wp, 0x3000, user=True) == PF_U
    assert fault_code(ram, wp, 0x1000, write=True) == PF_P | PF_W          # supervisor, WP
    assert fault_code(ram, wp, 0x1000, write=True, user=True) == PF_P | PF_W | PF_U
    assert fault_code(ram, wp, 0x2000, user=True) == PF_P | PF_U           # user → supervisor
    no_wp = Paging(CR0_PG | 1, 0x1000, 0, 0)
    assert translate(ram, no_wp, 0x1010, write=True) == 0x5010            # WP=0: allowed


def test_pae_2m_page_and_nx(ram):
    put64(ram, 0x1000 + 0 * 8, 0x2000 | P)                   # PDPTE 0
    put64(ram, 0x2000 + 1 * 8, 0x0060_0000 | P | RW | PS)     # 2 MiB page at 200000h → 600000h
    put64(ram, 0x2000 + 2 * 8, 0x3000 | P | RW | XD)          # 400000h: a table, XD
    put64(ram, 0x3000 + 0 * 8, 0x7000 | P | RW)
    nxe = Paging(CR0_PG | 1, 0x1000, CR4_PAE, EFER_NXE)
    assert translate(ram, nxe, 0x0023_4567) == 0x0063_4567
    assert translate(ram, nxe, 0x0040_0010) == 0x7010                     # data read: fine
    assert fault_code(ram, nxe, 0x0040_0010, fetch=True) == PF_P | PF_I
    no_nxe = Paging(CR0_PG | 1, 0x1000, CR4_PAE, 0)
    assert fault_code(ram, no_nxe, 0x0040_0010) == PF_P | PF_RSVD          # XD is reserved


def test_four_level_paging_1g_2m_4k_and_canonical_high_half(ram):
    pml4, pdpt, pd, pt = 0x1000, 0x2000, 0x3000, 0x4000
    put64(ram, pml4 + 511 * 8, pdpt | P | RW)                 # FFFF_FF80_0000_0000...
    put64(ram, pdpt + 510 * 8, pd | P | RW)                   # ...FFFF_FFFF_8000_0000
    put64(ram, pd + 0 * 8, pt | P | RW)
    put64(ram, pt + 3 * 8, 0x0030_0000 | P | RW)
    put64(ram, pd + 1 * 8, 0x0020_0000 | P | RW | PS)         # 2 MiB page
    put64(ram, pml4 + 0 * 8, 0x5000 | P | RW | US)
    put64(ram, 0x5000 + 1 * 8, 0x4000_0000 | P | RW | US | PS)  # 1 GiB page at 1 GiB
    paging = Paging(CR0_PG | 1, pml4, CR4_PAE, EFER_LMA)
    assert translate(ram, paging, 0xFFFF_FFFF_8000_3123) == 0x0030_0123
    assert translate(ram, paging, 0xFFFF_FFFF_8020_0042, write=True) == 0x0020_0042
    assert get64(ram, pd + 8) & (A | D) == A | D
    assert translate(ram, paging, 0x4123_4567, user=True) == 0x4123_4567
    # Supervisor-only upper levels: a user access is a protection fault.
    assert fault_code(ram, paging, 0xFFFF_FFFF_8000_3000, user=True) == PF_P | PF_U
    # SMEP: a supervisor fetch from a user page faults with I/D.
    smep = Paging(CR0_PG | 1, pml4, CR4_PAE | CR4_SMEP, EFER_LMA)
    assert fault_code(ram, smep, 0x4000_0000, fetch=True) == PF_P | PF_I


def test_a_failed_walk_sets_no_accessed_flag(ram):
    put32(ram, 0x1000, 0x2000 | P | RW)
    paging = Paging(CR0_PG | 1, 0x1000, 0, 0)
    fault_code(ram, paging, 0x5000)
    assert struct.unpack_from("<I", ram, 0x1000)[0] & A == 0


def test_tables_in_ram_above_4g_are_read_through_the_ram_ranges(ram):
    """With RAM split around the PCI hole, the array's tail is physical 4 GiB up."""
    ranges = [(0, 2 << 20), (4 << 30, 2 << 20)]
    high = 2 << 20  # array offset of physical 4 GiB
    put64(ram, 0x1000, (4 << 30) | P | RW)            # PML4E → PDPT at 4 GiB
    put64(ram, high + 0, (4 << 30) + 0x1000 | P | RW)  # PDPTE → PD at 4 GiB + 1000h
    put64(ram, high + 0x1000, (4 << 30) + 0x2000 | P | RW)
    put64(ram, high + 0x2000 + 7 * 8, (4 << 30) + 0x7000 | P | RW)
    paging = Paging(CR0_PG | 1, 0x1000, CR4_PAE, EFER_LMA)
    assert translate(ram, paging, 0x7123, write=True, ranges=ranges) == (4 << 30) + 0x7123
    assert get64(ram, high + 0x2000 + 7 * 8) & (A | D) == A | D
    assert ram_offset(ranges, (4 << 30) + 0x7123) == high + 0x7123
    assert ram_offset(ranges, 3 << 20) is None  # the hole
