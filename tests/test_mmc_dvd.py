"""READ DVD STRUCTURE, REPORT KEY, READ FORMAT CAPACITIES, GET PERFORMANCE, READ BUFFER
CAPACITY, SET CD SPEED, SET STREAMING, MECHANISM STATUS and SEEK(10) (MMC-5 §6.23, §6.29,
§6.24, §6.8, §6.18 and the speed/mechanism commands).

The DVD is 361000 sectors (0005 8228h): its data area is physical sectors
030000h .. 030000h + 361000 - 1 = 088227h (ECMA-267 §3.3.2).
"""

from __future__ import annotations

import pytest

from tests.mmc_support import (
    CD_SECTORS,
    DVD_SECTORS,
    INCOMPATIBLE,
    INVALID_FIELD,
    INVALID_PARAM,
    LBA_RANGE,
    PARAM_LENGTH,
    FakeMedium,
    Host,
)


@pytest.fixture
def dvd() -> Host:
    return Host(FakeMedium(DVD_SECTORS))


@pytest.fixture
def cd() -> Host:
    return Host(FakeMedium(CD_SECTORS))


# -- READ DVD STRUCTURE --------------------------------------------------------------------
def structure(fmt: int, layer: int = 0, media_type: int = 0, alloc: int = 0xFFFF) -> list[int]:
    # AD media-type address(4) layer format alloc(2) AGID control
    return [0xAD, media_type, 0, 0, 0, 0, layer, fmt, alloc >> 8, alloc & 0xFF, 0, 0]


PHYSICAL = (bytes.fromhex("0802 0000" "01 02 01 00" "00030000" "00088227" "00000000" "00")
            + bytes(2048 - 17))
COPYRIGHT = bytes.fromhex("0006 0000 00 00 0000")
MANUFACTURING = bytes.fromhex("0802 0000") + bytes(2048)
LIST_DVD = bytes.fromhex("0012 0000" "00 40 0800" "01 40 0004" "04 40 0800" "ff 40 0010")
LIST_CD = bytes.fromhex("0012 0000" "00 00 0800" "01 00 0004" "04 00 0800" "ff 40 0010")


def test_read_dvd_structure_physical_format_starts_at_030000h(dvd: Host) -> None:
    data = dvd.ok(structure(0x00))
    assert len(data) == 2052
    assert data == PHYSICAL


def test_read_dvd_structure_copyright_manufacturing_and_list(dvd: Host) -> None:
    assert dvd.ok(structure(0x01)) == COPYRIGHT
    assert dvd.ok(structure(0x04)) == MANUFACTURING
    assert dvd.ok(structure(0xFF)) == LIST_DVD


@pytest.mark.parametrize("alloc", [0, 4, 8, 21, 2051])
def test_read_dvd_structure_truncates(dvd: Host, alloc: int) -> None:
    assert dvd.ok(structure(0x00, alloc=alloc)) == PHYSICAL[:alloc]


@pytest.mark.parametrize("fmt", [0x00, 0x01, 0x04])
def test_read_dvd_structure_of_a_cd_is_incompatible_medium(cd: Host, fmt: int) -> None:
    assert cd.fails(structure(fmt)) == INCOMPATIBLE


def test_read_dvd_structure_list_on_a_cd_marks_nothing_readable(cd: Host) -> None:
    assert cd.ok(structure(0xFF)) == LIST_CD


@pytest.mark.parametrize("cdb", [
    structure(0x02),  # disc key: CSS
    structure(0x03),  # BCA
    structure(0x05),
    structure(0x80),  # AACS
    structure(0xC0),
    structure(0x00, layer=1),  # single-layer disc
    structure(0x00, media_type=1),  # BD
])
def test_read_dvd_structure_invalid_fields(dvd: Host, cdb: list[int]) -> None:
    assert dvd.fails(cdb) == INVALID_FIELD


def test_read_dvd_structure_needs_a_medium() -> None:
    assert Host(None).fails(structure(0x00)) == (0x02, 0x3A, 0x01)


# -- REPORT KEY ----------------------------------------------------------------------------
def report_key(fmt: int, key_class: int = 0, alloc: int = 8, agid: int = 0) -> list[int]:
    # A4 rsvd LBA(4) rsvd key-class alloc(2) AGID|format control
    return [0xA4, 0, 0, 0, 0, 0, 0, key_class, alloc >> 8, alloc & 0xFF, (agid << 6) | fmt, 0]


RPC_STATE = bytes.fromhex("0006 0000" "25" "ff" "01" "00")  # type 0, 4 resets, 5 changes


def test_report_key_rpc_state(dvd: Host) -> None:
    assert dvd.ok(report_key(0x08)) == RPC_STATE


def test_report_key_rpc_state_works_without_a_medium() -> None:
    assert Host(None).ok(report_key(0x08)) == RPC_STATE


@pytest.mark.parametrize("alloc", [0, 2, 4, 7])
def test_report_key_truncates(dvd: Host, alloc: int) -> None:
    assert dvd.ok(report_key(0x08, alloc=alloc)) == RPC_STATE[:alloc]


def test_report_key_invalidate_agid_succeeds_with_no_data(dvd: Host) -> None:
    assert dvd.ok(report_key(0x3F, alloc=0)) == b""


@pytest.mark.parametrize("fmt", [0x00, 0x01, 0x02, 0x04, 0x05, 0x11, 0x06, 0x3E])
def test_report_key_css_formats_are_invalid_without_css(dvd: Host, fmt: int) -> None:
    assert dvd.fails(report_key(fmt)) == INVALID_FIELD


def test_report_key_other_key_class_is_invalid(dvd: Host) -> None:
    assert dvd.fails(report_key(0x08, key_class=0x20)) == INVALID_FIELD


# -- READ FORMAT CAPACITIES ----------------------------------------------------------------
def format_capacities(alloc: int = 12) -> list[int]:
    return [0x23, 0, 0, 0, 0, 0, 0, alloc >> 8, alloc & 0xFF, 0]


def test_read_format_capacities_of_a_disc(cd: Host, dvd: Host) -> None:
    # list length 8; 1000 blocks, descriptor type 10b (formatted), block length 2048
    assert cd.ok(format_capacities()) == bytes.fromhex("00000008 000003e8 02 000800")
    assert dvd.ok(format_capacities()) == bytes.fromhex("00000008 00058228 02 000800")


def test_read_format_capacities_empty_drive_reports_no_media() -> None:
    assert Host(None).ok(format_capacities()) == bytes.fromhex("00000008 00000000 03 000800")


@pytest.mark.parametrize("alloc", [0, 4, 8])
def test_read_format_capacities_truncates(cd: Host, alloc: int) -> None:
    assert cd.ok(format_capacities(alloc)) == bytes.fromhex("00000008 000003e8 02 000800")[:alloc]


# -- GET PERFORMANCE -----------------------------------------------------------------------
def performance(byte1: int = 0x10, kind: int = 0, max_desc: int = 1) -> list[int]:
    # AC type-specific LBA(4) rsvd(2) max-descriptors(2) type control
    return [0xAC, byte1, 0, 0, 0, 0, 0, 0, max_desc >> 8, max_desc & 0xFF, kind, 0]


def test_get_performance_nominal_over_the_whole_disc(cd: Host, dvd: Host) -> None:
    # header: length 20, Write 0, Except 0; LBA 0 at 8467 kB/s (48x CD) to LBA 999
    assert cd.ok(performance()) == bytes.fromhex(
        "00000014 00000000" "00000000 00002113 000003e7 00002113")
    # DVD: 22160 kB/s (16x DVD) = 5690h up to LBA 58227h
    assert dvd.ok(performance()) == bytes.fromhex(
        "00000014 00000000" "00000000 00005690 00058227 00005690")


def test_get_performance_follows_set_cd_speed(cd: Host) -> None:
    cd.ok([0xBB, 0, 0x02, 0xC2, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0])  # 706 kB/s
    assert cd.ok(performance())[8:] == bytes.fromhex("00000000 000002c2 000003e7 000002c2")


@pytest.mark.parametrize("byte1, kind, max_desc, expected", [
    (0x10, 0, 0, "00000004 00000000"),  # no descriptors asked for
    (0x14, 0, 5, "00000004 02000000"),  # write performance: none
    (0x11, 0, 5, "00000004 01000000"),  # exceptions: none
    (0x12, 0, 5, "00000004 01000000"),
    (0x00, 3, 5, "00000004 00000000"),  # write speed descriptors: none
])
def test_get_performance_empty_lists(cd: Host, byte1: int, kind: int, max_desc: int,
                                     expected: str) -> None:
    assert cd.ok(performance(byte1, kind, max_desc)) == bytes.fromhex(expected)


@pytest.mark.parametrize("byte1, kind", [
    (0x13, 0),  # Except 11b: reserved
    (0x00, 0),  # tolerance 00b
    (0x18, 0),  # tolerance 11b
    (0x10, 1),  # unusable area
    (0x10, 4),  # DBI
])
def test_get_performance_invalid_fields(cd: Host, byte1: int, kind: int) -> None:
    assert cd.fails(performance(byte1, kind)) == INVALID_FIELD


# -- READ BUFFER CAPACITY ------------------------------------------------------------------
def buffer_capacity(block: int = 0, alloc: int = 12) -> list[int]:
    return [0x5C, block, 0, 0, 0, 0, 0, alloc >> 8, alloc & 0xFF, 0]


def test_read_buffer_capacity_in_bytes_and_blocks(cd: Host) -> None:
    # 512 KiB buffer = 80000h bytes, all of it blank; 256 blocks of 2048 bytes
    assert cd.ok(buffer_capacity()) == bytes.fromhex("000a 0000 00080000 00080000")
    assert cd.ok(buffer_capacity(1)) == bytes.fromhex("000a 0001 00000000 00000100")
    assert cd.ok(buffer_capacity(alloc=6)) == bytes.fromhex("000a 0000 0008")


# -- SET CD SPEED --------------------------------------------------------------------------
def test_set_cd_speed_records_the_read_speed_and_ffff_means_fastest(cd: Host) -> None:
    assert cd.ok([0xBB, 0, 0x05, 0x83, 0xFF, 0xFF], bcl=0) == b""  # non-data: BCL 0 is fine
    assert cd.unit.read_speed_kbs == 0x0583
    cd.ok([0xBB, 1, 0xFF, 0xFF, 0xFF, 0xFF])  # CAV, fastest
    assert cd.unit.read_speed_kbs == 0


def test_set_cd_speed_reserved_rotational_control_is_invalid(cd: Host) -> None:
    assert cd.fails([0xBB, 2, 0xFF, 0xFF, 0xFF, 0xFF]) == INVALID_FIELD
    assert cd.fails([0xBB, 3, 0xFF, 0xFF, 0xFF, 0xFF]) == INVALID_FIELD


# -- SET STREAMING (data out) --------------------------------------------------------------
def streaming(length: int = 28, kind: int = 0) -> list[int]:
    # B6 rsvd(7) type length(2) control
    return [0xB6, 0, 0, 0, 0, 0, 0, 0, kind, length >> 8, length & 0xFF, 0]


def descriptor(start: int = 0, end: int = 999, size_kb: int = 2770, time_ms: int = 1000,
               rdd: bool = False) -> bytes:
    return (bytes([0x04 if rdd else 0, 0, 0, 0]) + start.to_bytes(4, "big")
            + end.to_bytes(4, "big") + size_kb.to_bytes(4, "big") + time_ms.to_bytes(4, "big")
            + bytes(8))


def test_set_streaming_sets_the_read_speed_from_size_over_time(dvd: Host) -> None:
    reply = dvd.run_out(streaming(), descriptor(size_kb=2770, time_ms=1000))
    assert reply.good and reply.status == 0x50
    assert dvd.unit.read_speed_kbs == 2770
    assert dvd.ok(performance())[12:16] == (2770).to_bytes(4, "big")
    assert dvd.run_out(streaming(), descriptor(rdd=True)).good
    assert dvd.unit.read_speed_kbs == 0


def test_set_streaming_with_an_empty_list_moves_no_data(dvd: Host) -> None:
    assert dvd.ok(streaming(0), bcl=0) == b""


@pytest.mark.parametrize("params, length, sense", [
    (descriptor(start=10, end=5), 28, INVALID_PARAM),
    (descriptor(time_ms=0), 28, INVALID_PARAM),
    (descriptor(end=DVD_SECTORS), 28, INVALID_PARAM),
    (descriptor()[:20], 20, PARAM_LENGTH),
])
def test_set_streaming_bad_descriptors(dvd: Host, params: bytes, length: int,
                                       sense: tuple[int, int, int]) -> None:
    assert dvd.run_out(streaming(length), params).sense == sense
    assert dvd.unit.read_speed_kbs == 0


def test_set_streaming_dbi_cache_zone_type_is_invalid(dvd: Host) -> None:
    assert dvd.fails(streaming(28, kind=5)) == INVALID_FIELD


# -- MECHANISM STATUS ----------------------------------------------------------------------
def mechanism(alloc: int = 8) -> list[int]:
    return [0xBD, 0, 0, 0, 0, 0, 0, 0, alloc >> 8, alloc & 0xFF, 0, 0]


def test_mechanism_status_reports_the_door(cd: Host) -> None:
    assert cd.ok(mechanism()) == bytes.fromhex("00 00 000000 00 0000")
    cd.ok([0x1B, 0, 0, 0, 0x02, 0])  # START STOP UNIT: eject
    assert cd.ok(mechanism()) == bytes.fromhex("00 10 000000 00 0000")
    assert cd.ok(mechanism(alloc=2)) == bytes.fromhex("00 10")


# -- SEEK(10) ------------------------------------------------------------------------------
def seek(lba: int) -> list[int]:
    return [0x2B, 0, *lba.to_bytes(4, "big"), 0, 0, 0, 0]


def test_seek_completes_with_dsc_set(cd: Host) -> None:
    cd.guest.packet(bytes(seek(999)).ljust(12, b"\0"), 0)  # non-data: BCL 0
    assert cd.guest.status() == 0x50  # DRDY | DSC, no ERR
    assert cd.guest.reason() == 0x03


def test_seek_past_the_end_is_lba_out_of_range(cd: Host) -> None:
    assert cd.fails(seek(1000)) == LBA_RANGE


def test_seek_needs_a_medium() -> None:
    assert Host(None).fails(seek(0)) == (0x02, 0x3A, 0x01)
