"""Bus-master DMA (SFF-8038i) with the ATAPI drive, at register level.

Modelled on QEMU's ide-test: ``cdrom_dma`` (feature 1, PACKET, READ(10), BM
start with the direction bit, wait for INTERRUPT, IRQ level = INTERRUPT,
status DRDY without BSY/DRQ, reading Status clears the IRQ) and the
``bmdma`` PRD variants (shorter / equal / longer than the transfer, abort by
clearing START).  Expected values come from SFF-8038i §2.2's
Interrupt/Active table; data is checked against the patterned image.
"""

from __future__ import annotations

import numpy as np
import pytest

from devices.ide.bmdma import BusMasterDma
from emu.firmware.ata import AtaHostDriver, CommandFailed, supports_dma
from emu.pc.machine import Machine
from tests.conftest import expected, read10
from tests.guest import Guest

BM = 0xC000  # channel 0's bus-master block (channel 1 at 0xC008)
BM_CMD, BM_STATUS, BM_PRDT = BM, BM + 2, BM + 4
START, TO_MEMORY = 0x01, 0x08
ACTIVE, ERROR, INTR = 0x01, 0x02, 0x04
PRDT = 0x1000  # where the tests put their PRD table
BUF = 0x10000  # where the data goes
DRDY_DSC, DRQ_WAIT, CHECK = 0x50, 0x58, 0x41


def write_prdt(m: Machine, entries: list[tuple[int, int]], at: int = PRDT) -> None:
    """PRD entries (address, byte count; 0x10000 is written as 0), EOT on the last."""
    raw = bytearray()
    for i, (address, count) in enumerate(entries):
        raw += address.to_bytes(4, "little")
        raw += (count & 0xFFFF).to_bytes(2, "little")
        raw += (0x8000 if i == len(entries) - 1 else 0).to_bytes(2, "little")
    m.memory.write(at, bytes(raw))


def prepare_engine(m: Machine, prdt: int = PRDT) -> None:
    """QEMU's send_dma_request: stop the engine, clear INTERRUPT, set the table."""
    m.outb(BM_CMD, 0)
    m.outb(BM_STATUS, INTR | ERROR)
    m.outl(BM_PRDT, prdt)


def dma_packet(g: Guest, cdb: bytes) -> None:
    """PACKET with features bit 0 (DMA), then the CDB."""
    g.select(0)
    g.m.outb(g.base + 1, 0x01)
    g.m.outb(g.base + 4, 0)
    g.m.outb(g.base + 5, 0)
    g.command(0xA0)
    assert g.alt_status() == DRQ_WAIT  # HP1: the drive wants the packet
    assert g.reason() == 0x01
    g.send_cdb(cdb)


def bm_status(m: Machine) -> int:
    return m.inb(BM_STATUS)


def assert_completed_good(g: Guest) -> None:
    """After DMA: IRQ level = INTERRUPT, DRDY without BSY/DRQ, Status read clears IRQ."""
    assert g.irq_level() == bool(bm_status(g.m) & INTR)
    assert g.irq_level()
    status = g.status()
    assert status == DRDY_DSC
    assert g.reason() == 0x03
    assert g.error() == 0
    assert not g.irq_level()


def test_cdrom_dma_reads_one_sector_like_qemu_ide_test(rig, pattern_lba):
    m, drive, g = rig
    g.clear_power_on_ua()
    assert drive.dma_capable
    write_prdt(m, [(BUF, 2048)])
    prepare_engine(m)
    dma_packet(g, read10(pattern_lba, 1))
    # HP3: data waits for the engine; no interrupt yet, engine idle.
    assert g.alt_status() == DRQ_WAIT
    assert not g.irq_level()
    assert bm_status(m) == 0
    m.outb(BM_CMD, START | TO_MEMORY)
    assert bm_status(m) == INTR  # PRD list exactly as long as the transfer
    assert_completed_good(g)
    assert m.memory.read(BUF, 2048) == expected(pattern_lba, 1)
    m.outb(BM_CMD, 0)
    assert bm_status(m) == INTR
    m.outb(BM_STATUS, INTR)  # write 1 to clear
    assert bm_status(m) == 0


def test_engine_started_before_the_packet_moves_data_when_the_drive_is_ready(rig, pattern_lba):
    m, _, g = rig
    g.clear_power_on_ua()
    write_prdt(m, [(BUF, 4 * 2048)])
    prepare_engine(m)
    m.outb(BM_CMD, START | TO_MEMORY)
    assert bm_status(m) == ACTIVE  # started, waiting for the device
    dma_packet(g, read10(pattern_lba + 3, 4))
    assert bm_status(m) == INTR
    assert_completed_good(g)
    assert m.memory.read(BUF, 4 * 2048) == expected(pattern_lba + 3, 4)


def test_multi_sector_read_scatters_along_the_prd_list(rig, pattern_lba):
    m, _, g = rig
    g.clear_power_on_ua()
    regions = [(0x20000, 6144), (0x40000, 1024), (0x30000, 9216), (0x50000, 2048 * 27)]
    total = sum(n for _, n in regions)
    assert total % 2048 == 0
    sectors = total // 2048  # 35: entries split sectors at 1024-byte points
    write_prdt(m, regions)
    prepare_engine(m)
    dma_packet(g, read10(pattern_lba, sectors))
    m.outb(BM_CMD, START | TO_MEMORY)
    assert bm_status(m) == INTR
    assert_completed_good(g)
    want = expected(pattern_lba, sectors)
    done = 0
    for address, count in regions:
        assert m.memory.read(address, count) == want[done : done + count]
        done += count


def test_one_numpy_copy_and_one_notification_per_prd_entry(rig, pattern_lba, monkeypatch):
    m, _, g = rig
    g.clear_power_on_ua()
    write_prdt(m, [(0x20000, 2048), (0x28000, 4096), (0x30000, 6144)])
    prepare_engine(m)
    dma_packet(g, read10(pattern_lba, 6))
    copies: list[int] = []
    real_copyto = np.copyto

    def counting_copyto(dst, src, *args, **kwargs):  # type: ignore[no-untyped-def]
        copies.append(np.asarray(dst).size)
        return real_copyto(dst, src, *args, **kwargs)

    written: list[tuple[int, int]] = []
    m.memory.write_listeners.append(lambda start, end: written.append((start, end)))
    monkeypatch.setattr(np, "copyto", counting_copyto)
    m.outb(BM_CMD, START | TO_MEMORY)
    monkeypatch.undo()
    assert copies == [2048, 4096, 6144]
    assert written == [(0x20000, 0x20800), (0x28000, 0x29000), (0x30000, 0x31800)]
    assert m.memory.read(0x30000, 6144) == expected(pattern_lba + 3, 3)


# -- PRD shorter / equal / longer (QEMU test_bmdma_various_prdts) -------------------------


@pytest.mark.parametrize("sectors", [1, 2, 4, 8, 16, 32])
def test_prd_sizes_against_the_transfer_follow_the_interrupt_active_table(rig, pattern_lba,
                                                                          sectors):
    """SFF-8038i §2.2: equal → INTR; longer → INTR|ACTIVE; shorter → neither, no ERROR.

    QEMU's loop: PRD sizes 0..65280 step 256 (0 meaning 64 KiB); after a restart
    with START cleared right away, longer reads INTR only.
    """
    m, drive, g = rig
    g.clear_power_on_ua()
    req = sectors * 2048
    want = expected(pattern_lba, sectors)
    for size in range(0, 0x10000, 256):
        prd = size or 0x10000
        m.memory.view(BUF, 0x10000)[:] = 0xEE
        write_prdt(m, [(BUF, size)])
        prepare_engine(m)
        dma_packet(g, read10(pattern_lba, sectors))
        m.outb(BM_CMD, START | TO_MEMORY)
        status = bm_status(m)
        if prd > req:
            assert status == INTR | ACTIVE, size
        elif prd == req:
            assert status == INTR, size
        else:
            assert status == 0, size
        assert g.irq_level() == bool(status & INTR)
        moved = min(prd, req)
        assert m.memory.read(BUF, moved) == want[:moved]
        assert m.memory.read(BUF + moved, 0x10000 - moved) == b"\xee" * (0x10000 - moved)
        m.outb(BM_CMD, 0)  # QEMU's abort: clear START
        assert bm_status(m) == (INTR if prd >= req else 0), size
        if prd >= req:
            assert g.status() == DRDY_DSC
        else:
            # The drive still holds the rest: DRQ, no ERR, no interrupt.
            assert g.alt_status() == DRQ_WAIT
            assert not g.irq_level()
            g.command(0x08)  # DEVICE RESET is the way out
            assert g.alt_status() == 0x00
            assert drive.dma_source().size == 0


def test_prd_byte_count_zero_means_64k(rig, pattern_lba):
    m, _, g = rig
    g.clear_power_on_ua()
    write_prdt(m, [(BUF, 0x10000)])  # written as count 0
    assert m.memory.read(PRDT + 4, 2) == b"\0\0"
    prepare_engine(m)
    dma_packet(g, read10(pattern_lba, 32))
    m.outb(BM_CMD, START | TO_MEMORY)
    assert bm_status(m) == INTR  # exactly 64 KiB: equal
    assert_completed_good(g)
    assert m.memory.read(BUF, 0x10000) == expected(pattern_lba, 32)


def test_short_prd_then_a_new_table_takes_the_rest(rig, pattern_lba):
    m, _, g = rig
    g.clear_power_on_ua()
    write_prdt(m, [(BUF, 2048)])
    prepare_engine(m)
    dma_packet(g, read10(pattern_lba, 3))
    m.outb(BM_CMD, START | TO_MEMORY)
    assert bm_status(m) == 0
    assert g.alt_status() == DRQ_WAIT
    write_prdt(m, [(0x30000, 4096)], at=0x1800)
    m.outb(BM_CMD, TO_MEMORY)
    m.outl(BM_PRDT, 0x1800)
    m.outb(BM_CMD, START | TO_MEMORY)
    assert bm_status(m) == INTR
    assert_completed_good(g)
    assert m.memory.read(BUF, 2048) + m.memory.read(0x30000, 4096) == expected(pattern_lba, 3)


def test_longer_prd_keeps_active_and_the_next_command_continues_along_the_list(rig,
                                                                              pattern_lba):
    m, _, g = rig
    g.clear_power_on_ua()
    write_prdt(m, [(0x20000, 2048), (0x28000, 2048)])
    prepare_engine(m)
    m.outb(BM_CMD, START | TO_MEMORY)
    dma_packet(g, read10(pattern_lba + 5, 1))
    assert bm_status(m) == INTR | ACTIVE
    assert_completed_good(g)
    m.outb(BM_STATUS, INTR)
    dma_packet(g, read10(pattern_lba + 9, 1))  # no restart: the cursor is at entry 1
    assert bm_status(m) == INTR
    assert_completed_good(g)
    assert m.memory.read(0x20000, 2048) == expected(pattern_lba + 5, 1)
    assert m.memory.read(0x28000, 2048) == expected(pattern_lba + 9, 1)


# -- memory faults -------------------------------------------------------------------------


def assert_dma_fault(m: Machine, g: Guest, before: np.ndarray) -> None:
    """ERROR set, ACTIVE clear, nothing written, CHECK CONDITION 0B/4B/00 with INTRQ."""
    status = bm_status(m)
    assert status & ERROR
    assert not status & ACTIVE
    assert status & INTR  # the drive's completion interrupt latched it
    assert g.irq_level()
    assert np.array_equal(m.memory.data, before), "guest RAM must be unchanged"
    assert g.status() == CHECK
    assert g.error() == 0xB0  # ABORTED COMMAND << 4
    assert g.reason() == 0x03
    m.outb(BM_CMD, 0)
    m.outb(BM_STATUS, ERROR | INTR)
    assert bm_status(m) == 0
    assert g.sense() == (0x0B, 0x4B, 0x00)


@pytest.mark.parametrize(
    "entries",
    [
        [(16 << 20, 2048)],  # entirely past RAM
        [((16 << 20) - 1024, 2048)],  # straddles the end of RAM
        [(BUF, 2048), (0xFFFF0000, 4096)],  # second entry bad: the first is not written either
    ],
    ids=["past-ram", "straddles-end", "second-entry"],
)
def test_prd_entry_outside_memory_sets_error_and_writes_nothing(rig, pattern_lba, entries):
    m, _, g = rig
    g.clear_power_on_ua()
    write_prdt(m, entries)
    prepare_engine(m)
    dma_packet(g, read10(pattern_lba, 3))
    before = m.memory.data.copy()
    m.outb(BM_CMD, START | TO_MEMORY)
    assert_dma_fault(m, g, before)


def test_prd_table_outside_memory_sets_error(rig, pattern_lba):
    m, _, g = rig
    g.clear_power_on_ua()
    prepare_engine(m, prdt=0xFFFFFFF0)
    dma_packet(g, read10(pattern_lba, 1))
    before = m.memory.data.copy()
    m.outb(BM_CMD, START | TO_MEMORY)
    assert_dma_fault(m, g, before)


def test_prd_table_running_off_the_end_of_memory_sets_error(rig, pattern_lba):
    m, _, g = rig
    g.clear_power_on_ua()
    last = (16 << 20) - 8
    m.memory.write(last, BUF.to_bytes(4, "little") + (2048).to_bytes(4, "little"))  # no EOT
    prepare_engine(m, prdt=last)
    dma_packet(g, read10(pattern_lba, 2))
    before = m.memory.data.copy()
    m.outb(BM_CMD, START | TO_MEMORY)
    assert_dma_fault(m, g, before)


def test_wrong_direction_bit_is_an_engine_error(rig, pattern_lba):
    m, _, g = rig
    g.clear_power_on_ua()
    write_prdt(m, [(BUF, 2048)])
    prepare_engine(m)
    dma_packet(g, read10(pattern_lba, 1))
    before = m.memory.data.copy()
    m.outb(BM_CMD, START)  # memory to device, but the drive has data for memory
    assert_dma_fault(m, g, before)


# -- abort by clearing START -----------------------------------------------------------------


def test_clearing_start_before_the_data_aborts_and_device_reset_recovers(rig, pattern_lba):
    m, drive, g = rig
    g.clear_power_on_ua()
    write_prdt(m, [(BUF, 2048)])
    prepare_engine(m)
    m.outb(BM_CMD, START | TO_MEMORY)
    assert bm_status(m) == ACTIVE
    m.outb(BM_CMD, TO_MEMORY)  # stop: SFF-8038i §2.1, the transfer is abandoned
    assert bm_status(m) == 0
    before = m.memory.data.copy()
    dma_packet(g, read10(pattern_lba, 1))
    assert np.array_equal(m.memory.data, before)
    assert bm_status(m) == 0
    assert g.alt_status() == DRQ_WAIT
    assert not g.irq_level()
    g.command(0x00)  # ignored while DRQ is set
    assert g.alt_status() == DRQ_WAIT
    g.command(0x08)  # DEVICE RESET
    assert g.alt_status() == 0x00
    assert drive.dma_source().size == 0
    assert np.array_equal(m.memory.data, before)
    # The drive works again (DEVICE RESET keeps the packet command set state).
    write_prdt(m, [(BUF, 2048)])
    prepare_engine(m)
    dma_packet(g, read10(pattern_lba, 1))
    m.outb(BM_CMD, START | TO_MEMORY)
    assert_completed_good(g)
    assert m.memory.read(BUF, 2048) == expected(pattern_lba, 1)


# -- non-read replies ------------------------------------------------------------------------


def test_inquiry_by_dma_matches_the_pio_reply(rig):
    m, _, g = rig
    inquiry = bytes([0x12, 0, 0, 0, 36, 0])
    pio, status = g.command_reply(inquiry)  # INQUIRY passes the power-on UNIT ATTENTION
    assert status == DRDY_DSC and len(pio) == 36
    m.memory.view(BUF, 256)[:] = 0xEE
    write_prdt(m, [(BUF, 256)])
    prepare_engine(m)
    dma_packet(g, inquiry)
    m.outb(BM_CMD, START | TO_MEMORY)
    assert bm_status(m) == INTR | ACTIVE  # 256-byte region, 36-byte reply: longer
    assert_completed_good(g)
    assert m.memory.read(BUF, 36) == pio
    assert m.memory.read(BUF + 36, 220) == b"\xee" * 220


def test_nondata_command_with_dma_bit_completes_without_the_engine(rig):
    m, _, g = rig
    prepare_engine(m)
    dma_packet(g, bytes(12))  # TEST UNIT READY: reports the power-on UNIT ATTENTION
    assert g.status() == CHECK
    assert bm_status(m) == INTR  # the completion interrupt's edge still latches
    dma_packet(g, bytes(12))
    assert g.status() == DRDY_DSC
    assert bm_status(m) == INTR


# -- registers --------------------------------------------------------------------------------


def test_status_register_bits_follow_sff8038i(rig, pattern_lba):
    m, _, g = rig
    m.outb(BM_STATUS, 0xFF)
    assert bm_status(m) == 0x60  # only the drive-DMA-capable bits are plain R/W
    m.outb(BM_STATUS, 0x00)
    assert bm_status(m) == 0x00
    m.outl(BM_PRDT, 0x12345677)
    assert m.inl(BM_PRDT) == 0x12345674  # bits 1-0 read as zero
    m.outb(BM_PRDT + 1, 0xAB)
    assert m.inl(BM_PRDT) == 0x1234AB74
    m.outb(BM_CMD, 0xFF)
    assert m.inb(BM_CMD) == START | TO_MEMORY
    assert bm_status(m) == ACTIVE
    m.outb(BM_CMD, 0)
    assert m.inw(BM_CMD) == 0


def test_interrupt_stays_clear_until_the_next_rising_edge(rig, pattern_lba):
    m, _, g = rig
    g.clear_power_on_ua()
    write_prdt(m, [(BUF, 2048)])
    prepare_engine(m)
    dma_packet(g, read10(pattern_lba, 1))
    m.outb(BM_CMD, START | TO_MEMORY)
    assert g.irq_level()
    m.outb(BM_STATUS, INTR)  # cleared while the line is still high
    assert bm_status(m) == 0
    assert g.irq_level()
    assert g.status() == DRDY_DSC  # the line drops; no new edge
    assert bm_status(m) == 0


def test_second_channel_engine_is_at_base_plus_8(machine, iso_medium, pattern_lba):
    m = machine
    m.add_dvd_drive(1, 0, iso_medium)
    g = Guest(m, 1)
    g.clear_power_on_ua()
    write_prdt(m, [(BUF, 2048)])
    m.outb(BM + 8, 0)
    m.outl(BM + 12, PRDT)
    g.select(0)
    g.m.outb(g.base + 1, 1)
    g.command(0xA0)
    g.send_cdb(read10(pattern_lba, 1))
    m.outb(BM + 8, START | TO_MEMORY)
    assert m.inb(BM + 10) == INTR
    assert bm_status(m) == 0  # channel 0's engine saw nothing
    assert g.status() == DRDY_DSC
    assert m.memory.read(BUF, 2048) == expected(pattern_lba, 1)


def test_identify_packet_reports_dma_only_with_an_engine(iso_medium):
    with_engine = Machine()
    drive = with_engine.add_dvd_drive(0, 0, iso_medium)
    word = _identify_words(Guest(with_engine, 0))
    assert drive.dma_capable
    assert word[49] & 0x0100
    assert word[63] & 0x0007 and word[88] & 0x003F
    without = Machine(bus_master=False)
    bare = without.add_dvd_drive(0, 0, iso_medium)
    assert not bare.dma_capable
    assert not _identify_words(Guest(without, 0))[49] & 0x0100
    g = Guest(without, 0)
    g.m.outb(g.base + 1, 1)
    g.command(0xA0)  # PACKET with DMA and no engine: aborted
    assert g.status() == CHECK
    assert g.error() == 0x04


def _identify_words(g: Guest) -> np.ndarray:
    g.select(0)
    g.command(0xA1)
    return g.insw_array(256)


def test_engine_reset_and_port_range(machine):
    engine = machine.bus_masters[0]
    assert isinstance(engine, BusMasterDma)
    assert machine.ide.channels[0].bus_master is engine
    rng = engine.port_range()
    assert (rng.base, rng.length) == (0xC000, 8)
    assert machine.bus_masters[1].port_range().base == 0xC008


# -- firmware DMA mode -------------------------------------------------------------------------


def test_firmware_dma_mode_reads_the_same_bytes_as_pio(rig, pattern_lba):
    m, _, _ = rig
    pio = AtaHostDriver(m.ports, m.memory)
    dev = pio.probe()[0]
    assert supports_dma(dev)
    pio.wait_ready(dev)
    pio.read_sectors(dev, pattern_lba, 40, 0x100000)
    dma = AtaHostDriver(m.ports, m.memory, use_dma=True)
    dma.read_sectors(dev, pattern_lba, 40, 0x208000)  # crosses several 64 KiB boundaries
    want = expected(pattern_lba, 40)
    assert m.memory.read(0x100000, 40 * 2048) == want
    assert m.memory.read(0x208000, 40 * 2048) == want
    assert m.inb(BM_STATUS) & 0x20  # firmware marked drive 0 DMA capable
    assert not m.inb(BM_STATUS) & (ACTIVE | ERROR | INTR)


def test_firmware_prd_table_splits_at_64k_boundaries(machine):
    fw = AtaHostDriver(machine.ports, machine.memory)
    assert fw.build_prd_table(0x1F000, 0x12000) == 3
    raw = machine.memory.read(0x0800, 24)
    assert raw[0:8] == (0x1F000).to_bytes(4, "little") + (0x1000).to_bytes(4, "little")
    assert raw[8:16] == (0x20000).to_bytes(4, "little") + (0).to_bytes(4, "little")  # 64 KiB
    assert raw[16:24] == (0x30000).to_bytes(4, "little") + (0x80001000).to_bytes(4, "little")
    assert fw.build_prd_table(0x30000, 0x10000) == 1
    assert machine.memory.read(0x0800, 8) == (0x30000).to_bytes(4, "little") + bytes(
        [0, 0, 0, 0x80])


def test_firmware_dma_reports_check_condition(rig):
    m, _, _ = rig
    fw = AtaHostDriver(m.ports, m.memory, use_dma=True)
    dev = fw.probe()[0]
    fw.wait_ready(dev)
    with pytest.raises(CommandFailed) as info:
        fw.read_sectors(dev, 10_000, 1, 0x100000)  # past the end of the disc
    assert info.value.error >> 4 == 0x05
    assert fw.request_sense(dev) == (0x05, 0x21, 0x00)


# -- data-out by DMA (MODE SELECT(10) parameter list from memory) ---------------------------
#
# Expected bytes are written out from SPC-3 / MMC-5: MODE SELECT(10) is 55h, byte 1 PF (10h),
# bytes 7-8 the parameter list length; the list is the 8-byte mode parameter header(10) (no
# block descriptors) and the CD Audio Control page 0Eh (page length 0Eh).  MODE SENSE(10)
# returns the same header with mode data length = 6 + the page bytes.

P0E_DEFAULT = bytes.fromhex("0e0e 04 0000000000 01ff 02ff 00000000")  # IMMED, ports 0/1 full
P0E_NEW = bytes.fromhex("0e0e 06 0000000000 02 10 01 20 00000000")  # SOTC, channels swapped
P0E_BAD = bytes.fromhex("0e0e 04 0000000000 01 80 02 40 00000001")  # port 3 volume is fixed
INVALID_PARAM = (0x05, 0x26, 0x00)  # ILLEGAL REQUEST / INVALID FIELD IN PARAMETER LIST


def mode_select10(length: int) -> bytes:
    return bytes([0x55, 0x10, 0, 0, 0, 0, 0, length >> 8, length & 0xFF, 0, 0, 0])


def audio_page(g: Guest) -> bytes:
    """MODE SENSE(10) of page 0Eh (current values) by PIO."""
    reply, status = g.command_reply(bytes([0x5A, 0, 0x0E, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0, 0]))
    assert status == DRDY_DSC
    return reply


def with_header10(page: bytes) -> bytes:
    return (6 + len(page)).to_bytes(2, "big") + bytes(6) + page


def start_mode_select_by_dma(g: Guest, params: bytes, entries: list[tuple[int, int]]) -> None:
    """Parameter list in RAM at the PRD regions, engine prepared, PACKET + CDB; the drive
    then waits in HP3 with DRQ and no interrupt."""
    m = g.m
    done = 0
    for address, count in entries:
        m.memory.write(address, params[done : done + count])
        done += count
    write_prdt(m, entries)
    prepare_engine(m)
    dma_packet(g, mode_select10(len(params)))
    assert g.alt_status() == DRQ_WAIT
    assert not g.irq_level()
    assert bm_status(m) == 0


def test_mode_select10_by_dma_changes_the_page(rig):
    m, drive, g = rig
    g.clear_power_on_ua()
    assert audio_page(g) == with_header10(P0E_DEFAULT)
    params = bytes(8) + P0E_NEW
    start_mode_select_by_dma(g, params, [(BUF, len(params))])
    m.outb(BM_CMD, START)  # direction bit 0: memory to device
    assert bm_status(m) == INTR  # PRD list exactly as long as the transfer
    assert_completed_good(g)
    assert drive.target.pending_out is None
    assert audio_page(g) == with_header10(P0E_NEW)


@pytest.mark.parametrize("extra, want", [(0, INTR), (2048, INTR | ACTIVE)], ids=["equal", "longer"])
def test_mode_select10_by_dma_scatters_with_one_copy_per_prd_entry(rig, monkeypatch, extra,
                                                                   want):
    m, _, g = rig
    g.clear_power_on_ua()
    params = bytes(8) + P0E_NEW
    entries = [(0x20000, 10), (0x30000, 14 + extra)]
    start_mode_select_by_dma(g, params, entries)
    copies: list[int] = []
    real_copyto = np.copyto

    def counting_copyto(dst, src, *args, **kwargs):  # type: ignore[no-untyped-def]
        copies.append(np.asarray(dst).size)
        return real_copyto(dst, src, *args, **kwargs)

    monkeypatch.setattr(np, "copyto", counting_copyto)
    m.outb(BM_CMD, START)
    monkeypatch.undo()
    assert copies == [10, 14]
    assert bm_status(m) == want
    assert_completed_good(g)
    assert audio_page(g) == with_header10(P0E_NEW)


def test_mode_select10_by_dma_short_prd_list_waits_then_a_new_table_takes_the_rest(rig):
    m, _, g = rig
    g.clear_power_on_ua()
    params = bytes(8) + P0E_NEW
    start_mode_select_by_dma(g, params, [(BUF, 8)])
    m.memory.write(0x30000, params[8:])
    m.outb(BM_CMD, START)
    assert bm_status(m) == 0  # shorter: no INTERRUPT, no ACTIVE, no ERROR
    assert g.alt_status() == DRQ_WAIT  # the drive still wants 16 bytes
    assert not g.irq_level()
    write_prdt(m, [(0x30000, 16)], at=0x1800)
    m.outb(BM_CMD, 0)
    m.outl(BM_PRDT, 0x1800)
    m.outb(BM_CMD, START)
    assert bm_status(m) == INTR
    assert_completed_good(g)
    assert audio_page(g) == with_header10(P0E_NEW)


def test_mode_select10_by_dma_with_an_invalid_list_is_check_condition(rig):
    m, _, g = rig
    g.clear_power_on_ua()
    params = bytes(8) + P0E_BAD
    start_mode_select_by_dma(g, params, [(BUF, len(params))])
    m.outb(BM_CMD, START)
    assert bm_status(m) == INTR  # the engine moved everything; the command failed
    assert g.irq_level() == bool(bm_status(m) & INTR)
    assert g.status() == CHECK
    assert g.error() == 0x50  # ILLEGAL REQUEST << 4
    assert g.reason() == 0x03
    assert not g.irq_level()
    assert g.sense() == INVALID_PARAM
    assert audio_page(g) == with_header10(P0E_DEFAULT)


def test_mode_select10_by_dma_with_the_wrong_direction_bit_is_an_engine_error(rig):
    m, drive, g = rig
    g.clear_power_on_ua()
    params = bytes(8) + P0E_NEW
    start_mode_select_by_dma(g, params, [(BUF, len(params))])
    before = m.memory.data.copy()
    m.outb(BM_CMD, START | TO_MEMORY)  # device to memory, but the drive wants data
    assert_dma_fault(m, g, before)
    assert drive.target.pending_out is None
    assert audio_page(g) == with_header10(P0E_DEFAULT)


@pytest.mark.parametrize(
    "entries",
    [
        [(16 << 20, 24)],  # entirely past RAM
        [((16 << 20) - 8, 24)],  # straddles the end of RAM
        [(BUF, 8), (0xFFFF0000, 16)],  # second entry bad: the first is not consumed either
    ],
    ids=["past-ram", "straddles-end", "second-entry"],
)
def test_mode_select10_by_dma_from_outside_memory_is_an_error_and_changes_nothing(rig,
                                                                                  entries):
    m, drive, g = rig
    g.clear_power_on_ua()
    m.memory.write(BUF, bytes(8) + P0E_NEW[:16])
    write_prdt(m, entries)
    prepare_engine(m)
    dma_packet(g, mode_select10(24))
    before = m.memory.data.copy()
    m.outb(BM_CMD, START)
    assert drive.dma_sink().size == 0
    assert_dma_fault(m, g, before)
    assert drive.target.pending_out is None
    assert audio_page(g) == with_header10(P0E_DEFAULT)
