"""One boot of the PC from its DVD drive: the board, a firmware plugged in, one session.

:func:`run_boot` is the one place that puts the pieces together: a
:class:`~emu.pc.session.Session` (the board :class:`~emu.pc.board.PcBoard`, its drives
and the stop rules) with the firmware named in the options (:data:`emu.firmware.FIRMWARES`).
The names a boot's caller needs are re-exported here.
"""

from __future__ import annotations

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

__all__ = ["DEFAULT_TIMEOUT", "SAMPLE_ISO", "BootOptions", "BootResult", "DriveSpec",
           "ExitStatus", "Session", "boot_session", "run_boot"]


def boot_session(options: BootOptions) -> Session:
    """A session for ``options`` with its firmware plugged in (not yet powered on)."""
    return Session(options, firmware_named(options.firmware))


def run_boot(options: BootOptions) -> BootResult:
    """Boot ``options.iso`` (the built-in sample by default) and report how it went."""
    return boot_session(options).run()
