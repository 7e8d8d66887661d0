"""READ TOC/PMA/ATIP (MMC-5 §6.26), READ DISC INFORMATION (§6.22), READ TRACK INFORMATION
(§6.27) on a 1000-sector CD image: one data track at LBA 0, lead-out at LBA 1000
(03E8h; MSF = 1150 frames = 00:15:25)."""

from __future__ import annotations

import pytest

from devices.scsi.mmc_toc import address
from tests.mmc_support import (
    CD_SECTORS,
    DVD_SECTORS,
    INVALID_FIELD,
    LBA_RANGE,
    FakeMedium,
    Host,
)

TOC_LBA = bytes.fromhex("0012 01 01" "00 14 01 00 00000000" "00 14 aa 00 000003e8")
TOC_MSF = bytes.fromhex("0012 01 01" "00 14 01 00 00000200" "00 14 aa 00 00000f19")
SESSION_LBA = bytes.fromhex("000a 01 01" "00 14 01 00 00000000")
SESSION_MSF = bytes.fromhex("000a 01 01" "00 14 01 00 00000200")
FULL_TOC = bytes.fromhex(
    "002e 01 01"
    "01 14 00 a0 000000 00 01 00 00"  # A0: first track 1, disc type 00h
    "01 14 00 a1 000000 00 01 00 00"  # A1: last track 1
    "01 14 00 a2 000000 00 00 0f 19"  # A2: lead-out at 00:15:25
    "01 14 00 01 000000 00 00 02 00"  # track 1 at 00:02:00
)


def toc(fmt: int = 0, msf: bool = False, track: int = 0, alloc: int = 0xFFFF,
        byte9: int = 0) -> list[int]:
    # 43 MSF format rsvd(3) track alloc(2) control
    return [0x43, 0x02 if msf else 0, fmt, 0, 0, 0, track, alloc >> 8, alloc & 0xFF, byte9]


@pytest.fixture
def host() -> Host:
    return Host(FakeMedium(CD_SECTORS))


def test_read_toc_format0_lba_lists_track_1_and_the_lead_out(host: Host) -> None:
    assert host.ok(toc()) == TOC_LBA


def test_read_toc_msf_format0_lists_leadout_as_aa(host: Host) -> None:
    assert host.ok(toc(msf=True)) == TOC_MSF


def test_read_toc_starting_track_aa_returns_only_the_lead_out(host: Host) -> None:
    assert host.ok(toc(track=0xAA)) == bytes.fromhex("000a 01 01 00 14 aa 00 000003e8")
    assert host.ok(toc(track=1)) == TOC_LBA


@pytest.mark.parametrize("track", [2, 0x63, 0xA9, 0xAB, 0xFF])
def test_read_toc_starting_track_past_the_last_is_invalid_field(host: Host, track: int) -> None:
    assert host.fails(toc(track=track)) == INVALID_FIELD


def test_read_toc_format1_session_information(host: Host) -> None:
    assert host.ok(toc(fmt=1)) == SESSION_LBA
    assert host.ok(toc(fmt=1, msf=True)) == SESSION_MSF


def test_read_toc_format2_full_toc_is_always_msf(host: Host) -> None:
    assert host.ok(toc(fmt=2)) == FULL_TOC
    assert host.ok(toc(fmt=2, msf=True)) == FULL_TOC
    assert host.ok(toc(fmt=2, track=1)) == FULL_TOC
    assert host.fails(toc(fmt=2, track=2)) == INVALID_FIELD


def test_read_toc_format_falls_back_to_byte_9(host: Host) -> None:
    # SFF-8020 drivers put the format in byte 9 bits 7-6 and leave byte 2 zero.
    assert host.ok(toc(byte9=0x40)) == SESSION_LBA
    assert host.ok(toc(byte9=0x80)) == FULL_TOC
    assert host.ok(toc(fmt=1, byte9=0x80)) == SESSION_LBA  # byte 2 wins when set
    assert host.fails(toc(byte9=0xC0)) == INVALID_FIELD  # 11b: PMA


@pytest.mark.parametrize("fmt", [3, 4, 5, 6, 0xF])
def test_read_toc_pma_atip_cdtext_and_reserved_formats_are_invalid(host: Host, fmt: int) -> None:
    assert host.fails(toc(fmt=fmt)) == INVALID_FIELD


@pytest.mark.parametrize("alloc", [0, 1, 4, 12, 19])
def test_read_toc_truncates_to_allocation_length(host: Host, alloc: int) -> None:
    assert host.ok(toc(alloc=alloc)) == TOC_LBA[:alloc]
    assert host.ok(toc(fmt=2, alloc=alloc)) == FULL_TOC[:alloc]


def test_read_toc_needs_a_medium() -> None:
    assert Host(None).fails(toc()) == (0x02, 0x3A, 0x01)


def test_read_toc_of_a_dvd_reports_one_track() -> None:
    host = Host(FakeMedium(DVD_SECTORS))  # 361000 sectors = 0005 8228h, MSF 80:15:25
    assert host.ok(toc()) == bytes.fromhex(
        "0012 01 01 00 14 01 00 00000000 00 14 aa 00 00058228")
    assert host.ok(toc(msf=True))[-4:] == bytes([0, 80, 15, 25])


def test_toc_msf_addresses_past_255_minutes_saturate() -> None:
    assert address(255 * 4500 + 59 * 75 + 74 - 150, True) == bytes([0, 255, 59, 74])
    assert address(2_000_000, True) == bytes([0, 255, 59, 74])
    assert address(2_000_000, False) == (2_000_000).to_bytes(4, "big")


# -- READ DISC INFORMATION -----------------------------------------------------------------
DISC_INFO = bytes.fromhex(
    "0020"  # length 32
    "0e"  # last session complete, disc finalized
    "01 01 01 01"  # first track, sessions, first/last track of last session
    "20"  # unrestricted use
    "00"  # disc type CD-DA / CD-ROM
    "00 00 00"  # MSBs
    "00000000"  # disc identification
    "ffffffff ffffffff"  # lead-in / last possible lead-out: none on a finalized disc
    "0000000000000000"  # bar code
    "00 00"  # application code, OPC tables
)


def disc_info(data_type: int = 0, alloc: int = 34) -> list[int]:
    return [0x51, data_type, 0, 0, 0, 0, 0, alloc >> 8, alloc & 0xFF, 0]


def test_read_disc_information_standard(host: Host) -> None:
    assert len(DISC_INFO) == 34
    assert host.ok(disc_info()) == DISC_INFO


@pytest.mark.parametrize("data_type", [1, 2, 3, 7])
def test_read_disc_information_other_types_are_invalid(host: Host, data_type: int) -> None:
    assert host.fails(disc_info(data_type)) == INVALID_FIELD


@pytest.mark.parametrize("alloc", [0, 2, 8, 33, 100])
def test_read_disc_information_truncates(host: Host, alloc: int) -> None:
    assert host.ok(disc_info(alloc=alloc)) == DISC_INFO[:alloc]


def test_read_disc_information_needs_a_medium() -> None:
    assert Host(None).fails(disc_info()) == (0x02, 0x3A, 0x01)


# -- READ TRACK INFORMATION ----------------------------------------------------------------
def track_info(kind: int, value: int, alloc: int = 48) -> list[int]:
    return [0x52, kind, *value.to_bytes(4, "big"), 0, alloc >> 8, alloc & 0xFF, 0]


def track_reply(size: int, blocking: int) -> bytes:
    return (bytes.fromhex("002e 01 01 00 04 01 00" "00000000 00000000 00000000")
            + blocking.to_bytes(4, "big") + size.to_bytes(4, "big")
            + (size - 1).to_bytes(4, "big") + bytes(16))


def test_read_track_information_by_track_lba_and_session(host: Host) -> None:
    expected = track_reply(1000, 0)
    assert len(expected) == 48
    assert host.ok(track_info(1, 1)) == expected
    assert host.ok(track_info(0, 0)) == expected
    assert host.ok(track_info(0, 999)) == expected
    assert host.ok(track_info(2, 1)) == expected


def test_read_track_information_dvd_blocking_factor_16() -> None:
    host = Host(FakeMedium(DVD_SECTORS))
    assert host.ok(track_info(1, 1)) == track_reply(DVD_SECTORS, 16)


@pytest.mark.parametrize("kind, value, sense", [
    (0, 1000, LBA_RANGE),
    (1, 0, INVALID_FIELD),  # lead-in
    (1, 2, INVALID_FIELD),
    (1, 0xFF, INVALID_FIELD),  # invisible track: none on a finalized disc
    (2, 0, INVALID_FIELD),
    (2, 2, INVALID_FIELD),
    (3, 1, INVALID_FIELD),  # reserved type
])
def test_read_track_information_bad_addresses(
        host: Host, kind: int, value: int, sense: tuple[int, int, int]) -> None:
    assert host.fails(track_info(kind, value)) == sense


@pytest.mark.parametrize("alloc", [0, 4, 36, 47])
def test_read_track_information_truncates(host: Host, alloc: int) -> None:
    assert host.ok(track_info(1, 1, alloc)) == track_reply(1000, 0)[:alloc]
