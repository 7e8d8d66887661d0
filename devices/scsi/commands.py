"""The packet command table: ``opcode -> Command(handler, flags, name)``.

One table, filled by the :func:`CommandTable.command` decorator beside each
handler (``spc.py``, ``mmc.py``).  The flags say which generic checks the one
dispatcher (``target.py``) applies before a handler runs; handlers never
repeat them.  A drive variant copies the base table and overrides entries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import IntFlag
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devices.scsi.target import MmcTarget


class Flag(IntFlag):
    """Per-command dispatch rules."""

    NONE = 0
    ALLOW_UA = 1
    """Runs while a UNIT ATTENTION is pending and does not consume it (SPC-3 §5.9.7:
    INQUIRY and REQUEST SENSE; MMC-5 §4.1.6.1 adds GET CONFIGURATION and GET EVENT
    STATUS NOTIFICATION so hosts can poll an empty or changed drive; SPC-3 adds REPORT
    LUNS).  REQUEST SENSE is one of them: it never consumes a UA (option a of SPC-3
    §5.9.7, ``spc.cmd_request_sense``)."""
    CHECK_READY = 2
    """Needs a medium with the tray closed, else NOT READY 3A/xx (MMC-5 §4.1.6.2)."""
    NONDATA = 4
    """Never moves data: a byte-count limit of 0 is fine (ATA/ATAPI-7 vol 2 §11.8.3
    asks for a non-zero limit only when data is transferred)."""
    CONDDATA = 8
    """Moves data only for some CDBs (READ(10) with 0 blocks moves none): the
    byte-count limit is checked after the handler, only if a reply exists."""


@dataclass(frozen=True, slots=True)
class AllocationLength:
    """Where a CDB carries its allocation length (big-endian, ``size`` bytes at ``offset``)."""

    offset: int
    size: int

    def of(self, cdb: bytes) -> int:
        return int.from_bytes(cdb[self.offset : self.offset + self.size], "big")


Handler = Callable[["MmcTarget", bytes], Any]


@dataclass(frozen=True, slots=True)
class Command:
    """One table row: what runs for an opcode and under which rules."""

    opcode: int
    name: str
    handler: Handler
    flags: Flag = Flag.NONE
    alloc: AllocationLength | None = None
    """Allocation-length field: every reply is truncated to it (SPC-3 §4.3.4.6)."""
    mask: int = field(default=0, init=False, repr=False, compare=False)
    """``flags`` as a plain int, for the dispatcher's hot path."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "mask", int(self.flags))


class CommandTable:
    """Opcode → :class:`Command`.  ``copy()`` it to make a variant; never edit a base."""

    def __init__(self, rows: dict[int, Command] | None = None) -> None:
        self._rows: dict[int, Command] = dict(rows or {})

    def command(
        self,
        opcode: int,
        name: str,
        flags: Flag = Flag.NONE,
        alloc: tuple[int, int] | None = None,
    ) -> Callable[[Handler], Handler]:
        """Decorator registering a handler ``cmd_<name>(unit, cdb)`` for ``opcode``."""

        def register(handler: Handler) -> Handler:
            if opcode in self._rows:
                raise ValueError(f"opcode {opcode:#04x} registered twice")
            where = AllocationLength(*alloc) if alloc else None
            self._rows[opcode] = Command(opcode, name, handler, Flag(flags), where)
            return handler

        return register

    def get(self, opcode: int) -> Command | None:
        return self._rows.get(opcode)

    def copy(self) -> CommandTable:
        return CommandTable(self._rows)

    def override(self, row: Command) -> None:
        """Replace one row (for a variant made with :meth:`copy`)."""
        self._rows[row.opcode] = row

    def __contains__(self, opcode: int) -> bool:
        return opcode in self._rows

    def __iter__(self) -> Iterator[Command]:
        return iter(sorted(self._rows.values(), key=lambda c: c.opcode))

    def __len__(self) -> int:
        return len(self._rows)


MMC_COMMANDS = CommandTable()
"""The base MMC drive's table; ``spc.py`` and ``mmc.py`` fill it when imported."""


def command_name(opcode: int) -> str:
    """The name of ``opcode`` in the base table (for traces), or its hex value."""
    row = MMC_COMMANDS.get(opcode)
    return row.name if row else f"opcode {opcode:#04x}"
