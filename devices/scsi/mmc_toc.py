"""READ TOC/PMA/ATIP, READ DISC INFORMATION and READ TRACK INFORMATION.

MMC-5 §6.26 (READ TOC/PMA/ATIP: formats 0000b TOC, 0001b session info,
0010b full TOC; table 475 onwards), §6.22 (READ DISC INFORMATION, standard
disc information), §6.27 (READ TRACK INFORMATION).  An image is a finished
single-session disc with one mode-1 data track starting at LBA 0 and the
lead-out at the capacity; a DVD gets the same fabricated TOC (MMC-5 §6.26.2.1
asks DVD drives to report one track per session the same way).

The TOC format is CDB byte 2 bits 3-0 (MMC); when that is zero, byte 9
bits 7-6 (the SFF-8020 place, where older drivers such as Windows 9x ones
put it) is used instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devices.scsi.cdb import be32, lba_to_msf, put16, put32
from devices.scsi.commands import MMC_COMMANDS as T
from devices.scsi.commands import Flag
from devices.scsi.sense import SENSE_INVALID_FIELD, SENSE_LBA_OUT_OF_RANGE, CheckCondition

if TYPE_CHECKING:
    from devices.scsi.target import MmcTarget

ADR_CONTROL_DATA = 0x14
"""ADR 1 (Q mode 1) in the high nibble, control 4 (data track, digital copy prohibited)."""
LEAD_OUT = 0xAA
FIRST_TRACK = LAST_TRACK = 1
FORMAT_TOC, FORMAT_SESSION, FORMAT_FULL_TOC = 0, 1, 2


def address(lba: int, msf: bool) -> bytes:
    """A 4-byte TOC address: big-endian LBA, or 00h M S F (MMC-5 table 477).

    Addresses past 255:59:74 (only DVDs get there) saturate, as MSF cannot say them.
    """
    if not msf:
        return put32(lba)
    m, s, f = lba_to_msf(lba)
    if m > 0xFF:
        m, s, f = 0xFF, 59, 74
    return bytes([0, m, s, f])


def _msf3(lba: int) -> bytes:
    return address(lba, True)[1:]


def toc_format(cdb: bytes) -> int:
    """Byte 2 bits 3-0, or byte 9 bits 7-6 when byte 2 names format 0."""
    fmt = cdb[2] & 0x0F
    return fmt if fmt else cdb[9] >> 6


def _toc(unit: MmcTarget, cdb: bytes, msf: bool) -> bytes:
    """Format 0000b: track descriptors from the starting track, then the lead-out."""
    start = cdb[6]
    if start > LAST_TRACK and start != LEAD_OUT:
        raise CheckCondition(SENSE_INVALID_FIELD)
    body = b""
    if start <= FIRST_TRACK:
        body += bytes([0, ADR_CONTROL_DATA, FIRST_TRACK, 0]) + address(0, msf)
    body += bytes([0, ADR_CONTROL_DATA, LEAD_OUT, 0]) + address(unit.medium.sector_count, msf)
    return put16(2 + len(body)) + bytes([FIRST_TRACK, LAST_TRACK]) + body


def _session_info(unit: MmcTarget, msf: bool) -> bytes:
    """Format 0001b: first/last complete session 1, first track of the last session."""
    body = bytes([0, ADR_CONTROL_DATA, FIRST_TRACK, 0]) + address(0, msf)
    return put16(2 + len(body)) + bytes([1, 1]) + body


def _full_toc(unit: MmcTarget, cdb: bytes) -> bytes:
    """Format 0010b: session 1's points A0h, A1h, A2h and track 1 (always MSF, 11 bytes each).

    A0h: PMIN = first track, PSEC = disc type 00h (CD-DA or CD-ROM);
    A1h: PMIN = last track; A2h: lead-out start; 01h: track 1 start.
    """
    session = cdb[6]
    if session > 1:
        raise CheckCondition(SENSE_INVALID_FIELD)

    def point(pt: int, p: bytes) -> bytes:
        # session, ADR/control, TNO 0, POINT, ATIME (min, sec, frame), zero, PMIN, PSEC, PFRAME
        return bytes([1, ADR_CONTROL_DATA, 0, pt, 0, 0, 0, 0]) + p

    body = (
        point(0xA0, bytes([FIRST_TRACK, 0x00, 0]))
        + point(0xA1, bytes([LAST_TRACK, 0, 0]))
        + point(0xA2, _msf3(unit.medium.sector_count))
        + point(0x01, _msf3(0))
    )
    return put16(2 + len(body)) + bytes([1, 1]) + body


@T.command(0x43, "READ TOC/PMA/ATIP", Flag.CHECK_READY, alloc=(7, 2))
def cmd_read_toc(unit: MmcTarget, cdb: bytes) -> bytes:
    """MMC-5 §6.26: MSF = byte 1 bit 1; track/session number = byte 6.

    PMA (0011b), ATIP (0100b) and CD-TEXT (0101b) do not exist on a pressed
    disc image, and the rest are reserved: 05/24/00.
    """
    msf = bool(cdb[1] & 0x02)
    fmt = toc_format(cdb)
    if fmt == FORMAT_TOC:
        return _toc(unit, cdb, msf)
    if fmt == FORMAT_SESSION:
        return _session_info(unit, msf)
    if fmt == FORMAT_FULL_TOC:
        return _full_toc(unit, cdb)
    raise CheckCondition(SENSE_INVALID_FIELD)


DISC_STATUS_COMPLETE = 0x0E
"""Byte 2: disc information type 000b, not erasable, last session complete (11b),
disc finalized (10b) (MMC-5 table 404)."""
UNRESTRICTED_USE = 0x20


@T.command(0x51, "READ DISC INFORMATION", Flag.CHECK_READY, alloc=(7, 2))
def cmd_read_disc_information(unit: MmcTarget, cdb: bytes) -> bytes:
    """MMC-5 §6.22: data type (byte 1 bits 2-0) 000b, standard disc information (34 bytes).

    Track resources (001b) and POW resources (010b) describe writable media;
    a read-only drive refuses them and the reserved types with 05/24/00.  On
    a finalized disc both lead-in/lead-out address fields are FFFFFFFFh.
    """
    if cdb[1] & 0x07:
        raise CheckCondition(SENSE_INVALID_FIELD)
    data = bytearray(34)
    data[0:2] = put16(len(data) - 2)
    data[2] = DISC_STATUS_COMPLETE
    data[3] = FIRST_TRACK  # first track on disc
    data[4] = 1  # number of sessions (LSB)
    data[5] = FIRST_TRACK  # first track in last session (LSB)
    data[6] = LAST_TRACK  # last track in last session (LSB)
    data[7] = UNRESTRICTED_USE
    data[8] = 0x00  # disc type: CD-DA or CD-ROM (and 00h on DVD)
    data[16:20] = b"\xff\xff\xff\xff"  # last session lead-in start: none (finalized)
    data[20:24] = b"\xff\xff\xff\xff"  # last possible lead-out start: none
    return bytes(data)


TRACK_INFO_LENGTH = 48
"""MMC-5 table 517: 48 bytes (data length 46) including the layer jump fields."""
TRACK_MODE_DATA = 0x04
DATA_MODE_1 = 0x01


@T.command(0x52, "READ TRACK INFORMATION", Flag.CHECK_READY, alloc=(7, 2))
def cmd_read_track_information(unit: MmcTarget, cdb: bytes) -> bytes:
    """MMC-5 §6.27: address/number type in byte 1 bits 1-0, value in bytes 2-5.

    00b: the track holding that LBA (past the end: 05/21/00); 01b: track
    number 1 (0 = lead-in, FFh = the invisible track, others: none of them on a
    finalized ROM disc: 05/24/00); 10b: session 1; 11b reserved: 05/24/00.
    """
    kind, value = cdb[1] & 0x03, be32(cdb, 2)
    if kind == 0:
        if value >= unit.medium.sector_count:
            raise CheckCondition(SENSE_LBA_OUT_OF_RANGE)
    elif kind in (1, 2):
        if value != 1:
            raise CheckCondition(SENSE_INVALID_FIELD)
    else:
        raise CheckCondition(SENSE_INVALID_FIELD)
    size = unit.medium.sector_count
    data = bytearray(TRACK_INFO_LENGTH)
    data[0:2] = put16(len(data) - 2)
    data[2] = FIRST_TRACK  # track number (LSB)
    data[3] = 1  # session number (LSB)
    data[5] = TRACK_MODE_DATA  # no damage, no copy, track mode 4 (data, uninterrupted)
    data[6] = DATA_MODE_1  # RT=0 blank=0 packet=0 FP=0, data mode 1
    data[7] = 0x00  # LRA_V=0, NWA_V=0: nothing writable
    data[8:12] = put32(0)  # track start address
    data[20:24] = put32(16 if unit.medium.is_dvd else 0)  # blocking factor (DVD ECC block)
    data[24:28] = put32(size)  # track size
    data[28:32] = put32(size - 1)  # last recorded address
    return bytes(data)
