"""The rest of a DVD-ROM drive's command set: expected bytes from the standards.

READ SUB-CHANNEL (MMC-4 §6.29), PLAY AUDIO (10)/(12)/MSF (MMC-4 §6.15-6.17) on
a data track, VERIFY (10) and SYNCHRONIZE CACHE (MMC-5, SBC-2), REPORT LUNS
(SPC-3 §6.21), SEND KEY (MMC-5, against REPORT KEY §6.29 for a drive without
CSS), and SECURITY PROTOCOL IN (A2h), kept unsupported (05/20/00) on purpose.
Every command runs at the ports through ``tests.mmc_support.Host``.
"""

from __future__ import annotations

import pytest

from tests.mmc_support import (
    CD_SECTORS,
    DVD_SECTORS,
    ILLEGAL_MODE,
    INVALID_FIELD,
    LBA_RANGE,
    PARAM_LENGTH,
    FakeMedium,
    Host,
)

INVALID_OPCODE = (0x05, 0x20, 0x00)
NO_MEDIUM_CLOSED = (0x02, 0x3A, 0x01)


@pytest.fixture
def host() -> Host:
    return Host(FakeMedium(CD_SECTORS))


def read10(lba: int, count: int) -> list[int]:
    return [0x28, 0, *lba.to_bytes(4, "big"), 0, *count.to_bytes(2, "big"), 0]


def sub_channel(fmt: int, msf: bool = False, subq: bool = True, track: int = 0,
                alloc: int = 0xFFFF) -> list[int]:
    # 42 MSF SubQ format rsvd rsvd track alloc(2) control
    return [0x42, 0x02 if msf else 0, 0x40 if subq else 0, fmt, 0, 0, track,
            alloc >> 8, alloc & 0xFF, 0]


# -- READ SUB-CHANNEL -------------------------------------------------------------------

def test_read_sub_channel_current_position_lba_follows_the_last_read(host: Host) -> None:
    # Header: reserved, audio status 15h (none), data length 000Ch; then format 01h,
    # ADR 1 / control 4 (14h), track 1, index 1, absolute LBA, track-relative LBA.
    assert host.ok(sub_channel(1)) == bytes.fromhex("00 15 000c 01 14 01 01 00000000 00000000")
    host.ok(read10(100, 3))
    assert host.ok(sub_channel(1)) == bytes.fromhex("00 15 000c 01 14 01 01 00000067 00000067")


def test_read_sub_channel_current_position_msf(host: Host) -> None:
    host.ok(read10(100, 3))  # head at LBA 103: absolute 00:03:28 (103 + 150 frames),
    # track-relative 00:01:28 (103 frames from the track start)
    assert host.ok(sub_channel(1, msf=True)) == bytes.fromhex(
        "00 15 000c 01 14 01 01 0000031c 0000011c")  # 28 frames = 1Ch


def test_read_sub_channel_seek_moves_the_head(host: Host) -> None:
    assert host.ok([0x2B, 0, 0, 0, 0x01, 0x00, 0, 0, 0, 0]) == b""  # SEEK(10) to LBA 256
    assert host.ok(sub_channel(1))[8:16] == bytes.fromhex("00000100 00000100")


def test_read_sub_channel_media_catalog_number_is_not_recorded(host: Host) -> None:
    # Format 02h: data length 0014h; format, 3 reserved, MCVal=0, 15 zero MCN bytes.
    assert host.ok(sub_channel(2)) == bytes.fromhex("00 15 0014 02 000000 00") + bytes(15)


def test_read_sub_channel_isrc_of_the_data_track_is_not_valid(host: Host) -> None:
    # Format 03h for track 1: ADR/control 14h, track 1, TCVal=0, 15 zero ISRC bytes.
    expected = bytes.fromhex("00 15 0014 03 14 01 00 00") + bytes(15)
    assert host.ok(sub_channel(3, track=1)) == expected


def test_read_sub_channel_subq_0_returns_the_header_only(host: Host) -> None:
    assert host.ok(sub_channel(1, subq=False)) == bytes.fromhex("00 15 0000")


def test_read_sub_channel_truncates_to_the_allocation_length(host: Host) -> None:
    assert host.ok(sub_channel(1, alloc=6)) == bytes.fromhex("00 15 000c 01 14")


@pytest.mark.parametrize("cdb", [sub_channel(0), sub_channel(4), sub_channel(3, track=2),
                                 sub_channel(3, track=0)])
def test_read_sub_channel_reserved_format_or_missing_track_is_invalid_field(
        host: Host, cdb: list[int]) -> None:
    assert host.fails(cdb) == INVALID_FIELD


def test_read_sub_channel_needs_a_disc() -> None:
    assert Host(None).fails(sub_channel(1)) == NO_MEDIUM_CLOSED


def test_read_sub_channel_on_a_dvd_reports_the_one_fabricated_track() -> None:
    data = Host(FakeMedium(DVD_SECTORS)).ok(sub_channel(1))
    assert data[:8] == bytes.fromhex("00 15 000c 01 14 01 01")


# -- PLAY AUDIO on a data track -----------------------------------------------------------

@pytest.mark.parametrize("cdb", [
    [0x45, 0, 0, 0, 0, 0x10, 0, 0, 0x20, 0],  # PLAY AUDIO(10) LBA 16, 32 blocks
    [0xA5, 0, 0, 0, 0, 0x10, 0, 0, 0, 0x20, 0, 0],  # PLAY AUDIO(12)
    [0x47, 0, 0, 0, 2, 0, 0, 3, 0, 0],  # PLAY AUDIO MSF 00:02:00 to 00:03:00
    [0x45, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 1, 0],  # from the current position
    [0x47, 0, 0, 0xFF, 0xFF, 0xFF, 0, 3, 0, 0],  # MSF from the current position
])
def test_play_audio_of_the_data_track_is_illegal_mode_for_this_track(host: Host,
                                                                      cdb: list[int]) -> None:
    assert host.fails(cdb) == ILLEGAL_MODE


@pytest.mark.parametrize("cdb", [
    [0x45, 0, 0, 0, 0, 0x10, 0, 0, 0, 0],  # length 0
    [0xA5, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0],
    [0x47, 0, 0, 0, 2, 0, 0, 2, 0, 0],  # start = end
])
def test_play_audio_of_nothing_is_not_an_error(host: Host, cdb: list[int]) -> None:
    reply = host.run(cdb, bcl=0)  # non-data: a byte-count limit of 0 is fine
    assert reply.good and reply.status == 0x50 and reply.data == b""


def test_play_audio_off_the_disc_is_lba_out_of_range(host: Host) -> None:
    end = CD_SECTORS.to_bytes(4, "big")
    assert host.fails([0x45, 0, *end, 0, 0, 1, 0]) == LBA_RANGE
    assert host.fails([0x45, 0, 0, 0, 0x03, 0xE0, 0, 0, 0x10, 0]) == LBA_RANGE  # 992 + 16


def test_play_audio_msf_start_after_end_is_invalid_field(host: Host) -> None:
    assert host.fails([0x47, 0, 0, 0, 3, 0, 0, 2, 0, 0]) == INVALID_FIELD


def test_play_audio_needs_a_disc() -> None:
    assert Host(None).fails([0x45, 0, 0, 0, 0, 0, 0, 0, 1, 0]) == NO_MEDIUM_CLOSED


# -- VERIFY(10), SYNCHRONIZE CACHE --------------------------------------------------------

def test_verify10_checks_the_range_and_moves_no_data(host: Host) -> None:
    reply = host.run([0x2F, 0, 0, 0, 0, 0x10, 0, 0, 0x40, 0], bcl=0)
    assert reply.good and reply.data == b"" and reply.status == 0x50
    assert host.ok([0x2F, 0, 0, 0, 0x03, 0xE7, 0, 0, 0, 0]) == b""  # length 0 at the end


def test_verify10_range_errors_are_those_of_read(host: Host) -> None:
    assert host.fails([0x2F, 0, 0, 0, 0x03, 0xE0, 0, 0, 0x10, 0]) == LBA_RANGE
    assert host.fails(read10(0x3E0, 0x10)) == LBA_RANGE


def test_verify10_bytchk_is_not_supported(host: Host) -> None:
    assert host.fails([0x2F, 0x02, 0, 0, 0, 0x10, 0, 0, 1, 0]) == INVALID_FIELD


def test_verify10_needs_a_disc() -> None:
    assert Host(None).fails([0x2F, 0, 0, 0, 0, 0, 0, 0, 1, 0]) == NO_MEDIUM_CLOSED


@pytest.mark.parametrize("medium", [FakeMedium(CD_SECTORS), None])
def test_synchronize_cache_succeeds_with_nothing_to_flush(medium: FakeMedium | None) -> None:
    host = Host(medium)
    reply = host.run([0x35, 0x02, 0, 0, 0, 0, 0, 0, 0, 0], bcl=0)  # Immed=1
    assert reply.good and reply.status == 0x50 and reply.data == b""


# -- REPORT LUNS ---------------------------------------------------------------------------

def report_luns(select: int = 0, alloc: int = 16) -> list[int]:
    return [0xA0, 0, select, 0, 0, 0, *alloc.to_bytes(4, "big"), 0, 0]


@pytest.mark.parametrize("select", [0x00, 0x02])
def test_report_luns_lists_lun_0(host: Host, select: int) -> None:
    # LUN list length 8, 4 reserved bytes, LUN 0 in single-level format (8 zero bytes).
    assert host.ok(report_luns(select, 0x100)) == bytes.fromhex("00000008 00000000") + bytes(8)


def test_report_luns_well_known_lists_none(host: Host) -> None:
    assert host.ok(report_luns(0x01)) == bytes.fromhex("00000000 00000000")


def test_report_luns_truncates_and_rejects_reserved_select(host: Host) -> None:
    assert host.ok(report_luns(0, 4)) == bytes.fromhex("00000008")
    assert host.fails(report_luns(0x03)) == INVALID_FIELD


def test_report_luns_passes_a_unit_attention_and_works_empty() -> None:
    host = Host(None)
    host.drive.insert_medium(FakeMedium(CD_SECTORS))
    assert host.ok(report_luns()) == bytes.fromhex("00000008 00000000") + bytes(8)
    assert host.fails([0x00]) == (0x02, 0x3A, 0x00)  # the media-change sequence is intact
    assert host.fails([0x00]) == (0x06, 0x28, 0x00)


# -- SEND KEY ------------------------------------------------------------------------------

def send_key(fmt: int, agid: int = 0, length: int = 0, key_class: int = 0) -> list[int]:
    return [0xA3, 0, 0, 0, 0, 0, 0, key_class, length >> 8, length & 0xFF,
            (agid << 6) | fmt, 0]


def test_send_key_invalidate_agid_succeeds_like_report_key(host: Host) -> None:
    assert host.run(send_key(0x3F, agid=2), bcl=0).good
    assert host.ok([0xA4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x3F, 0]) == b""  # REPORT KEY 3Fh


def test_send_key_invalidate_agid_with_a_parameter_list_is_a_length_error(host: Host) -> None:
    assert host.fails(send_key(0x3F, length=8)) == PARAM_LENGTH


@pytest.mark.parametrize("cdb", [
    send_key(0x01, length=16),  # challenge key: no AGID was ever granted
    send_key(0x03, length=12),  # KEY2
    send_key(0x06, length=8),  # RPC structure: the region is the personality's
    send_key(0x3F, key_class=1),  # another key class
])
def test_send_key_css_formats_are_invalid_fields_as_in_report_key(host: Host,
                                                                  cdb: list[int]) -> None:
    assert host.fails(cdb) == INVALID_FIELD
    # REPORT KEY never grants an AGID (format 00h), so there is nothing to send a key for
    assert host.fails([0xA4, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0x00, 0]) == INVALID_FIELD


# -- SECURITY PROTOCOL IN and the probe count ---------------------------------------------

def test_security_protocol_in_stays_invalid_opcode(host: Host) -> None:
    # A2h belongs to the AACS feature (010Dh), which this drive does not report.
    assert host.fails([0xA2, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0]) == INVALID_OPCODE


PROBED = [0x00, 0x03, 0x12, 0x15, 0x1A, 0x1B, 0x1E, 0x23, 0x25, 0x28, 0x2B, 0x2F, 0x35,
          0x42, 0x43, 0x45, 0x46, 0x47, 0x4A, 0x51, 0x52, 0x55, 0x5A, 0x5C, 0xA0, 0xA2,
          0xA3, 0xA4, 0xA8, 0xAC, 0xAD, 0xB6, 0xB9, 0xBB, 0xBD, 0xBE]
"""The 36 MMC/SPC opcodes of the issue's probe."""


def test_at_least_33_of_the_36_probed_opcodes_are_answered(host: Host) -> None:
    assert len(set(PROBED)) == 36
    refused = [op for op in PROBED
               if host.run([op] + [0] * 11).sense == INVALID_OPCODE]
    assert refused == [0xA2]
