"""Firmware: guest-side software that plugs into the PC board (:mod:`emu.pc`).

Each firmware is a plug with ``install(session)`` (see :class:`emu.pc.session.Firmware`):
it is given the board and puts itself there, reaching devices only through the ports and
guest memory.  :data:`FIRMWARES` names them for the tools; a new firmware is one entry.

* ``builtin`` — :class:`~emu.firmware.builtin.BuiltinFirmware`: a BIOS written in Python
  (ATA/ATAPI driver, El Torito loader, BIOS services): fast, deterministic, readable.
* ``seabios`` — :class:`~emu.firmware.seabios.SeaBios`: Debian's unmodified SeaBIOS.

Nothing here imports the tools, the media or the IDE internals.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emu.pc.session import Firmware


def _builtin() -> Firmware:
    from emu.firmware.builtin import BuiltinFirmware

    return BuiltinFirmware()


def _seabios() -> Firmware:
    from emu.firmware.seabios import SeaBios

    return SeaBios()


FIRMWARES: dict[str, Callable[[], Firmware]] = {"builtin": _builtin, "seabios": _seabios}
"""Firmware name → a factory for a fresh plug."""


def firmware_named(name: str) -> Firmware:
    """A fresh plug for ``name`` (a ``ValueError`` naming the choices if unknown)."""
    try:
        factory = FIRMWARES[name]
    except KeyError:
        raise ValueError(f"unknown firmware {name!r}: choose from "
                         f"{', '.join(sorted(FIRMWARES))}") from None
    return factory()
