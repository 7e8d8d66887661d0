"""One PC: the board every firmware, every tool and the management API run on.

:class:`PcBoard` is a :class:`~emu.pc.machine.Machine` (RAM, the port bus, the 16 ISA
IRQ lines, the two-channel IDE controller with its bus-master engines, the lock) plus
everything a PC has around the drive, always the same whatever firmware runs it:

==============================  ==============================================  ======
device                          model                                           IRQ
==============================  ==============================================  ======
8259A pair (20h/A0h, 4D0h)      :mod:`devices.platform.pic`                     —
8254 PIT (40h-43h), port 61h    :mod:`devices.platform.pit` (virtual clock)     0
8042 (60h/64h)                  :mod:`devices.platform.i8042`                   1, 12
16550 UART, COM1 (3F8h)         :mod:`devices.platform.uart`                    4
MC146818 RTC/CMOS (70h/71h)     :mod:`devices.platform.cmos` (memory sizes)     8
IDE (1F0h/170h, 3F6h/376h)      :mod:`devices.ide` with PIIX bus masters        14, 15
PCI mechanism #1 (CF8h/CFCh)    i440FX 00:00.0, PIIX3 00:01.0, PIIX3 IDE 00:01.1 —
fw_cfg (510h/511h)              RAM size, CPUs, ``etc/e820``                    —
VGA registers (3B4h-3DAh)       :mod:`devices.platform.vga`; text frame is RAM  —
local APIC, I/O APIC            MMIO pages at FEE00000h / FEC00000h             —
port 80h, E9h, 402h, 92h        POST codes, debug consoles, fast A20 / reset    —
==============================  ==============================================  ======

**Memory** (:class:`MemoryMap`): RAM of any size (a multiple of 4 KiB).  Up to 3.5 GiB it
all sits below 4 GiB; beyond that the first 3 GiB stay below the PCI hole and the rest
is mapped from 4 GiB up, as a PC chipset decodes it.  The whole of RAM is one numpy array
shared with the CPU (``mem_map_ptr``).  CMOS, fw_cfg's ``etc/e820`` and the built-in
BIOS's INT 15h all describe it from this one map.

**Bus masters** are placed where the PCI IDE function's BAR 4 says, and move only when
the guest (the firmware) programs it; the PCI command register's bus-master bit gates
them (ATA/ATAPI host adapter: SFF-8038i §3; PIIX3 datasheet §2.3 and §5).  A freshly
powered board has no bus-master ports until firmware enumerates PCI, as on a PC.

The board knows nothing of firmware: a firmware plug (:mod:`emu.firmware`) is given the
board and installs itself (a ROM at the reset vector, or the built-in BIOS's hooks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from unicorn import UC_PROT_EXEC, UC_PROT_READ

from devices.bus import PortRange
from devices.ide.bmdma import BM_CHANNEL_STRIDE
from devices.platform.apic import IOAPIC_BASE, LAPIC_BASE, PAGE, IoApic, LocalApic
from devices.platform.cmos import Cmos
from devices.platform.debugport import DebugPorts
from devices.platform.fw_cfg import (
    E820_RAM,
    IRQ0_OVERRIDE,
    MAX_CPUS,
    NB_CPUS,
    NOGRAPHIC,
    RAM_SIZE,
    FwCfg,
    e820_table,
)
from devices.platform.i8042 import I8042
from devices.platform.intc import InterruptController
from devices.platform.pci import PciBus, pc_pci_bus
from devices.platform.pic import Pic8259Pair
from devices.platform.pit import Pit8254
from devices.platform.port92 import SystemPorts
from devices.platform.uart import Uart16550
from devices.platform.vga import VgaRegisters
from emu.pc.cpu import DEFAULT_IPS, Cpu
from emu.pc.machine import Machine

MiB = 1 << 20
GiB = 1 << 30
DEFAULT_MEMORY = 256 * MiB
"""RAM when nobody says: enough for a distribution's loader, kernel and initrd."""
MAX_MEMORY = 64 * GiB
LOW_RAM_LIMIT = 0xE000_0000
"""RAM up to this size sits wholly below 4 GiB..."""
PCI_HOLE_START = 0xC000_0000
"""...larger RAM keeps 3 GiB below the PCI hole and puts the rest above 4 GiB."""
FIRMWARE_DEBUG_PORT = 0x402
"""The debug console port SeaBIOS writes its log to (a QEMU board convention)."""
UART_IRQ = 4
RTC_IRQ = 8


class BoardError(ValueError):
    """A board that cannot be built (a RAM size out of range): a user's input error."""


@dataclass(frozen=True)
class MemoryMap:
    """Where RAM is in the physical address space (ACPI §15 address range types)."""

    size: int

    @property
    def low(self) -> int:
        """Bytes of RAM below 4 GiB (from address 0)."""
        return self.size if self.size <= LOW_RAM_LIMIT else PCI_HOLE_START

    @property
    def high(self) -> int:
        """Bytes of RAM from 4 GiB up."""
        return self.size - self.low

    def ram_ranges(self) -> list[tuple[int, int]]:
        """``(physical base, length)`` of each RAM range."""
        ranges = [(0, self.low)]
        if self.high:
            ranges.append((4 * GiB, self.high))
        return ranges


def parse_memory_size(text: str) -> int:
    """``"512M"``, ``"2G"``, ``"65536K"`` or plain bytes → bytes (a :class:`BoardError` if bad)."""
    units = {"": 1, "B": 1, "K": 1 << 10, "M": MiB, "G": GiB}
    raw = text.strip().upper().removesuffix("IB").removesuffix("B") if text else ""
    number, unit = raw, ""
    if raw and raw[-1] in "KMG":
        number, unit = raw[:-1], raw[-1]
    try:
        size = int(float(number) * units[unit])
    except (ValueError, OverflowError):
        raise BoardError(f"memory size {text!r}: expected e.g. 512M, 2G or a byte count") from None
    check_memory_size(size)
    return size


def check_memory_size(size: int) -> None:
    if size < 2 * MiB or size > MAX_MEMORY or size % 4096:
        raise BoardError(f"memory size {size:,} bytes: must be a multiple of 4 KiB from 2 MiB "
                         f"to {MAX_MEMORY // GiB} GiB")


class PcBoard(Machine):
    """The PC: RAM, ports, IRQs, chipset, IDE + bus masters, CPU and clock (see module doc)."""

    def __init__(self, memory_size: int = DEFAULT_MEMORY, ips: int = DEFAULT_IPS) -> None:
        check_memory_size(memory_size)
        self.memory_map = MemoryMap(memory_size)
        super().__init__(memory_size, bus_master=True)
        self.memory.phys_limit = self.memory_map.low
        ports = self.ports
        irqs = self.irqs
        self.cpu = cpu = Cpu(self.memory, self.ports, ips, self.memory_map.ram_ranges())
        self.clock = clock = cpu.clock
        cpu.use_virtual_tsc()  # calibration loops see the same CPU speed every run
        cpu.use_deterministic_cpuid()  # no RDRAND: the same guest behaves the same
        self.reset_requests = 0
        self.on_reset: Callable[[str], None] | None = None
        """Called when the guest resets the machine (8042 pulse or port 92h)."""

        self.pic = Pic8259Pair()
        self.pic.connect(irqs)
        self.pit = Pit8254(clock, irqs[0])
        self.kbc = I8042(irqs[1], irqs[12], on_reset=lambda: self._reset("8042 pulse"),
                         clock=clock)
        self.cmos = Cmos(clock, memory_size, irq=irqs[RTC_IRQ],
                         ram_below_4g=self.memory_map.low)
        self.uart = Uart16550(irq=irqs[UART_IRQ])
        self.debug = DebugPorts()
        self.firmware_log = bytearray()
        self.system = SystemPorts(on_reset=lambda: self._reset("port 92h"))
        self.vga = VgaRegisters()
        self.pci: PciBus = pc_pci_bus(0, self._ide_io_changed)
        self.fw_cfg = self._make_fw_cfg()
        for engine in self.bus_masters:  # placed by BAR 4 once firmware programs it
            engine.bus_master_enabled = False
            ports.unregister(ports.claimed(engine.base))  # type: ignore[arg-type]
        self._bm_ranges: list[PortRange] = []
        for device in (self.pic, self.pit, self.kbc, self.cmos, self.uart, self.debug,
                       self.system, self.vga, self.pci, self.fw_cfg):
            for rng in device.port_ranges():
                ports.register(rng)
        ports.register(PortRange(FIRMWARE_DEBUG_PORT, 1, lambda p, w: 0xE9,
                                 self._firmware_debug_out, name="firmware-debug"))
        # Interrupts reach the CPU through the local APIC: from the 8259 pair by LINT0
        # (ExtINT, the MP spec's virtual-wire mode, as firmware leaves it) or from the I/O
        # APIC once an OS programs it (ISA IRQ n on pin n, IRQ 0 on pin 2).
        self.lapic = LocalApic(clock=clock)
        self.ioapic = IoApic(lapic=self.lapic)
        self.ioapic.connect(irqs)
        self.intc = InterruptController(self.pic, self.lapic, self.ioapic)
        cpu.interrupts = self.intc
        for base, model in ((LAPIC_BASE, self.lapic), (IOAPIC_BASE, self.ioapic)):
            cpu.uc.mmio_map(base, PAGE,
                            lambda _uc, off, size, m: m.read(off, size), model,
                            lambda _uc, off, size, value, m: m.write(off, size, value), model)

    # -- firmware's view -------------------------------------------------------------
    def map_rom(self, address: int, data: bytes) -> None:
        """Map read-only, executable memory outside RAM (a flash ROM's high alias)."""
        if address % PAGE or len(data) % PAGE:
            raise BoardError("a ROM must be 4 KiB aligned and a multiple of 4 KiB long")
        uc = self.cpu.uc
        uc.mem_map(address, len(data), UC_PROT_READ | UC_PROT_EXEC)  # writes fault
        uc.mem_write(address, data)

    def e820(self) -> list[tuple[int, int, int]]:
        """The RAM ranges as e820 entries ``(base, length, type)`` (type 1 = usable)."""
        return [(base, length, E820_RAM) for base, length in self.memory_map.ram_ranges()]

    @property
    def debug_log(self) -> str:
        """What firmware wrote to its debug port (402h)."""
        return self.firmware_log.decode("latin-1")

    # -- wiring -------------------------------------------------------------------------
    def _make_fw_cfg(self) -> FwCfg:
        cfg = FwCfg(self.memory)  # with the DMA interface (SeaBIOS's fast ROM loads)
        cfg.set_int(RAM_SIZE, self.memory_map.size, 8)
        cfg.set_int(NB_CPUS, 1, 2)
        cfg.set_int(MAX_CPUS, 1, 2)
        cfg.set_int(NOGRAPHIC, 0, 2)
        cfg.add_file("etc/e820", e820_table(self.e820()))
        cfg.set_int(IRQ0_OVERRIDE, 1, 1)  # IRQ 0 is on I/O APIC pin 2 (MP table, MADT)
        return cfg

    def _firmware_debug_out(self, port: int, width: int, value: int) -> None:
        self.firmware_log.append(value & 0xFF)

    def _reset(self, how: str) -> None:
        self.reset_requests += 1
        if self.on_reset is not None:
            self.on_reset(how)

    def _ide_io_changed(self, base: int, io_enabled: bool, bus_master: bool) -> None:
        """The PCI IDE function's BAR 4 or command register changed: move/gate the engines."""
        for engine in self.bus_masters:
            engine.bus_master_enabled = bus_master
            engine.service()  # a transfer that waited for the bit goes on now
        self.place_bus_masters(base, io_enabled)

    def place_bus_masters(self, base: int, io_enabled: bool) -> None:
        """Put the engines' ports at BAR 4's ``base`` (none while I/O decoding is off);
        also how a restored state re-places them (emu/pc/state.py)."""
        ports = self.ports
        for rng in self._bm_ranges:
            ports.unregister(rng)
        self._bm_ranges = []
        if not io_enabled or not base:
            return
        for engine in self.bus_masters:
            engine.base = base + engine.channel.number * BM_CHANNEL_STRIDE
            rng = engine.port_range()
            ports.register(rng)
            self._bm_ranges.append(rng)
