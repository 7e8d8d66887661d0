"""MODE SENSE(6)/(10) and MODE SELECT(6)/(10): the mode pages of a DVD-ROM drive.

SPC-3 §6.9-6.12 (the commands), §7.4.3-7.4.4 (mode parameter headers),
MMC-5 §7 (MMC mode pages): Read/Write Error Recovery 01h (MMC-5 §7.3),
CD Device Parameters 0Dh (MMC-3 §6.3.7, kept for older hosts), CD Audio
Control 0Eh (MMC-5 §7.5), Power Condition 1Ah (SPC-3 §7.4.12), MM
Capabilities and Mechanical Status 2Ah (MMC-3 §6.3.11; MMC-5 keeps it as
legacy), and 3Fh for all of them.

Every page is data: its default values and its changeable mask.  The current
values live in ``unit.mode_state`` (page code -> bytes) once MODE SELECT
changed them; page 2Ah is built live (lock state, speeds, personality).
Page control: 00b current, 01b changeable (the mask), 10b default, 11b saved
(not supported: 05/39/00, SPC-3 §6.9).  MMC drives return no block
descriptors (MMC-5 §7.2), so DBD changes nothing.  MODE SELECT refuses any
change outside the changeable mask with 05/26/00 (SPC-3 §6.9).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from devices.scsi.cdb import be16, put16
from devices.scsi.commands import MMC_COMMANDS as T
from devices.scsi.commands import Flag
from devices.scsi.sense import (
    SENSE_INVALID_FIELD,
    SENSE_INVALID_PARAM,
    SENSE_SAVING_NOT_SUPPORTED,
    CheckCondition,
    Sense,
    SenseKey,
)
from devices.scsi.target import DataOut

if TYPE_CHECKING:
    from devices.scsi.target import MmcTarget

SENSE_PARAM_LIST_LENGTH = Sense(SenseKey.ILLEGAL_REQUEST, 0x1A, 0x00)
"""PARAMETER LIST LENGTH ERROR (SPC-3 Annex D): the list ends inside a page."""

PC_CURRENT, PC_CHANGEABLE, PC_DEFAULT, PC_SAVED = 0, 1, 2, 3
ALL_PAGES = 0x3F
MEDIUM_TYPE = 0x00
"""Medium type byte of the header: obsolete in MMC-5 and zero (QEMU sends 70h)."""


@dataclass(frozen=True, slots=True)
class ModePage:
    """A mode page as data: defaults and the changeable mask, both with the 2-byte header."""

    code: int
    default: bytes
    changeable: bytes

    def current(self, unit: MmcTarget) -> bytes:
        return unit.mode_state.get(self.code, self.default)


def _page(code: int, body: bytes, mask: bytes) -> ModePage:
    assert len(body) == len(mask)
    head = bytes([code, len(body)])
    return ModePage(code, head + body, bytes([0, 0]) + mask)


# 01h Read/Write Error Recovery (MMC-5 §7.3): page length 0Ah; error recovery bits
# all zero (the drive recovers silently), read retry count 5 (changeable).
PAGE_ERROR_RECOVERY = _page(
    0x01,
    bytes([0x00, 5, 0, 0, 0, 0, 0, 0, 0, 0]),
    bytes([0x00, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0]),
)
# 0Dh CD Device Parameters: inactivity timer multiplier (byte 3 bits 3-0, changeable),
# 60 S units per M unit, 75 F units per S unit.
PAGE_CD_PARAMETERS = _page(
    0x0D,
    bytes([0x00, 0x00]) + put16(60) + put16(75),
    bytes([0x00, 0x0F, 0, 0, 0, 0]),
)
# 0Eh CD Audio Control (MMC-5 §7.5): IMMED=1 (byte 2 bit 2), SOTC changeable;
# port 0 carries channel 0 (left), port 1 channel 1 (right), full volume.
PAGE_CD_AUDIO = _page(
    0x0E,
    bytes([0x04, 0, 0, 0, 0, 0, 0x01, 0xFF, 0x02, 0xFF, 0, 0, 0, 0]),
    bytes([0x02, 0, 0, 0, 0, 0, 0x0F, 0xFF, 0x0F, 0xFF, 0, 0, 0, 0]),
)
# 1Ah Power Condition (SPC-3 §7.4.12): Idle/Standby timers off by default, changeable.
PAGE_POWER = _page(
    0x1A,
    bytes([0x00, 0x00]) + bytes(8),
    bytes([0x00, 0x03]) + b"\xff" * 8,
)
# 1Dh Time-out and Protect (MMC-5 §7, page 1Dh), the page the Timeout feature (0105h) names:
# page length 0Ah; G3Enable, TMOE, DISP and SWPP 0 (time-outs disabled: every command
# completes within the port access that started it); Group 1, Group 2 minimum and
# Group 3 time-outs 0 seconds.  Nothing changeable.
PAGE_TIMEOUT = _page(0x1D, bytes(10), bytes(10))
CAPABILITIES = 0x2A
CAPABILITIES_LENGTH = 0x1E
"""Page 2Ah page length with no write-speed descriptors: bytes 2-31 (MMC-3 §6.3.11)."""

STATIC_PAGES = {p.code: p for p in (PAGE_ERROR_RECOVERY, PAGE_CD_PARAMETERS, PAGE_CD_AUDIO,
                                    PAGE_POWER, PAGE_TIMEOUT)}


def capabilities_page(unit: MmcTarget) -> bytes:
    """Page 2Ah from the personality and the live tray state (MMC-3 §6.3.11, table 361).

    Byte 2 read abilities, byte 3 write abilities (none), byte 4 audio/mode 2/
    multisession, byte 5 C2 pointers, byte 6 loading mechanism, eject, lock
    state (live: PREVENT ALLOW MEDIUM REMOVAL) and lock ability.  Bytes 8-9
    and 14-15 are the obsolete CD speed fields Linux still reads (x = kB/s / 176).
    """
    p = unit.personality
    page = bytearray(2 + CAPABILITIES_LENGTH)
    page[0], page[1] = CAPABILITIES, CAPABILITIES_LENGTH
    read = 0x03 if p.multi_read else 0x00  # CD-R read, CD-RW read
    read |= 0x04 if p.multi_read else 0x00  # method 2 (fixed-packet CD-R)
    read |= 0x08 if p.has_dvd else 0x00  # DVD-ROM read
    page[2] = read
    page[3] = 0x00  # writes nothing
    page[4] = 0x70 | (0x01 if p.audio_play else 0)  # multisession, mode 2 form 2 and 1
    page[5] = 0x10  # C2 pointers (READ CD error field)
    page[6] = (
        (p.loading_mechanism << 5)
        | (0x08 if p.can_eject else 0)
        | (0x02 if unit.locked else 0)
        | (0x01 if p.lockable else 0)
    )
    page[7] = 0x00
    page[8:10] = put16(p.max_cd_read_speed_kbs)
    page[10:12] = put16(p.volume_levels)
    page[12:14] = put16(p.buffer_kib)
    current = unit.read_speed_kbs or p.max_cd_read_speed_kbs
    page[14:16] = put16(min(current, p.max_cd_read_speed_kbs))
    return bytes(page)


def _capabilities_mask() -> bytes:
    return bytes(2 + CAPABILITIES_LENGTH)  # nothing in page 2Ah is changeable


SUPPORTED = (0x01, 0x0D, 0x0E, 0x1A, 0x1D, CAPABILITIES)


def page_bytes(unit: MmcTarget, code: int, pc: int) -> bytes:
    """One page for page control ``pc`` (current, changeable or default)."""
    if code == CAPABILITIES:
        return _capabilities_mask() if pc == PC_CHANGEABLE else capabilities_page(unit)
    page = STATIC_PAGES[code]
    if pc == PC_CHANGEABLE:
        return page.changeable
    if pc == PC_DEFAULT:
        return page.default
    return page.current(unit)


def _pages(unit: MmcTarget, cdb: bytes) -> bytes:
    """The pages a MODE SENSE CDB asks for (byte 2: PC bits 7-6, page code 5-0; byte 3 subpage)."""
    pc, code, subpage = cdb[2] >> 6, cdb[2] & 0x3F, cdb[3]
    if pc == PC_SAVED:
        raise CheckCondition(SENSE_SAVING_NOT_SUPPORTED)
    if code == ALL_PAGES:
        if subpage not in (0x00, 0xFF):  # FFh: all pages and subpages (we have none)
            raise CheckCondition(SENSE_INVALID_FIELD)
        return b"".join(page_bytes(unit, c, pc) for c in SUPPORTED)
    # Subpage FFh asks for the page and all its subpages (SPC-3 §6.11, table 101); our
    # pages have none, so it is the page alone.
    if code not in SUPPORTED or subpage not in (0x00, 0xFF):
        raise CheckCondition(SENSE_INVALID_FIELD)
    return page_bytes(unit, code, pc)


@T.command(0x1A, "MODE SENSE(6)", Flag.NONE, alloc=(4, 1))
def cmd_mode_sense6(unit: MmcTarget, cdb: bytes) -> bytes:
    """SPC-3 §6.11: 4-byte header (mode data length = total - 1), no block descriptors."""
    pages = _pages(unit, cdb)
    length = 3 + len(pages)
    return bytes([min(length, 0xFF), MEDIUM_TYPE, 0x00, 0x00]) + pages


@T.command(0x5A, "MODE SENSE(10)", Flag.NONE, alloc=(7, 2))
def cmd_mode_sense10(unit: MmcTarget, cdb: bytes) -> bytes:
    """SPC-3 §6.12: 8-byte header (mode data length = total - 2), no block descriptors."""
    pages = _pages(unit, cdb)
    return put16(6 + len(pages)) + bytes([MEDIUM_TYPE, 0, 0, 0, 0, 0]) + pages


# -- MODE SELECT -----------------------------------------------------------------------
def _check_select_cdb(cdb: bytes) -> None:
    """PF (byte 1 bit 4) must be 1 (MMC-5 §7.2: pages are in MMC format); SP (bit 0)
    asks to save, which this drive cannot: 05/24/00 (SPC-3 §6.9)."""
    if not cdb[1] & 0x10 or cdb[1] & 0x01:
        raise CheckCondition(SENSE_INVALID_FIELD)


def apply_mode_pages(unit: MmcTarget, params: bytes, header_len: int, bd_len: int) -> None:
    """Validate every page of a MODE SELECT parameter list, then store them all.

    Nothing is stored unless the whole list is valid.  Each page must be one
    this drive has, with its exact page length, and may differ from the
    current values only inside the changeable mask (SPC-3 §6.9).
    """
    if bd_len not in (0, 8):
        raise CheckCondition(SENSE_INVALID_PARAM)
    if bd_len == 8:  # one short block descriptor: block length must be 2048 (or 0: keep)
        bd = params[header_len : header_len + 8]
        if len(bd) < 8:
            raise CheckCondition(SENSE_PARAM_LIST_LENGTH)
        if int.from_bytes(bd[5:8], "big") not in (0, 2048):
            raise CheckCondition(SENSE_INVALID_PARAM)
    pos = header_len + bd_len
    staged: dict[int, bytes] = {}
    while pos < len(params):
        if pos + 2 > len(params):
            raise CheckCondition(SENSE_PARAM_LIST_LENGTH)
        code, spf, length = params[pos] & 0x3F, params[pos] & 0x40, params[pos + 1]
        if spf or code not in SUPPORTED:
            raise CheckCondition(SENSE_INVALID_PARAM)
        page = params[pos : pos + 2 + length]
        if len(page) < 2 + length:
            raise CheckCondition(SENSE_PARAM_LIST_LENGTH)
        current = page_bytes(unit, code, PC_CURRENT)
        mask = page_bytes(unit, code, PC_CHANGEABLE)
        if length != current[1]:
            raise CheckCondition(SENSE_INVALID_PARAM)
        for i in range(2, len(page)):
            if (page[i] ^ current[i]) & ~mask[i] & 0xFF:
                raise CheckCondition(SENSE_INVALID_PARAM)
        if code != CAPABILITIES:  # nothing to store: page 2Ah is not changeable
            staged[code] = bytes([code, length]) + page[2:]
        pos += 2 + length
    unit.mode_state.update(staged)


def _finish_select6(unit: MmcTarget, cdb: bytes, params: bytes) -> None:
    if len(params) < 4:
        raise CheckCondition(SENSE_PARAM_LIST_LENGTH)
    apply_mode_pages(unit, params, 4, params[3])


def _finish_select10(unit: MmcTarget, cdb: bytes, params: bytes) -> None:
    if len(params) < 8:
        raise CheckCondition(SENSE_PARAM_LIST_LENGTH)
    apply_mode_pages(unit, params, 8, be16(params, 6))


def _select(finish: Callable[[MmcTarget, bytes, bytes], None], length: int) -> DataOut:
    return DataOut(length, finish)


@T.command(0x15, "MODE SELECT(6)", Flag.CONDDATA)
def cmd_mode_select6(unit: MmcTarget, cdb: bytes) -> DataOut:
    """SPC-3 §6.9: parameter list length in byte 4 (0: nothing is sent, nothing changes)."""
    _check_select_cdb(cdb)
    return _select(_finish_select6, cdb[4])


@T.command(0x55, "MODE SELECT(10)", Flag.CONDDATA)
def cmd_mode_select10(unit: MmcTarget, cdb: bytes) -> DataOut:
    """SPC-3 §6.10: parameter list length in bytes 7-8."""
    _check_select_cdb(cdb)
    return _select(_finish_select10, be16(cdb, 7))
