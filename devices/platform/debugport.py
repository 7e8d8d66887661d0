"""Port 80h (the POST code latch) and port E9h (the Bochs/QEMU debug console: bytes written
there are captured text)."""

from __future__ import annotations

from collections.abc import Callable

from devices.bus import PortRange
from devices.state import apply, capture


class DebugPorts:
    """Port 80h (POST code latch) and port E9h (debug console)."""

    def __init__(self, on_output: Callable[[bytes], None] | None = None) -> None:
        self.post_codes: list[int] = []
        self.output = bytearray()
        self.on_output = on_output

    STATE_FIELDS = ("post_codes", "output")

    def state(self) -> dict[str, object]:
        """The saved state: :attr:`STATE_FIELDS` as plain data (devices/state.py)."""
        return capture(self, self.STATE_FIELDS)

    def load_state(self, state: dict[str, object]) -> None:
        apply(self, state, self.STATE_FIELDS)

    def read(self, port: int, width: int) -> int:
        if port == 0xE9:
            return 0xE9  # the "is the debug port there" probe answer
        return self.post_codes[-1] if self.post_codes else 0

    def write(self, port: int, width: int, value: int) -> None:
        if port == 0xE9:
            self.output.append(value & 0xFF)
            if self.on_output is not None:
                self.on_output(bytes([value & 0xFF]))
        else:
            self.post_codes.append(value & 0xFF)

    def port_ranges(self) -> list[PortRange]:
        return [PortRange(0x80, 1, self.read, self.write, name="post"),
                PortRange(0xE9, 1, self.read, self.write, name="debugcon")]
