"""A small PC emulator with a faithful virtual ATAPI DVD drive.

``VirtualPC`` (the management API, :mod:`emu.vpc`) and ``Machine`` (the board,
:mod:`emu.machine`) are imported lazily, so importing a submodule stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emu.machine import Machine
    from emu.vpc import VirtualPC

__all__ = ["Machine", "VirtualPC"]


def __getattr__(name: str) -> Any:
    if name == "VirtualPC":
        from emu.vpc import VirtualPC

        return VirtualPC
    if name == "Machine":
        from emu.machine import Machine

        return Machine
    raise AttributeError(f"module 'emu' has no attribute {name!r}")
