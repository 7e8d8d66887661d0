"""The PACKET PIO protocol at register level (ATA/ATAPI-7 vol 2 §11.8).

Modelled on QEMU's ide-test ``cdrom_pio`` / ``pio_large``: every step
asserts status, interrupt reason, byte count and the IRQ line.
"""

from __future__ import annotations

import numpy as np
import pytest

from emu.pc.machine import Machine
from tests.conftest import expected, read10
from tests.guest import Guest

DRQ_IN = 0x58  # DRDY | DSC | DRQ
DONE = 0x50  # DRDY | DSC
CHECK = 0x41  # DRDY | ERR


def start_packet(g: Guest, bcl: int) -> None:
    g.m.outb(g.base + 1, 0)
    g.m.outb(g.base + 4, bcl & 0xFF)
    g.m.outb(g.base + 5, bcl >> 8)
    g.command(0xA0)
    # HP1: the drive wants the packet; accelerated DRQ means no interrupt here.
    assert g.alt_status() == DRQ_IN
    assert g.reason() == 0x01  # CoD=1, IO=0
    assert not g.irq_level()


def pio_read(g: Guest, lba: int, count: int, bcl: int) -> tuple[bytes, list[int]]:
    """READ(10) by PIO, checking every DRQ block as QEMU's cdrom_pio_impl does."""
    start_packet(g, bcl)
    g.send_cdb(read10(lba, count))
    total = count * 2048
    limit = 0xFFFE if bcl == 0xFFFF else bcl
    data = bytearray()
    blocks = []
    while len(data) < total:
        assert g.irq_level(), "INTRQ at the start of each DRQ block"
        assert g.status() == DRQ_IN  # reading Status clears the interrupt
        assert not g.irq_level()
        assert g.reason() == 0x02  # IO=1, CoD=0: data to the host
        remaining = total - len(data)
        size = remaining if remaining <= limit else limit & ~1
        assert g.byte_count() == size
        blocks.append(size)
        data += g.read_words((size + 1) // 2)[:size]
    assert g.irq_level()
    assert g.status() == DONE
    assert g.reason() == 0x03
    assert g.error() == 0
    return bytes(data), blocks


def test_cdrom_pio_with_limit_5120_crosses_sector_boundaries(rig, pattern_lba):
    m, drive, g = rig
    g.clear_power_on_ua()
    data, blocks = pio_read(g, pattern_lba, 3, 5120)
    assert blocks == [5120, 1024]
    assert data == expected(pattern_lba, 3)


def test_cdrom_pio_large_is_four_blocks_of_5120(rig, pattern_lba):
    m, drive, g = rig
    g.clear_power_on_ua()
    data, blocks = pio_read(g, pattern_lba, 10, 5120)
    assert blocks == [5120] * 4
    assert data == expected(pattern_lba, 10)


@pytest.mark.parametrize(
    "bcl,blocks",
    [
        (2047, [2046] * 4 + [8192 - 4 * 2046]),  # odd limit: blocks rounded down to even
        (1000, [1000] * 8 + [192]),
        (0xFFFF, [8192]),  # FFFFh counts as FFFEh, larger than the transfer
        (0x8000, [8192]),
        (2048, [2048] * 4),
        (3, [2] * 4096),
    ],
)
def test_byte_count_limit_matrix(rig, pattern_lba, bcl, blocks):
    m, drive, g = rig
    g.clear_power_on_ua()
    count = 4
    if bcl == 3:
        # A tiny limit: 2-byte blocks; read them with single word accesses.
        start_packet(g, bcl)
        g.send_cdb(read10(pattern_lba, count))
        got = bytearray()
        while g.alt_status() & 0x08:
            assert g.byte_count() == 2
            got += m.inw(0x1F0).to_bytes(2, "little")
        assert len(got) == sum(blocks) and bytes(got) == expected(pattern_lba, count)
        assert g.status() == DONE
        return
    data, seen = pio_read(g, pattern_lba, count, bcl)
    assert seen == blocks
    assert data == expected(pattern_lba, count)


def test_limit_0xffff_splits_large_reads_into_0xfffe_blocks(rig, pattern_lba):
    m, drive, g = rig
    g.clear_power_on_ua()
    data, blocks = pio_read(g, pattern_lba, 40, 0xFFFF)
    assert blocks == [0xFFFE, 40 * 2048 - 0xFFFE]
    assert data == expected(pattern_lba, 40)


def test_limit_0_is_fine_for_test_unit_ready(rig):
    m, drive, g = rig
    g.clear_power_on_ua()
    start_packet(g, 0)
    g.send_cdb([0x00])
    assert g.irq_level()
    assert g.status() == DONE and g.reason() == 0x03


def test_limit_0_aborts_a_read_with_an_interrupt(rig, pattern_lba):
    m, drive, g = rig
    g.clear_power_on_ua()
    start_packet(g, 0)
    g.send_cdb(read10(pattern_lba, 1))
    assert g.irq_level()  # unlike QEMU, the abort is signalled
    assert g.status() == CHECK
    assert g.error() == 0x04
    assert g.reason() == 0x03
    # The drive still works.
    data, _ = pio_read(g, pattern_lba, 1, 2048)
    assert data == expected(pattern_lba, 1)


def test_limit_0_with_zero_blocks_completes_as_a_no_op(rig, pattern_lba):
    m, drive, g = rig
    g.clear_power_on_ua()
    start_packet(g, 0)
    g.send_cdb(read10(pattern_lba, 0))
    assert g.status() == DONE and g.reason() == 0x03


def test_odd_length_reply_is_padded_so_drq_clears(rig):
    m, drive, g = rig
    start_packet(g, 0xFFFE)
    g.send_cdb([0x12, 0, 0, 0, 5, 0])  # INQUIRY, allocation length 5
    assert g.status() == DRQ_IN
    assert g.byte_count() == 5
    words = [m.inw(0x1F0) for _ in range(3)]
    assert words[0] & 0xFF == 0x05  # peripheral type 5
    assert words[2] >> 8 == 0  # the pad byte
    assert g.status() == DONE


def test_32_bit_data_port_access(rig, pattern_lba):
    m, drive, g = rig
    g.clear_power_on_ua()
    start_packet(g, 2048)
    g.send_cdb(read10(pattern_lba, 2))
    out = bytearray()
    for _ in range(2):
        assert g.status() == DRQ_IN
        out += m.ports.insl(0x1F0, 512).tobytes()
    assert g.status() == DONE
    assert bytes(out) == expected(pattern_lba, 2)
    # Single dword accesses too.
    start_packet(g, 8)
    g.send_cdb([0x25])
    got = m.inl(0x1F0).to_bytes(4, "little") + m.inl(0x1F0).to_bytes(4, "little")
    assert int.from_bytes(got[:4], "big") == drive.medium.sector_count - 1
    assert g.status() == DONE


def test_a_whole_drq_block_moves_in_one_string_read(rig, pattern_lba):
    m, drive, g = rig
    g.clear_power_on_ua()
    calls = []
    original = drive.data_read_string
    drive.data_read_string = lambda w, out: (calls.append(out.size), original(w, out))[1]
    start_packet(g, 0xFFFE)
    g.send_cdb(read10(pattern_lba, 16))
    dest = np.zeros(16 * 2048, dtype=np.uint8)
    m.ports.insw_into(0x1F0, dest)
    assert calls == [16 * 1024]
    assert dest.tobytes() == expected(pattern_lba, 16)
    assert g.status() == DONE


def test_string_read_past_the_transfer_reads_zeros(rig, pattern_lba):
    m, drive, g = rig
    g.clear_power_on_ua()
    start_packet(g, 2048)
    g.send_cdb(read10(pattern_lba, 1))
    words = m.ports.insw(0x1F0, 1100)
    assert words[:1024].tobytes() == expected(pattern_lba, 1)
    assert not words[1024:].any()
    assert g.status() == DONE


def test_unknown_opcodes_fail_and_the_drive_keeps_working(rig, pattern_lba):
    m, drive, g = rig
    g.clear_power_on_ua()
    for opcode in (0x02, 0x0A, 0x2A, 0xFF, 0xC5):
        start_packet(g, 0xFFFE)
        g.send_cdb([opcode])
        assert g.irq_level()
        assert g.status() == CHECK
        assert g.error() == 0x50  # ILLEGAL REQUEST << 4
        assert g.reason() == 0x03
        assert g.sense() == (0x05, 0x20, 0x00)
    data, _ = pio_read(g, pattern_lba, 1, 2048)
    assert data == expected(pattern_lba, 1)


def test_seabios_polled_sequence_with_nien_never_raises_the_irq(machine, iso_medium, pattern_lba):
    """SeaBIOS: SRST with nIEN, IDENTIFY PACKET, TUR with limit 0, REQUEST SENSE
    with limit 18, READ(10) with limit 2048 — all polled, INTRQ never asserted."""
    m = machine
    m.add_dvd_drive(1, 0, iso_medium)
    g = Guest(m, 1)
    levels = []
    m.irqs[15].listeners.append(lambda n, level: levels.append(level))
    g.select(0)
    m.outb(0x172, 0x55)
    m.outb(0x173, 0xAA)
    assert (m.inb(0x172), m.inb(0x173)) == (0x55, 0xAA)
    g.control(0x06)
    g.control(0x02)
    assert g.alt_status() == 0x00
    g.select(0)
    g.command(0xA1)
    assert g.alt_status() == DRQ_IN
    ident = g.read_words(256)
    assert ident[:2] == b"\xc0\x85"
    assert g.alt_status() == DONE
    # TEST UNIT READY with a limit of 0: the power-on UNIT ATTENTION first.
    g.packet([0x00], 0)
    assert g.alt_status() == CHECK and g.error() == 0x60
    g.packet([0x03, 0, 0, 0, 18], 18)
    assert g.alt_status() == DRQ_IN and g.byte_count() == 18
    sense = g.read_words(9)
    assert (sense[2], sense[12], sense[13]) == (0x06, 0x29, 0x00)
    g.packet([0x00], 0)
    assert g.alt_status() == DONE
    g.packet(read10(pattern_lba, 3), 2048)
    got = bytearray()
    for _ in range(3):
        assert g.alt_status() == DRQ_IN and g.byte_count() == 2048
        got += g.read_words(1024)
    assert g.alt_status() == DONE
    assert bytes(got) == expected(pattern_lba, 3)
    assert levels == [] and not g.irq_level()


def test_cdb_written_with_single_byte_and_dword_accesses(rig):
    m, drive, g = rig
    start_packet(g, 0xFFFE)
    cdb = bytes([0x12, 0, 0, 0, 36, 0, 0, 0, 0, 0, 0, 0])
    for i in range(0, 12, 4):
        m.outl(0x1F0, int.from_bytes(cdb[i : i + 4], "little"))
    assert g.status() == DRQ_IN and g.byte_count() == 36


def test_packet_phase_ignores_data_reads(rig):
    m, drive, g = rig
    start_packet(g, 0xFFFE)
    assert m.inw(0x1F0) == 0
    assert g.alt_status() == DRQ_IN and g.reason() == 0x01


def test_empty_channel_machine_has_no_drive():
    m = Machine()
    assert m.inb(0x1F7) == 0xFF and m.inb(0x177) == 0xFF
