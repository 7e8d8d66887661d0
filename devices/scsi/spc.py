"""SPC-3 primary commands every packet device answers.

TEST UNIT READY (SPC-3 §6.33), REQUEST SENSE (§6.27), INQUIRY (§6.4) with
the vital product data pages 00h, 80h and 83h (§7.6), REPORT LUNS (§6.21).

SECURITY PROTOCOL IN (A2h, SPC-4) is not implemented on purpose: MMC-5 asks for
it only with the AACS feature (010Dh), which a DVD-ROM drive without content
protection does not report, so it stays INVALID COMMAND OPERATION CODE (05/20/00).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devices.scsi.cdb import ascii_field, put16
from devices.scsi.commands import MMC_COMMANDS as T
from devices.scsi.commands import Flag
from devices.scsi.sense import SENSE_INVALID_FIELD, CheckCondition, fixed_sense_data

if TYPE_CHECKING:
    from devices.scsi.target import MmcTarget

PERIPHERAL_MMC = 0x05
"""Peripheral device type: CD/DVD device (SPC-3 table 83)."""


@T.command(0x00, "TEST UNIT READY", Flag.CHECK_READY | Flag.NONDATA)
def cmd_test_unit_ready(unit: MmcTarget, cdb: bytes) -> None:
    """SPC-3 §6.33: GOOD when ready; the dispatcher's ready check does the rest."""


@T.command(0x03, "REQUEST SENSE", Flag.ALLOW_UA, alloc=(4, 1))
def cmd_request_sense(unit: MmcTarget, cdb: bytes) -> bytes:
    """SPC-3 §6.27: fixed-format sense data of the last command (NO SENSE if it succeeded).

    SPC-3 §5.9.7 offers two answers while a UNIT ATTENTION is pending: (a) report the
    pending sense data and keep the UA, or (b) report the UA and clear it.  The drive
    always takes (a): REQUEST SENSE never consumes a UA.  A host that asks after each
    failure (libata, Windows' port drivers) learns why that command failed, and
    whatever it sends in between, its next ordinary command meets the UA as a CHECK
    CONDITION (06/28/00, which Linux sr and Windows' class driver read as "medium may
    have changed"; QEMU 7.2 keeps the same sequence when REQUEST SENSE comes first).
    Descriptor format (DESC bit) is not supported by MMC devices: 05/24/00.
    """
    if cdb[1] & 0x01:
        raise CheckCondition(SENSE_INVALID_FIELD)
    return fixed_sense_data(unit.sense)


def _vpd_page(code: int, payload: bytes) -> bytes:
    return bytes([PERIPHERAL_MMC, code]) + put16(len(payload)) + payload


@T.command(0x12, "INQUIRY", Flag.ALLOW_UA, alloc=(3, 2))
def cmd_inquiry(unit: MmcTarget, cdb: bytes) -> bytes:
    """SPC-3 §6.4: standard data (36 bytes) or a VPD page (EVPD=1).

    The allocation length is bytes 3-4 (SPC-3); SPC-2 hosts leave byte 3 zero.
    """
    p = unit.personality
    evpd, page = cdb[1] & 0x01, cdb[2]
    if not evpd:
        if page != 0:
            raise CheckCondition(SENSE_INVALID_FIELD)
        data = bytearray(36)
        data[0] = PERIPHERAL_MMC
        data[1] = 0x80  # RMB: removable medium
        data[2] = 0x05  # VERSION: SPC-3
        data[3] = 0x02  # RESPONSE DATA FORMAT 2
        data[4] = len(data) - 5  # ADDITIONAL LENGTH
        data[8:16] = ascii_field(p.vendor, 8)
        data[16:32] = ascii_field(p.product, 16)
        data[32:36] = ascii_field(p.revision, 4)
        return bytes(data)
    if page == 0x00:  # supported VPD pages (SPC-3 §7.6.10)
        return _vpd_page(0x00, bytes([0x00, 0x80, 0x83]))
    if page == 0x80:  # unit serial number (SPC-3 §7.6.11)
        return _vpd_page(0x80, ascii_field(p.serial, 20))
    if page == 0x83:  # device identification (SPC-3 §7.6.3): one T10 vendor ID designator
        ident = ascii_field(p.vendor, 8) + ascii_field(p.product, 16) + p.serial.encode("ascii")
        designator = bytes([0x02, 0x01, 0x00, len(ident)]) + ident  # ASCII, LU, T10 vendor ID
        return _vpd_page(0x83, designator)
    raise CheckCondition(SENSE_INVALID_FIELD)


LUN_LIST_ENTRY = 8
"""Each LUN in the REPORT LUNS parameter data takes 8 bytes (SPC-3 §6.21, table 123)."""


@T.command(0xA0, "REPORT LUNS", Flag.ALLOW_UA, alloc=(6, 4))
def cmd_report_luns(unit: MmcTarget, cdb: bytes) -> bytes:
    """SPC-3 §6.21: SELECT REPORT byte 2, allocation length bytes 6-9.

    00h (logical units) and 02h (all) list LUN 0, the drive itself; 01h (well-known
    logical units) lists none; other values are 05/24/00.  Header: LUN list length
    (4 bytes) and 4 reserved bytes.  Like INQUIRY it neither reports nor clears a
    UNIT ATTENTION and needs no medium (SPC-3 §5.9.7).
    """
    select = cdb[2]
    if select not in (0x00, 0x01, 0x02):
        raise CheckCondition(SENSE_INVALID_FIELD)
    luns = b"" if select == 0x01 else bytes(LUN_LIST_ENTRY)  # LUN 0, single-level format
    return len(luns).to_bytes(4, "big") + bytes(4) + luns
