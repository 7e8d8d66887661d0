"""PCI configuration space by configuration mechanism #1, with the i440FX/PIIX3 functions.

PCI Local Bus Specification 2.1 §3.2.2.3.2 (configuration mechanism #1): a
32-bit CONFIG_ADDRESS register at 0CF8h (bit 31 enable, bits 23-16 bus, 15-11
device, 10-8 function, 7-2 register) and a 32-bit CONFIG_DATA window at
0CFCh-0CFFh, accessed by byte, word or dword at the register's byte offset.
CONFIG_ADDRESS is only decoded for dword accesses; with bit 31 clear, or for a
function that does not exist, data reads return all ones (master abort) and
writes are dropped.

Each function is 256 bytes of configuration space with a write mask
(§6.1: the header's read-only identification, writable command/status,
BARs that report their size by which bits stick after writing all ones,
§6.2.5.1).  The board (Intel 82441FX PMC and 82371SB PIIX3 datasheets):

* 00:00.0 — 82441FX host bridge, 8086:1237, class 06 00 00; PAM0-6
  (59h-5Fh) and SMRAM (72h) are plain read/write registers here (guest RAM
  is always readable and writable, so shadowing has nothing to switch).
* 00:01.0 — PIIX3 PCI-to-ISA bridge, 8086:7000, class 06 01 00, a
  multi-function device (header type 80h); PIRQ route registers 60h-63h.
* 00:01.1 — PIIX3 IDE, 8086:7010, class 01 01 80 (legacy ports for both
  channels, bus-master capable), BAR 4 = the 16-byte bus-master I/O block;
  IDETIM 40h/42h.  The command register's I/O space (bit 0) and bus master
  (bit 2) enables and BAR 4 are reported to the host through ``on_change``
  so the board can place (or remove) the bus-master registers.
"""

from __future__ import annotations

from collections.abc import Callable

from devices.bus import PortRange
from devices.state import StateError, apply, capture, part

CONFIG_ADDRESS, CONFIG_DATA = 0xCF8, 0xCFC
ENABLE = 0x8000_0000
COMMAND, STATUS, BAR4, INTERRUPT_LINE = 0x04, 0x06, 0x20, 0x3C
CMD_IO, CMD_MEMORY, CMD_BUS_MASTER = 0x1, 0x2, 0x4


class PciFunction:
    """One function's configuration space: 256 bytes and a per-byte write mask."""

    def __init__(self, vendor: int, device: int, class_code: int, revision: int = 0,
                 header_type: int = 0, name: str = "") -> None:
        self.name = name
        self.config = bytearray(256)
        self.wmask = bytearray(256)
        self.config[0:2] = vendor.to_bytes(2, "little")
        self.config[2:4] = device.to_bytes(2, "little")
        self.config[8] = revision
        self.config[9:12] = class_code.to_bytes(3, "little")
        self.config[0x0E] = header_type
        self.config[STATUS:STATUS + 2] = (0x0280).to_bytes(2, "little")  # medium DEVSEL
        self.wmask[COMMAND] = 0xFF
        self.wmask[COMMAND + 1] = 0x03
        self.wmask[0x0C] = self.wmask[0x0D] = 0xFF  # cache line size, latency timer
        self.wmask[INTERRUPT_LINE] = 0xFF
        for reg in range(0x40, 0x100):
            self.wmask[reg] = 0xFF  # device-specific registers: plain storage here

    CONFIG_STATE_FIELDS = ("config",)
    """The saved state of a function: its 256 configuration bytes (``wmask`` is derived)."""

    def config_state(self) -> dict[str, object]:
        return capture(self, self.CONFIG_STATE_FIELDS)

    def load_config_state(self, state: dict[str, object]) -> None:
        apply(self, state, self.CONFIG_STATE_FIELDS)

    def read(self, offset: int, width: int) -> int:
        """``width`` bytes at ``offset`` (little-endian)."""
        return int.from_bytes(self.config[offset:offset + width], "little")

    def write(self, offset: int, width: int, value: int) -> None:
        """Write through the mask: read-only bits keep their value."""
        for i in range(width):
            reg = offset + i
            if reg > 0xFF:
                break
            byte = (value >> (8 * i)) & 0xFF
            mask = self.wmask[reg]
            self.config[reg] = (self.config[reg] & ~mask & 0xFF) | (byte & mask)
        self.written(offset, width)

    def written(self, offset: int, width: int) -> None:
        """Hook for functions that act on their registers."""

    def add_io_bar(self, offset: int, size: int, base: int = 0) -> None:
        """An I/O BAR of ``size`` bytes (a power of two ≥ 4) at header ``offset``."""
        mask = ~(size - 1) & 0xFFFF_FFFC
        self.wmask[offset:offset + 4] = mask.to_bytes(4, "little")
        self.config[offset:offset + 4] = ((base & mask) | 0x1).to_bytes(4, "little")

    @property
    def command(self) -> int:
        return self.read(COMMAND, 2)


class I440fxHostBridge(PciFunction):
    """00:00.0, the 82441FX PMC."""

    def __init__(self) -> None:
        super().__init__(0x8086, 0x1237, 0x060000, revision=0x02, name="i440fx")
        self.config[COMMAND] = CMD_IO | CMD_MEMORY
        self.config[0x72] = 0x02  # SMRAM: C_BASE_SEG = A0000h


class Piix3IsaBridge(PciFunction):
    """00:01.0, the PIIX3 PCI-to-ISA bridge (multi-function)."""

    def __init__(self) -> None:
        super().__init__(0x8086, 0x7000, 0x060100, header_type=0x80, name="piix3-isa")
        self.config[COMMAND] = CMD_IO | CMD_MEMORY | CMD_BUS_MASTER
        self.config[0x60:0x64] = b"\x80\x80\x80\x80"  # PIRQA-D routing disabled


class Piix3Ide(PciFunction):
    """00:01.1, the PIIX3 IDE function: legacy ports, BAR 4 = bus-master registers."""

    def __init__(self, bm_base: int = 0,
                 on_change: Callable[[int, bool, bool], None] | None = None) -> None:
        super().__init__(0x8086, 0x7010, 0x010180, name="piix3-ide")
        self.add_io_bar(BAR4, 16, bm_base)
        self.on_change = on_change
        """Called with (BAR 4 base, I/O space enabled, bus master enabled) on a change."""
        self._state: tuple[int, bool, bool] | None = None

    def config_state(self) -> dict[str, object]:
        state = super().config_state()
        state["decision"] = None if self._state is None else list(self._state)
        return state

    def load_config_state(self, state: dict[str, object]) -> None:
        decision = part(state, "decision")
        if decision is not None and (not isinstance(decision, list) or len(decision) != 3):
            raise StateError("piix3-ide: field 'decision' is not (base, io, bus master)")
        super().load_config_state(state)
        self._state = None if decision is None else (int(decision[0]), bool(decision[1]),
                                                     bool(decision[2]))

    @property
    def bm_base(self) -> int:
        return self.read(BAR4, 4) & 0xFFF0

    def state(self) -> tuple[int, bool, bool]:
        """(BAR 4 base, I/O space enabled, bus master enabled)."""
        command = self.command
        return self.bm_base, bool(command & CMD_IO), bool(command & CMD_BUS_MASTER)

    def written(self, offset: int, width: int) -> None:
        state = self.state()
        if state != self._state:
            self._state = state
            if self.on_change is not None:
                self.on_change(*state)


class PciBus:
    """Bus 0 behind configuration mechanism #1."""

    def __init__(self) -> None:
        self.address = 0
        self.functions: dict[tuple[int, int], PciFunction] = {}

    def state(self) -> dict[str, object]:
        """CONFIG_ADDRESS and each function's configuration space, keyed "dev.fn"."""
        return {"address": self.address,
                "functions": {f"{dev}.{fn}": func.config_state()
                              for (dev, fn), func in self.functions.items()}}

    def load_state(self, state: dict[str, object]) -> None:
        address = part(state, "address")
        functions = part(state, "functions")
        if not isinstance(address, int) or not isinstance(functions, dict) or set(
                functions) != {f"{dev}.{fn}" for dev, fn in self.functions}:
            raise StateError("pci: the saved functions are not this board's")
        for (dev, fn), func in self.functions.items():
            func.load_config_state(functions[f"{dev}.{fn}"])
        self.address = address

    def add(self, device: int, function: int, fn: PciFunction) -> PciFunction:
        """Place ``fn`` at 00:``device``.``function``."""
        self.functions[(device, function)] = fn
        return fn

    def _target(self) -> tuple[PciFunction | None, int]:
        addr = self.address
        if not addr & ENABLE or (addr >> 16) & 0xFF:
            return None, 0
        fn = self.functions.get(((addr >> 11) & 0x1F, (addr >> 8) & 0x7))
        return fn, addr & 0xFC

    def read(self, port: int, width: int) -> int:
        if port == CONFIG_ADDRESS and width == 4:
            return self.address
        if port < CONFIG_DATA:
            return (1 << (8 * width)) - 1
        fn, reg = self._target()
        if fn is None:
            return (1 << (8 * width)) - 1
        return fn.read(reg + (port - CONFIG_DATA), min(width, 4 - (port - CONFIG_DATA)))

    def write(self, port: int, width: int, value: int) -> None:
        if port == CONFIG_ADDRESS and width == 4:
            self.address = value & 0x80FF_FFFC
            return
        if port < CONFIG_DATA:
            return
        fn, reg = self._target()
        if fn is not None:
            fn.write(reg + (port - CONFIG_DATA), min(width, 4 - (port - CONFIG_DATA)), value)

    def port_ranges(self) -> list[PortRange]:
        """0CF8h-0CFFh."""
        return [PortRange(CONFIG_ADDRESS, 8, self.read, self.write, name="pci-config")]


def pc_pci_bus(bm_base: int = 0,
               on_ide_change: Callable[[int, bool, bool], None] | None = None) -> PciBus:
    """The board: i440FX at 00:00.0, PIIX3 ISA at 00:01.0, PIIX3 IDE at 00:01.1."""
    bus = PciBus()
    bus.add(0, 0, I440fxHostBridge())
    bus.add(1, 0, Piix3IsaBridge())
    bus.add(1, 1, Piix3Ide(bm_base, on_ide_change))
    return bus
