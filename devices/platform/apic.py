"""The local APIC (Intel SDM vol. 3A ch. 10) and the 82093AA I/O APIC, for one processor.

**Local APIC** (xAPIC page at FEE00000h, registers on 16-byte strides, SDM Table 10-1):
ID 20h, version 30h, TPR 80h, APR 90h, PPR A0h, EOI B0h, LDR D0h, DFR E0h, SVR F0h,
ISR 100h-170h, TMR 180h-1F0h, IRR 200h-270h, ESR 280h, ICR 300h/310h, LVT timer 320h,
thermal 330h, performance 340h, LINT0 350h, LINT1 360h, error 370h, timer initial count
380h, current count 390h, divide configuration 3E0h.  The rules it follows:

* Fixed interrupts land in the IRR (vectors 0-15 are illegal: ESR bit 6 and the LVT
  error interrupt, §10.5.3; ESR shows the errors latched by the last write to it),
  with the TMR bit recording level (1) or edge (0) trigger.  The processor priority is
  PPR = max(TPR, ISRV) by class (§10.8.3.1); the highest IRR vector is delivered only when
  its class is above PPR's (§10.8.4).  Acceptance (the INTA) moves it from IRR to ISR; if
  nothing deliverable is left by then the APIC answers with the spurious vector (§10.9).
  A write to EOI retires the highest ISR bit; when that vector's TMR bit is set the EOI is
  broadcast to the I/O APIC (§10.8.5), which clears its remote IRR.
* SVR bit 8 software-enables the APIC (§10.4.7.2): while it is clear every LVT entry reads
  masked and cannot be unmasked, and fixed interrupts are not accepted.  The reset state
  (§10.4.7.1) is software-disabled with SVR = FFh and every LVT masked, except that the
  bootstrap processor's LINT0 and LINT1 are left as firmware sets them for virtual wire
  mode (MP spec 1.4 §3.6.2.2): LINT0 ExtINT, LINT1 NMI.  The 8259's INTR reaches the CPU
  through LINT0 programmed ExtINT and unmasked, bypassing IRR/ISR and the priority
  scheme (§10.8.1), or directly while the APIC is hardware-disabled (IA32_APIC_BASE bit 11
  clear).  That routing decision is :class:`devices.platform.intc.InterruptController`'s.
* The timer (§10.5.4) counts down from the initial count at the bus clock
  (:data:`APIC_TIMER_HZ`) divided by 1-128 (the divide configuration's bits 3, 1, 0);
  one-shot stops at 0, periodic reloads; writing the initial count (re)starts it and 0
  stops it.  On reaching 0 it raises the LVT timer vector unless masked.  It counts on the
  virtual clock handed in and registers itself there as a timer (``deadline`` and
  ``fire``), so a halted CPU sleeps exactly until the next expiry.  TSC-deadline mode is
  not offered (CPUID does not report it).
* The ICR sends an IPI: to itself (shorthand self or all-including-self, or its own
  physical ID) a fixed vector is accepted locally and an NMI is raised; anything else
  finds no other processor and completes at once (delivery status idle), which is what
  firmware's INIT-SIPI-SIPI to the absent application processors sees.

**I/O APIC** (82093AA datasheet, at FEC00000h): IOREGSEL at 00h selects, IOWIN at 10h
reads and writes register 00h ID (bits 27-24), 01h version (11h) and maximum
redirection entry (17h: 24 pins), 02h arbitration ID, 10h-3Fh the redirection table
(two 32-bit halves each: vector 7-0, delivery mode 10-8, destination mode 11, delivery
status 12, polarity 13, remote IRR 14, trigger mode 15, mask 16, destination 63-56;
masked at reset).  An edge-triggered pin delivers on each rising edge while unmasked (a
masked edge is lost); a level-triggered pin delivers while asserted and unmasked if its
remote IRR is clear, sets remote IRR, and delivers again after the local APIC's EOI for
its vector if still asserted.  Fixed and lowest-priority entries go to the local APIC
when the destination names it (physical ID, broadcast FFh, or logical flat/cluster
against the LDR and DFR); NMI entries raise the NMI; ExtINT entries are the 8259's
virtual-wire path (pin 0) and are read by the interrupt controller.  The IRQ lines carry
the asserted state: the polarity bit is stored as written and the board's wiring is
where active-low becomes asserted.

The ISA wiring of a PC (what the MP table or ACPI MADT tells the OS): ISA IRQ n drives
pin n, except IRQ 0 (the PIT), which drives pin 2 (the interrupt source override every
PC firmware reports); pin 0 is the 8259's INTR.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from devices.bus import Clock, IrqLine
from devices.state import StateError, apply, capture

LAPIC_BASE, IOAPIC_BASE = 0xFEE0_0000, 0xFEC0_0000
PAGE = 0x1000
APIC_TIMER_HZ = 1_000_000_000
"""The local APIC timer's input (bus) clock: 1 GHz, one tick per nanosecond."""
APIC_BASE_BSP, APIC_BASE_ENABLE = 1 << 8, 1 << 11
"""IA32_APIC_BASE (MSR 1Bh) bits: bootstrap processor, APIC global enable."""

# Local APIC register offsets (SDM Table 10-1)
LAPIC_ID, LAPIC_VERSION, LAPIC_TPR, LAPIC_APR, LAPIC_PPR = 0x20, 0x30, 0x80, 0x90, 0xA0
LAPIC_EOI, LAPIC_RRD, LAPIC_LDR, LAPIC_DFR, LAPIC_SVR = 0xB0, 0xC0, 0xD0, 0xE0, 0xF0
LAPIC_ISR, LAPIC_TMR, LAPIC_IRR, LAPIC_ESR = 0x100, 0x180, 0x200, 0x280
LAPIC_ICR_LOW, LAPIC_ICR_HIGH = 0x300, 0x310
LVT_TIMER, LVT_THERMAL, LVT_PERF, LVT_LINT0, LVT_LINT1, LVT_ERROR = (
    0x320, 0x330, 0x340, 0x350, 0x360, 0x370)
LVT_REGISTERS = (LVT_TIMER, LVT_THERMAL, LVT_PERF, LVT_LINT0, LVT_LINT1, LVT_ERROR)
TIMER_INITIAL, TIMER_CURRENT, TIMER_DIVIDE = 0x380, 0x390, 0x3E0

LAPIC_VERSION_VALUE = ((len(LVT_REGISTERS) - 1) << 16) | 0x14
"""Integrated APIC (version 14h), maximum LVT entry 5 (six entries)."""
SVR_ENABLE = 1 << 8
ICR_DELIVERY_PENDING = 1 << 12
ESR_RECEIVE_ILLEGAL_VECTOR = 1 << 6

# LVT and redirection-entry fields (shared layout in bits 16-0)
VECTOR_MASK = 0xFF
DELIVERY_MODE_SHIFT = 8
DM_FIXED, DM_LOWEST, DM_SMI, DM_NMI, DM_INIT, DM_STARTUP, DM_EXTINT = 0, 1, 2, 4, 5, 6, 7
DEST_LOGICAL = 1 << 11
DELIVERY_STATUS = 1 << 12
POLARITY_LOW = 1 << 13
REMOTE_IRR = 1 << 14
TRIGGER_LEVEL = 1 << 15
LVT_MASKED = 1 << 16
TIMER_PERIODIC = 1 << 17
TIMER_MODE_MASK = 3 << 17

_LVT_WRITABLE = {
    LVT_TIMER: LVT_MASKED | TIMER_PERIODIC | VECTOR_MASK,  # no TSC-deadline mode
    LVT_THERMAL: 0x1_07FF, LVT_PERF: 0x1_07FF,
    LVT_LINT0: 0x1_A7FF, LVT_LINT1: 0x1_A7FF,  # vector, mode, polarity, trigger, mask
    LVT_ERROR: 0x1_00FF,
}


def delivery_mode(entry: int) -> int:
    """Bits 10-8 of an LVT or redirection entry."""
    return (entry >> DELIVERY_MODE_SHIFT) & 7



class LocalApic:
    """The bootstrap processor's local APIC: registers, IRR/ISR/TMR, priorities, the timer.

    ``clock`` is optional only for register-file users that never start the timer
    (the count then reads as the initial count and never expires).
    """

    def __init__(self, apic_id: int = 0, clock: Clock | None = None) -> None:
        self.apic_id = apic_id
        self.clock = clock
        self.on_eoi: list[Callable[[int], None]] = []
        """Listeners told the vector of each level-triggered EOI (the I/O APIC's broadcast)."""
        self.on_nmi: list[Callable[[], None]] = []
        """Listeners told of an NMI delivered through LINT1, an IPI or the I/O APIC."""
        self.ipis: list[int] = []
        """ICR low words written (each an IPI; those for other processors find nobody)."""
        self.eois = 0
        self.deadline: int | None = None
        self.reset()
        if clock is not None:
            clock.add_timer(self)

    def reset(self) -> None:
        """Power-on / RESET state (SDM §10.4.7.1), with the BSP's virtual-wire LINT0/LINT1."""
        # State fields: apic_base, id, tpr, ldr, dfr, svr, irr, isr, tmr, esr, icr_low,
        # esr_pending, icr_high, lvt, timer_initial, timer_divide, timer_start_ns, timer_base_count,
        # nmi_count, lint1_level, deadline.
        self.apic_base = LAPIC_BASE | APIC_BASE_ENABLE | APIC_BASE_BSP
        self.id = self.apic_id << 24
        self.tpr = 0
        self.ldr = 0
        self.dfr = 0xFFFF_FFFF
        self.svr = 0xFF
        self.irr = 0
        self.isr = 0
        self.tmr = 0
        self.esr = 0
        self.esr_pending = 0
        """Errors seen since the last ESR write (a write latches them into ESR)."""
        self.icr_low = 0
        self.icr_high = 0
        self.lvt = {reg: LVT_MASKED for reg in LVT_REGISTERS}
        self.lvt[LVT_LINT0] = DM_EXTINT << DELIVERY_MODE_SHIFT
        self.lvt[LVT_LINT1] = DM_NMI << DELIVERY_MODE_SHIFT
        self.timer_initial = 0
        self.timer_divide = 0
        self.timer_start_ns = 0
        self.timer_base_count = 0
        self.nmi_count = 0
        self.lint1_level = False
        self.deadline = None

    # -- state the interrupt controller asks about -----------------------------------------
    STATE_FIELDS = ("apic_base", "id", "tpr", "ldr", "dfr", "svr", "irr", "isr", "tmr", "esr",
                    "esr_pending", "icr_low", "icr_high", "timer_initial", "timer_divide",
                    "timer_start_ns", "timer_base_count", "nmi_count", "lint1_level",
                    "deadline", "ipis", "eois")
    """What :meth:`reset` sets (plus the counters), besides the LVT (``lvt``)."""

    def state(self) -> dict[str, object]:
        state = capture(self, self.STATE_FIELDS)
        state["lvt"] = [[reg, value] for reg, value in self.lvt.items()]
        return state

    def load_state(self, state: dict[str, object]) -> None:
        lvt = state.get("lvt")
        if not isinstance(lvt, list) or not all(
                isinstance(e, list) and len(e) == 2 and e[0] in self.lvt for e in lvt):
            raise StateError("lapic: field 'lvt' is not a list of known LVT registers")
        apply(self, state, self.STATE_FIELDS)
        self.lvt = {int(reg): int(value) for reg, value in lvt}

    @property
    def hardware_enabled(self) -> bool:
        """IA32_APIC_BASE bit 11: clear, the APIC is out of the way (INTR goes straight in)."""
        return bool(self.apic_base & APIC_BASE_ENABLE)

    @property
    def software_enabled(self) -> bool:
        return bool(self.svr & SVR_ENABLE) and self.hardware_enabled

    def set_apic_base(self, value: int) -> None:
        """A WRMSR to IA32_APIC_BASE: base address fixed here, enable bit honoured."""
        was = self.hardware_enabled
        self.apic_base = (LAPIC_BASE | APIC_BASE_BSP) | (value & APIC_BASE_ENABLE)
        if was and not self.hardware_enabled:
            keep = self.apic_base
            self.reset()  # re-enabling later starts from the reset state (§10.4.3)
            self.apic_base = keep

    def lint0_extint(self) -> bool:
        """Is LINT0 an unmasked ExtINT input (virtual wire mode through the local APIC)?"""
        entry = self.lvt[LVT_LINT0]
        return not entry & LVT_MASKED and delivery_mode(entry) == DM_EXTINT

    def ppr(self) -> int:
        """Processor priority (§10.8.3.1)."""
        isrv = self.isr.bit_length() - 1 if self.isr else 0
        if (self.tpr & 0xF0) >= (isrv & 0xF0):
            return self.tpr & 0xFF
        return isrv & 0xF0

    def highest_irr(self) -> int | None:
        return self.irr.bit_length() - 1 if self.irr else None

    def deliverable(self) -> int | None:
        """The vector the APIC would present to the CPU now, if any (§10.8.4)."""
        if not self.irr or not self.hardware_enabled:
            return None
        vector = self.irr.bit_length() - 1
        return vector if (vector & 0xF0) > (self.ppr() & 0xF0) else None

    def acknowledge(self) -> int:
        """The CPU takes the interrupt: IRR → ISR, or the spurious vector if none is left."""
        vector = self.deliverable()
        if vector is None:
            return self.svr & 0xFF
        self.irr &= ~(1 << vector)
        self.isr |= 1 << vector
        return vector

    def accept(self, vector: int, level: bool = False) -> bool:
        """A fixed interrupt arrives (from the LVT, an IPI or the I/O APIC)."""
        vector &= 0xFF
        if not self.software_enabled:
            return False
        if vector < 16:
            self._error(ESR_RECEIVE_ILLEGAL_VECTOR)
            return False
        bit = 1 << vector
        self.irr |= bit
        self.tmr = (self.tmr | bit) if level else (self.tmr & ~bit)
        return True

    def _error(self, bit: int) -> None:
        """An APIC error (§10.5.3): recorded for the next ESR latch, and the LVT error
        entry's interrupt if unmasked (never recursively for an illegal error vector)."""
        self.esr_pending |= bit
        entry = self.lvt[LVT_ERROR]
        if not entry & LVT_MASKED and self.software_enabled and entry & VECTOR_MASK >= 16:
            self.accept(entry & VECTOR_MASK)

    def nmi(self) -> None:
        """An NMI arrives (LINT1, an IPI or the I/O APIC): the board hands it to the CPU."""
        self.nmi_count += 1
        for listener in self.on_nmi:
            listener()

    def set_lint1(self, level: bool) -> None:
        """The chipset's NMI line on LINT1: a rising edge is an NMI if LINT1 is set up so."""
        rising, self.lint1_level = level and not self.lint1_level, level
        entry = self.lvt[LVT_LINT1]
        if rising and not entry & LVT_MASKED and delivery_mode(entry) == DM_NMI:
            self.nmi()

    def eoi(self) -> None:
        """End of interrupt: retire the highest ISR vector; level → broadcast to I/O APICs."""
        self.eois += 1
        if not self.isr:
            return
        vector = self.isr.bit_length() - 1
        self.isr &= ~(1 << vector)
        if self.tmr & (1 << vector):
            self.tmr &= ~(1 << vector)
            for listener in self.on_eoi:
                listener(vector)

    def matches(self, destination: int, logical: bool) -> bool:
        """Does an interrupt message's destination name this APIC (§10.6.2)?"""
        destination &= 0xFF
        if destination == 0xFF:
            return True
        if not logical:
            return destination == (self.id >> 24) & 0xFF
        ldr = (self.ldr >> 24) & 0xFF
        if (self.dfr >> 28) == 0xF:  # flat model
            return bool(destination & ldr)
        return (destination >> 4) == (ldr >> 4) and bool(destination & ldr & 0x0F)  # cluster

    # -- timer -------------------------------------------------------------------------------
    def timer_divisor(self) -> int:
        """Divide configuration bits 3, 1, 0 (§10.5.4): 000b = 2 ... 110b = 128, 111b = 1."""
        code = ((self.timer_divide >> 1) & 4) | (self.timer_divide & 3)
        return 1 if code == 7 else 2 << code

    def _now_ns(self) -> int:
        return self.clock.ns() if self.clock is not None else self.timer_start_ns

    def _ticks(self, now_ns: int) -> int:
        return (now_ns - self.timer_start_ns) * APIC_TIMER_HZ // (
            1_000_000_000 * self.timer_divisor())

    def _periodic(self) -> bool:
        return bool(self.lvt[LVT_TIMER] & TIMER_PERIODIC)

    def current_count(self) -> int:
        """The timer's current count register."""
        if not self.timer_base_count:
            return 0
        ticks = self._ticks(self._now_ns())
        if ticks < self.timer_base_count:
            return self.timer_base_count - ticks
        if not self._periodic() or not self.timer_initial:
            return 0
        return self.timer_initial - (ticks - self.timer_base_count) % self.timer_initial

    def _restart_timer(self, count: int) -> None:
        """Count down from ``count`` starting now (a new initial count, or a rebase)."""
        self.timer_start_ns = self._now_ns()
        self.timer_base_count = count
        self._schedule()

    def _expiry_ns(self, k: int) -> int:
        """When the k-th expiry (k = 0 first) happens, in virtual ns (rounded up)."""
        ticks = self.timer_base_count + k * self.timer_initial
        num = ticks * self.timer_divisor() * 1_000_000_000
        return self.timer_start_ns + -(-num // APIC_TIMER_HZ)

    def _schedule(self) -> None:
        """Set ``deadline`` to the next expiry that raises an interrupt, in instructions."""
        self.deadline = None
        clock = self.clock
        if clock is None or not self.timer_base_count or self.lvt[LVT_TIMER] & LVT_MASKED:
            return
        if not self.software_enabled:
            return
        now = clock.ns()
        ticks = self._ticks(now)
        if ticks < self.timer_base_count:
            k = 0
        elif self._periodic() and self.timer_initial:
            k = (ticks - self.timer_base_count) // self.timer_initial + 1
        else:
            return  # a one-shot that has expired
        when = self._expiry_ns(k)  # after ``now``: ticks < the count at that expiry
        self.deadline = max(clock.instructions + 1, -(-when * clock.ips // 1_000_000_000))

    def fire(self) -> None:
        """Clock timer callback: the count reached 0; raise the LVT timer's vector."""
        entry = self.lvt[LVT_TIMER]
        if not entry & LVT_MASKED:
            self.accept(entry & VECTOR_MASK)
        self._schedule()

    # -- register file (MMIO) ----------------------------------------------------------------
    def register(self, reg: int) -> int:
        """The 32-bit value of register ``reg`` (offset on a 16-byte boundary)."""
        if reg == LAPIC_ID:
            return self.id
        if reg == LAPIC_VERSION:
            return LAPIC_VERSION_VALUE
        if reg == LAPIC_TPR:
            return self.tpr
        if reg == LAPIC_APR:
            return 0
        if reg == LAPIC_PPR:
            return self.ppr()
        if reg == LAPIC_LDR:
            return self.ldr
        if reg == LAPIC_DFR:
            return self.dfr
        if reg == LAPIC_SVR:
            return self.svr
        for base, bits in ((LAPIC_ISR, self.isr), (LAPIC_TMR, self.tmr), (LAPIC_IRR, self.irr)):
            if base <= reg < base + 0x80:
                return (bits >> (32 * ((reg - base) >> 4))) & 0xFFFF_FFFF
        if reg == LAPIC_ESR:
            return self.esr
        if reg == LAPIC_ICR_LOW:
            return self.icr_low & ~ICR_DELIVERY_PENDING
        if reg == LAPIC_ICR_HIGH:
            return self.icr_high
        if reg in self.lvt:
            value = self.lvt[reg]
            return value if self.software_enabled else value | LVT_MASKED
        if reg == TIMER_INITIAL:
            return self.timer_initial
        if reg == TIMER_CURRENT:
            return self.current_count()
        if reg == TIMER_DIVIDE:
            return self.timer_divide
        return 0

    def set_register(self, reg: int, value: int) -> None:
        """Write the 32-bit ``value`` to register ``reg``; read-only registers ignore it."""
        value &= 0xFFFF_FFFF
        if reg == LAPIC_ID:
            self.id = value & 0xFF00_0000
        elif reg == LAPIC_TPR:
            self.tpr = value & 0xFF
        elif reg == LAPIC_EOI:
            self.eoi()
        elif reg == LAPIC_LDR:
            self.ldr = value & 0xFF00_0000
        elif reg == LAPIC_DFR:
            self.dfr = value | 0x0FFF_FFFF
        elif reg == LAPIC_SVR:
            self._write_svr(value)
        elif reg == LAPIC_ESR:
            self.esr, self.esr_pending = self.esr_pending, 0  # a write latches the errors
        elif reg == LAPIC_ICR_HIGH:
            self.icr_high = value & 0xFF00_0000
        elif reg == LAPIC_ICR_LOW:
            self.icr_low = value & ~ICR_DELIVERY_PENDING
            self._send_ipi(value)
        elif reg in self.lvt:
            self._write_lvt(reg, value)
        elif reg == TIMER_INITIAL:
            self.timer_initial = value
            self._restart_timer(value)
        elif reg == TIMER_DIVIDE:
            count = self.current_count()
            self.timer_divide = value & 0xB
            if self.timer_base_count:
                self._restart_timer(count)  # the count goes on at the new rate

    def _write_svr(self, value: int) -> None:
        was = self.software_enabled
        self.svr = value & 0x13FF  # vector, enable, focus checking, EOI-broadcast suppression
        if was and not self.software_enabled:
            for reg in self.lvt:  # §10.4.7.2: software disable masks every LVT entry
                self.lvt[reg] |= LVT_MASKED
        self._schedule()

    def _write_lvt(self, reg: int, value: int) -> None:
        value &= _LVT_WRITABLE[reg]
        if not self.software_enabled:
            value |= LVT_MASKED  # cannot be unmasked while software-disabled
        keep = self.lvt[reg] & REMOTE_IRR
        if reg == LVT_TIMER:
            count = self.current_count()
            self.lvt[reg] = value
            if self.timer_base_count and count:
                self._restart_timer(count)  # a mode change takes effect from the present count
            else:
                self._schedule()
            return
        self.lvt[reg] = value | keep

    def _send_ipi(self, icr: int) -> None:
        self.ipis.append(icr)
        shorthand = (icr >> 18) & 3
        if shorthand == 3:  # all excluding self: there is nobody else
            return
        if shorthand == 0 and not self.matches(self.icr_high >> 24, bool(icr & DEST_LOGICAL)):
            return
        mode = delivery_mode(icr)
        if mode == DM_FIXED:
            self.accept(icr & VECTOR_MASK)
        elif mode == DM_NMI:
            self.nmi()

    def read(self, offset: int, size: int) -> int:
        """MMIO read at ``offset`` in the APIC page (aligned 32-bit access, narrower ones too)."""
        value = self.register(offset & 0xFF0)
        return (value >> (8 * (offset & 3))) & ((1 << (8 * size)) - 1)

    def write(self, offset: int, size: int, value: int) -> None:
        """MMIO write at ``offset`` (SDM: aligned 32-bit stores; a narrower one counts whole)."""
        self.set_register(offset & 0xFF0, value)


class IoApic:
    """The 82093AA: IOREGSEL/IOWIN, 24 redirection entries, delivery to one local APIC."""

    ENTRIES = 24
    VERSION = 0x11
    ISA_OVERRIDES = {0: 2}
    """ISA IRQ → pin where they differ: the PIT's IRQ 0 is wired to pin 2."""
    PIC_PIN = 0
    """The pin the 8259's INTR drives (an ExtINT entry here is virtual wire mode)."""

    def __init__(self, apic_id: int = 0, lapic: LocalApic | None = None) -> None:
        self.apic_id = apic_id
        self.lapic = lapic
        if lapic is not None:
            lapic.on_eoi.append(self.eoi)
        self.reset()

    def reset(self) -> None:
        """Reset: every entry masked, edge, fixed, vector 0, no pin asserted."""
        # State fields: id, select, redirection, pins.
        self.select = 0
        self.id = self.apic_id << 24
        self.redirection = [LVT_MASKED if i % 2 == 0 else 0 for i in range(2 * self.ENTRIES)]
        """The table as 32-bit halves: [2n] low, [2n+1] high (destination in bits 31-24)."""
        self.pins = 0
        """Asserted input pins, one bit each."""

    STATE_FIELDS = ("select", "id", "redirection", "pins")

    def state(self) -> dict[str, object]:
        """The saved state: :attr:`STATE_FIELDS` as plain data (devices/state.py)."""
        return capture(self, self.STATE_FIELDS)

    def load_state(self, state: dict[str, object]) -> None:
        apply(self, state, self.STATE_FIELDS)

    # -- inputs --------------------------------------------------------------------------------
    def connect(self, lines: Iterable[IrqLine],
                overrides: dict[int, int] | None = None) -> None:
        """Listen to ISA IRQ lines: line n drives pin n, or the pin ``overrides`` names."""
        table = self.ISA_OVERRIDES if overrides is None else overrides
        for line in lines:
            if line.number not in table and line.number in table.values():
                continue  # ISA IRQ 2 is the 8259 cascade, not a line; its pin serves IRQ 0
            pin = table.get(line.number, line.number)
            line.listeners.append(lambda _n, level, pin=pin: self.set_pin(pin, level))

    def entry(self, pin: int) -> int:
        """The 64-bit redirection entry of ``pin``."""
        return self.redirection[2 * pin] | (self.redirection[2 * pin + 1] << 32)

    def set_pin(self, pin: int, level: bool) -> None:
        """Drive input ``pin`` (asserted = True)."""
        if not 0 <= pin < self.ENTRIES:
            return
        bit = 1 << pin
        rising = level and not self.pins & bit
        self.pins = (self.pins | bit) if level else (self.pins & ~bit)
        low = self.redirection[2 * pin]
        if low & TRIGGER_LEVEL:
            if level:
                self._deliver(pin)
        elif rising:
            self._deliver(pin)

    def _deliver(self, pin: int) -> None:
        low = self.redirection[2 * pin]
        if low & LVT_MASKED or self.lapic is None:
            return
        level = bool(low & TRIGGER_LEVEL)
        if level and low & REMOTE_IRR:
            return  # waits for the EOI
        mode = delivery_mode(low)
        if mode == DM_EXTINT:
            return  # the 8259's path: the interrupt controller reads it from the 8259
        destination = self.redirection[2 * pin + 1] >> 24
        if not self.lapic.matches(destination, bool(low & DEST_LOGICAL)):
            return  # no processor of that name: the message is lost
        if mode in (DM_FIXED, DM_LOWEST):
            if self.lapic.accept(low & VECTOR_MASK, level) and level:
                self.redirection[2 * pin] |= REMOTE_IRR
        elif mode == DM_NMI:
            self.lapic.nmi()

    def eoi(self, vector: int) -> None:
        """The local APIC's EOI broadcast for a level-triggered ``vector``."""
        for pin in range(self.ENTRIES):
            low = self.redirection[2 * pin]
            if low & REMOTE_IRR and low & VECTOR_MASK == vector:
                self.redirection[2 * pin] = low & ~REMOTE_IRR
                if self.pins & (1 << pin):
                    self._deliver(pin)  # still asserted: again

    def extint_pin(self) -> bool:
        """Is the 8259's pin an unmasked ExtINT entry (virtual wire through the I/O APIC)?"""
        low = self.redirection[2 * self.PIC_PIN]
        return not low & LVT_MASKED and delivery_mode(low) == DM_EXTINT

    # -- registers -----------------------------------------------------------------------------
    def register(self, index: int) -> int:
        """I/O APIC register ``index``."""
        if index == 0:
            return self.id
        if index == 1:
            return ((self.ENTRIES - 1) << 16) | self.VERSION
        if index == 2:
            return self.id
        if 0x10 <= index < 0x10 + 2 * self.ENTRIES:
            return self.redirection[index - 0x10]
        return 0

    def set_register(self, index: int, value: int) -> None:
        """Write I/O APIC register ``index``; delivery status and remote IRR are read-only."""
        value &= 0xFFFF_FFFF
        if index == 0:
            self.id = value & 0x0F00_0000
        elif 0x10 <= index < 0x10 + 2 * self.ENTRIES:
            slot = index - 0x10
            pin = slot // 2
            if slot % 2:
                self.redirection[slot] = value & 0xFF00_0000
                return
            old = self.redirection[slot]
            keep = old & REMOTE_IRR
            new = (value & ~(DELIVERY_STATUS | REMOTE_IRR)) & 0x1_FFFF
            if not new & TRIGGER_LEVEL:
                keep = 0  # remote IRR is only defined for level-triggered entries
            self.redirection[slot] = new | keep
            if new & TRIGGER_LEVEL and not new & LVT_MASKED and self.pins & (1 << pin):
                self._deliver(pin)  # unmasking an asserted level input delivers it

    def read(self, offset: int, size: int) -> int:
        """MMIO read: IOREGSEL at 00h, IOWIN at 10h."""
        if offset < 0x10:
            value = self.select
        elif offset < 0x20:
            value = self.register(self.select)
        else:
            value = 0
        return (value >> (8 * (offset & 3))) & ((1 << (8 * size)) - 1)

    def write(self, offset: int, size: int, value: int) -> None:
        """MMIO write: IOREGSEL at 00h, IOWIN at 10h."""
        if offset < 0x10:
            self.select = value & 0xFF
        elif offset < 0x20:
            self.set_register(self.select, value)
