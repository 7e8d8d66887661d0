"""CD audio commands as a data disc answers them: READ SUB-CHANNEL and PLAY AUDIO.

MMC-5 dropped the CD audio commands; MMC-4 still defines them (§6.29 READ
SUB-CHANNEL, §6.15 PLAY AUDIO (10), §6.16 PLAY AUDIO (12), §6.17 PLAY AUDIO
MSF), as does SFF-8090i, and hosts still send them to DVD-ROM drives (Linux's
``CDROMSUBCHNL`` and ``CDROMPLAYMSF``, Windows' ``IOCTL_CDROM_READ_Q_CHANNEL``).
Every disc here is one mode-1 data track (track 1, index 1, ADR 1 / control
4, the READ TOC answer), so:

* READ SUB-CHANNEL reports "no current audio status" (15h) and, with SubQ=1,
  format 01h the optical head's position (the block after the last one read or
  sought), 02h "no media catalog number" (MCVal=0), 03h "no ISRC" for track 1
  (TCVal=0; ISRCs belong to audio tracks).  Format 00h is reserved: 05/24/00.
* PLAY AUDIO of any block range on the disc ends ILLEGAL REQUEST / ILLEGAL MODE
  FOR THIS TRACK (05/64/00): the range is not an audio track.  A length of zero
  (or equal start and end MSF) plays nothing and is not an error; a range off
  the disc is LBA OUT OF RANGE (05/21/00); a start MSF after the end MSF is
  INVALID FIELD IN CDB (05/24/00).

A DVD gets the same answers (one fabricated track, as READ TOC gives it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devices.scsi.cdb import be16, be32, msf_to_lba, put16, put32
from devices.scsi.commands import MMC_COMMANDS as T
from devices.scsi.commands import Flag
from devices.scsi.mmc_toc import ADR_CONTROL_DATA, FIRST_TRACK
from devices.scsi.sense import (
    SENSE_ILLEGAL_MODE,
    SENSE_INVALID_FIELD,
    SENSE_LBA_OUT_OF_RANGE,
    CheckCondition,
)

if TYPE_CHECKING:
    from devices.scsi.target import MmcTarget

AUDIO_STATUS_NONE = 0x15
"""Audio status "no current audio status to return" (MMC-4 §6.29, table 331)."""

SUBQ_BIT = 0x40
"""READ SUB-CHANNEL CDB byte 2 bit 6: return sub-channel data, not just the header."""

MSF_BIT = 0x02
"""CDB byte 1 bit 1: addresses as 00h M S F instead of an LBA."""

FORMAT_POSITION, FORMAT_CATALOG, FORMAT_ISRC = 0x01, 0x02, 0x03
INDEX_1 = 1
CURRENT_POSITION_MSF = (0xFF, 0xFF, 0xFF)
"""PLAY AUDIO MSF starting address meaning "from the current position" (MMC-4 §6.17)."""
CURRENT_POSITION_LBA = 0xFFFFFFFF
"""PLAY AUDIO (10)/(12) LBA meaning "from the current position" (MMC-4 §6.15)."""


def _address(lba: int, msf: bool, relative: bool) -> bytes:
    """An absolute or track-relative address.  Absolute MSF counts the 2-second
    pre-gap (MMC-5 §4.2.3); relative MSF is time from the track start."""
    if not msf:
        return put32(lba)
    frames = lba if relative else lba + 150
    m, s, f = frames // (60 * 75), (frames // 75) % 60, frames % 75
    if m > 0xFF:
        m, s, f = 0xFF, 59, 74
    return bytes([0, m, s, f])


def _position(unit: MmcTarget, msf: bool) -> bytes:
    """Format 01h, CD current position (12 bytes after the header)."""
    lba = min(unit.head_lba, max(unit.medium.sector_count - 1, 0))
    return (bytes([FORMAT_POSITION, ADR_CONTROL_DATA, FIRST_TRACK, INDEX_1])
            + _address(lba, msf, relative=False) + _address(lba, msf, relative=True))


@T.command(0x42, "READ SUB-CHANNEL", Flag.CHECK_READY, alloc=(7, 2))
def cmd_read_sub_channel(unit: MmcTarget, cdb: bytes) -> bytes:
    """MMC-4 §6.29: MSF byte 1 bit 1, SubQ byte 2 bit 6, format byte 3, track byte 6.

    Reply: 4-byte header (reserved, audio status, sub-channel data length) and,
    with SubQ=1, the format's block.
    """
    msf, subq, fmt, track = bool(cdb[1] & MSF_BIT), bool(cdb[2] & SUBQ_BIT), cdb[3], cdb[6]
    if fmt not in (FORMAT_POSITION, FORMAT_CATALOG, FORMAT_ISRC):
        raise CheckCondition(SENSE_INVALID_FIELD)  # 00h and 04h-EFh are reserved
    if fmt == FORMAT_ISRC and track != FIRST_TRACK:
        raise CheckCondition(SENSE_INVALID_FIELD)  # no such track on the disc
    body = b""
    if subq:
        if fmt == FORMAT_POSITION:
            body = _position(unit, msf)
        elif fmt == FORMAT_CATALOG:
            body = bytes([FORMAT_CATALOG, 0, 0, 0]) + bytes(16)  # MCVal=0: none recorded
        else:
            body = bytes([FORMAT_ISRC, ADR_CONTROL_DATA, track, 0]) + bytes(16)  # TCVal=0
    return bytes([0, AUDIO_STATUS_NONE]) + put16(len(body)) + body


def _play(unit: MmcTarget, start: int, count: int) -> None:
    """Play ``count`` blocks from ``start``: nothing to play is GOOD; a range on the
    disc is its one data track (05/64/00); a range off the disc is 05/21/00."""
    if count == 0:
        return
    if start >= unit.medium.sector_count or start + count > unit.medium.sector_count:
        raise CheckCondition(SENSE_LBA_OUT_OF_RANGE)
    raise CheckCondition(SENSE_ILLEGAL_MODE)


def _start_lba(unit: MmcTarget, lba: int) -> int:
    return unit.head_lba if lba == CURRENT_POSITION_LBA else lba


@T.command(0x45, "PLAY AUDIO(10)", Flag.CHECK_READY | Flag.NONDATA)
def cmd_play_audio10(unit: MmcTarget, cdb: bytes) -> None:
    """MMC-4 §6.15: starting LBA bytes 2-5 (FFFFFFFFh: current position), length 7-8."""
    _play(unit, _start_lba(unit, be32(cdb, 2)), be16(cdb, 7))


@T.command(0xA5, "PLAY AUDIO(12)", Flag.CHECK_READY | Flag.NONDATA)
def cmd_play_audio12(unit: MmcTarget, cdb: bytes) -> None:
    """MMC-4 §6.16: starting LBA bytes 2-5, length bytes 6-9."""
    _play(unit, _start_lba(unit, be32(cdb, 2)), be32(cdb, 6))


@T.command(0x47, "PLAY AUDIO MSF", Flag.CHECK_READY | Flag.NONDATA)
def cmd_play_audio_msf(unit: MmcTarget, cdb: bytes) -> None:
    """MMC-4 §6.17: starting M S F bytes 3-5 (FF FF FF: current position), ending 6-8.

    Equal addresses play nothing; a start after the end is 05/24/00.
    """
    start_msf = (cdb[3], cdb[4], cdb[5])
    start = unit.head_lba if start_msf == CURRENT_POSITION_MSF else msf_to_lba(*start_msf)
    end = msf_to_lba(cdb[6], cdb[7], cdb[8])
    if start == end:
        return
    if start > end or start < 0:
        raise CheckCondition(SENSE_INVALID_FIELD)
    _play(unit, start, end - start)

