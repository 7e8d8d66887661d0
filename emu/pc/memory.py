"""Guest physical memory: one ``numpy.uint8`` array.

Devices that do DMA get bounds-checked views through :meth:`GuestMemory.view`;
a range outside memory is a :class:`MemoryFault` (a bus-master engine turns it
into its ERROR bit), never an out-of-bounds write.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


class MemoryFault(Exception):
    """An access to guest physical memory outside the installed RAM."""

    def __init__(self, address: int, length: int, size: int) -> None:
        super().__init__(
            f"guest memory access {address:#x}+{length:#x} outside RAM of {size:#x} bytes"
        )
        self.address = address
        self.length = length


class GuestMemory:
    """Guest RAM as a flat byte array starting at physical address 0.

    ``write_listeners`` are told ``(start, end)`` after a device or the BIOS
    writes memory from the host side, so a CPU can drop translated code for
    that range (see booting-on-unicorn.md, pitfall 4).
    """

    def __init__(self, size: int = 16 << 20) -> None:
        if size <= 0 or size % 4096:
            raise ValueError("guest memory size must be a positive multiple of 4 KiB")
        self.data = np.zeros(size, dtype=np.uint8)
        self.size = size
        self.phys_limit = size
        """End of the RAM that devices can address from physical 0 (a board with RAM above
        the PCI hole lowers it: DMA below 4 GiB never reaches the high part)."""
        self.write_listeners: list[Callable[[int, int], None]] = []

    def check(self, address: int, length: int) -> None:
        """Raise :class:`MemoryFault` unless ``[address, address+length)`` is RAM."""
        if address < 0 or length < 0 or address + length > self.phys_limit:
            raise MemoryFault(address, length, self.phys_limit)

    def view(self, address: int, length: int) -> np.ndarray:
        """A writable view of ``length`` bytes at ``address`` (bounds-checked)."""
        self.check(address, length)
        return self.data[address : address + length]

    def notify_written(self, address: int, length: int) -> None:
        """Tell listeners that the host side wrote ``[address, address+length)``."""
        if length > 0:
            for listener in self.write_listeners:
                listener(address, address + length)

    def write(self, address: int, data: bytes | bytearray | memoryview | np.ndarray) -> None:
        """Copy ``data`` into RAM at ``address`` (host-side write, listeners notified)."""
        src = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data
        src = src.reshape(-1).view(np.uint8)
        self.view(address, src.size)[:] = src
        self.notify_written(address, src.size)

    def read(self, address: int, length: int) -> bytes:
        """A copy of ``length`` bytes at ``address``."""
        return self.view(address, length).tobytes()

    def read_u8(self, address: int) -> int:
        self.check(address, 1)
        return int(self.data[address])

    def read_u16(self, address: int) -> int:
        return int.from_bytes(self.view(address, 2).tobytes(), "little")

    def read_u32(self, address: int) -> int:
        return int.from_bytes(self.view(address, 4).tobytes(), "little")

    def write_u8(self, address: int, value: int) -> None:
        self.write(address, (value & 0xFF).to_bytes(1, "little"))

    def write_u16(self, address: int, value: int) -> None:
        self.write(address, (value & 0xFFFF).to_bytes(2, "little"))

    def write_u32(self, address: int, value: int) -> None:
        self.write(address, (value & 0xFFFFFFFF).to_bytes(4, "little"))
