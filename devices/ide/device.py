"""What an IDE channel needs from a unit on its cable, and the empty slot.

Each unit keeps its own copy of the command-block registers: the host's
taskfile writes reach *both* units on a channel (ATA/ATAPI-7 vol 1 §7.1),
and only the selected unit answers reads and executes commands.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from devices.ide.registers import DIAG_PASSED, SIGNATURE_PACKET, WriteReg
from devices.state import apply, capture
from devices.trace import Tracer

TASKFILE_ATTRS: dict[int, str] = {
    int(WriteReg.FEATURES): "features",
    int(WriteReg.SECTOR_COUNT): "sector_count",
    int(WriteReg.LBA_LOW): "lba_low",
    int(WriteReg.LBA_MID): "lba_mid",
    int(WriteReg.LBA_HIGH): "lba_high",
    int(WriteReg.DEVICE): "device",
}
"""Taskfile register offset → the unit attribute holding it (reads use ERROR in
place of FEATURES)."""


class IdeDevice:
    """Base of a unit on an IDE cable: the taskfile and the hooks the channel calls.

    State fields: ``features``, ``error``, ``sector_count``, ``lba_low``,
    ``lba_mid``, ``lba_high``, ``device``, ``status``, ``intrq``.
    """

    present = True
    kind = "device"

    def __init__(self) -> None:
        self.features = 0
        self.error = 0
        self.sector_count = 0
        self.lba_low = 0
        self.lba_mid = 0
        self.lba_high = 0
        self.device = 0
        self.status = 0
        self.intrq = False
        """This unit's pending interrupt; the channel drives the line from it."""
        self.notify: Callable[[], None] = _nothing
        """Set by the channel: call after ``intrq`` changes."""
        self.dma_request: Callable[[], None] = _nothing
        """Set by the channel: call when data starts waiting for the bus-master engine."""
        self.dma_capable = False
        """Set by the channel: True when it has a bus-master engine (SFF-8038i)."""
        self.trace: Tracer | None = None
        self.name = "unit"

    STATE_FIELDS: tuple[str, ...] = ("features", "error", "sector_count", "lba_low",
                                     "lba_mid", "lba_high", "device", "status", "intrq")
    """The taskfile: a unit's saved state (an empty slot's shadow registers too)."""

    def state(self) -> dict[str, object]:
        """The saved state: :attr:`STATE_FIELDS` as plain data (devices/state.py)."""
        return capture(self, self.STATE_FIELDS)

    def load_state(self, state: dict[str, object]) -> None:
        apply(self, state, self.STATE_FIELDS)

    # -- taskfile -------------------------------------------------------------------
    def set_signature(self) -> None:
        """Load the reset signature (ATA/ATAPI-7 vol 1 §9.12); base units have none."""

    def set_irq(self) -> None:
        """Assert this unit's interrupt (the channel gates it with nIEN and selection)."""
        self.intrq = True
        self.notify()

    # -- hooks the channel calls ----------------------------------------------------
    def command(self, code: int) -> None:
        """Execute an ATA command written to the Command register."""

    def soft_reset(self, asserted: bool) -> None:
        """SRST set (``asserted``) or released (ATA/ATAPI-7 vol 2 §9.2)."""

    def execute_diagnostic(self) -> None:
        """EXECUTE DEVICE DIAGNOSTIC, which both units run whatever DEV says."""

    def data_read(self, width: int) -> int:
        return 0

    def data_write(self, width: int, value: int) -> None:
        pass

    def data_read_string(self, width: int, out: np.ndarray) -> None:
        out[...] = 0

    def data_write_string(self, width: int, data: np.ndarray) -> None:
        pass

    def power_on(self) -> None:
        """Power-on or hardware reset."""

    # -- bus-master DMA (SFF-8038i; see devices.ide.bmdma) ---------------------------
    def dma_source(self) -> np.ndarray:
        """The bytes waiting for the bus-master engine (empty: none)."""
        return _NO_DATA

    def dma_sink(self) -> np.ndarray:
        """The writable bytes waiting to be filled from memory by the engine (empty: none)."""
        return _NO_DATA

    def dma_advance(self, nbytes: int) -> None:
        """The engine moved ``nbytes`` of :meth:`dma_source` into memory (or of memory
        into :meth:`dma_sink`)."""

    def dma_fault(self) -> None:
        """The engine could not move the data (memory fault): end the command in error."""


def _nothing() -> None:
    pass


_NO_DATA = np.zeros(0, dtype=np.uint8)


class EmptySlot(IdeDevice):
    """No unit at this position on the cable (the null object, never ``None``).

    It takes no part in the protocol: when it is selected, the other unit (if
    any) answers for it with Status 00h (ATA/ATAPI-7 vol 1 §9.16.1), and a
    channel with two empty slots floats (reads all ones).
    """

    present = False
    kind = "empty"

    def __init__(self) -> None:
        super().__init__()
        self.set_signature()

    def set_signature(self) -> None:
        """The values the shadow registers hold before the host writes any: Sector Count
        and LBA Low 01h, LBA Mid/High FFh (no device answers the signature query).
        The standards leave them open; these are QEMU's."""
        self.sector_count, self.lba_low, self.lba_mid, self.lba_high = 0x01, 0x01, 0xFF, 0xFF

    def power_on(self) -> None:
        self.set_signature()
        self.device = 0

    def soft_reset(self, asserted: bool) -> None:
        """SRST resets the shadow copy too (the present unit reloads its own)."""
        if not asserted:
            self.set_signature()
            self.device &= 0xE0

    def data_read(self, width: int) -> int:
        """Nobody drives the data lines for an absent unit: they float high."""
        return (1 << (8 * width)) - 1

    def data_read_string(self, width: int, out: np.ndarray) -> None:
        out[...] = (1 << (8 * width)) - 1


# Re-exported for units that answer with the packet signature.
__all__ = ["IdeDevice", "EmptySlot", "SIGNATURE_PACKET", "DIAG_PASSED"]
