"""The SCSI core: dispatch order, sense handling, SPC commands and READ (SPC-3, MMC-5).

Expected bytes are worked out from the standards in each test.
"""

from __future__ import annotations

import pytest

from devices.media.iso import IsoImage
from devices.scsi.commands import MMC_COMMANDS, Command, Flag
from devices.scsi.target import MmcTarget, Status
from emu.pc.machine import Machine
from tests.conftest import expected, read10
from tests.guest import Guest


def test_power_on_unit_attention_is_reported_once_then_cleared(rig):
    m, drive, g = rig
    g.packet([0x00], 0)
    assert g.status() == 0x41 and g.error() == 0x60  # UNIT ATTENTION << 4
    assert g.sense() == (0x06, 0x29, 0x00)
    g.packet([0x00], 0)
    assert g.status() == 0x50
    assert g.sense() == (0x00, 0x00, 0x00)


def test_request_sense_keeps_a_pending_unit_attention(rig):
    # SPC-3 §5.9.7 option (a): no sense is pending, so NO SENSE; the UA stays for the
    # next ordinary command.
    m, drive, g = rig
    assert g.sense() == (0x00, 0x00, 0x00)
    g.packet([0x00], 0)
    assert g.status() == 0x41 and g.error() == 0x60
    assert g.sense() == (0x06, 0x29, 0x00)
    g.packet([0x00], 0)
    assert g.status() == 0x50


def test_inquiry_passes_a_unit_attention_without_consuming_it(rig):
    m, drive, g = rig
    data, status = g.command_reply([0x12, 0, 0, 0, 36, 0])
    assert status == 0x50 and len(data) == 36
    g.packet([0x00], 0)
    assert g.status() == 0x41
    assert g.sense() == (0x06, 0x29, 0x00)


def test_inquiry_standard_data(rig):
    m, drive, g = rig
    data, status = g.command_reply([0x12, 0, 0, 0, 96, 0])
    p = drive.personality
    want = bytes([0x05, 0x80, 0x05, 0x02, 31, 0, 0, 0])
    want += p.vendor.encode().ljust(8) + p.product.encode().ljust(16)
    want += p.revision.encode().ljust(4)
    assert status == 0x50
    assert data == want


@pytest.mark.parametrize("alloc", [0, 1, 5, 8, 35, 36, 255])
def test_inquiry_is_truncated_to_the_allocation_length(rig, alloc):
    m, drive, g = rig
    data, status = g.command_reply([0x12, 0, 0, 0, alloc, 0])
    assert status == 0x50
    assert len(data) == min(alloc, 36)
    assert data == g.command_reply([0x12, 0, 0, 0, 36, 0])[0][:alloc]


def test_inquiry_vpd_pages(rig):
    m, drive, g = rig
    p = drive.personality
    data, _ = g.command_reply([0x12, 1, 0x00, 0, 255, 0])
    assert data == bytes([0x05, 0x00, 0x00, 0x03, 0x00, 0x80, 0x83])
    data, _ = g.command_reply([0x12, 1, 0x80, 0, 255, 0])
    assert data == bytes([0x05, 0x80, 0x00, 20]) + p.serial.encode().ljust(20)
    data, _ = g.command_reply([0x12, 1, 0x83, 0, 255, 0])
    ident = p.vendor.encode().ljust(8) + p.product.encode().ljust(16) + p.serial.encode()
    assert data[:4] == bytes([0x05, 0x83, 0x00, 4 + len(ident)])
    assert data[4:8] == bytes([0x02, 0x01, 0x00, len(ident)]) and data[8:] == ident


@pytest.mark.parametrize("cdb", [[0x12, 0, 0x80, 0, 36, 0], [0x12, 1, 0x81, 0, 36, 0]])
def test_inquiry_invalid_fields(rig, cdb):
    m, drive, g = rig
    g.packet(cdb, 0xFFFE)
    assert g.status() == 0x41
    assert g.sense() == (0x05, 0x24, 0x00)


def test_request_sense_fixed_format_with_ascq_and_truncation(rig, pattern_lba):
    m, drive, g = rig
    g.clear_power_on_ua()
    g.packet(read10(10_000, 1), 2048)  # past the end
    assert g.status() == 0x41 and g.error() == 0x50
    data, status = g.command_reply([0x03, 0, 0, 0, 18, 0], 18)
    assert status == 0x50
    assert data == bytes([0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x21, 0x00, 0, 0, 0, 0])
    g.packet(read10(10_000, 1), 2048)
    g.status()
    data, _ = g.command_reply([0x03, 0, 0, 0, 4, 0], 18)
    assert data == bytes([0x70, 0, 0x05, 0])


def test_request_sense_descriptor_format_is_an_invalid_field(rig):
    m, drive, g = rig
    g.packet([0x03, 1, 0, 0, 18, 0], 18)
    assert g.status() == 0x41


def test_sense_is_cleared_by_the_next_successful_command(rig, pattern_lba):
    """QEMU keeps old sense across good commands; SPC-3 §4.5.1 does not."""
    m, drive, g = rig
    g.clear_power_on_ua()
    g.packet([0xFF], 0xFFFE)
    assert g.status() == 0x41
    g.packet([0x00], 0)
    assert g.status() == 0x50
    assert g.sense() == (0x00, 0x00, 0x00)


def test_read_capacity_comes_from_the_file_size(rig, patterned_iso):
    m, drive, g = rig
    g.clear_power_on_ua()
    data, status = g.command_reply([0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], 8)
    assert status == 0x50
    sectors = patterned_iso.stat().st_size // 2048
    assert sectors == 200  # padded past the ISO 9660 volume
    assert data == (sectors - 1).to_bytes(4, "big") + (2048).to_bytes(4, "big")


def test_read_past_the_end_and_zero_blocks(rig):
    m, drive, g = rig
    g.clear_power_on_ua()
    g.packet(read10(199, 2), 2048)
    assert g.status() == 0x41 and g.sense() == (0x05, 0x21, 0x00)
    g.packet(read10(199, 1), 2048)
    assert g.read_reply() == expected(199, 1)  # the padding past the volume is patterned
    assert g.status() == 0x50
    g.packet(read10(0, 0), 2048)
    assert g.status() == 0x50 and g.reason() == 0x03


def test_read12(rig, pattern_lba):
    m, drive, g = rig
    g.clear_power_on_ua()
    cdb = [0xA8, 0, *pattern_lba.to_bytes(4, "big"), 0, 0, 0, 5, 0, 0]
    g.packet(cdb, 0xFFFE)
    assert g.read_reply() == expected(pattern_lba, 5)
    assert g.status() == 0x50
    cdb = [0xA8, 0, 0, 0, 0, 190, 0, 0, 0, 11, 0, 0]
    g.packet(cdb, 0xFFFE)
    assert g.status() == 0x41 and g.sense() == (0x05, 0x21, 0x00)


def test_empty_drive_is_not_ready_with_tray_closed():
    m = Machine()
    m.add_dvd_drive(0, 0)
    g = Guest(m, 0)
    g.clear_power_on_ua()
    for cdb in ([0x00], [0x25], read10(0, 1)):
        g.packet(cdb, 2048)
        assert g.status() == 0x41 and g.error() == 0x20
        assert g.sense() == (0x02, 0x3A, 0x01)
    data, status = g.command_reply([0x12, 0, 0, 0, 36, 0])
    assert status == 0x50 and data[0] == 0x05


def test_media_change_sequence_not_ready_then_unit_attention_then_good(patterned_iso):
    m = Machine()
    drive = m.add_dvd_drive(0, 0)
    g = Guest(m, 0)
    g.clear_power_on_ua()
    medium = IsoImage(patterned_iso)
    try:
        with m.lock:
            drive.insert_medium(medium)
        g.packet([0x00], 0)
        assert g.status() == 0x41 and g.sense() == (0x02, 0x3A, 0x00)
        g.packet([0x00], 0)
        assert g.status() == 0x41 and g.sense() == (0x06, 0x28, 0x00)
        g.packet([0x00], 0)
        assert g.status() == 0x50 and g.sense() == (0x00, 0x00, 0x00)
    finally:
        medium.close()


def test_a_handler_bug_becomes_a_hardware_error_not_an_exception(rig):
    m, drive, g = rig
    g.clear_power_on_ua()

    def broken(unit, cdb):
        raise RuntimeError("bug")

    table = MMC_COMMANDS.copy()
    table.override(Command(0x25, "READ CAPACITY", broken, Flag.CHECK_READY))
    drive.target.table = table
    g.packet([0x25], 8)
    assert g.status() == 0x41 and g.error() == 0x40
    assert g.sense() == (0x04, 0x44, 0x00)


def test_the_dispatcher_checks_in_order():
    """Unknown opcode, then UNIT ATTENTION, then ready, then the data phase."""
    t = MmcTarget()
    out = t.execute(bytes([0xFF]) + bytes(11))
    assert out.status is Status.CHECK_CONDITION and (out.sense.asc, out.sense.ascq) == (0x20, 0)
    out = t.execute(bytes([0x25]) + bytes(11))
    assert out.sense.asc == 0x29  # UA beats not ready
    out = t.execute(bytes([0x25]) + bytes(11))
    assert (out.sense.key, out.sense.asc) == (0x02, 0x3A)
    out = t.execute(bytes([0x12, 0, 0, 0, 36]) + bytes(7), data_phase_ok=False)
    assert out.status is Status.ABORTED


def test_variant_tables_do_not_touch_the_base_table():
    table = MMC_COMMANDS.copy()
    table.override(Command(0x00, "TUR variant", lambda u, c: None, Flag.NONDATA))
    assert MMC_COMMANDS.get(0x00).name == "TEST UNIT READY"
    with pytest.raises(ValueError):
        MMC_COMMANDS.command(0x00, "again")(lambda u, c: None)
