"""Port 92h, system control port A (IBM PS/2 and later): bit 1 fast A20, bit 0 fast reset."""

from __future__ import annotations

from collections.abc import Callable

from devices.bus import PortRange
from devices.state import apply, capture


class SystemPorts:
    """Port 92h (system control A: bit 1 fast A20, bit 0 fast reset; IBM PS/2 and later).

    This PC never masks A20, so the gate bit is stored and reported only.  The
    8042 at 60h/64h (whose output port also carries an A20 gate) is the shared
    model :class:`devices.platform.i8042.I8042`.
    """

    def __init__(self, on_reset: Callable[[], None] | None = None) -> None:
        self.port92 = 0x02
        self.on_reset = on_reset

    STATE_FIELDS = ("port92",)

    def state(self) -> dict[str, object]:
        """The saved state: :attr:`STATE_FIELDS` as plain data (devices/state.py)."""
        return capture(self, self.STATE_FIELDS)

    def load_state(self, state: dict[str, object]) -> None:
        apply(self, state, self.STATE_FIELDS)
        """Called when the guest sets bit 0 (fast CPU reset)."""

    def read(self, port: int, width: int) -> int:
        return self.port92

    def write(self, port: int, width: int, value: int) -> None:
        self.port92 = (value & 0xFE) | 0x02
        if value & 0x01 and self.on_reset is not None:
            self.on_reset()

    def port_ranges(self) -> list[PortRange]:
        return [PortRange(0x92, 1, self.read, self.write, name="port92")]
