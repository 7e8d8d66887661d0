"""The CPU's one interrupt source on a PC with an APIC: local APIC + I/O APIC + 8259 pair.

MP specification 1.4 §3.6.2 describes the three ways the 8259 pair and the APICs share
the processor's interrupt input; the ones a uniprocessor PC uses are:

* **PIC mode / APIC off**: IA32_APIC_BASE bit 11 clear (SDM vol. 3A §10.4.3): the local
  APIC is out of the way and the 8259's INTR is the processor's INTR.
* **Virtual wire through the local APIC** (§3.6.2.2, the reset state firmware leaves):
  LINT0 is programmed ExtINT and unmasked; the 8259's INTR enters there and the
  processor runs the 8259's INTA cycle for the vector.  ExtINT bypasses the APIC's IRR,
  ISR and priority (SDM §10.8.1).
* **Virtual wire through the I/O APIC**: the 8259's INTR drives I/O APIC pin 0, whose
  redirection entry is ExtINT and unmasked; the effect on the processor is the same.
* **Symmetric I/O mode**: the OS masks LINT0 and pin 0 and routes the ISA lines through
  the I/O APIC's redirection table to the local APIC (fixed delivery).

The local APIC's own deliverable interrupt (timer, I/O APIC message, self IPI) goes
first; when it has none and the 8259 is wired through, the 8259 answers.  The shape is
the CPU's ``InterruptSource`` protocol (``pending``/``acknowledge``), plus the NMI that
LINT1, an IPI or an I/O APIC entry raises, which the CPU takes with :meth:`take_nmi`.
"""

from __future__ import annotations

from devices.platform.apic import IoApic, LocalApic
from devices.platform.pic import Pic8259Pair
from devices.state import apply, capture


class InterruptController:
    """The INTR/INTA and NMI view of the interrupt hardware, for the CPU glue."""

    def __init__(self, pic: Pic8259Pair, lapic: LocalApic, ioapic: IoApic | None = None) -> None:
        self.pic = pic
        self.lapic = lapic
        self.ioapic = ioapic
        self.nmi_pending = False
        lapic.on_nmi.append(self._nmi)

    STATE_FIELDS = ("nmi_pending",)
    """The router's own state (the PIC and APICs save theirs)."""

    def state(self) -> dict[str, object]:
        """The saved state: :attr:`STATE_FIELDS` as plain data (devices/state.py)."""
        return capture(self, self.STATE_FIELDS)

    def load_state(self, state: dict[str, object]) -> None:
        apply(self, state, self.STATE_FIELDS)

    def _nmi(self) -> None:
        self.nmi_pending = True

    def take_nmi(self) -> bool:
        """Does an NMI wait?  Taking it clears it (NMI is an edge)."""
        pending, self.nmi_pending = self.nmi_pending, False
        return pending

    def pic_routed(self) -> bool:
        """Does the 8259's INTR reach the processor (APIC off, or either virtual wire)?"""
        lapic = self.lapic
        if not lapic.hardware_enabled or lapic.lint0_extint():
            return True
        return self.ioapic is not None and self.ioapic.extint_pin()

    def pending(self) -> bool:
        """The processor's interrupt request: the APIC's deliverable vector or the 8259's INTR."""
        if self.lapic.deliverable() is not None:
            return True
        return self.pic_routed() and self.pic.pending()

    def acknowledge(self) -> int:
        """The INTA: the APIC's highest deliverable vector, else the 8259's vector.

        Asked with nothing pending (the request went away between the check and the
        cycle) it answers a spurious vector as the hardware would: the APIC's SVR vector
        when the APIC is on and the 8259 is not wired through, else the 8259's IR7.
        """
        lapic = self.lapic
        if lapic.deliverable() is not None:
            return lapic.acknowledge()
        if self.pic_routed():
            return self.pic.acknowledge()
        return lapic.acknowledge()  # nothing deliverable: the spurious vector
