"""The x86 I/O port space: 64 Ki ports, byte/word/dword and string accesses.

Devices register :class:`~devices.bus.PortRange` blocks.  An unclaimed port
reads as a floating bus (all ones) and ignores writes, as on a PC.  Every
access holds the machine lock, so a host-side call from another thread (the
management API) is atomic with respect to port accesses.

Hot path: ``inb``..``outl`` are one list lookup and one call.  String
accesses (``rep insw``) go to the device's ``string_read`` in one call and
move numpy arrays, never a Python loop per word.
"""

from __future__ import annotations

import threading

import numpy as np

from devices.bus import PortRange

_FLOAT = {1: 0xFF, 2: 0xFFFF, 4: 0xFFFFFFFF}
_DTYPE = {2: np.dtype("<u2"), 4: np.dtype("<u4")}


class PortConflict(ValueError):
    """Two devices tried to decode the same port."""


class PortBus:
    """Dispatches port accesses to the device ranges that claim them."""

    def __init__(self, lock: threading.RLock | None = None) -> None:
        self.lock = lock if lock is not None else threading.RLock()
        self._ranges: list[PortRange | None] = [None] * 0x10000

    # -- registration -------------------------------------------------------------
    def register(self, rng: PortRange) -> None:
        """Claim ``rng``'s ports for its device (positive decode)."""
        for port in range(rng.base, rng.base + rng.length):
            if self._ranges[port] is not None:
                raise PortConflict(f"port {port:#x} already claimed by {self._ranges[port].name}")
        for port in range(rng.base, rng.base + rng.length):
            self._ranges[port] = rng

    def unregister(self, rng: PortRange) -> None:
        for port in range(rng.base, rng.base + rng.length):
            if self._ranges[port] is rng:
                self._ranges[port] = None

    def claimed(self, port: int) -> PortRange | None:
        """The range decoding ``port``, or None for a floating port."""
        return self._ranges[port & 0xFFFF]

    # -- single accesses ----------------------------------------------------------
    def read(self, port: int, width: int) -> int:
        rng = self._ranges[port & 0xFFFF]
        if rng is None:
            return _FLOAT[width]
        with self.lock:
            return rng.read(port & 0xFFFF, width) & _FLOAT[width]

    def write(self, port: int, width: int, value: int) -> None:
        rng = self._ranges[port & 0xFFFF]
        if rng is not None:
            with self.lock:
                rng.write(port & 0xFFFF, width, value & _FLOAT[width])

    # The six single-access entry points are written out (not routed through
    # read/write) because they are the port-dispatch hot path.
    def inb(self, port: int) -> int:
        rng = self._ranges[port & 0xFFFF]
        if rng is None:
            return 0xFF
        with self.lock:
            return rng.read(port & 0xFFFF, 1) & 0xFF

    def inw(self, port: int) -> int:
        rng = self._ranges[port & 0xFFFF]
        if rng is None:
            return 0xFFFF
        with self.lock:
            return rng.read(port & 0xFFFF, 2) & 0xFFFF

    def inl(self, port: int) -> int:
        return self.read(port, 4)

    def outb(self, port: int, value: int) -> None:
        rng = self._ranges[port & 0xFFFF]
        if rng is not None:
            with self.lock:
                rng.write(port & 0xFFFF, 1, value & 0xFF)

    def outw(self, port: int, value: int) -> None:
        rng = self._ranges[port & 0xFFFF]
        if rng is not None:
            with self.lock:
                rng.write(port & 0xFFFF, 2, value & 0xFFFF)

    def outl(self, port: int, value: int) -> None:
        self.write(port, 4, value)

    # -- string accesses (rep ins / rep outs) -------------------------------------
    def read_string_into(self, port: int, width: int, out: np.ndarray) -> None:
        """``rep ins{w,d}``: fill ``out`` (dtype ``<u2``/``<u4``) from ``port``."""
        port &= 0xFFFF
        rng = self._ranges[port]
        if rng is None:
            out[...] = _FLOAT[width]
            return
        with self.lock:
            if rng.string_read is not None:
                rng.string_read(port, width, out)
            else:
                read = rng.read
                for i in range(out.size):
                    out[i] = read(port, width)

    def write_string(self, port: int, width: int, data: np.ndarray) -> None:
        """``rep outs{w,d}``: send ``data`` (dtype ``<u2``/``<u4``) to ``port``."""
        port &= 0xFFFF
        rng = self._ranges[port]
        if rng is None:
            return
        with self.lock:
            if rng.string_write is not None:
                rng.string_write(port, width, data)
            else:
                write = rng.write
                for value in data.tolist():
                    write(port, width, value)

    def insw(self, port: int, count: int) -> np.ndarray:
        """Read ``count`` words from ``port`` into a new ``uint16`` array."""
        out = np.empty(count, dtype=_DTYPE[2])
        self.read_string_into(port, 2, out)
        return out

    def insl(self, port: int, count: int) -> np.ndarray:
        """Read ``count`` dwords from ``port`` into a new ``uint32`` array."""
        out = np.empty(count, dtype=_DTYPE[4])
        self.read_string_into(port, 4, out)
        return out

    def insw_into(self, port: int, dest: np.ndarray) -> None:
        """Read ``dest.size // 2`` words straight into a byte buffer (guest RAM view)."""
        self.read_string_into(port, 2, dest.view(_DTYPE[2]))

    def outsw(self, port: int, data: np.ndarray | bytes) -> None:
        """Write words (an array, or bytes taken as little-endian words) to ``port``."""
        if isinstance(data, bytes | bytearray):
            self.write_string(port, 2, np.frombuffer(data, dtype=_DTYPE[2]))
        else:
            self.write_string(port, 2, np.asarray(data, dtype=_DTYPE[2]))

    def outsl(self, port: int, data: np.ndarray | bytes) -> None:
        arr = np.frombuffer(data, dtype=_DTYPE[4]) if isinstance(data, bytes | bytearray) else data
        self.write_string(port, 4, np.asarray(arr, dtype=_DTYPE[4]))
