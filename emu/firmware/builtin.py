"""The built-in firmware plugged into the PC board: a readable BIOS written in Python.

What it does at power-on, in the order a PC BIOS does it, and only through the ports and
guest memory:

1. **PCI**: gives the PIIX3 IDE function's BAR 4 the bus-master base
   (:data:`~emu.firmware.ata.BM_BASE`) and sets its command register's I/O and
   bus-master bits and the IDE decode enable of both channels' IDETIM (PCI Local Bus
   3.0 §6.2.2, §6.2.5; PIIX3 datasheet §2.3), through
   configuration mechanism #1 at CF8h/CFCh as any BIOS's PCI enumeration does;
2. **the drive**: probes both IDE channels, waits for a DVD drive to be ready, reads the
   El Torito boot record and catalog and loads the boot image
   (:func:`~emu.firmware.eltorito.firmware_boot`);
3. **services**: installs the interrupt vector table, the BIOS data area and the BIOS
   services (:class:`~emu.firmware.bios.Bios`), describing RAM from the board's one
   memory map;
4. **hand-over**: starts the boot image with DL = the boot drive and interrupts on.

The CPU is the board's; the screen, COM1, CMOS and the 8259 pair are the board's
devices, so a guest sees the same PC it would see under SeaBIOS.  Keys typed by the
session reach the guest through INT 16h (this BIOS's keyboard service).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from emu.firmware.ata import BM_BASE, AtaHostDriver, AtapiDevice, FirmwareError
from emu.firmware.bios import Bios, BiosStop, EmulatedDisk
from emu.firmware.eltorito import BootEntry, LoadedImage, firmware_boot
from emu.firmware.video import Screen
from emu.pc.ports import PortBus
from emu.pc.session import BootResult, ExitStatus, FirmwareFailure, Session

PCI_CONFIG_ADDRESS, PCI_CONFIG_DATA = 0xCF8, 0xCFC
PIIX3_IDE = (0, 1, 1)
"""Bus 0, device 1, function 1: the IDE function of the PIIX3."""
PCI_COMMAND, PCI_BAR4 = 0x04, 0x20
CMD_IO, CMD_BUS_MASTER = 0x01, 0x04
PIIX_IDETIM = 0x40
"""IDE timing registers: 40h primary, 42h secondary (PIIX3 datasheet §2.3)."""
IDETIM_DECODE_ENABLE = 0x8000
"""IDETIM bit 15, IDE Decode Enable: 0 after reset, set by the BIOS for each channel it
uses.  Linux's ``ata_piix`` reads it and silently ignores a channel where it is clear."""
_DEVICE_FIELDS = ("bus", "device", "model", "serial", "firmware", "device_type", "removable")
"""The probed drive's fields a saved state keeps (with its IDENTIFY data)."""


def pci_config_write(ports: PortBus, bdf: tuple[int, int, int], offset: int, value: int) -> None:
    """Configuration mechanism #1 (PCI Local Bus 3.0 §3.2.2.3.2): address, then data."""
    bus, dev, fn = bdf
    ports.outl(PCI_CONFIG_ADDRESS, 0x8000_0000 | bus << 16 | dev << 11 | fn << 8 | offset)
    ports.outl(PCI_CONFIG_DATA, value)


def pci_config_read(ports: PortBus, bdf: tuple[int, int, int], offset: int) -> int:
    bus, dev, fn = bdf
    ports.outl(PCI_CONFIG_ADDRESS, 0x8000_0000 | bus << 16 | dev << 11 | fn << 8 | offset)
    return ports.inl(PCI_CONFIG_DATA)


class BuiltinFirmware:
    """The Python BIOS as a firmware plug (module docstring)."""

    name = "builtin"

    def __init__(self, use_dma: bool = True) -> None:
        self.use_dma = use_dma
        self.session: Session | None = None
        self.driver: AtaHostDriver | None = None
        self.bios: Bios | None = None
        self.screen: Screen | None = None
        self.loaded: LoadedImage | None = None

    def install(self, session: Session) -> None:
        self.session = session
        board = session.board
        ports = board.ports
        pci_config_write(ports, PIIX3_IDE, PCI_BAR4, BM_BASE | 1)
        command = pci_config_read(ports, PIIX3_IDE, PCI_COMMAND) & 0xFFFF
        pci_config_write(ports, PIIX3_IDE, PCI_COMMAND, command | CMD_IO | CMD_BUS_MASTER)
        pci_config_write(ports, PIIX3_IDE, PIIX_IDETIM,  # both channels' legacy decode on
                         IDETIM_DECODE_ENABLE << 16 | IDETIM_DECODE_ENABLE)
        use_dma = self.use_dma and session.options.transfer != "pio"
        self.driver = driver = AtaHostDriver(ports, board.memory, use_dma=use_dma)
        self.screen = Screen(board.memory.data, before_change=session.screen_changed)
        self.bios = bios = Bios(board.cpu, driver, board.pic, session.keyboard, self.screen,
                                serial=board.uart, cmos=board.cmos, on_stop=self._bios_stop,
                                ram_top=board.memory_map.low,
                                high_ram=board.memory_map.high,
                                on_input_poll=session.input_polled)
        try:
            loaded = firmware_boot(driver)
        except FirmwareError as exc:
            raise FirmwareFailure(str(exc)) from None
        bios.attach_boot(loaded)
        self.loaded = loaded
        if session.options.on_loaded is not None:
            session.options.on_loaded(loaded)
        self.start(loaded)

    # -- saved state (emu/pc/state.py) ------------------------------------------------
    BIOS_FIELDS = ("cd_capacity", "bounce", "sectors_read", "dma_reads", "_frame",
                   "_retry_ip", "_wait_until")
    """The BIOS's Python-side fields; the IVT, BDA, EBDA and stubs are RAM."""

    def state(self) -> dict[str, Any]:
        """The plug's saved state: the loaded image, the BIOS's counters, emulated disk and
        waits, the driver's mode and log, the screen's text stream (plain data)."""
        from devices.state import capture

        if self.bios is None or self.driver is None or self.screen is None:
            return {"installed": False}
        bios = self.bios
        loaded = self.loaded
        image = None
        if loaded is not None:
            dev = loaded.device
            image = {"device": {**{k: getattr(dev, k) for k in _DEVICE_FIELDS},
                                "identify": dev.identify.hex()},
                     "catalog_lba": loaded.catalog_lba, "entry": asdict(loaded.entry),
                     "address": loaded.address, "length": loaded.length,
                     "sha256": loaded.sha256}
        return {"installed": True, "use_dma": self.driver.use_dma,
                "bm_base": self.driver.bm_base, "log": list(self.driver.log),
                "image": image,
                "emulated": None if bios.emulated is None else asdict(bios.emulated),
                "calls": [[v, ah, n] for (v, ah), n in bios.calls.items()],
                "bios": capture(bios, self.BIOS_FIELDS),
                "screen": {"stream": list(self.screen.stream),
                           "stream_pos": list(self.screen._stream_pos)}}

    def attach(self, session: Session, state: dict[str, Any]) -> None:
        """Plug in for a restored state: the BIOS's hooks, no PCI set-up, probe or load."""
        if not state.get("installed"):
            raise ValueError("firmware: the built-in BIOS was not installed when saved")
        self.session = session
        board = session.board
        self.driver = AtaHostDriver(board.ports, board.memory, use_dma=bool(state["use_dma"]))
        self.screen = Screen(board.memory.data, before_change=session.screen_changed)
        self.bios = Bios(board.cpu, self.driver, board.pic, session.keyboard, self.screen,
                         serial=board.uart, cmos=board.cmos, on_stop=self._bios_stop,
                         ram_top=board.memory_map.low, high_ram=board.memory_map.high,
                         on_input_poll=session.input_polled)
        self.load_state(state)

    def load_state(self, state: dict[str, Any]) -> None:
        """Set the plug's Python-side fields from :meth:`state` (hooks already installed)."""
        from devices.state import apply

        assert self.bios is not None and self.driver is not None and self.screen is not None
        if not state.get("installed"):
            raise ValueError("firmware: the built-in BIOS was not installed when saved")
        bios = self.bios
        raw = state["image"]
        loaded = None
        if raw is not None:
            dev = AtapiDevice(**{k: raw["device"][k] for k in _DEVICE_FIELDS},
                              identify=bytes.fromhex(raw["device"]["identify"]))
            loaded = LoadedImage(dev, int(raw["catalog_lba"]), BootEntry(**raw["entry"]),
                                 int(raw["address"]), int(raw["length"]), str(raw["sha256"]))
        emulated = None if state["emulated"] is None else EmulatedDisk(**state["emulated"])
        calls = {(int(v), int(ah)): int(n) for v, ah, n in state["calls"]}
        apply(bios, state["bios"], self.BIOS_FIELDS)
        self.driver.use_dma = bool(state["use_dma"])
        self.driver.bm_base = int(state["bm_base"])
        self.driver.log[:] = [str(line) for line in state["log"]]
        self.loaded = bios.image = loaded
        bios.cdrom = None if loaded is None else loaded.device
        bios.emulated = emulated
        bios.calls = calls
        self.screen.stream[:] = [str(t) for t in state["screen"]["stream"]]
        row, col = state["screen"]["stream_pos"]
        self.screen._stream_pos = (int(row), int(col))

    def start(self, loaded: LoadedImage) -> None:
        """CPU state at the hand-over: CS:IP at the image, DL = boot drive, IF set."""
        assert self.session is not None and self.bios is not None
        cpu = self.session.cpu
        entry = loaded.entry
        if entry.media_type == 0:
            cpu.reset_real_mode(entry.segment, 0, ss=0, sp=0x7C00)
        else:
            cpu.reset_real_mode(0, 0x7C00, ss=0, sp=0x7C00)
        cpu.set_reg("edx", self.bios.boot_drive)
        cpu.set_reg("eflags", 0x202)

    def _bios_stop(self, event: BiosStop) -> None:
        assert self.session is not None
        if event.kind == "input":
            self.session.input_blocked()
        else:
            self.session.request_stop(ExitStatus.BOOT_FAILED, event.message)

    def finish(self, result: BootResult) -> None:
        result.loaded = self.loaded
        if self.driver is not None:
            result.firmware_log = list(self.driver.log)
        if self.bios is not None:
            result.sectors_read = self.bios.sectors_read
            result.dma_reads = self.bios.dma_reads
            result.bios_calls = dict(self.bios.calls)
