"""PCI configuration mechanism #1 (devices/platform/pci.py) and the i440FX/PIIX3 functions."""

from __future__ import annotations

from devices.platform.pci import ENABLE, pc_pci_bus


def _addr(dev: int, fn: int, reg: int) -> int:
    return ENABLE | (dev << 11) | (fn << 8) | reg


def _readl(bus, dev, fn, reg):  # noqa: ANN001, ANN202
    bus.write(0xCF8, 4, _addr(dev, fn, reg))
    return bus.read(0xCFC, 4)


def test_config_address_latch_reads_back() -> None:
    bus = pc_pci_bus()
    bus.write(0xCF8, 4, 0x8000_0000)
    assert bus.read(0xCF8, 4) == 0x8000_0000


def test_ids_and_classes() -> None:
    bus = pc_pci_bus()
    assert _readl(bus, 0, 0, 0) == 0x1237_8086
    assert _readl(bus, 1, 0, 0) == 0x7000_8086
    assert _readl(bus, 1, 1, 0) == 0x7010_8086
    assert _readl(bus, 1, 1, 8) >> 8 == 0x010180
    assert _readl(bus, 1, 0, 0x0C) >> 16 & 0xFF == 0x80  # multi-function
    assert _readl(bus, 0, 0, 8) >> 8 == 0x060000


def test_absent_functions_and_disabled_cycles_master_abort() -> None:
    bus = pc_pci_bus()
    assert _readl(bus, 2, 0, 0) == 0xFFFF_FFFF
    assert _readl(bus, 0, 3, 0) == 0xFFFF_FFFF
    bus.write(0xCF8, 4, 0)  # enable bit clear
    assert bus.read(0xCFC, 4) == 0xFFFF_FFFF


def test_byte_and_word_accesses_at_offsets() -> None:
    bus = pc_pci_bus()
    bus.write(0xCF8, 4, _addr(1, 1, 0))
    assert bus.read(0xCFE, 2) == 0x7010
    assert bus.read(0xCFD, 1) == 0x80
    bus.write(0xCF8, 4, _addr(0, 0, 0x58))
    bus.write(0xCFD, 1, 0x30)  # PAM0 at 59h
    assert _readl(bus, 0, 0, 0x58) >> 8 & 0xFF == 0x30


def test_read_only_id_registers() -> None:
    bus = pc_pci_bus()
    bus.write(0xCF8, 4, _addr(1, 1, 0))
    bus.write(0xCFC, 4, 0)
    assert _readl(bus, 1, 1, 0) == 0x7010_8086


def test_bar4_sizing_placement_and_command_callbacks() -> None:
    seen = []
    bus = pc_pci_bus(on_ide_change=lambda base, io, bm: seen.append((base, io, bm)))
    bus.write(0xCF8, 4, _addr(1, 1, 0x20))
    bus.write(0xCFC, 4, 0xFFFF_FFFF)
    assert bus.read(0xCFC, 4) == 0xFFFF_FFF1  # 16 bytes of I/O space
    bus.write(0xCFC, 4, 0xC040)
    assert _readl(bus, 1, 1, 0x20) == 0xC041
    bus.write(0xCF8, 4, _addr(1, 1, 0x04))
    bus.write(0xCFC, 2, 0x0005)  # I/O space + bus master
    assert seen[-1] == (0xC040, True, True)
    bus.write(0xCFC, 2, 0x0000)
    assert seen[-1] == (0xC040, False, False)


def test_ide_timing_and_pirq_registers_are_storage() -> None:
    bus = pc_pci_bus()
    assert _readl(bus, 1, 0, 0x60) == 0x8080_8080
    bus.write(0xCF8, 4, _addr(1, 1, 0x40))
    bus.write(0xCFC, 2, 0x8000)
    assert _readl(bus, 1, 1, 0x40) & 0xFFFF == 0x8000
