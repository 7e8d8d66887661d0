"""GET CONFIGURATION (MMC-5 §6.6, features §5.3): expected bytes worked out from the standard.

Feature descriptor (MMC-5 table 88): feature code (2), version << 2 | persistent
<< 1 | current (1), additional length (1), data.  Header (table 86): data length
(4, = total - 4), reserved (2), current profile (2).
"""

from __future__ import annotations

import pytest

from devices.personality import Personality
from tests.mmc_support import CD_SECTORS, DVD_SECTORS, INVALID_FIELD, FakeMedium, Host

# Feature descriptors as MMC-5 §5.3 defines them, for a CD and for a DVD.
PROFILES_CD = bytes.fromhex("0000 03 08" "0010 00 00" "0008 01 00")
PROFILES_DVD = bytes.fromhex("0000 03 08" "0010 01 00" "0008 00 00")
PROFILES_NONE = bytes.fromhex("0000 03 08" "0010 00 00" "0008 00 00")
CORE = bytes.fromhex("0001 0b 08" "00000002" "01 000000")  # v2, ATAPI, DBE
MORPHING = bytes.fromhex("0002 07 04" "00 000000")  # v1, polled only
REMOVABLE = bytes.fromhex("0003 03 04" "29 000000")  # tray (001b), eject, lock
RANDOM_CD = bytes.fromhex("0010 01 08" "00000800" "0001" "01 00")
RANDOM_DVD = bytes.fromhex("0010 01 08" "00000800" "0010" "01 00")
RANDOM_NONE = bytes.fromhex("0010 00 08" "00000800" "0001" "01 00")
MULTI_READ_CUR, MULTI_READ = bytes.fromhex("001d 01 00"), bytes.fromhex("001d 00 00")
CD_READ_CUR, CD_READ = bytes.fromhex("001e 09 04 02000000"), bytes.fromhex("001e 08 04 02000000")
DVD_READ_CUR, DVD_READ = bytes.fromhex("001f 05 04 00000000"), bytes.fromhex("001f 04 04 00000000")
# Power Management: v0, persistent, current, no body.
POWER = bytes.fromhex("0100 03 00")
# Timeout: v1 (1 << 2), persistent, current; Group3 0, Unit Length 0.
TIMEOUT = bytes.fromhex("0105 07 04 00 00 0000")
# Real Time Streaming: v4 (4 << 2 = 10h), not persistent, current with a disc;
# byte 4 = RBCB (10h) | SCS (08h) = 18h.
RTS_CUR, RTS = bytes.fromhex("0107 11 04 18000000"), bytes.fromhex("0107 10 04 18000000")
TAIL_CUR = POWER + TIMEOUT + RTS_CUR
TAIL = POWER + TIMEOUT + RTS


def get_config(rt: int = 0, start: int = 0, alloc: int = 0xFFFF) -> list[int]:
    # 46 RT start(2) rsvd(3) alloc(2) control
    return [0x46, rt, start >> 8, start & 0xFF, 0, 0, 0, alloc >> 8, alloc & 0xFF, 0]


def reply(profile: int, *features: bytes) -> bytes:
    body = b"\0\0" + profile.to_bytes(2, "big") + b"".join(features)
    return len(body).to_bytes(4, "big") + body


CD_ALL = reply(0x0008, PROFILES_CD, CORE, MORPHING, REMOVABLE, RANDOM_CD, MULTI_READ_CUR,
               CD_READ_CUR, DVD_READ, TAIL_CUR)


def test_get_configuration_cd_lists_every_feature_with_cd_current() -> None:
    host = Host(FakeMedium(CD_SECTORS))
    assert host.ok(get_config()) == CD_ALL
    assert len(CD_ALL) == 80 + 20 and CD_ALL[:4] == bytes([0, 0, 0, 76 + 20])


def test_get_configuration_rt0_lists_what_the_dvd_rom_profile_requires() -> None:
    # MMC-5 §5.4, profile 0010h: Profile List, Core, Morphing, Removable Medium,
    # Random Readable, CD Read, DVD Read, Power Management, Timeout, Real Time Streaming.
    data = Host(FakeMedium(DVD_SECTORS)).ok(get_config())
    codes, at = [], 8
    while at < len(data):
        codes.append(int.from_bytes(data[at:at + 2], "big"))
        at += 4 + data[at + 3]
    assert codes == [0x0000, 0x0001, 0x0002, 0x0003, 0x0010, 0x001D, 0x001E, 0x001F,
                     0x0100, 0x0105, 0x0107]


def test_get_configuration_dvd_makes_dvd_rom_current() -> None:
    host = Host(FakeMedium(DVD_SECTORS))
    assert host.ok(get_config()) == reply(
        0x0010, PROFILES_DVD, CORE, MORPHING, REMOVABLE, RANDOM_DVD, MULTI_READ, CD_READ,
        DVD_READ_CUR, TAIL_CUR)


def test_get_configuration_empty_drive_reports_profile_zero() -> None:
    host = Host(None)
    assert host.ok(get_config()) == reply(
        0x0000, PROFILES_NONE, CORE, MORPHING, REMOVABLE, RANDOM_NONE, MULTI_READ, CD_READ,
        DVD_READ, TAIL)


@pytest.mark.parametrize("alloc", [0, 4, 8, 12, 20, 79, 80, 99, 100, 200])
def test_get_configuration_truncates_to_allocation_length(alloc: int) -> None:
    # Windows XP setup and ReactOS send allocation length 8: exactly 8 bytes come back.
    host = Host(FakeMedium(CD_SECTORS))
    assert host.ok(get_config(alloc=alloc)) == CD_ALL[:alloc]


def test_get_configuration_alloc_8_is_the_header_only() -> None:
    host = Host(FakeMedium(DVD_SECTORS))
    assert host.ok(get_config(alloc=8)) == bytes.fromhex("00000060 0000 0010")


def test_get_configuration_rt1_lists_only_current_features() -> None:
    host = Host(FakeMedium(CD_SECTORS))
    assert host.ok(get_config(rt=1)) == reply(
        0x0008, PROFILES_CD, CORE, MORPHING, REMOVABLE, RANDOM_CD, MULTI_READ_CUR, CD_READ_CUR,
        TAIL_CUR)


def test_get_configuration_starting_feature_skips_lower_codes() -> None:
    host = Host(FakeMedium(CD_SECTORS))
    assert host.ok(get_config(rt=0, start=0x0010)) == reply(
        0x0008, RANDOM_CD, MULTI_READ_CUR, CD_READ_CUR, DVD_READ, TAIL_CUR)
    # a starting feature between two codes starts at the next one
    assert host.ok(get_config(rt=0, start=0x0011)) == reply(
        0x0008, MULTI_READ_CUR, CD_READ_CUR, DVD_READ, TAIL_CUR)


def test_get_configuration_rt2_returns_one_feature_or_header_only() -> None:
    host = Host(FakeMedium(DVD_SECTORS))
    assert host.ok(get_config(rt=2, start=0x001F)) == reply(0x0010, DVD_READ_CUR)
    assert host.ok(get_config(rt=2, start=0x0003)) == reply(0x0010, REMOVABLE)
    assert host.ok(get_config(rt=2, start=0x0004)) == bytes.fromhex("00000004 0000 0010")
    assert host.ok(get_config(rt=2, start=0x0100)) == reply(0x0010, POWER)
    assert host.ok(get_config(rt=2, start=0x0105)) == reply(0x0010, TIMEOUT)
    assert host.ok(get_config(rt=2, start=0x0107)) == reply(0x0010, RTS_CUR)
    assert host.ok(get_config(rt=0, start=0x0101)) == reply(0x0010, TIMEOUT, RTS_CUR)


def test_get_configuration_rt3_is_invalid_field() -> None:
    host = Host(FakeMedium(CD_SECTORS))
    assert host.fails(get_config(rt=3)) == INVALID_FIELD


def test_get_configuration_runs_while_unit_attention_is_pending() -> None:
    host = Host(None)
    host.drive.insert_medium(FakeMedium(DVD_SECTORS))
    assert host.ok(get_config(alloc=8)) == bytes.fromhex("00000060 0000 0010")
    # the media-change sequence is still there for the next ordinary command
    assert host.fails([0x00]) == (0x02, 0x3A, 0x00)
    assert host.fails([0x00]) == (0x06, 0x28, 0x00)


def test_get_configuration_reads_the_personality() -> None:
    cd_only = Personality(profiles=(0x0008,), multi_read=False, loading_mechanism=0,
                          lockable=False)
    host = Host(FakeMedium(CD_SECTORS), cd_only)
    assert host.ok(get_config()) == reply(
        0x0008, bytes.fromhex("0000 03 04 0008 01 00"), CORE, MORPHING,
        bytes.fromhex("0003 03 04 08 000000"), RANDOM_CD, CD_READ_CUR, TAIL_CUR)


def test_get_configuration_tray_open_reports_no_current_profile() -> None:
    host = Host(FakeMedium(CD_SECTORS))
    host.unit.tray_open = True
    data = host.ok(get_config(alloc=8))
    assert data[6:8] == b"\0\0"
