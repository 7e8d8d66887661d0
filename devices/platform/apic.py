"""Local APIC and I/O APIC register pages that behave as on a uniprocessor PC.

Intel SDM vol 3 ch. 10 (local APIC at FEE00000h: ID 20h, version 30h, TPR
80h, EOI B0h, LDR D0h, DFR E0h, spurious vector F0h, ICR 300h/310h, LVT
entries 320h-370h, timer initial/current count 380h/390h, divide E0h → 3E0h)
and the Intel 82093AA I/O APIC datasheet (at FEC00000h: IOREGSEL at 00h,
IOWIN at 10h; register 0 ID, 1 version and maximum redirection entry, 2
arbitration ID, 10h-3Fh the 24 redirection entries, reset to masked).

Uniprocessor semantics: the local APIC is the bootstrap processor's (ID 0);
an inter-processor interrupt written to the ICR (the INIT-SIPI-SIPI firmware
sends to wake application processors) is accepted and completes at once
(delivery status idle) and wakes nobody, because there is nobody.  The LVT
entries and the I/O APIC's redirection table are stored; interrupts keep
going through the 8259 pair (virtual wire mode), which is how the BIOS and a
boot loader run.  The local APIC timer does not count.
"""

from __future__ import annotations

LAPIC_BASE, IOAPIC_BASE = 0xFEE0_0000, 0xFEC0_0000
PAGE = 0x1000
LAPIC_ID, LAPIC_VERSION, LAPIC_EOI, LAPIC_SVR = 0x20, 0x30, 0xB0, 0xF0
LAPIC_ICR_LOW, LAPIC_ICR_HIGH = 0x300, 0x310
ICR_DELIVERY_PENDING = 1 << 12
LVT_MASKED = 1 << 16


class LocalApic:
    """The bootstrap processor's local APIC page (32-bit registers on 16-byte strides)."""

    def __init__(self, apic_id: int = 0) -> None:
        self.regs: dict[int, int] = {
            LAPIC_ID: apic_id << 24,
            LAPIC_VERSION: 0x0005_0014,  # integrated APIC, 6 LVT entries
            0x80: 0, 0xD0: 0, 0xE0: 0xFFFF_FFFF, LAPIC_SVR: 0xFF,
            LAPIC_ICR_LOW: 0, LAPIC_ICR_HIGH: 0,
            0x380: 0, 0x390: 0, 0x3E0: 0,
        }
        for lvt in range(0x320, 0x380, 0x10):
            self.regs[lvt] = LVT_MASKED
        self.ipis: list[int] = []
        """ICR low words written (each an IPI that found no other processor)."""
        self.eois = 0

    def read(self, offset: int, size: int) -> int:
        reg = offset & 0xFF0
        value = self.regs.get(reg, 0)
        if reg == LAPIC_ICR_LOW:
            value &= ~ICR_DELIVERY_PENDING
        return (value >> (8 * (offset & 3))) & ((1 << (8 * size)) - 1)

    def write(self, offset: int, size: int, value: int) -> None:
        reg = offset & 0xFF0
        if reg in (LAPIC_ID, LAPIC_VERSION, 0x390):
            return
        if reg == LAPIC_EOI:
            self.eois += 1
            return
        if reg == LAPIC_ICR_LOW:
            self.ipis.append(value & 0xFFFF_FFFF)
        self.regs[reg] = value & 0xFFFF_FFFF


class IoApic:
    """The I/O APIC: an index register and a data window over 24 redirection entries."""

    ENTRIES = 24

    def __init__(self, apic_id: int = 0) -> None:
        self.select = 0
        self.id = apic_id << 24
        self.redirection = [LVT_MASKED] * (2 * self.ENTRIES)

    def register(self, index: int) -> int:
        """I/O APIC register ``index``."""
        if index == 0:
            return self.id
        if index == 1:
            return ((self.ENTRIES - 1) << 16) | 0x11
        if index == 2:
            return self.id
        if 0x10 <= index < 0x10 + 2 * self.ENTRIES:
            return self.redirection[index - 0x10]
        return 0

    def read(self, offset: int, size: int) -> int:
        if offset < 0x10:
            value = self.select
        elif offset < 0x20:
            value = self.register(self.select)
        else:
            value = 0
        return (value >> (8 * (offset & 3))) & ((1 << (8 * size)) - 1)

    def write(self, offset: int, size: int, value: int) -> None:
        if offset < 0x10:
            self.select = value & 0xFF
        elif offset < 0x20:
            index = self.select
            if index == 0:
                self.id = value & 0x0F00_0000
            elif 0x10 <= index < 0x10 + 2 * self.ENTRIES:
                self.redirection[index - 0x10] = value & 0xFFFF_FFFF
