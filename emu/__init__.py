"""A small PC emulator with a faithful virtual ATAPI DVD drive.

The public names, imported lazily so importing a submodule stays cheap:

* ``VirtualPC``: the management API (:mod:`emu.api.vpc`);
* ``Machine``: the board (:mod:`emu.pc.machine`);
* ``AtapiHost``: the guest's side of a drive, packet commands at the ports
  (:mod:`emu.api.guest`); ``dvd.guest`` gives one for a management-API drive;
* ``SAMPLE_ISO``: the path of the built-in sample disc (:mod:`images`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from emu.api.guest import AtapiHost
    from emu.api.vpc import VirtualPC
    from emu.pc.machine import Machine

    SAMPLE_ISO: Path

__all__ = ["AtapiHost", "Machine", "SAMPLE_ISO", "VirtualPC"]


def __getattr__(name: str) -> Any:
    if name == "AtapiHost":
        from emu.api.guest import AtapiHost

        return AtapiHost
    if name == "SAMPLE_ISO":
        from images import SAMPLE_ISO

        return SAMPLE_ISO
    if name == "VirtualPC":
        from emu.api.vpc import VirtualPC

        return VirtualPC
    if name == "Machine":
        from emu.pc.machine import Machine

        return Machine
    raise AttributeError(f"module 'emu' has no attribute {name!r}")
