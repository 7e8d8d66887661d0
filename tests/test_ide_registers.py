"""Taskfile-level behaviour of the IDE channel and the packet device (ATA/ATAPI-7)."""

from __future__ import annotations

import pytest

from emu.pc.machine import Machine
from tests.guest import Guest

SIGNATURE = (0x01, 0x01, 0x14, 0xEB)


def taskfile(g: Guest) -> tuple[int, int, int, int]:
    m = g.m
    return (m.inb(g.base + 2), m.inb(g.base + 3), m.inb(g.base + 4), m.inb(g.base + 5))


@pytest.mark.parametrize("bus,device", [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_power_on_shows_the_packet_signature_at_every_location(bus, device):
    m = Machine()
    m.add_dvd_drive(bus, device)
    g = Guest(m, bus)
    g.select(device)
    assert taskfile(g) == SIGNATURE
    assert g.status() == 0x00  # a packet device leaves DRDY clear after reset
    assert g.error() == 0x01  # diagnostic passed


def test_a_channel_with_no_device_floats_high_and_ignores_writes():
    m = Machine()
    m.add_dvd_drive(0, 0)
    g = Guest(m, 1)
    g.m.outb(0x172, 0x55)
    assert [m.inb(0x170 + i) for i in range(1, 8)] == [0xFF] * 7
    assert m.inb(0x376) == 0xFF
    assert m.inw(0x170) == 0xFFFF and m.inl(0x170) == 0xFFFFFFFF  # nothing drives it
    assert m.ports.insw(0x170, 4).tolist() == [0xFFFF] * 4


def test_device_0_answers_for_an_absent_device_1():
    m = Machine()
    m.add_dvd_drive(0, 0)
    g = Guest(m, 0)
    g.select(1)
    g.m.outb(0x1F2, 0x55)
    g.m.outb(0x1F3, 0xAA)
    assert g.status() == 0x00 and g.alt_status() == 0x00
    assert (m.inb(0x1F2), m.inb(0x1F3)) == (0x55, 0xAA)  # the register echo still works
    assert m.inb(0x1F6) & 0x10  # DEV reads back as written
    g.command(0xA1)  # IDENTIFY PACKET to nobody: nothing happens
    assert g.alt_status() == 0x00 and not g.irq_level()


def test_taskfile_writes_reach_both_devices():
    m = Machine()
    m.add_dvd_drive(0, 0)
    m.add_dvd_drive(0, 1)
    g = Guest(m, 0)
    g.select(0)
    m.outb(0x1F4, 0x34)
    m.outb(0x1F5, 0x12)
    g.select(1)
    assert g.byte_count() == 0x1234
    assert m.ide.unit(0, 0).lba_mid == 0x34 and m.ide.unit(0, 1).lba_high == 0x12


def test_reading_status_lowers_intrq_but_alternate_status_does_not(rig):
    m, drive, g = rig
    g.command(0xEC)  # IDENTIFY DEVICE: aborted with an interrupt
    assert g.irq_level()
    assert g.alt_status() == 0x41
    assert g.irq_level()
    assert g.status() == 0x41
    assert not g.irq_level()


def test_nien_masks_intrq_and_releasing_it_shows_a_pending_interrupt(rig):
    m, drive, g = rig
    g.control(0x02)
    g.command(0xEC)
    assert not g.irq_level()
    g.control(0x00)
    assert g.irq_level()  # the device still requests service
    g.status()
    assert not g.irq_level()


def test_intrq_is_driven_only_by_the_selected_device():
    m = Machine()
    m.add_dvd_drive(0, 0)
    m.add_dvd_drive(0, 1)
    g = Guest(m, 0)
    g.select(1)
    g.command(0xEC)
    assert g.irq_level()
    g.select(0)
    assert not g.irq_level()
    g.select(1)
    assert g.irq_level()


def test_srst_sets_bsy_while_asserted_then_leaves_the_signature(rig):
    m, drive, g = rig
    g.select(0)
    m.outb(0x1F4, 0x99)
    g.control(0x04 | 0x02)
    assert g.alt_status() & 0x80
    g.control(0x02)
    assert g.alt_status() == 0x00
    assert taskfile(g) == SIGNATURE and g.error() == 0x01
    assert m.inb(0x1F6) & 0x10 == 0
    assert not g.irq_level()


def test_srst_selects_device_0_again():
    m = Machine()
    m.add_dvd_drive(0, 0)
    m.add_dvd_drive(0, 1)
    g = Guest(m, 0)
    g.select(1)
    g.control(0x06)
    g.control(0x02)
    assert m.ide.channels[0].selected == 0


def test_identify_device_is_refused_with_the_signature(rig):
    m, drive, g = rig
    g.clear_power_on_ua()
    m.outb(0x1F4, 0x00)
    m.outb(0x1F5, 0x08)
    g.command(0xEC)
    assert g.irq_level()
    assert g.status() == 0x41  # DRDY | ERR
    assert g.error() == 0x04  # ABRT
    assert taskfile(g) == SIGNATURE


def test_read_sectors_is_refused_with_the_signature(rig):
    m, drive, g = rig
    g.command(0x20)
    assert g.status() == 0x41 and g.error() == 0x04
    assert taskfile(g) == SIGNATURE


def test_identify_packet_device_word_by_word(rig):
    m, drive, g = rig
    g.command(0xA1)
    assert g.irq_level()
    words = []
    for i in range(256):
        st = g.alt_status()
        assert st & 0x08 and st & 0x40, f"word {i}: status {st:#x}"
        assert not st & (0x80 | 0x20 | 0x01)
        words.append(m.inw(0x1F0))
    assert g.status() == 0x50  # DRDY | DSC, DRQ gone
    assert words[0] == 0x85C0
    raw = b"".join(w.to_bytes(2, "little") for w in words)
    model = bytes(b for i in range(54, 94, 2) for b in (raw[i + 1], raw[i]))
    assert model.decode().strip() == drive.personality.model
    serial = bytes(b for i in range(20, 40, 2) for b in (raw[i + 1], raw[i]))
    assert serial.decode().strip() == drive.personality.serial
    assert raw[510] == 0xA5 and sum(raw) % 256 == 0  # ATA integrity word
    assert words[49] & 0x0200  # LBA supported
    assert words[80] & 0x0080  # ATA/ATAPI-7


def test_a_command_written_during_drq_is_ignored(rig):
    m, drive, g = rig
    g.command(0xA1)
    first = m.inw(0x1F0)
    g.command(0xEC)  # ignored: DRQ is set
    assert g.alt_status() == 0x58
    rest = g.read_words(255)
    assert first == 0x85C0 and len(rest) == 510
    assert g.alt_status() == 0x50


def test_device_reset_in_the_middle_of_a_drq_block(rig):
    m, drive, g = rig
    g.clear_power_on_ua()
    g.packet([0x28, 0, 0, 0, 0, 16, 0, 0, 2], 2048)
    assert g.status() == 0x58
    g.read_words(100)
    g.command(0x08)  # DEVICE RESET is accepted while DRQ is set
    assert g.alt_status() == 0x00
    assert taskfile(g) == SIGNATURE and g.error() == 0x01
    assert not g.irq_level()
    assert m.inw(0x1F0) == 0  # the rest of the block is gone
    data, status = g.command_reply([0x25], 8)
    assert status == 0x50 and len(data) == 8


def test_execute_device_diagnostic_with_device_1_selected():
    m = Machine()
    m.add_dvd_drive(0, 0)
    m.add_dvd_drive(0, 1)
    g = Guest(m, 0)
    g.select(1)
    g.command(0x90)
    assert m.inb(0x1F6) == 0xA0  # device 0 reports the result: DEV cleared, bits 7/5 kept
    assert g.alt_status() == 0x00 and g.error() == 0x01
    assert taskfile(g) == SIGNATURE
    assert g.irq_level()  # device diagnostic protocol ends with INTRQ
    g.status()
    assert not g.irq_level()


def test_set_features_transfer_mode_and_unknown_subcommand(rig):
    m, drive, g = rig
    m.outb(0x1F1, 0x03)
    m.outb(0x1F2, 0x0C)  # PIO flow control mode 4
    g.command(0xEF)
    assert g.status() == 0x50
    m.outb(0x1F1, 0x03)
    m.outb(0x1F2, 0x0F)  # PIO mode 7 does not exist
    g.command(0xEF)
    assert g.status() == 0x41 and g.error() == 0x04
    m.outb(0x1F1, 0x77)
    g.command(0xEF)
    assert g.status() == 0x41


@pytest.mark.parametrize(
    "code,status,sector_count",
    [
        (0xE5, 0x50, 0xFF),  # CHECK POWER MODE: active
        (0xE1, 0x50, None),  # IDLE IMMEDIATE
        (0xE0, 0x50, None),  # STANDBY IMMEDIATE
        (0xE7, 0x50, None),  # FLUSH CACHE
        (0x00, 0x41, None),  # NOP: always aborted (ATA/ATAPI-7 vol 1 §6.21)
        (0xC4, 0x41, None),  # READ MULTIPLE: not for packet devices
        (0xFF, 0x41, None),
    ],
)
def test_simple_ata_commands(rig, code, status, sector_count):
    m, drive, g = rig
    g.command(code)
    assert g.irq_level()
    assert g.status() == status
    if sector_count is not None:
        assert m.inb(0x1F2) == sector_count


def test_standby_then_check_power_mode_reports_standby(rig):
    m, drive, g = rig
    g.command(0xE0)
    g.status()
    g.command(0xE5)
    assert g.status() == 0x50 and m.inb(0x1F2) == 0x00


def test_flush_cache_with_an_empty_drive():
    m = Machine()
    m.add_dvd_drive(0, 0)
    g = Guest(m, 0)
    g.command(0xE7)
    assert g.status() == 0x50


def test_data_port_outside_drq_is_ignored(rig):
    m, drive, g = rig
    before = (g.alt_status(), taskfile(g), g.error())
    assert m.inw(0x1F0) == 0 and m.inl(0x1F0) == 0
    m.outw(0x1F0, 0x1234)
    m.outl(0x1F0, 0xDEADBEEF)
    assert (g.alt_status(), taskfile(g), g.error()) == before
    assert g.m.ports.insw(0x1F0, 8).tolist() == [0] * 8


def test_overlapped_packet_is_aborted(rig):
    m, drive, g = rig
    m.outb(0x1F1, 0x02)
    g.command(0xA0)
    assert g.status() == 0x41 and g.error() == 0x04
    assert m.inb(0x1F2) == 0x03


def test_dma_packet_aborts_when_no_bus_master_is_wired():
    m = Machine()
    drive = m.add_dvd_drive(0, 0)
    drive.dma_capable = False
    g = Guest(m, 0)
    m.outb(0x1F1, 0x01)
    g.command(0xA0)
    assert g.status() == 0x41 and g.error() == 0x04


def identify_words(g: Guest) -> list[int]:
    g.command(0xA1)
    raw = g.read_words(256)
    g.status()
    return [int.from_bytes(raw[i : i + 2], "little") for i in range(0, 512, 2)]


def test_set_features_transfer_mode_shows_in_identify_packet_data(rig):
    """SET FEATURES 03h (ATA/ATAPI-7 vol 1 §6.47.11) selects a mode; IDENTIFY words
    63 and 88 report it in their high bytes (vol 1 table 26)."""
    m, drive, g = rig
    words = identify_words(g)
    assert words[49] & 0x0100  # DMA supported: the board has a bus-master engine
    assert words[63] == 0x0007 and words[88] == 0x003F  # supported, none selected
    m.outb(0x1F1, 0x03)
    m.outb(0x1F2, 0x42)  # 01000 010: Ultra DMA mode 2
    g.command(0xEF)
    assert g.status() == 0x50
    words = identify_words(g)
    assert words[88] == 0x003F | (1 << 10) and words[63] == 0x0007
    m.outb(0x1F1, 0x03)
    m.outb(0x1F2, 0x21)  # 00100 001: multiword DMA mode 1
    g.command(0xEF)
    g.status()
    words = identify_words(g)
    assert words[63] == 0x0007 | (1 << 9) and words[88] == 0x003F
