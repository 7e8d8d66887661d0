"""QEMU's firmware configuration device (fw_cfg), the traditional I/O-port interface.

As QEMU documents it (docs/specs/fw_cfg.rst in the QEMU tree): a 16-bit
selector register at port 510h chooses an item; each byte read from the data
port 511h returns the item's next byte (zero past its end).  Well-known
items used here: 0000h signature ``"QEMU"``, 0001h interface revision and
features (bit 0 = traditional interface; no DMA bit, so firmware uses the
ports), 0003h RAM size (u64), 0004h nographic, 0005h number of CPUs,
000Eh boot menu (u16, 0 = no "Press ESC" prompt), 000Fh maximum CPUs, 0019h
the file directory: a big-endian u32 count, then per file a big-endian u32
size, a big-endian u16 selector, two reserved bytes and a 56-byte
NUL-padded name.  Named files (``etc/e820``, ``etc/boot-menu-wait``,
``vgaroms/...``) get selectors from 0020h upwards.

This is configuration data for the firmware, not a device the guest OS
sees; SeaBIOS reads it early to learn the memory map, the CPU count and
what to show, which is faster and simpler than probing.
"""

from __future__ import annotations

import struct

from devices.bus import PortRange

SELECTOR_PORT, DATA_PORT = 0x510, 0x511
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
    """Items by selector, files by name, read a byte at a time."""

    def __init__(self) -> None:
        self.items: dict[int, bytes] = {SIGNATURE: b"QEMU", ID: struct.pack("<I", 1)}
        self.files: dict[str, int] = {}
        self.selector = 0
        self.offset = 0
        self._update_dir()

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

    def port_ranges(self) -> list[PortRange]:
        """510h-511h."""
        return [PortRange(SELECTOR_PORT, 2, self.read, self.write, name="fw_cfg")]
