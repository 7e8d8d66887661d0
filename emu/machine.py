"""Re-export of the board for the public import ``from emu.machine import Machine``.

The board lives in :mod:`emu.pc.machine`; this module keeps the README's import working.
"""

from emu.pc.machine import IDE_IRQS, Machine

__all__ = ["IDE_IRQS", "Machine"]
