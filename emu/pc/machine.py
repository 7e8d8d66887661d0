"""The board: guest memory, the port bus, IRQ lines and the IDE controller.

``Machine`` owns one ``RLock``: every port access holds it (see
:mod:`emu.pc.ports`), and host-side calls (the management API, tests driving
the drive from another thread) take it too, so each is atomic with respect
to the guest's port accesses.
"""

from __future__ import annotations

import threading

from devices.atapi.drive import AtapiDrive
from devices.bus import IrqLine
from devices.ide.bmdma import BM_CHANNEL_STRIDE, PIIX_BM_BASE, BusMasterDma
from devices.ide.controller import IdeController
from devices.media.base import Medium
from devices.personality import DEFAULT_PERSONALITY, Personality
from devices.trace import Tracer
from emu.pc.memory import GuestMemory
from emu.pc.ports import PortBus

IDE_IRQS = (14, 15)


class Machine:
    """A small PC: RAM, I/O ports, 16 ISA IRQ lines and a two-channel IDE controller.

    With ``bus_master`` (the default) each IDE channel gets a PIIX-style
    bus-master DMA engine (SFF-8038i) at ``bm_base`` + 8 × channel, as a
    PIIX's BAR 4 would place it; there is no PCI configuration space, so
    firmware takes the base as a board constant (``PIIX_BM_BASE``).
    """

    def __init__(
        self,
        memory_size: int = 16 << 20,
        bus_master: bool = True,
        bm_base: int = PIIX_BM_BASE,
    ) -> None:
        self.lock = threading.RLock()
        self.memory = GuestMemory(memory_size)
        self.ports = PortBus(self.lock)
        self.irqs = [IrqLine(n) for n in range(16)]
        self.ide = IdeController(self.irqs[IDE_IRQS[0]], self.irqs[IDE_IRQS[1]])
        for rng in self.ide.port_ranges():
            self.ports.register(rng)
        self.bus_masters: list[BusMasterDma] = []
        if bus_master:
            for channel in self.ide.channels:
                base = bm_base + channel.number * BM_CHANNEL_STRIDE
                engine = BusMasterDma(channel, self.memory, base)
                channel.bus_master = engine
                self.ports.register(engine.port_range())
                self.bus_masters.append(engine)
        self.trace: Tracer | None = None

    # -- convenience access for scripts and tests --------------------------------
    def inb(self, port: int) -> int:
        return self.ports.inb(port)

    def inw(self, port: int) -> int:
        return self.ports.inw(port)

    def inl(self, port: int) -> int:
        return self.ports.inl(port)

    def outb(self, port: int, value: int) -> None:
        self.ports.outb(port, value)

    def outw(self, port: int, value: int) -> None:
        self.ports.outw(port, value)

    def outl(self, port: int, value: int) -> None:
        self.ports.outl(port, value)

    def irq_level(self, line: int) -> bool:
        return self.irqs[line].level

    # -- building the board -------------------------------------------------------
    def add_dvd_drive(
        self,
        bus: int = 1,
        device: int = 0,
        medium: Medium | None = None,
        personality: Personality = DEFAULT_PERSONALITY,
    ) -> AtapiDrive:
        """Place a DVD drive at (bus, device), optionally with a medium already in it.

        A medium loaded before power-on is simply there: the guest sees the
        power-on UNIT ATTENTION, not a media change.
        """
        with self.lock:
            drive = AtapiDrive(personality)
            if medium is not None:
                drive.target.medium = medium
            self.ide.attach(bus, device, drive)
            return drive

    def remove_drive(self, bus: int, device: int) -> None:
        with self.lock:
            self.ide.detach(bus, device)

    def set_trace(self, trace: Tracer | None) -> None:
        """Turn tracing on (a :class:`Tracer`) or off (None) for every device."""
        with self.lock:
            self.trace = trace
            self.ide.set_trace(trace)
