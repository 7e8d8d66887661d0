"""QEMU's firmware configuration device (fw_cfg): the I/O-port and DMA interfaces.

As QEMU documents it (docs/specs/fw_cfg.rst in the QEMU tree): a 16-bit
selector register at port 510h chooses an item; each byte read from the data
port 511h returns the item's next byte (zero past its end).  Well-known
items used here: 0000h signature ``"QEMU"``, 0001h interface revision and
features (bit 0 = traditional interface, bit 1 = DMA interface), 0003h RAM size
(u64), 0004h nographic, 0005h number of CPUs, 000Eh boot menu (u16, 0 = no
"Press ESC" prompt), 000Fh maximum CPUs, 0019h the file directory: a big-endian
u32 count, then per file a big-endian u32 size, a big-endian u16 selector, two
reserved bytes and a 56-byte NUL-padded name.  Named files (``etc/e820``,
``etc/boot-menu-wait``, ``vgaroms/...``) get selectors from 0020h upwards.

The DMA interface (same document, "DMA interface"; offered when the device is
given guest memory): a 64-bit big-endian address register at ports 514h-51Bh;
writing its low half (518h, which a 32-bit guest writes alone) starts a transfer
described by a ``FWCfgDmaAccess`` structure at that guest-physical address —
big-endian u32 control, u32 length, u64 address.  Control bits: 01h error, 02h
read, 04h skip, 08h select (the selector in bits 31-16), 10h write.  The device
selects, then reads (zero past the item's end), skips or refuses a write (the
items are read-only here), and writes the control word back as 0, or with only
the error bit set.  The transfer is complete when the ``out`` instruction ends.
Reading the address register gives the signature ``"QEMU CFG"``.

Why it matters here: SeaBIOS 1.16 reads fw_cfg with ``rep insb`` on port 511h when
the DMA bit is clear, one port callback per byte (40,253 of them for the VGA ROM);
with the bit set it issues one DMA request per read.

This is configuration data for the firmware, not a device the guest OS
sees; SeaBIOS reads it early to learn the memory map, the CPU count and
what to show, which is faster and simpler than probing.
"""

from __future__ import annotations

import struct
from typing import Protocol

import numpy as np

from devices.bus import PortRange
from devices.state import apply, capture


class DmaMemory(Protocol):
    """Guest RAM as the DMA interface needs it (``emu.pc.memory.GuestMemory`` fits)."""

    @property
    def size(self) -> int: ...

    def view(self, address: int, length: int) -> np.ndarray: ...

    def notify_written(self, address: int, length: int) -> None: ...


SELECTOR_PORT, DATA_PORT, DMA_PORT = 0x510, 0x511, 0x514
FEATURE_TRADITIONAL, FEATURE_DMA = 0x01, 0x02
DMA_ERROR, DMA_READ, DMA_SKIP, DMA_SELECT, DMA_WRITE = 0x01, 0x02, 0x04, 0x08, 0x10
DMA_SIGNATURE = b"QEMU CFG"
_ACCESS = struct.Struct(">IIQ")  # FWCfgDmaAccess: control, length, address
SIGNATURE, ID, RAM_SIZE, NOGRAPHIC, NB_CPUS = 0x00, 0x01, 0x03, 0x04, 0x05
BOOT_MENU, MAX_CPUS, FILE_DIR, FILE_FIRST = 0x0E, 0x0F, 0x19, 0x20
E820_RAM, E820_RESERVED = 1, 2
IRQ0_OVERRIDE = 0x8002
"""x86 item (FW_CFG_ARCH_LOCAL + 2), one byte: nonzero tells SeaBIOS that ISA IRQ 0 drives
I/O APIC pin 2, so its MP table and MADT say so (``etc/irq0-override``); it must match the
board's wiring (:data:`devices.platform.apic.IoApic.ISA_OVERRIDES`)."""


def e820_table(entries: list[tuple[int, int, int]]) -> bytes:
    """``etc/e820``: packed (u64 address, u64 length, u32 type) records."""
    return b"".join(struct.pack("<QQI", base, length, kind) for base, length, kind in entries)


class FwCfg:
    """Items by selector, files by name; read a byte at a time or by DMA."""

    def __init__(self, memory: DmaMemory | None = None) -> None:
        features = FEATURE_TRADITIONAL | (FEATURE_DMA if memory is not None else 0)
        self.items: dict[int, bytes] = {SIGNATURE: b"QEMU", ID: struct.pack("<I", features)}
        self.files: dict[str, int] = {}
        self.selector = 0
        self.offset = 0
        self.memory = memory
        self.dma_address = bytearray(8)
        self.dma_transfers = 0
        self._update_dir()

    STATE_FIELDS = ("selector", "offset", "dma_address", "dma_transfers")
    """The data-selection state and the DMA address register; the items are built from
    the board and firmware files."""

    def state(self) -> dict[str, object]:
        """The saved state: :attr:`STATE_FIELDS` as plain data (devices/state.py)."""
        return capture(self, self.STATE_FIELDS)

    def load_state(self, state: dict[str, object]) -> None:
        apply(self, state, self.STATE_FIELDS)

    def set_item(self, key: int, data: bytes) -> None:
        """Set a well-known item."""
        self.items[key] = bytes(data)

    def set_int(self, key: int, value: int, size: int) -> None:
        """A little-endian integer item of ``size`` bytes."""
        self.items[key] = value.to_bytes(size, "little")

    def add_file(self, name: str, data: bytes) -> int:
        """Publish a named file; returns its selector."""
        if len(name.encode()) >= 56:
            raise ValueError(f"fw_cfg file name too long: {name!r}")
        key = self.files.get(name, FILE_FIRST + len(self.files))
        self.files[name] = key
        self.items[key] = bytes(data)
        self._update_dir()
        return key

    def _update_dir(self) -> None:
        out = bytearray(struct.pack(">I", len(self.files)))
        for name, key in sorted(self.files.items(), key=lambda kv: kv[1]):
            out += struct.pack(">IHH56s", len(self.items[key]), key, 0, name.encode())
        self.items[FILE_DIR] = bytes(out)

    def read(self, port: int, width: int) -> int:
        if port != DATA_PORT:
            return 0
        data = self.items.get(self.selector, b"")
        value = 0
        for i in range(width):
            byte = data[self.offset] if self.offset < len(data) else 0
            value |= byte << (8 * i)
            self.offset += 1
        return value

    def write(self, port: int, width: int, value: int) -> None:
        if port == SELECTOR_PORT:
            self.selector = value & 0xFFFF
            self.offset = 0

    # -- the DMA interface ----------------------------------------------------------------
    def read_dma(self, port: int, width: int) -> int:
        """514h-51Bh read: the signature, as the big-endian register holds it."""
        offset = port - DMA_PORT
        return int.from_bytes(DMA_SIGNATURE[offset : offset + width].ljust(width, b"\0"),
                              "little")

    def write_dma(self, port: int, width: int, value: int) -> None:
        """514h-51Bh write: bytes land in the big-endian register; the low half starts."""
        offset = port - DMA_PORT
        data = (value & ((1 << (8 * width)) - 1)).to_bytes(width, "little")
        data = data[: max(0, 8 - offset)]
        self.dma_address[offset : offset + len(data)] = data
        if offset + len(data) == 8:  # the write that completes the low half
            address = int.from_bytes(self.dma_address, "big")
            self.dma_address[:] = bytes(8)
            self._dma(address)

    def _dma(self, address: int) -> None:
        memory = self.memory
        if memory is None or address + _ACCESS.size > memory.size:
            return  # no structure to read or to answer in: nothing happens
        control, length, target = _ACCESS.unpack(memory.view(address, _ACCESS.size).tobytes())
        self.dma_transfers += 1
        status = 0
        if control & DMA_SELECT:
            self.selector = control >> 16
            self.offset = 0
        if control & DMA_READ:
            if target + length > memory.size:
                status = DMA_ERROR
            elif length:
                data = self.items.get(self.selector, b"")
                chunk = data[self.offset : self.offset + length].ljust(length, b"\0")
                memory.view(target, length)[:] = np.frombuffer(chunk, dtype=np.uint8)
                memory.notify_written(target, length)
                self.offset += length
        elif control & DMA_WRITE:
            status = DMA_ERROR  # every item here is read-only
        elif control & DMA_SKIP:
            self.offset += length
        memory.view(address, 4)[:] = np.frombuffer(struct.pack(">I", status), dtype=np.uint8)
        memory.notify_written(address, 4)

    def port_ranges(self) -> list[PortRange]:
        """510h-511h, and 514h-51Bh when the DMA interface is offered."""
        ranges = [PortRange(SELECTOR_PORT, 2, self.read, self.write, name="fw_cfg")]
        if self.memory is not None:
            ranges.append(PortRange(DMA_PORT, 8, self.read_dma, self.write_dma,
                                    name="fw_cfg-dma"))
        return ranges
