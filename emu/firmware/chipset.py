"""The legacy PC chipset pieces a BIOS and boot loaders touch, kept minimal.

The interrupt controllers, the timer and the RTC are device models shared
with the SeaBIOS platform and live in ``devices/`` (one place each; they are
re-exported here for the built-in BIOS):

* :class:`~devices.pic.Pic8259Pair` — master/slave 8259A;
* :class:`~devices.pit.Pit8254` — channels 0 and 2 on the virtual clock;
* :class:`~devices.cmos.Cmos` — the MC146818 RTC/NVRAM at 70h/71h.

The rest is specific to the built-in BIOS:

* :class:`Uart16550` — COM1 at 3F8h: transmitted bytes are captured.
* :class:`DebugPorts` — port 80h (POST codes) and port E9h (the Bochs/QEMU
  debug console: bytes written there are captured text).
* :class:`SystemPorts` — port 92h (fast A20; this PC has no A20 mask: memory
  never wraps).  The 8042 at 60h/64h is :class:`devices.i8042.I8042`, shared
  with the SeaBIOS board (the built-in BIOS serves keys through INT 16h, so
  its 8042 has no key source).

None of these reach into the CPU: the PIC answers ``pending``/``acknowledge``
and the PIT raises its IRQ line.
"""

from __future__ import annotations

from collections.abc import Callable

from devices.bus import PortRange
from devices.cmos import RTC_EPOCH, Cmos
from devices.pic import Pic8259Pair
from devices.pit import PIT_HZ, Pit8254

__all__ = ["PIT_HZ", "RTC_EPOCH", "Cmos", "DebugPorts", "Pic8259Pair", "Pit8254",
           "SystemPorts", "Uart16550"]


class Uart16550:
    """COM1 as far as a polled transmitter goes: THR empty always, bytes captured."""

    def __init__(self, base: int = 0x3F8, on_output: Callable[[bytes], None] | None = None
                 ) -> None:
        self.base = base
        self.regs = bytearray(8)
        self.dlab = False
        self.output = bytearray()
        self.on_output = on_output

    def transmit(self, byte: int) -> None:
        self.output.append(byte)
        if self.on_output is not None:
            self.on_output(bytes([byte]))

    def read(self, port: int, width: int) -> int:
        reg = port - self.base
        if reg == 5:
            return 0x60  # LSR: THR empty, transmitter idle, no data ready
        if reg == 6:
            return 0xB0  # MSR: DCD, DSR, CTS
        if reg == 0 and not self.dlab:
            return 0  # RBR: nothing received
        return self.regs[reg]

    def write(self, port: int, width: int, value: int) -> None:
        reg = port - self.base
        if reg == 0 and not self.dlab:
            self.transmit(value & 0xFF)
            return
        if reg == 3:
            self.dlab = bool(value & 0x80)
        self.regs[reg] = value & 0xFF

    def port_ranges(self) -> list[PortRange]:
        return [PortRange(self.base, 8, self.read, self.write, name="com1")]


class DebugPorts:
    """Port 80h (POST code latch) and port E9h (debug console)."""

    def __init__(self, on_output: Callable[[bytes], None] | None = None) -> None:
        self.post_codes: list[int] = []
        self.output = bytearray()
        self.on_output = on_output

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


class SystemPorts:
    """Port 92h (system control A: bit 1 fast A20, bit 0 fast reset; IBM PS/2 and later).

    This PC never masks A20, so the gate bit is stored and reported only.  The
    8042 at 60h/64h (whose output port also carries an A20 gate) is the shared
    model :class:`devices.i8042.I8042`.
    """

    def __init__(self, on_reset: Callable[[], None] | None = None) -> None:
        self.port92 = 0x02
        self.on_reset = on_reset
        """Called when the guest sets bit 0 (fast CPU reset)."""

    def read(self, port: int, width: int) -> int:
        return self.port92

    def write(self, port: int, width: int, value: int) -> None:
        self.port92 = (value & 0xFE) | 0x02
        if value & 0x01 and self.on_reset is not None:
            self.on_reset()

    def port_ranges(self) -> list[PortRange]:
        return [PortRange(0x92, 1, self.read, self.write, name="port92")]
