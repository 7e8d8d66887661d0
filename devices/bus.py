"""The small interfaces a device is handed: port ranges and interrupt lines.

A device never reaches into the machine.  It declares the I/O ports it
decodes as :class:`PortRange` objects (read/write callables taking the port
and the access width in bytes) and signals interrupts through an
:class:`IrqLine` whose level anyone can read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

PortRead = Callable[[int, int], int]
"""``read(port, width) -> value``; width is 1, 2 or 4 bytes."""
PortWrite = Callable[[int, int, int], None]
"""``write(port, width, value)``."""
StringRead = Callable[[int, int, np.ndarray], None]
"""``read_string(port, width, out)``: fill ``out`` (uint16 or uint32 array) as ``rep ins`` would."""
StringWrite = Callable[[int, int, np.ndarray], None]
"""``write_string(port, width, data)``: consume ``data`` as ``rep outs`` would."""


@dataclass(frozen=True)
class PortRange:
    """A block of I/O ports decoded by one device (ISA-style positive decode).

    ``string_read``/``string_write`` are optional fast paths for ports that
    move bulk data (the IDE data port): the bus hands a whole ``rep insw``
    to the device in one call instead of one call per word.
    """

    base: int
    length: int
    read: PortRead
    write: PortWrite
    name: str = ""
    string_read: StringRead | None = None
    string_write: StringWrite | None = None

    def __post_init__(self) -> None:
        if not (0 <= self.base and self.length > 0 and self.base + self.length <= 0x10000):
            raise ValueError(
                f"port range {self.base:#x}+{self.length} outside the 64 KiB I/O space"
            )


@dataclass(eq=False)
class IrqLine:
    """One interrupt request line (level-triggered from the device's side).

    The level is readable (``line.level``) so tests can assert it; listeners
    (an interrupt controller, a CPU) are called with the new level on every
    change.
    """

    number: int
    level: bool = False
    listeners: list[Callable[[int, bool], None]] = field(default_factory=list)

    def set_level(self, level: bool) -> None:
        """Drive the line; listeners hear only real changes."""
        if level != self.level:
            self.level = level
            for listener in self.listeners:
                listener(self.number, level)

    def raise_(self) -> None:
        self.set_level(True)

    def lower(self) -> None:
        self.set_level(False)


class Clock(Protocol):
    """The board's virtual clock as a device sees it (``emu.pc.clock.VirtualClock``): guest
    time in instructions at ``ips`` a second, timers (objects with a ``deadline`` and
    ``fire()``), and the moves a polled device may make (``nudge``, ``advance_to``)."""

    instructions: int
    ips: int

    def ns(self) -> int: ...

    def nudge(self, instructions: int) -> None: ...

    def advance_to(self, instructions: int) -> None: ...

    def next_deadline(self) -> int | None: ...

    def add_timer(self, timer: object) -> None: ...
