"""READ CD (MMC-5 §6.20) and READ CD MSF (MMC-5 §6.21): user data or raw sectors.

The disc is one mode-1 data track, so the fields of each sector come from
:mod:`devices.media.cdframe` (ECMA-130): sync (12 bytes), header (4: MSF in
BCD and mode 1), user data (2048), EDC and ECC (288: EDC, 8 zero bytes, P
and Q parity), then the error field (C2 bits: 294 bytes; with the block error
byte and a pad byte: 296; all zero, as an image has no read errors), then the
sub-channel field.

CDB byte 9 selects the fields: bit 7 sync, bits 6-5 header codes (00b none,
01b header, 10b sub-header, 11b all headers; a mode-1 sector has no
sub-header, so 10b adds nothing), bit 4 user data, bit 3 EDC & ECC, bits 2-1
error field (11b reserved).  The selected main-channel fields must be
contiguous in the sector (sync, header, user data, EDC/ECC): a gap, such as
sync with user data but no header, is an illegal combination (05/24/00), as
in MMC-5's table of valid mode-1 combinations.  Byte 10 bits 2-0 select the
sub-channel: 000b none, 001b raw P-W (96 bytes: P = 0, Q computed, R-W = 0),
010b formatted Q (16 bytes: the 10 Q bytes, their CRC, 4 zero bytes), 100b
R-W (96 zero bytes: no CD-G); others reserved (05/24/00).

Expected sector type (byte 1 bits 4-2): 000b any and 010b mode 1 match;
CD-DA and the mode-2 types do not: ILLEGAL MODE FOR THIS TRACK (05/64/00);
110b and 111b are reserved (05/24/00).  A DVD has no CD sectors: only plain
user data (byte 9 = 10h) may be read from it with READ CD; anything else is
05/64/00.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from devices.media import cdframe
from devices.scsi.cdb import be24, be32, msf_to_lba
from devices.scsi.commands import MMC_COMMANDS as T
from devices.scsi.commands import Flag
from devices.scsi.sense import (
    SENSE_ILLEGAL_MODE,
    SENSE_INVALID_FIELD,
    SENSE_LBA_OUT_OF_RANGE,
    CheckCondition,
)

if TYPE_CHECKING:
    from devices.scsi.target import MmcTarget

SECTOR_ANY, SECTOR_CDDA, SECTOR_MODE1 = 0, 1, 2
SYNC_BIT, USER_BIT, EDC_ECC_BIT = 0x80, 0x10, 0x08
HEADER_CODE_SHIFT = 5
USER_ONLY = USER_BIT

# (first byte, end byte) of each main-channel field in a mode-1 sector, in order.
_SYNC = (cdframe.SYNC_AT, cdframe.HEADER_AT)
_HEADER = (cdframe.HEADER_AT, cdframe.USER_AT)
_USER = (cdframe.USER_AT, cdframe.EDC_AT)
_EDC_ECC = (cdframe.EDC_AT, cdframe.RAW_SECTOR_SIZE)

ERROR_FIELD_SIZES = {0: 0, 1: 294, 2: 296}
SUBCHANNEL_NONE, SUBCHANNEL_RAW, SUBCHANNEL_Q, SUBCHANNEL_RW = 0, 1, 2, 4
SUBCHANNEL_SIZES = {SUBCHANNEL_NONE: 0, SUBCHANNEL_RAW: 96, SUBCHANNEL_Q: 16, SUBCHANNEL_RW: 96}


def main_channel_span(byte9: int) -> tuple[int, int] | None:
    """The contiguous byte range of a mode-1 sector that byte 9 selects (None: nothing).

    Raises 05/24/00 for a reserved error field or a selection with a gap.
    """
    header = (byte9 >> HEADER_CODE_SHIFT) & 0x03 in (1, 3)  # 10b (sub-header) is empty
    chosen = [
        span
        for span, on in (
            (_SYNC, byte9 & SYNC_BIT),
            (_HEADER, header),
            (_USER, byte9 & USER_BIT),
            (_EDC_ECC, byte9 & EDC_ECC_BIT),
        )
        if on
    ]
    if not chosen:
        return None
    for (_, end), (start, _) in zip(chosen, chosen[1:], strict=False):
        if end != start:
            raise CheckCondition(SENSE_INVALID_FIELD)
    return chosen[0][0], chosen[-1][1]


def read_cd(unit: MmcTarget, cdb: bytes, lba: int, count: int) -> np.ndarray | None:
    """The common part of READ CD and READ CD MSF once the range is known."""
    sector_type = (cdb[1] >> 2) & 0x07
    byte9, subchannel = cdb[9], cdb[10] & 0x07
    error_field = (byte9 >> 1) & 0x03
    if sector_type > 5 or error_field == 3 or subchannel not in SUBCHANNEL_SIZES:
        raise CheckCondition(SENSE_INVALID_FIELD)
    span = main_channel_span(byte9)
    if sector_type not in (SECTOR_ANY, SECTOR_MODE1):
        raise CheckCondition(SENSE_ILLEGAL_MODE)
    if lba < 0 or lba + count > unit.medium.sector_count:
        raise CheckCondition(SENSE_LBA_OUT_OF_RANGE)
    extra = ERROR_FIELD_SIZES[error_field] + SUBCHANNEL_SIZES[subchannel]
    if unit.medium.is_dvd and (byte9 & 0xF8 not in (0, USER_ONLY) or extra):
        raise CheckCondition(SENSE_ILLEGAL_MODE)
    if count == 0 or (span is None and not extra):
        return None  # nothing selected or nothing to read: good status, no data
    if span == _USER and not extra:
        return unit.medium.read(lba, count)  # the hot case: a zero-copy view
    user = unit.medium.read(lba, count)
    frames = cdframe.mode1_sectors(user, lba)
    parts: list[np.ndarray] = []
    if span is not None:
        parts.append(frames[:, span[0] : span[1]])
    if ERROR_FIELD_SIZES[error_field]:
        parts.append(np.zeros((count, ERROR_FIELD_SIZES[error_field]), dtype=np.uint8))
    lbas = np.arange(lba, lba + count)
    if subchannel == SUBCHANNEL_RAW:
        parts.append(cdframe.raw_pw_subchannel(lbas))
    elif subchannel == SUBCHANNEL_Q:
        q = cdframe.q_subchannel(lbas)
        parts.append(np.concatenate([q, np.zeros((count, 4), dtype=np.uint8)], axis=1))
    elif subchannel == SUBCHANNEL_RW:
        parts.append(np.zeros((count, 96), dtype=np.uint8))
    return np.concatenate(parts, axis=1).reshape(-1)


@T.command(0xBE, "READ CD", Flag.CHECK_READY | Flag.CONDDATA)
def cmd_read_cd(unit: MmcTarget, cdb: bytes) -> np.ndarray | None:
    """MMC-5 §6.20: starting LBA bytes 2-5, transfer length (blocks) bytes 6-8."""
    return read_cd(unit, cdb, be32(cdb, 2), be24(cdb, 6))


@T.command(0xB9, "READ CD MSF", Flag.CHECK_READY | Flag.CONDDATA)
def cmd_read_cd_msf(unit: MmcTarget, cdb: bytes) -> np.ndarray | None:
    """MMC-5 §6.21: starting M/S/F bytes 3-5, ending M/S/F bytes 6-8 (the first sector
    not transferred).  An end before the start, or a start before 00:02:00, is 05/24/00."""
    start = msf_to_lba(cdb[3], cdb[4], cdb[5])
    end = msf_to_lba(cdb[6], cdb[7], cdb[8])
    if end < start or start < 0 or cdb[4] > 59 or cdb[5] > 74 or cdb[7] > 59 or cdb[8] > 74:
        raise CheckCondition(SENSE_INVALID_FIELD)
    return read_cd(unit, cdb, start, end - start)
