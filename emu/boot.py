"""One boot of the PC from its DVD drive: the board, a firmware plugged in, one session.

:func:`run_boot` is the one place that puts the pieces together: a
:class:`~emu.pc.session.Session` (the board :class:`~emu.pc.board.PcBoard`, its drives
and the stop rules) with the firmware named in the options (:data:`emu.firmware.FIRMWARES`).
The names a boot's caller needs are re-exported here.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from emu.firmware import firmware_named
from emu.pc.session import (
    DEFAULT_TIMEOUT,
    BootOptions,
    BootResult,
    DriveSpec,
    ExitStatus,
    Session,
)
from images import SAMPLE_ISO

if TYPE_CHECKING:
    from emu.pc.state import StateFileError

__all__ = ["DEFAULT_TIMEOUT", "SAMPLE_ISO", "BootOptions", "BootResult", "DriveSpec",
           "ExitStatus", "Session", "StateFileError", "boot_session", "restore_session",
           "run_boot"]


def boot_session(options: BootOptions) -> Session:
    """A session for ``options`` with its firmware plugged in (not yet powered on)."""
    return Session(options, firmware_named(options.firmware))


def run_boot(options: BootOptions) -> BootResult:
    """Boot ``options.iso`` (the built-in sample by default) and report how it went."""
    return boot_session(options).run()


def restore_session(path: str | os.PathLike[str], force: bool = False,
                    media: dict[tuple[int, int], str] | None = None,
                    options: BootOptions | None = None) -> Session:
    """A session that goes on where the one saved in ``path`` stopped (docs/state.md).

    The file is read and checked whole, then a new board is built like the saved one
    (RAM, drives with their images, the firmware plugged in without power-on) and set
    from the state.  ``media`` names where an image is now by (bus, device); a different
    image is refused unless ``force``.  ``options`` (its limits, callbacks, trace) are
    used for the runs; its board-shaping fields are taken from the file.  Raises
    :class:`StateFileError` (one line) and leaves nothing open on failure.
    """
    from devices.media.base import MediumError
    from emu.pc import state
    from emu.pc.state import StateFileError

    snap = state.load(path)
    built = state.options_for(snap, media)
    if options is not None:
        for name in ("drives", "memory_size", "firmware", "transfer"):
            setattr(options, name, getattr(built, name))
        built = options
    try:
        session = boot_session(built)
    except MediumError as exc:
        raise StateFileError(f"{path}: the saved medium cannot be opened ({exc})") from None
    except ValueError as exc:
        raise StateFileError(f"{path}: {exc}") from None
    try:
        session.restore(snap, force=force)
    except StateFileError:
        session.close()
        raise
    except Exception as exc:  # a firmware that cannot attach (missing ROM...)
        session.close()
        raise StateFileError(f"{path}: cannot restore ({exc})") from None
    return session


def __getattr__(name: str) -> object:
    """``StateFileError`` is re-exported lazily: the saved-state module (and hashlib) load
    only when a state is saved or restored, not for every boot."""
    if name == "StateFileError":
        from emu.pc.state import StateFileError

        return StateFileError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
