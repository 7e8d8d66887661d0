"""A small PC emulator with a faithful virtual ATAPI DVD drive.

``VirtualPC`` (the management API, :mod:`emu.api.vpc`) and ``Machine`` (the board,
:mod:`emu.pc.machine`) are imported lazily, so importing a submodule stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emu.api.vpc import VirtualPC
    from emu.pc.machine import Machine

__all__ = ["Machine", "VirtualPC"]


def __getattr__(name: str) -> Any:
    if name == "VirtualPC":
        from emu.api.vpc import VirtualPC

        return VirtualPC
    if name == "Machine":
        from emu.pc.machine import Machine

        return Machine
    raise AttributeError(f"module 'emu' has no attribute {name!r}")
