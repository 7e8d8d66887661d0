"""MMC-5 media and tray commands: events, locking, load and eject.

* GET EVENT STATUS NOTIFICATION (0x4A, MMC-5 §6.7): polled operation only
  (an asynchronous request is refused with 05/24/00, which MMC-5 allows); one
  supported class, the media class (class 4, supported-class mask 10h).  The
  reply is a 4-byte header and, when the media class was requested, one 4-byte
  media event descriptor (event code, media status, start and end slot).
* PREVENT ALLOW MEDIUM REMOVAL (0x1E, MMC-5 / SPC-3): locks the tray against
  guest ejects.  A host release is forced and unlocks it (docs/management-api.md).
* START STOP UNIT (0x1B, MMC-5 / SBC-3): LoEj with Start=0 opens the tray, with
  Start=1 closes it; a non-zero power condition changes the power state and
  ignores LoEj and Start.

Decisions where implementations differ:

* **Event descriptor length** (header bytes 0-1) counts the bytes that follow
  the field itself: 6 with a media descriptor, 2 without.  That is the SCSI
  convention and what Windows' class driver checks (it subtracts 2 and wants at
  least 4); QEMU sends 4 here.
* **Eject refused by the lock** is ILLEGAL REQUEST / MEDIUM REMOVAL PREVENTED
  (05/53/02) whether or not a medium is loaded: the CDB is valid, the request
  is not allowed in the current state, and ASCQ 02 is the MMC-5 Annex F
  assignment.  QEMU answers NOT READY when a medium is present and drops ASCQ 02.
* A GESN event is consumed only when the allocation length lets the whole
  descriptor through (8 bytes), so a host probing with a short allocation
  length does not lose it.
* The host's front-panel eject button (:func:`request_eject`) on a locked tray
  queues Eject Request for the guest (MMC-5 §6.7, media event 1) and leaves
  the tray shut; unlocked, it opens the tray as a guest eject would.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from devices.scsi.cdb import be16, put16
from devices.scsi.commands import MMC_COMMANDS as T
from devices.scsi.commands import Flag
from devices.scsi.sense import (
    SENSE_INVALID_FIELD,
    SENSE_REMOVAL_PREVENTED,
    CheckCondition,
)
from devices.scsi.target import MediaEvent

if TYPE_CHECKING:
    from devices.scsi.target import MmcTarget

log = logging.getLogger(__name__)

# -- GET EVENT STATUS NOTIFICATION (MMC-5 §6.7) -------------------------------------

GESN_POLLED = 0x01
"""CDB byte 1 bit 0: the host asks for polled operation (MMC-5 §6.7.1)."""

GESN_CLASS_POWER = 2
"""Notification class number of power management events (class request bit 2)."""

GESN_CLASS_MEDIA = 4
"""Notification class number of media events (MMC-5 §6.7, class request bit 4)."""

GESN_SUPPORTED_CLASSES = (1 << GESN_CLASS_POWER) | (1 << GESN_CLASS_MEDIA)
"""Supported Event Classes byte (header byte 3): power management and media (14h).
The power class comes with the Power Management feature (0100h, ``mmc_config``)."""

POWER_STATUS_ACTIVE, POWER_STATUS_STANDBY = 0x01, 0x03
"""Power status byte of a power management event descriptor (MMC-5 §6.7)."""

GESN_NEA = 0x80
"""Header byte 2 bit 7, No Event Available: none of the requested classes is supported."""

GESN_HEADER_SIZE = 4
GESN_MEDIA_DESCRIPTOR_SIZE = 4

MEDIA_STATUS_TRAY_OPEN = 0x01
"""Media status byte (descriptor byte 1) bit 0: Door or Tray Open."""

MEDIA_STATUS_PRESENT = 0x02
"""Media status byte bit 1: Media Present."""


def _gesn_header(notification_class: int, nea: bool, descriptor_size: int) -> bytes:
    """The 4-byte Event Status Notification header.

    Bytes 0-1: event descriptor length, the bytes following this field (2 for
    the rest of the header plus the descriptor); byte 2: NEA (bit 7) and the
    notification class (bits 2-0); byte 3: supported event classes.
    """
    length = GESN_HEADER_SIZE - 2 + descriptor_size
    byte2 = (GESN_NEA if nea else 0) | (notification_class & 0x07)
    return put16(length) + bytes([byte2, GESN_SUPPORTED_CLASSES])


def media_status(unit: MmcTarget) -> int:
    """The media status byte: tray open (bit 0) or media present (bit 1).

    A disc lying in an open tray is not in the drive: it cannot be read, the
    current profile is 0000h, and the byte is 01h (tray open only), the same on a
    bare ``Machine`` (disc left in the tray) as after a host release (tray empty).
    """
    if unit.tray_open:
        return MEDIA_STATUS_TRAY_OPEN
    return MEDIA_STATUS_PRESENT if unit.medium.present else 0


@T.command(0x4A, "GET EVENT STATUS NOTIFICATION", Flag.ALLOW_UA, alloc=(7, 2))
def cmd_get_event_status_notification(unit: MmcTarget, cdb: bytes) -> bytes:
    """MMC-5 §6.7: report (and consume) the pending media event, with the media status.

    CDB: byte 1 bit 0 Polled; byte 4 notification class request (bit n asks for
    class n); bytes 7-8 allocation length.  Allowed through a pending UNIT
    ATTENTION and with an empty drive (MMC-5 §4.1.6.1; Windows and Linux poll
    it to notice new media).
    """
    if not cdb[1] & GESN_POLLED:
        raise CheckCondition(SENSE_INVALID_FIELD)  # asynchronous operation not supported
    asked = cdb[4] & GESN_SUPPORTED_CLASSES
    if not asked:
        return _gesn_header(0, nea=True, descriptor_size=0)
    consumed = be16(cdb, 7) >= GESN_HEADER_SIZE + GESN_MEDIA_DESCRIPTOR_SIZE
    # The lowest-numbered requested class with an event wins; with no event anywhere,
    # the lowest-numbered requested class reports No Change (MMC-5 §6.7.1).
    power_asked = bool(asked & (1 << GESN_CLASS_POWER))
    media_asked = bool(asked & (1 << GESN_CLASS_MEDIA))
    if power_asked and (unit.power_event or not (media_asked and unit.media_event)):
        event = unit.power_event
        if consumed:
            unit.power_event = 0
        status = POWER_STATUS_ACTIVE if unit.power_condition else POWER_STATUS_STANDBY
        descriptor = bytes([event & 0x0F, status, 0, 0])
        return _gesn_header(GESN_CLASS_POWER, nea=False, descriptor_size=4) + descriptor
    event = unit.media_event
    if consumed:
        unit.media_event = MediaEvent.NO_CHANGE  # reported: each event is seen once
    descriptor = bytes([int(event) & 0x0F, media_status(unit), 0, 0])  # start/end slot 0
    return _gesn_header(GESN_CLASS_MEDIA, nea=False, descriptor_size=len(descriptor)) + descriptor


# -- PREVENT ALLOW MEDIUM REMOVAL ----------------------------------------------------

PREVENT_BIT = 0x01
"""CDB byte 4 bit 0, Prevent: lock the tray against removal."""


@T.command(0x1E, "PREVENT ALLOW MEDIUM REMOVAL", Flag.NONDATA)
def cmd_prevent_allow_medium_removal(unit: MmcTarget, cdb: bytes) -> None:
    """MMC-5 PREVENT ALLOW MEDIUM REMOVAL: byte 4 bit 0 locks (1) or unlocks (0) the tray.

    Works with an empty drive and an open tray (a locked open tray may still be
    closed: closing removes nothing).
    TODO(MMC-5 PREVENT ALLOW MEDIUM REMOVAL): the Persistent bit (byte 4 bit 1)
    is accepted and has no separate effect.
    """
    unit.locked = bool(cdb[4] & PREVENT_BIT)


# -- START STOP UNIT -----------------------------------------------------------------

START_BIT = 0x01
"""CDB byte 4 bit 0, Start."""

LOEJ_BIT = 0x02
"""CDB byte 4 bit 1, Load/Eject."""

_POWER_CONDITIONS = {0x1: 1, 0x2: 1, 0x3: 0, 0xA: 1, 0xB: 0}
"""Power condition field (byte 4 bits 7-4) → the target's power state (1 active, 0 standby):
ACTIVE, IDLE, STANDBY, FORCE_IDLE_0, FORCE_STANDBY_0.  Others are accepted unchanged."""


@T.command(0x1B, "START STOP UNIT", Flag.NONDATA)
def cmd_start_stop_unit(unit: MmcTarget, cdb: bytes) -> None:
    """MMC-5 START STOP UNIT: byte 4 bit 0 Start, bit 1 LoEj, bits 7-4 power condition.

    * power condition ≠ 0: the power state changes; LoEj and Start are ignored;
    * LoEj=1 Start=0: eject — refused with 05/53/02 while the guest holds the
      lock and the tray is shut; otherwise the tray opens;
    * LoEj=1 Start=1: load — the tray closes;
    * LoEj=0: spin up or down, no tray action (nothing to do for an image).
    """
    field = cdb[4]
    power = field >> 4
    if power:
        unit.set_power_condition(bool(_POWER_CONDITIONS.get(power, unit.power_condition)))
        return
    if not field & LOEJ_BIT:
        return
    if field & START_BIT:
        unit.close_tray()
        return
    if unit.locked and not unit.tray_open:
        raise CheckCondition(SENSE_REMOVAL_PREVENTED)
    unit.open_tray()


def request_eject(unit: MmcTarget) -> bool:
    """The drive's eject button, pressed on the host side.

    Locked: the tray stays shut and GESN reports Eject Request (MMC-5 §6.7,
    media event 1) so a cooperative guest can unlock and eject.  Unlocked: the
    tray opens as for a guest eject.  Returns True when the tray opened.
    """
    if unit.locked and not unit.tray_open:
        unit.media_event = MediaEvent.EJECT_REQUEST
        return False
    unit.open_tray()
    return True
