"""DVD structures, keys, capacities, performance and speed: the rest of a DVD-ROM's set.

MMC-5 §6.23 READ DISC STRUCTURE (here READ DVD STRUCTURE, media type 0:
formats 00h physical, 01h copyright, 04h manufacturing, FFh list; the
layer descriptor layout is ECMA-267 §3.3.2), §6.29 REPORT KEY (RPC state
only: the drive has no CSS) and SEND KEY (its counterpart: only Invalidate
AGID), §6.24 READ FORMAT CAPACITIES, §6.8 GET
PERFORMANCE, §6.18 READ BUFFER CAPACITY, and the MMC-5 commands SET CD
SPEED, SET STREAMING (a data-out command), MECHANISM STATUS and SEEK(10).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devices.media.base import SECTOR_SIZE
from devices.scsi.cdb import be16, be32, put16, put32
from devices.scsi.commands import MMC_COMMANDS as T
from devices.scsi.commands import Flag
from devices.scsi.mmc_mode import SENSE_PARAM_LIST_LENGTH
from devices.scsi.sense import (
    SENSE_INCOMPATIBLE_MEDIUM,
    SENSE_INVALID_FIELD,
    SENSE_INVALID_PARAM,
    SENSE_LBA_OUT_OF_RANGE,
    CheckCondition,
)
from devices.scsi.target import DataOut

if TYPE_CHECKING:
    from devices.scsi.target import MmcTarget

# -- READ DVD STRUCTURE ----------------------------------------------------------------
DATA_START_PSN = 0x030000
"""First physical sector of the data area of a DVD-ROM (ECMA-267 §3.3.2): LBA 0."""
FORMAT_PHYSICAL, FORMAT_COPYRIGHT, FORMAT_MANUFACTURING, FORMAT_LIST = 0x00, 0x01, 0x04, 0xFF
STRUCTURE_SIZE = 2048


def _structure(payload: bytes) -> bytes:
    """A disc structure reply: 2-byte data length (payload + 2 reserved), 2 reserved."""
    return put16(len(payload) + 2) + b"\0\0" + payload


def physical_format(unit: MmcTarget) -> bytes:
    """Format 00h, layer 0 (ECMA-267 §3.3.2, MMC-5 table 433): a single-layer,
    120 mm, embossed DVD-ROM, book version 1, data area 030000h..030000h + n - 1."""
    d = bytearray(STRUCTURE_SIZE)
    d[0] = 0x01  # book type 0 (DVD-ROM), part version 1
    d[1] = 0x02  # disc size 0 (120 mm), maximum rate 2 (10.08 Mbit/s)
    d[2] = 0x01  # one layer, parallel track path, layer type: embossed (read-only)
    d[3] = 0x00  # linear density 0.267 um/bit, track density 0.74 um/track
    d[4:8] = put32(DATA_START_PSN)
    d[8:12] = put32(DATA_START_PSN + unit.medium.sector_count - 1)
    d[12:16] = put32(0)  # end sector in layer 0: only for opposite-track-path discs
    d[16] = 0x00  # no burst cutting area
    return _structure(bytes(d))


def _copyright(unit: MmcTarget) -> bytes:
    """Format 01h: no copy protection system, playable in every region (RMI 00h)."""
    return _structure(bytes([0x00, 0x00, 0, 0]))


def _manufacturing(unit: MmcTarget) -> bytes:
    """Format 04h: 2048 bytes of disc manufacturing information (none recorded)."""
    return _structure(bytes(STRUCTURE_SIZE))


_STRUCTURES = {
    FORMAT_PHYSICAL: STRUCTURE_SIZE,
    FORMAT_COPYRIGHT: 4,
    FORMAT_MANUFACTURING: STRUCTURE_SIZE,
}


def _structure_list(unit: MmcTarget) -> bytes:
    """Format FFh: (format, SDS/RDS, length) of each structure; RDS (bit 6) is set for
    the ones READ DVD STRUCTURE can return with the loaded medium (none on a CD)."""
    rds = 0x40 if unit.medium.is_dvd else 0x00
    rows = [bytes([fmt, rds]) + put16(size) for fmt, size in _STRUCTURES.items()]
    rows.append(bytes([FORMAT_LIST, 0x40]) + put16(4 * (len(_STRUCTURES) + 1)))
    return _structure(b"".join(rows))


@T.command(0xAD, "READ DVD STRUCTURE", Flag.CHECK_READY, alloc=(8, 2))
def cmd_read_dvd_structure(unit: MmcTarget, cdb: bytes) -> bytes:
    """MMC-5 §6.23: media type byte 1 bits 3-0 (0 = DVD), layer byte 6, format byte 7.

    A format this drive lacks, a BD media type, or a layer other than 0 (single
    layer): 05/24/00.  A DVD structure of a CD: 05/30/00 (incompatible medium).
    """
    media_type, layer, fmt = cdb[1] & 0x0F, cdb[6], cdb[7]
    if media_type != 0:
        raise CheckCondition(SENSE_INVALID_FIELD)
    if fmt == FORMAT_LIST:
        return _structure_list(unit)
    if fmt not in _STRUCTURES or layer != 0:
        raise CheckCondition(SENSE_INVALID_FIELD)
    if not unit.medium.is_dvd:
        raise CheckCondition(SENSE_INCOMPATIBLE_MEDIUM)
    if fmt == FORMAT_PHYSICAL:
        return physical_format(unit)
    if fmt == FORMAT_COPYRIGHT:
        return _copyright(unit)
    return _manufacturing(unit)


# -- REPORT KEY ------------------------------------------------------------------------
KEY_CLASS_DVD = 0x00
KEY_FORMAT_RPC_STATE = 0x08
KEY_FORMAT_INVALIDATE_AGID = 0x3F
VENDOR_RESETS_LEFT = 4
USER_CHANGES_LEFT = 5


@T.command(0xA4, "REPORT KEY", Flag.NONE, alloc=(8, 2))
def cmd_report_key(unit: MmcTarget, cdb: bytes) -> bytes | None:
    """MMC-5 §6.29: key class byte 7, key format byte 10 bits 5-0.

    RPC state (format 08h, 8 bytes, MMC-5 table 553): type code 00b (no region
    set), vendor resets and user changes left, region mask and RPC scheme from
    the personality.  Invalidate AGID (3Fh) has nothing to invalidate and
    succeeds.  The CSS/CPPM/CPRM key formats (AGID, challenge, KEY1, title key,
    ASF, CPRM AGID) need a CSS drive: this one has none, so they are fields it
    does not support (05/24/00), as is any other key class or format.
    """
    key_class, key_format = cdb[7], cdb[10] & 0x3F
    if key_class != KEY_CLASS_DVD:
        raise CheckCondition(SENSE_INVALID_FIELD)
    if key_format == KEY_FORMAT_RPC_STATE:
        p = unit.personality
        state = (0 << 6) | (VENDOR_RESETS_LEFT << 3) | USER_CHANGES_LEFT
        return put16(6) + b"\0\0" + bytes([state, p.region_mask, p.rpc_scheme, 0])
    if key_format == KEY_FORMAT_INVALIDATE_AGID:
        return None
    raise CheckCondition(SENSE_INVALID_FIELD)


@T.command(0xA3, "SEND KEY", Flag.NONDATA)
def cmd_send_key(unit: MmcTarget, cdb: bytes) -> None:
    """MMC-5 §6.35 SEND KEY: parameter list length bytes 8-9, key class byte 7, AGID byte 10
    bits 7-6, key format byte 10 bits 5-0.

    The counterpart of REPORT KEY on a drive without CSS: REPORT KEY never grants an
    AGID (format 00h is 05/24/00), so there is no authentication to continue.
    Invalidate AGID (3Fh, no parameter list) succeeds as it does in REPORT KEY; a
    parameter list with it is 05/1A/00.  Challenge key (01h), KEY2 (03h), the RPC
    structure (06h: the drive's region is fixed by its personality) and any other
    class or format are fields this drive does not support: 05/24/00, before any
    data moves.
    """
    key_class, key_format = cdb[7], cdb[10] & 0x3F
    if key_class != KEY_CLASS_DVD:
        raise CheckCondition(SENSE_INVALID_FIELD)
    if key_format == KEY_FORMAT_INVALIDATE_AGID:
        if be16(cdb, 8):
            raise CheckCondition(SENSE_PARAM_LIST_LENGTH)
        return
    raise CheckCondition(SENSE_INVALID_FIELD)


# -- READ FORMAT CAPACITIES ------------------------------------------------------------
DESCRIPTOR_FORMATTED, DESCRIPTOR_NO_MEDIUM = 0x02, 0x03


@T.command(0x23, "READ FORMAT CAPACITIES", Flag.NONE, alloc=(7, 2))
def cmd_read_format_capacities(unit: MmcTarget, cdb: bytes) -> bytes:
    """MMC-5 §6.24: capacity list header and the current/maximum capacity descriptor.

    A loaded disc is formatted media (type 10b) of its capacity; an empty drive
    reports type 11b (no media present) with 0 blocks.  A read-only drive lists
    no formattable capacities.
    """
    if unit.ready:
        blocks, kind = unit.medium.sector_count, DESCRIPTOR_FORMATTED
    else:
        blocks, kind = 0, DESCRIPTOR_NO_MEDIUM
    descriptor = put32(blocks) + bytes([kind]) + SECTOR_SIZE.to_bytes(3, "big")
    return bytes([0, 0, 0, len(descriptor)]) + descriptor


# -- GET PERFORMANCE -------------------------------------------------------------------
PERF_TYPE_PERFORMANCE, PERF_TYPE_WRITE_SPEED = 0x00, 0x03
TOLERANCE_10_PERCENT = 0x10


@T.command(0xAC, "GET PERFORMANCE", Flag.CHECK_READY)
def cmd_get_performance(unit: MmcTarget, cdb: bytes) -> bytes:
    """MMC-5 §6.8: type byte 10; maximum number of descriptors bytes 8-9.

    Type 00h (performance): byte 1 bits 4-3 Tolerance must be 10b; Write
    (bit 2) asks for write performance (none: no descriptors); Except
    (bits 1-0) 00b nominal performance, one descriptor over the whole disc
    at the speed in use; 01b/10b exception lists (empty); 11b reserved.
    Type 03h (write speed): no descriptors, the drive does not write.
    Other types: 05/24/00.
    """
    kind, max_desc = cdb[10], be16(cdb, 8)
    descriptors: list[bytes] = []
    flags = 0
    if kind == PERF_TYPE_PERFORMANCE:
        tolerance, write, except_ = cdb[1] & 0x18, cdb[1] & 0x04, cdb[1] & 0x03
        if tolerance != TOLERANCE_10_PERCENT or except_ == 0x03:
            raise CheckCondition(SENSE_INVALID_FIELD)
        flags = (0x02 if write else 0) | (0x01 if except_ else 0)
        if not write and except_ == 0:
            p = unit.personality
            top = p.max_speed_kbs(unit.medium.is_dvd)
            speed = min(unit.read_speed_kbs or top, top)
            end = unit.medium.sector_count - 1
            descriptors.append(put32(0) + put32(speed) + put32(end) + put32(speed))
    elif kind != PERF_TYPE_WRITE_SPEED:
        raise CheckCondition(SENSE_INVALID_FIELD)
    body = b"".join(descriptors[:max_desc])
    return put32(4 + len(body)) + bytes([flags, 0, 0, 0]) + body


# -- READ BUFFER CAPACITY --------------------------------------------------------------
@T.command(0x5C, "READ BUFFER CAPACITY", Flag.NONE, alloc=(7, 2))
def cmd_read_buffer_capacity(unit: MmcTarget, cdb: bytes) -> bytes:
    """MMC-5 §6.18: Block (byte 1 bit 0) 0: buffer length and blank length in bytes;
    1: available length in 2048-byte blocks.  Nothing is ever buffered for writing,
    so the whole buffer is blank."""
    size = unit.personality.buffer_kib * 1024
    if cdb[1] & 0x01:
        return put16(10) + b"\0\x01" + bytes(4) + put32(size // SECTOR_SIZE)
    return put16(10) + b"\0\0" + put32(size) + put32(size)


# -- SET CD SPEED / SET STREAMING ------------------------------------------------------
@T.command(0xBB, "SET CD SPEED", Flag.NONDATA)
def cmd_set_cd_speed(unit: MmcTarget, cdb: bytes) -> None:
    """MMC-5 SET CD SPEED: rotational control byte 1 bits 1-0 (00b CLV, 01b CAV; others
    reserved: 05/24/00), read speed bytes 2-3 in kB/s (FFFFh: the fastest).  A speed
    above the drive's is not an error: the drive picks the closest it can do."""
    if cdb[1] & 0x03 > 1:
        raise CheckCondition(SENSE_INVALID_FIELD)
    speed = be16(cdb, 2)
    unit.read_speed_kbs = 0 if speed == 0xFFFF else speed


PERFORMANCE_DESCRIPTOR_SIZE = 28


def _finish_set_streaming(unit: MmcTarget, cdb: bytes, params: bytes) -> None:
    """The performance descriptor (MMC-5 table 636): RDD byte 0 bit 2, start and end
    LBA bytes 4-11, read size (kB) bytes 12-15 and read time (ms) bytes 16-19."""
    if len(params) < PERFORMANCE_DESCRIPTOR_SIZE:
        raise CheckCondition(SENSE_PARAM_LIST_LENGTH)
    if params[0] & 0x04:  # RDD: restore the drive's defaults
        unit.read_speed_kbs = 0
        return
    start, end = be32(params, 4), be32(params, 8)
    read_size, read_time = be32(params, 12), be32(params, 16)
    if end < start or read_time == 0:
        raise CheckCondition(SENSE_INVALID_PARAM)
    if unit.medium.present and end >= unit.medium.sector_count:
        raise CheckCondition(SENSE_INVALID_PARAM)
    unit.read_speed_kbs = max(1, read_size * 1000 // read_time)


@T.command(0xB6, "SET STREAMING", Flag.CONDDATA)
def cmd_set_streaming(unit: MmcTarget, cdb: bytes) -> DataOut:
    """MMC-5 SET STREAMING: type byte 8 (00h performance descriptor; 05h DBI cache zone
    is for writers: 05/24/00), parameter list length bytes 9-10 (data-out)."""
    if cdb[8] != 0x00:
        raise CheckCondition(SENSE_INVALID_FIELD)
    return DataOut(be16(cdb, 9), _finish_set_streaming)


# -- MECHANISM STATUS ------------------------------------------------------------------
MECHANISM_IDLE = 0


@T.command(0xBD, "MECHANISM STATUS", Flag.NONE, alloc=(8, 2))
def cmd_mechanism_status(unit: MmcTarget, cdb: bytes) -> bytes:
    """MMC-5 MECHANISM STATUS: the 8-byte header of a drive that is no changer.

    Byte 0: no fault, changer ready, slot 0; byte 1: mechanism idle, door open
    bit 4 = tray open; bytes 2-4 current LBA (none: 0); byte 5 slots 0; bytes
    6-7 slot table length 0.
    """
    door = 0x10 if unit.tray_open else 0x00
    return bytes([0x00, (MECHANISM_IDLE << 5) | door, 0, 0, 0, 0]) + put16(0)


# -- SEEK(10) --------------------------------------------------------------------------
@T.command(0x2B, "SEEK(10)", Flag.CHECK_READY | Flag.NONDATA)
def cmd_seek10(unit: MmcTarget, cdb: bytes) -> None:
    """MMC-5 SEEK(10): LBA bytes 2-5; past the end 05/21/00.  Completion leaves
    DSC set in the status register (old DOS drivers such as VIDE-CDD.SYS poll it)."""
    if be32(cdb, 2) >= unit.medium.sector_count:
        raise CheckCondition(SENSE_LBA_OUT_OF_RANGE)
    unit.head_lba = be32(cdb, 2)
