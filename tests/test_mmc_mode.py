"""MODE SENSE(6)/(10) and MODE SELECT(6)/(10) (SPC-3 §6.9-6.12, MMC-5 §7).

Expected pages are written out from the standards: header, then each page as
page code, page length, parameters.  No block descriptors (MMC-5 §7.2).
"""

from __future__ import annotations

import pytest

from devices.personality import Personality
from tests.mmc_support import (
    CD_SECTORS,
    INVALID_FIELD,
    INVALID_PARAM,
    PARAM_LENGTH,
    SAVING,
    FakeMedium,
    Host,
)

P01 = bytes.fromhex("010a 00 05 0000000000000000")  # error recovery: retry count 5
P0D = bytes.fromhex("0d06 00 00 003c 004b")  # CD parameters: 60 S/M, 75 F/S
P0E = bytes.fromhex("0e0e 04 0000000000 01ff 02ff 00000000")  # IMMED, ports 0/1 full volume
P1A = bytes.fromhex("1a0a 00 00 00000000 00000000")  # power condition timers off
# 1Dh Time-out and Protect, page length 0Ah: G3Enable/TMOE/DISP/SWPP 0, timeouts 0.
P1D = bytes.fromhex("1d0a 0000 00 00 0000 0000 0000")


def p2a(locked: bool = False) -> bytes:
    # 2A, page length 1Eh; byte 2 CD-R|CD-RW|method 2|DVD-ROM read = 0Fh; byte 3 no write;
    # byte 4 multisession|mode 2 form 2|form 1 = 70h; byte 5 C2 pointers = 10h;
    # byte 6 tray (001b << 5) | eject 08h | lock state 02h | lock 01h; byte 7 0;
    # max speed 8467 kB/s (48x CD) = 2113h, 256 volume levels, 512 KiB buffer,
    # current speed 2113h; bytes 16-31 zero.
    lock = "2b" if locked else "29"
    return bytes.fromhex(f"2a1e 0f 00 70 10 {lock} 00 2113 0100 0200 2113") + bytes(16)


ALL_PAGES = P01 + P0D + P0E + P1A + P1D + p2a()


def sense10(page: int, pc: int = 0, alloc: int = 0xFFFF, dbd: bool = False,
            subpage: int = 0) -> list[int]:
    # 5A DBD PC|page subpage rsvd(3) alloc(2) control
    return [0x5A, 0x08 if dbd else 0, (pc << 6) | page, subpage, 0, 0, 0, alloc >> 8,
            alloc & 0xFF, 0]


def sense6(page: int, pc: int = 0, alloc: int = 0xFF, dbd: bool = False) -> list[int]:
    return [0x1A, 0x08 if dbd else 0, (pc << 6) | page, 0, alloc, 0]


def hdr10(pages: bytes) -> bytes:
    return (6 + len(pages)).to_bytes(2, "big") + bytes(6) + pages


def hdr6(pages: bytes) -> bytes:
    return bytes([3 + len(pages), 0, 0, 0]) + pages


@pytest.fixture
def host() -> Host:
    return Host(FakeMedium(CD_SECTORS))


@pytest.mark.parametrize("code, page", [(0x01, P01), (0x0D, P0D), (0x0E, P0E), (0x1A, P1A),
                                        (0x1D, P1D),
                                        (0x2A, p2a())])
def test_mode_sense10_current_pages(host: Host, code: int, page: bytes) -> None:
    assert host.ok(sense10(code)) == hdr10(page)


def test_mode_sense10_capabilities_page_is_32_bytes_after_an_8_byte_header(host: Host) -> None:
    data = host.ok(sense10(0x2A))
    assert data[:8] == bytes.fromhex("0026 00 00 0000 0000") and len(data) == 40


def test_mode_sense_capabilities_report_the_live_lock_state(host: Host) -> None:
    host.ok([0x1E, 0, 0, 0, 0x01, 0])  # PREVENT ALLOW MEDIUM REMOVAL: prevent
    assert host.ok(sense10(0x2A)) == hdr10(p2a(locked=True))
    host.ok([0x1E, 0, 0, 0, 0x00, 0])  # allow
    assert host.ok(sense10(0x2A)) == hdr10(p2a(locked=False))


def test_mode_sense6_all_pages(host: Host) -> None:
    data = host.ok(sense6(0x3F))
    assert data == hdr6(ALL_PAGES)
    assert data[0] == 0x5F  # 4 + 92 bytes - 1


def test_mode_sense10_all_pages_and_all_subpages(host: Host) -> None:
    assert host.ok(sense10(0x3F)) == hdr10(ALL_PAGES)
    assert host.ok(sense10(0x3F, subpage=0xFF)) == hdr10(ALL_PAGES)


@pytest.mark.parametrize("page", [0x01, 0x0D, 0x0E, 0x1A, 0x1D, 0x2A])
def test_mode_sense_subpage_ff_returns_the_page_as_it_has_no_subpages(host: Host,
                                                                      page: int) -> None:
    # SPC-3 §6.11 table 101: subpage FFh = the page and all its subpages.
    # CDB 5A 00 <page> FF 00 00 00 FF FF 00 (QEMU's conversation: 05/24/00 for 2Ah).
    assert host.ok(sense10(page, subpage=0xFF)) == host.ok(sense10(page))
    assert host.ok([0x1A, 0, page, 0xFF, 0xFF, 0]) == host.ok(sense6(page))


def test_mode_sense_dbd_changes_nothing_as_there_are_no_block_descriptors(host: Host) -> None:
    assert host.ok(sense10(0x01, dbd=True)) == host.ok(sense10(0x01))
    assert host.ok(sense6(0x01, dbd=True)) == hdr6(P01)


def test_mode_sense_changeable_values_are_the_masks(host: Host) -> None:
    assert host.ok(sense10(0x01, pc=1)) == hdr10(bytes.fromhex("0000 00 ff 0000000000000000"))
    assert host.ok(sense10(0x0D, pc=1)) == hdr10(bytes.fromhex("0000 00 0f 0000 0000"))
    assert host.ok(sense10(0x0E, pc=1)) == hdr10(
        bytes.fromhex("0000 02 0000000000 0fff 0fff 00000000"))
    assert host.ok(sense10(0x1A, pc=1)) == hdr10(bytes.fromhex("0000 00 03") + b"\xff" * 8)
    assert host.ok(sense10(0x2A, pc=1)) == hdr10(bytes(32))


def test_mode_sense_default_values_ignore_mode_select(host: Host) -> None:
    select10(host, bytes.fromhex("0e0e 04 0000000000 01 80 02 40 00000000"))
    assert host.ok(sense10(0x0E, pc=2)) == hdr10(P0E)
    assert host.ok(sense10(0x0E, pc=0)) == hdr10(
        bytes.fromhex("0e0e 04 0000000000 01 80 02 40 00000000"))


def test_mode_sense_saved_values_are_not_supported(host: Host) -> None:
    assert host.fails(sense10(0x2A, pc=3)) == SAVING
    assert host.fails(sense6(0x3F, pc=3)) == SAVING


@pytest.mark.parametrize("cdb", [
    sense10(0x05),  # write parameters: not a page of a read-only drive
    sense10(0x00),
    sense10(0x2A, subpage=1),
    sense10(0x3F, subpage=1),
    sense6(0x0F),
])
def test_mode_sense_unknown_page_or_subpage_is_invalid_field(host: Host, cdb: list[int]) -> None:
    assert host.fails(cdb) == INVALID_FIELD


@pytest.mark.parametrize("alloc", [0, 2, 8, 9, 20, 39])
def test_mode_sense10_truncates_to_allocation_length(host: Host, alloc: int) -> None:
    assert host.ok(sense10(0x2A, alloc=alloc)) == hdr10(p2a())[:alloc]


@pytest.mark.parametrize("alloc", [0, 1, 4, 12, 83])
def test_mode_sense6_truncates_to_allocation_length(host: Host, alloc: int) -> None:
    assert host.ok(sense6(0x3F, alloc=alloc)) == hdr6(ALL_PAGES)[:alloc]


def test_mode_sense_works_without_a_medium() -> None:
    host = Host(None)
    assert host.ok(sense10(0x2A)) == hdr10(p2a())


def test_mode_sense_capabilities_follow_the_personality() -> None:
    p = Personality(profiles=(0x0008,), audio_play=True, buffer_kib=2048,
                    max_cd_read_speed_kbs=7056, loading_mechanism=0)
    host = Host(FakeMedium(CD_SECTORS), p)
    # no DVD-ROM read bit (07h), audio play (71h), caddy (000b), 40x = 1B90h, 2 MiB buffer
    expected = bytes.fromhex("2a1e 07 00 71 10 09 00 1b90 0100 0800 1b90") + bytes(16)
    assert host.ok(sense10(0x2A)) == hdr10(expected)


def test_mode_sense_current_speed_follows_set_cd_speed(host: Host) -> None:
    host.ok([0xBB, 0, 0x02, 0xC2, 0xFF, 0xFF])  # 706 kB/s (4x)
    assert host.ok(sense10(0x2A))[8 + 14: 8 + 16] == bytes.fromhex("02c2")


# -- MODE SELECT ---------------------------------------------------------------------------
def send_select(host: Host, cdb: list[int], params: bytes) -> int:
    """PACKET with a MODE SELECT CDB, then the parameter list if the drive asks for it;
    returns the final status."""
    host.guest.packet(bytes(cdb).ljust(12, b"\0"), 0xFFFE)
    if host.guest.alt_status() & 0x08:  # DRQ: the drive asks for the parameter list
        assert host.guest.reason() == 0x00  # IO=0 CoD=0: data out
        host.machine.ports.outsw(host.guest.base, params + b"\0" * (len(params) & 1))
    return host.guest.status()


def select10(host: Host, pages: bytes, header: bytes | None = None) -> None:
    params = (header if header is not None else bytes(8)) + pages
    n = len(params)
    status = send_select(host, [0x55, 0x10, 0, 0, 0, 0, 0, n >> 8, n & 0xFF, 0], params)
    assert status == 0x50, f"MODE SELECT failed: {host.guest.sense()}"


def select10_fails(host: Host, params: bytes, byte1: int = 0x10) -> tuple[int, int, int]:
    n = len(params)
    status = send_select(host, [0x55, byte1, 0, 0, 0, 0, 0, n >> 8, n & 0xFF, 0], params)
    assert status & 0x01, "MODE SELECT unexpectedly succeeded"
    return host.guest.sense()


def test_mode_select10_changes_audio_volumes(host: Host) -> None:
    new = bytes.fromhex("0e0e 06 0000000000 02 10 01 20 00000000")  # SOTC, swap channels
    select10(host, new)
    assert host.ok(sense10(0x0E)) == hdr10(new)
    assert host.unit.mode_state[0x0E] == new


def test_mode_select6_changes_the_read_retry_count(host: Host) -> None:
    page = bytes.fromhex("010a 00 09 0000000000000000")
    params = bytes(4) + page
    assert send_select(host, [0x15, 0x10, 0, 0, len(params), 0], params) == 0x50
    assert host.ok(sense6(0x01)) == hdr6(page)


def test_mode_select_several_pages_at_once(host: Host) -> None:
    p0d = bytes.fromhex("0d06 00 05 003c 004b")
    p1a = bytes.fromhex("1a0a 00 03 00000064 00000bb8")
    select10(host, p0d + p1a)
    assert host.ok(sense10(0x3F)) == hdr10(P01 + p0d + P0E + p1a + P1D + p2a())


def test_mode_select_may_echo_an_unchanged_capabilities_page(host: Host) -> None:
    select10(host, p2a())  # identical values: nothing outside the (empty) mask changes


def test_mode_select_outside_the_changeable_mask_is_invalid_param_and_changes_nothing(
        host: Host) -> None:
    bad = bytes.fromhex("0e0e 04 0000000000 01 80 02 40 00000001")  # port 3 volume: fixed
    good_then_bad = bytes.fromhex("0d06 00 05 003c 004b") + bad
    assert select10_fails(host, bytes(8) + good_then_bad) == INVALID_PARAM
    assert host.ok(sense10(0x3F)) == hdr10(ALL_PAGES)  # the valid first page was not stored


@pytest.mark.parametrize("params, sense", [
    (bytes(8) + bytes.fromhex("0e0c 04 0000000000 01ff 02ff 0000"), INVALID_PARAM),  # length 12
    (bytes(8) + bytes.fromhex("0506 000000000000"), INVALID_PARAM),  # no such page
    (bytes(8) + bytes.fromhex("4e0e") + bytes(14), INVALID_PARAM),  # SPF: subpage format
    (bytes(8) + p2a(locked=True), INVALID_PARAM),  # lock state is not changeable
    (bytes(8) + bytes.fromhex("2a1e 0f 08") + bytes(28), INVALID_PARAM),  # write bits
    (bytes(8) + bytes.fromhex("0e0e 04 00"), PARAM_LENGTH),  # list ends inside a page
    (bytes(6) + bytes.fromhex("0010") + bytes(16), INVALID_PARAM),  # 16-byte descriptors
    (bytes(6) + bytes.fromhex("0008") + bytes.fromhex("0000000000000200"), INVALID_PARAM),
    (bytes(5), PARAM_LENGTH),  # shorter than the header
])
def test_mode_select_rejects_bad_parameter_lists(
        host: Host, params: bytes, sense: tuple[int, int, int]) -> None:
    assert select10_fails(host, params) == sense


def test_mode_select_accepts_a_block_descriptor_of_2048_bytes(host: Host) -> None:
    header = bytes(6) + bytes.fromhex("0008")
    descriptor = bytes.fromhex("00 000000 00 000800")
    select10(host, descriptor + P0D, header=header)


def test_mode_select_save_pages_is_invalid_field(host: Host) -> None:
    assert host.fails([0x55, 0x11, 0, 0, 0, 0, 0, 0, 20, 0]) == INVALID_FIELD
    assert host.fails([0x15, 0x11, 0, 0, 12, 0]) == INVALID_FIELD


def test_mode_select_without_page_format_is_invalid_field(host: Host) -> None:
    assert host.fails([0x55, 0x00, 0, 0, 0, 0, 0, 0, 20, 0]) == INVALID_FIELD


def test_mode_select_with_an_empty_list_moves_no_data_even_with_bcl_0(host: Host) -> None:
    assert host.ok([0x55, 0x10, 0, 0, 0, 0, 0, 0, 0, 0], bcl=0) == b""
    assert host.ok([0x15, 0x10, 0, 0, 0, 0], bcl=0) == b""


def test_mode_select_stores_current_values_in_mode_state(host: Host) -> None:
    select10(host, bytes.fromhex("010a 00 07 0000000000000000"))
    assert host.unit.mode_state[0x01] == bytes.fromhex("010a 00 07 0000000000000000")
    host.unit.mode_state.clear()
    assert host.ok(sense10(0x01)) == hdr10(P01)
