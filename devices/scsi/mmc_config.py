"""GET CONFIGURATION (MMC-5 §6.6) and the features a DVD-ROM drive reports (MMC-5 §5).

The reply is a feature header (current profile) and feature descriptors in
ascending feature-code order (MMC-5 §5.2): Profile List (0000h, §5.3.1),
Core (0001h, §5.3.2), Morphing (0002h, §5.3.3), Removable Medium (0003h,
§5.3.4), Random Readable (0010h, §5.3.5), Multi-Read (001Dh, §5.3.11),
CD Read (001Eh, §5.3.12), DVD Read (001Fh, §5.3.13), Power Management (0100h),
Timeout (0105h) and Real Time Streaming (0107h), the three the DVD-ROM profile
(0010h, MMC-5 §5.4) requires besides the read features.  What the drive can do
comes from its :class:`~devices.personality.Personality`; what is *current*
comes from the loaded medium (a medium bigger than a CD is a DVD).

GET CONFIGURATION runs while a UNIT ATTENTION is pending and with no medium
(MMC-5 §4.1.6.1): hosts probe an empty drive with it.  Windows XP setup and
ReactOS send it with allocation length 8 and need exactly 8 bytes back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from devices.scsi.cdb import be16, put16, put32
from devices.scsi.commands import MMC_COMMANDS as T
from devices.scsi.commands import Flag
from devices.scsi.sense import SENSE_INVALID_FIELD, CheckCondition

if TYPE_CHECKING:
    from devices.scsi.target import MmcTarget

PROFILE_NONE = 0x0000
PROFILE_CD_ROM = 0x0008
PROFILE_DVD_ROM = 0x0010

PHYSICAL_INTERFACE_ATAPI = 0x00000002
"""Core feature physical interface standard (MMC-5 table 97): ATAPI."""

# RT field, CDB byte 1 bits 1-0 (MMC-5 table 87).
RT_ALL, RT_CURRENT, RT_ONE = 0, 1, 2

FeatureBody = Callable[["MmcTarget"], tuple[bool, bytes]]
"""A feature: from the unit, (current?, additional data)."""


def current_profile(unit: MmcTarget) -> int:
    """The profile of the loaded medium: 0 with no medium or the tray open."""
    if not unit.ready:
        return PROFILE_NONE
    return PROFILE_DVD_ROM if unit.medium.is_dvd else PROFILE_CD_ROM


def _descriptor(code: int, version: int, persistent: bool, current: bool, body: bytes) -> bytes:
    """A feature descriptor (MMC-5 table 88): code, version/persistent/current, length."""
    flags = (version << 2) | (0x02 if persistent else 0) | (0x01 if current else 0)
    return put16(code) + bytes([flags, len(body)]) + body


def _profile_list(unit: MmcTarget) -> bytes:
    """0000h: every profile, CurrentP set on the one in use (MMC-5 §5.3.1)."""
    now = current_profile(unit)
    body = b"".join(put16(p) + bytes([0x01 if p == now else 0x00, 0]) for p in
                    unit.personality.profiles)
    return _descriptor(0x0000, 0, True, True, body)


def _core(unit: MmcTarget) -> bytes:
    """0001h version 2: ATAPI; DBE=1 (deferred errors are reported), INQ2=0 (MMC-5 §5.3.2)."""
    return _descriptor(0x0001, 2, True, True, put32(PHYSICAL_INTERFACE_ATAPI) + b"\x01\0\0\0")


def _morphing(unit: MmcTarget) -> bytes:
    """0002h version 1: polled GESN only (Async=0), no operational-change events."""
    return _descriptor(0x0002, 1, True, True, b"\0\0\0\0")


def _removable(unit: MmcTarget) -> bytes:
    """0003h: loading mechanism, Eject, Lock (MMC-5 §5.3.4).

    The feature has no lock-*state* bit in MMC-5 (the Lock bit is the ability);
    the live state is in page 2Ah byte 6 bit 1 (see ``mmc_mode``).
    """
    p = unit.personality
    bits = (p.loading_mechanism << 5) | (0x08 if p.can_eject else 0) | (0x01 if p.lockable else 0)
    return _descriptor(0x0003, 0, True, True, bytes([bits, 0, 0, 0]))


def _random_readable(unit: MmcTarget) -> bytes:
    """0010h: 2048-byte blocks, blocking 16 on DVD (one ECC block) and 1 on CD; PP=1
    (page 01h is there).  Current with a medium (MMC-5 §5.3.5)."""
    dvd = unit.ready and unit.medium.is_dvd
    body = put32(2048) + put16(16 if dvd else 1) + b"\x01\0"
    return _descriptor(0x0010, 0, False, unit.ready, body)


def _cd_loaded(unit: MmcTarget) -> bool:
    return unit.ready and not unit.medium.is_dvd


def _multi_read(unit: MmcTarget) -> bytes:
    """001Dh: reads CD-R/RW media (MMC-5 §5.3.11); current with a CD loaded."""
    return _descriptor(0x001D, 0, False, _cd_loaded(unit), b"")


def _cd_read(unit: MmcTarget) -> bytes:
    """001Eh version 2: C2 flags supported (READ CD returns them), no CD-Text, no DAP."""
    return _descriptor(0x001E, 2, False, _cd_loaded(unit), b"\x02\0\0\0")


def _dvd_read(unit: MmcTarget) -> bytes:
    """001Fh version 1: single-layer DVD-ROM reading; no MULTI110, no dual-layer R/RW."""
    current = unit.ready and unit.medium.is_dvd
    return _descriptor(0x001F, 1, False, current, b"\0\0\0\0")


def _power_management(unit: MmcTarget) -> bytes:
    """0100h version 0, no body: host- and drive-directed power management (MMC-5 §5.3).

    What backs it: START STOP UNIT power conditions, ATA IDLE/STANDBY IMMEDIATE and
    CHECK POWER MODE, mode page 1Ah, and the GESN power management class."""
    return _descriptor(0x0100, 0, True, True, b"")


def _timeout(unit: MmcTarget) -> bytes:
    """0105h version 1: mode page 1Dh is there; Group3=0 (no Group 3 time-out), so the
    Unit Length field (bytes 6-7) is 0 (MMC-5 §5.3)."""
    return _descriptor(0x0105, 1, True, True, bytes([0x00, 0x00]) + put16(0))


RTS_RBCB = 0x10
"""Real Time Streaming byte 4 bit 4: READ BUFFER CAPACITY with Block=1 is supported."""
RTS_SCS = 0x08
"""Bit 3: SET CD SPEED is supported."""


def _real_time_streaming(unit: MmcTarget) -> bytes:
    """0107h version 4 (MMC-5 §5.3): RBCB=1, SCS=1; MP2A=0 (page 2Ah carries no
    write-speed descriptors), WSPD=0 (no write speeds for GET PERFORMANCE type 03h),
    SW=0 (no stream writing).  GET PERFORMANCE and SET STREAMING carry the rest.
    Current with a medium, as the streaming reads need one."""
    body = bytes([RTS_RBCB | RTS_SCS, 0, 0, 0])
    return _descriptor(0x0107, 4, False, unit.ready, body)


def features(unit: MmcTarget) -> list[tuple[int, bytes]]:
    """(code, descriptor) for every feature this drive has, in ascending code order."""
    p = unit.personality
    rows: list[tuple[int, Callable[[MmcTarget], bytes]]] = [
        (0x0000, _profile_list),
        (0x0001, _core),
        (0x0002, _morphing),
        (0x0003, _removable),
        (0x0010, _random_readable),
    ]
    if p.multi_read:
        rows.append((0x001D, _multi_read))
    rows.append((0x001E, _cd_read))
    if p.has_dvd:
        rows.append((0x001F, _dvd_read))
    rows.extend([
        (0x0100, _power_management),
        (0x0105, _timeout),
        (0x0107, _real_time_streaming),
    ])
    return [(code, build(unit)) for code, build in rows]


def _is_current(descriptor: bytes) -> bool:
    return bool(descriptor[2] & 0x01)


@T.command(0x46, "GET CONFIGURATION", Flag.ALLOW_UA, alloc=(7, 2))
def cmd_get_configuration(unit: MmcTarget, cdb: bytes) -> bytes:
    """MMC-5 §6.6: RT in byte 1 bits 1-0, starting feature in bytes 2-3.

    RT 0: every feature from the starting one; RT 1: only current ones;
    RT 2: just the starting feature (header only if the drive lacks it);
    RT 3 is reserved: 05/24/00.  Data length = reply length - 4.
    """
    rt, start = cdb[1] & 0x03, be16(cdb, 2)
    if rt not in (RT_ALL, RT_CURRENT, RT_ONE):
        raise CheckCondition(SENSE_INVALID_FIELD)
    chosen = [
        d
        for code, d in features(unit)
        if (code == start if rt == RT_ONE else code >= start)
        and (rt != RT_CURRENT or _is_current(d))
    ]
    body = b"\0\0" + put16(current_profile(unit)) + b"".join(chosen)
    return put32(len(body)) + body
