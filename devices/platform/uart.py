"""COM1: a 16550 UART at 3F8h, as far as a polled transmitter goes (transmitted bytes are
captured).  A full 16550A (FIFO, interrupts, loopback) is the next step for an OS guest."""

from __future__ import annotations

from collections.abc import Callable

from devices.bus import PortRange


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
