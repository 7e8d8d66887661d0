"""What Linux and Windows send to a new DVD drive, answered without one CHECK CONDITION;
and the PIO data-out phase (ATA/ATAPI-7 vol 2 §11.8: HP4 with IO=0, CoD=0) at the
register level.

The CDBs are the ones those drivers build (Linux ``sr``/``cdrom``/udev ``cdrom_id``;
Windows ``cdrom.sys``), written out as bytes; the drive sees them after the
power-on UNIT ATTENTION was consumed, as each OS's first TEST UNIT READY does.
"""

from __future__ import annotations

import pytest

from tests.guest import STATUS_DRDY, STATUS_DRQ, STATUS_DSC, STATUS_ERR
from tests.mmc_support import CD_SECTORS, DVD_SECTORS, FakeMedium, Host

LINUX = [
    "12 00 00 00 24 00",  # INQUIRY, 36 bytes (scsi scan)
    "00 00 00 00 00 00",  # TEST UNIT READY
    "46 00 00 00 00 00 00 00 08 00",  # GET CONFIGURATION header (sr: current profile)
    "46 02 00 00 00 00 00 00 08 00",  # ... RT=2 (cdrom: feature probes)
    "46 00 00 00 00 00 00 ff ff 00",  # cdrom_id: whole feature list
    "5a 00 2a 00 00 00 00 00 80 00",  # MODE SENSE(10) capabilities (sr get_capabilities)
    "4a 01 00 00 10 00 00 00 08 00",  # GET EVENT STATUS NOTIFICATION, media class, polled
    "25 00 00 00 00 00 00 00 00 00",  # READ CAPACITY
    "51 00 00 00 00 00 00 00 22 00",  # READ DISC INFORMATION (cdrom_id)
    "43 00 00 00 00 00 00 00 0c 00",  # READ TOC header + first track
    "43 00 00 00 00 00 01 ff ff 00",  # READ TOC from track 1
    "43 00 01 00 00 00 00 00 0c 00",  # READ TOC session info (multisession)
    "43 02 02 00 00 00 00 08 00 00",  # READ TOC full TOC, MSF
    "52 01 00 00 00 01 00 00 30 00",  # READ TRACK INFORMATION track 1
    "1e 00 00 00 01 00",  # PREVENT MEDIUM REMOVAL (mount)
    "28 00 00 00 00 10 00 00 01 00",  # READ(10) the volume descriptor
    "1e 00 00 00 00 00",  # ALLOW MEDIUM REMOVAL (umount)
    "bb 00 ff ff ff ff 00 00 00 00 00 00",  # SET CD SPEED: fastest
]
WINDOWS = [
    "12 00 00 00 24 00",  # INQUIRY
    "00 00 00 00 00 00",  # TEST UNIT READY
    "46 00 00 00 00 00 00 00 08 00",  # GET CONFIGURATION allocation 8 (XP setup, ReactOS)
    "46 02 00 1f 00 00 00 00 10 00",  # RT=2: DVD Read feature
    "46 02 00 03 00 00 00 00 10 00",  # RT=2: Removable Medium
    "46 01 00 00 00 00 00 04 00 00",  # RT=1: current features
    "5a 00 2a 00 00 00 00 00 20 00",  # MODE SENSE(10) capabilities, 32 bytes
    "5a 08 2a 00 00 00 00 01 00 00",  # ... with DBD
    "5a 00 0e 00 00 00 00 00 18 00",  # MODE SENSE(10) CD audio control (volume)
    "5a 00 01 00 00 00 00 00 14 00",  # error recovery page
    "23 00 00 00 00 00 00 00 fc 00",  # READ FORMAT CAPACITIES
    "25 00 00 00 00 00 00 00 00 00",  # READ CAPACITY
    "43 02 00 00 00 00 00 03 24 00",  # READ TOC MSF (CDROM_TOC, 804 bytes)
    "43 00 01 00 00 00 00 00 0c 00",  # READ TOC session information
    "51 00 00 00 00 00 00 00 22 00",  # READ DISC INFORMATION
    "4a 01 00 00 10 00 00 00 08 00",  # GESN media poll
    "bd 00 00 00 00 00 00 00 00 08 00 00",  # MECHANISM STATUS
    "ac 10 00 00 00 00 00 00 00 01 00 00",  # GET PERFORMANCE nominal
    "ac 00 00 00 00 00 00 00 00 10 03 00",  # GET PERFORMANCE write speeds
    "5c 00 00 00 00 00 00 00 0c 00",  # READ BUFFER CAPACITY
    "a8 00 00 00 00 10 00 00 00 01 00 00",  # READ(12) the volume descriptor
    "be 00 00 00 00 10 00 00 01 10 00 00",  # READ CD user data
    "2b 00 00 00 00 10 00 00 00 00",  # SEEK(10)
]
WINDOWS_DVD = [
    "a4 00 00 00 00 00 00 00 00 08 08 00",  # REPORT KEY: RPC state (region)
    "ad 00 00 00 00 00 00 00 08 04 00 00",  # READ DVD STRUCTURE physical, 2052 bytes
    "ad 00 00 00 00 00 00 01 00 08 00 00",  # READ DVD STRUCTURE copyright
    "ad 00 00 00 00 00 00 ff 00 40 00 00",  # structure list
]
WINDOWS_CD = [
    "be 00 00 00 00 10 00 00 01 f8 00 00",  # READ CD raw (Windows Media Player, burners)
    "be 00 00 00 00 10 00 00 01 f8 02 00",  # ... with formatted Q
    "b9 00 00 00 02 10 00 02 11 f8 00 00",  # READ CD MSF
]


def run_all(host: Host, cdbs: list[str]) -> None:
    for text in cdbs:
        reply = host.run(bytes.fromhex(text))
        assert reply.good, f"{text}: CHECK CONDITION {reply.sense}"


@pytest.mark.parametrize("sectors", [CD_SECTORS, DVD_SECTORS])
def test_linux_probe_sequence_sees_no_check_condition(sectors: int) -> None:
    run_all(Host(FakeMedium(sectors)), LINUX)


def test_windows_probe_sequence_on_a_dvd_sees_no_check_condition() -> None:
    run_all(Host(FakeMedium(DVD_SECTORS)), WINDOWS + WINDOWS_DVD)


def test_windows_probe_sequence_on_a_cd_sees_no_check_condition() -> None:
    run_all(Host(FakeMedium(CD_SECTORS)), WINDOWS + WINDOWS_CD)


def test_empty_drive_probe_answers_the_commands_that_need_no_medium() -> None:
    host = Host(None)
    run_all(host, [
        "12 00 00 00 24 00",
        "46 00 00 00 00 00 00 00 08 00",
        "46 00 00 00 00 00 00 ff ff 00",
        "4a 01 00 00 10 00 00 00 08 00",
        "5a 00 2a 00 00 00 00 00 80 00",
        "23 00 00 00 00 00 00 00 fc 00",
        "a4 00 00 00 00 00 00 00 00 08 08 00",
        "bd 00 00 00 00 00 00 00 00 08 00 00",
    ])
    assert host.run(bytes.fromhex("00 00 00 00 00 00")).sense == (0x02, 0x3A, 0x01)


# -- the PIO data-out phase at the register level --------------------------------------------
PAGE_0E = bytes.fromhex("0e0e 04 0000000000 02 80 01 40 00000000")
SELECT = bytes(8) + PAGE_0E  # 24 bytes: header + CD audio control page


def mode_select10(n: int) -> bytes:
    return bytes([0x55, 0x10, 0, 0, 0, 0, 0, n >> 8, n & 0xFF, 0, 0, 0])


def test_data_out_opens_a_drq_block_with_io_0_cod_0_and_an_interrupt() -> None:
    host = Host(FakeMedium(CD_SECTORS))
    g = host.guest
    g.packet(mode_select10(len(SELECT)), 0xFFFE)
    regs = g.regs()
    assert regs.status == STATUS_DRDY | STATUS_DSC | STATUS_DRQ
    assert regs.reason == 0x00  # IO=0 (to the device), CoD=0 (data)
    assert regs.byte_count == 24
    assert g.irq_level()
    assert g.status() & STATUS_DRQ and not g.irq_level()  # the status read clears INTRQ
    host.machine.ports.outsw(g.base, SELECT)
    regs = g.regs()
    assert regs.status == STATUS_DRDY | STATUS_DSC and regs.reason == 0x03
    assert g.irq_level()
    assert host.unit.mode_state[0x0E] == PAGE_0E


def test_data_out_is_split_by_the_byte_count_limit_and_taken_word_by_word() -> None:
    host = Host(FakeMedium(CD_SECTORS))
    g = host.guest
    g.packet(mode_select10(len(SELECT)), 10)
    sizes = []
    sent = 0
    while g.alt_status() & STATUS_DRQ:
        assert g.reason() == 0x00
        n = g.byte_count()
        sizes.append(n)
        g.status()  # acknowledge the block's interrupt
        for i in range(sent, sent + n, 2):  # one OUTW at a time
            host.machine.outw(g.base, SELECT[i] | (SELECT[i + 1] << 8))
        sent += n
    assert sizes == [10, 10, 4]
    assert g.status() == STATUS_DRDY | STATUS_DSC
    assert host.unit.mode_state[0x0E] == PAGE_0E


def test_data_out_with_an_odd_limit_rounds_blocks_down_to_even() -> None:
    host = Host(FakeMedium(CD_SECTORS))
    reply = host.run_out(mode_select10(len(SELECT)), SELECT, bcl=7)
    assert reply.good
    assert host.unit.mode_state[0x0E] == PAGE_0E


def test_data_out_with_dword_string_writes() -> None:
    host = Host(FakeMedium(CD_SECTORS))
    g = host.guest
    g.packet(mode_select10(len(SELECT)), 0xFFFE)
    host.machine.ports.outsl(g.base, SELECT)
    assert g.status() == STATUS_DRDY | STATUS_DSC
    assert host.unit.mode_state[0x0E] == PAGE_0E


def test_data_out_with_an_odd_length_takes_a_padded_last_word() -> None:
    host = Host(FakeMedium(CD_SECTORS))
    params = bytes(8) + PAGE_0E + b"\x01"  # 25 bytes: a stray byte after the page
    reply = host.run_out(mode_select10(len(params)), params)
    assert reply.sense == (0x05, 0x1A, 0x00)  # the list ends inside a (second) page header


def test_data_out_error_in_the_parameter_list_ends_in_check_condition() -> None:
    host = Host(FakeMedium(CD_SECTORS))
    bad = bytes(8) + bytes.fromhex("0e0e 04 0000000000 02 80 01 40 0000ff00")
    g = host.guest
    g.packet(mode_select10(len(bad)), 0xFFFE)
    host.machine.ports.outsw(g.base, bad)
    regs = g.regs()
    assert regs.status == STATUS_DRDY | STATUS_ERR and regs.error == 0x50 and regs.reason == 3
    assert g.sense() == (0x05, 0x26, 0x00)


def test_data_out_with_byte_count_limit_0_is_aborted() -> None:
    host = Host(FakeMedium(CD_SECTORS))
    g = host.guest
    g.packet(mode_select10(len(SELECT)), 0)
    regs = g.regs()
    assert regs.status == STATUS_DRDY | STATUS_ERR and regs.error == 0x04  # ABRT
    assert host.unit.pending_out is None


def test_reads_during_a_data_out_block_are_ignored_and_reset_drops_it() -> None:
    host = Host(FakeMedium(CD_SECTORS))
    g = host.guest
    g.packet(mode_select10(len(SELECT)), 0xFFFE)
    assert host.machine.inw(g.base) == 0  # wrong direction: reads 0, changes nothing
    assert g.alt_status() & STATUS_DRQ and g.byte_count() == 24
    g.command(0x08)  # DEVICE RESET while DRQ is pending
    assert not g.alt_status() & STATUS_DRQ
    assert host.unit.pending_out is None
    assert 0x0E not in host.unit.mode_state
    run_all(host, ["5a 00 0e 00 00 00 00 00 18 00"])  # the drive still works
