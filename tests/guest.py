"""A thin register-level host for tests: drives the IDE ports as a guest would.

It only wraps port accesses (no protocol smarts beyond what each helper's
name says), so tests can assert the exact register state at every step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emu.pc.machine import Machine

BASES = {0: (0x1F0, 0x3F6, 14), 1: (0x170, 0x376, 15)}
STATUS_BSY, STATUS_DRDY, STATUS_DSC, STATUS_DRQ, STATUS_ERR = 0x80, 0x40, 0x10, 0x08, 0x01


@dataclass
class Regs:
    status: int
    error: int
    reason: int
    lba_low: int
    byte_count: int
    device: int


class Guest:
    """Register-level access to one IDE channel of ``machine``."""

    def __init__(self, machine: Machine, bus: int = 0) -> None:
        self.m = machine
        self.base, self.ctrl, self.irq = BASES[bus]

    # registers
    def status(self) -> int:
        return self.m.inb(self.base + 7)

    def alt_status(self) -> int:
        return self.m.inb(self.ctrl)

    def error(self) -> int:
        return self.m.inb(self.base + 1)

    def reason(self) -> int:
        return self.m.inb(self.base + 2)

    def byte_count(self) -> int:
        return self.m.inb(self.base + 4) | (self.m.inb(self.base + 5) << 8)

    def irq_level(self) -> bool:
        return self.m.irq_level(self.irq)

    def regs(self) -> Regs:
        """All readable registers, Alternate Status first (does not touch INTRQ)."""
        st = self.alt_status()
        return Regs(st, self.error(), self.reason(), self.m.inb(self.base + 3),
                    self.byte_count(), self.m.inb(self.base + 6))

    def select(self, device: int) -> None:
        self.m.outb(self.base + 6, 0xA0 | (device << 4))

    def control(self, value: int) -> None:
        self.m.outb(self.ctrl, value)

    def command(self, code: int) -> None:
        self.m.outb(self.base + 7, code)

    # packet helpers
    def packet(self, cdb: bytes | list[int], bcl: int, dma: bool = False) -> None:
        """Write byte-count limit, features and PACKET, then the 12 CDB bytes."""
        self.m.outb(self.base + 1, 1 if dma else 0)
        self.m.outb(self.base + 4, bcl & 0xFF)
        self.m.outb(self.base + 5, (bcl >> 8) & 0xFF)
        self.command(0xA0)
        self.send_cdb(cdb)

    def send_cdb(self, cdb: bytes | list[int]) -> None:
        self.m.ports.outsw(self.base, bytes(cdb).ljust(12, b"\0"))

    def read_words(self, count: int) -> bytes:
        return self.m.ports.insw(self.base, count).tobytes()

    def read_reply(self) -> bytes:
        """Read every DRQ block (sized by the byte-count registers) until DRQ clears."""
        out = bytearray()
        while self.alt_status() & STATUS_DRQ:
            n = self.byte_count()
            out += self.read_words((n + 1) // 2)[:n]
        return bytes(out)

    def command_reply(self, cdb: bytes | list[int], bcl: int = 0xFFFE) -> tuple[bytes, int]:
        """Send a packet, read its reply, return (data, final status)."""
        self.packet(cdb, bcl)
        data = self.read_reply()
        return data, self.status()

    def sense(self) -> tuple[int, int, int]:
        data, _ = self.command_reply([0x03, 0, 0, 0, 18], 18)
        return data[2] & 0x0F, data[12], data[13]

    def clear_power_on_ua(self) -> None:
        """Consume the power-on UNIT ATTENTION (a TUR that reports it)."""
        self.packet([0x00], 0)
        self.status()

    def insw_array(self, count: int) -> np.ndarray:
        return self.m.ports.insw(self.base, count)
