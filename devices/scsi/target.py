"""The MMC logical unit: medium and tray state, sense, and the one dispatcher.

``MmcTarget.execute`` is the only place the generic rules run, in this order
(the order QEMU's tray test and MMC-5 §4.1.6 imply):

1. unknown opcode → ILLEGAL REQUEST 20/00;
2. for commands not flagged ``ALLOW_UA``: the media-change sequence (NOT READY
   3A/00 once after a medium arrives), then a pending UNIT ATTENTION
   (06/28 medium changed, 06/29 power on) reported once;
3. ``CHECK_READY`` commands need a medium with the tray closed (02/3A/01 or 02);
4. the transport's data-phase check (a PIO byte-count limit of 0 aborts a
   command that would move data: ATA/ATAPI-7 vol 2 §11.8);
5. the handler, whose reply is truncated to the CDB's allocation length.

A command with a parameter list (MODE SELECT, SET STREAMING: data-out,
SPC-3 §4.3.4.7) has its handler return :class:`DataOut`; the transport
collects the bytes and calls :meth:`MmcTarget.finish_data_out`, which runs
the continuation.  The checks above ran once, before the data phase.

Success clears the sense data (86Box's behaviour and SPC-3 §4.5.1: sense
describes the *last* command; QEMU's sticky sense is a known bug).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum, IntEnum

import numpy as np

from devices.media.base import Medium, MediumError, MediumReadError, NoMedium
from devices.personality import DEFAULT_PERSONALITY, Personality
from devices.scsi.commands import MMC_COMMANDS, Command, CommandTable, Flag
from devices.scsi.sense import (
    SENSE_INTERNAL_FAILURE,
    SENSE_INVALID_OPCODE,
    SENSE_MEDIUM_CHANGED,
    SENSE_NO_MEDIUM,
    SENSE_NO_MEDIUM_TRAY_CLOSED,
    SENSE_NO_MEDIUM_TRAY_OPEN,
    SENSE_NONE,
    SENSE_POWER_ON,
    SENSE_UNRECOVERED_READ,
    CheckCondition,
    Sense,
)
from devices.state import StateError, apply, as_bytes, capture

log = logging.getLogger(__name__)

# Plain ints for the per-command checks (IntFlag arithmetic is slow on this hot path).
_ALLOW_UA, _CHECK_READY = int(Flag.ALLOW_UA), int(Flag.CHECK_READY)
_MAY_MOVE_NOTHING = int(Flag.NONDATA | Flag.CONDDATA)

_EMPTY = np.zeros(0, dtype=np.uint8)


class Status(Enum):
    """How a packet command ended."""

    GOOD = "good"
    CHECK_CONDITION = "check condition"
    ABORTED = "aborted"
    """Refused at the transport level (ATA ABRT), e.g. byte-count limit 0 with data."""
    DATA_OUT = "data out"
    """Waiting for ``Outcome.data_out_length`` bytes from the host; the transport
    then calls :meth:`MmcTarget.finish_data_out`."""


@dataclass(frozen=True, slots=True)
class DataOut:
    """A handler's request for a data-out (host to device) phase of ``length`` bytes.

    ``finish(unit, cdb, data)`` completes the command with the collected
    parameter list and returns a reply (normally None) or raises
    :class:`CheckCondition`.  A snapshot taken mid-transfer keeps the CDB and
    the bytes collected so far; ``finish`` is found again by re-running the
    handler on the CDB (handlers that return ``DataOut`` change no state).
    """

    length: int
    finish: Callable[[MmcTarget, bytes, bytes], object]


class MediaEvent(IntEnum):
    """GET EVENT STATUS NOTIFICATION media class event codes (MMC-5 §6.7, media class)."""

    NO_CHANGE = 0
    EJECT_REQUEST = 1
    NEW_MEDIA = 2
    MEDIA_REMOVAL = 3
    MEDIA_CHANGED = 4


@dataclass(slots=True)
class Outcome:
    """The result of one packet command, for the transport to deliver."""

    status: Status
    data: np.ndarray = field(default_factory=lambda: _EMPTY)
    """Data-in bytes (uint8), already truncated to the allocation length."""
    sense: Sense = SENSE_NONE
    command: Command | None = None
    data_out_length: int = 0
    """For :attr:`Status.DATA_OUT`: how many parameter bytes the host sends."""


def _sense(value: object, name: str) -> Sense:
    """A saved ``[key, asc, ascq]`` as a :class:`Sense`."""
    if not (isinstance(value, list) and len(value) == 3
            and all(isinstance(v, int) and 0 <= v < 256 for v in value)):
        raise StateError(f"target: field {name!r} is not (key, ASC, ASCQ)")
    return Sense(*value)


def as_bytes_array(reply: object) -> np.ndarray:
    """A handler's reply (bytes, bytearray, numpy array or None) as a flat uint8 array."""
    if reply is None:
        return _EMPTY
    if isinstance(reply, np.ndarray):
        return reply.reshape(-1).view(np.uint8)
    return np.frombuffer(bytes(reply), dtype=np.uint8)


class MmcTarget:
    """State of one MMC logical unit (the drive behind the ATAPI transport).

    State fields (set again by :meth:`reset`): ``sense``, ``pending_ua``,
    ``not_ready_once``, ``media_event``, ``tray_open``, ``locked``,
    ``power_condition``, ``power_event``, ``read_speed_kbs``, ``head_lba``,
    ``pending_out``.  ``medium`` survives
    resets (it is in the tray).
    """

    def __init__(
        self,
        personality: Personality = DEFAULT_PERSONALITY,
        table: CommandTable | None = None,
    ) -> None:
        # Importing the handler modules fills MMC_COMMANDS.
        import devices.scsi.mmc  # noqa: F401
        import devices.scsi.mmc_audio  # noqa: F401
        import devices.scsi.mmc_config  # noqa: F401
        import devices.scsi.mmc_dvd  # noqa: F401
        import devices.scsi.mmc_media  # noqa: F401
        import devices.scsi.mmc_mode  # noqa: F401
        import devices.scsi.mmc_readcd  # noqa: F401
        import devices.scsi.mmc_toc  # noqa: F401
        import devices.scsi.spc  # noqa: F401

        self.personality = personality
        self.table = table if table is not None else MMC_COMMANDS
        self.medium: Medium = NoMedium()
        self.on_guest_eject: Callable[[], None] | None = None
        """Host hook: the guest opened the tray with START STOP UNIT (LoEj)."""
        self.mode_state: dict[int, bytes] = {}
        """Current values of changeable mode pages (MMC-5 §7), keyed by page code."""
        self.reset(power_on=True)

    # -- state ----------------------------------------------------------------------
    def reset(self, power_on: bool = False) -> None:
        """Power-on or hard reset: UNIT ATTENTION 29/00 is established (SPC-3 §5.9.7).

        ATA software reset and DEVICE RESET reset the transport only and do not
        call this (ATA/ATAPI-7 vol 1 §6.7: DEVICE RESET does not change the
        packet command set state).
        """
        self.sense = SENSE_NONE
        self.pending_ua: Sense | None = SENSE_POWER_ON if power_on else None
        self.not_ready_once = False
        self.media_event = MediaEvent.NO_CHANGE
        self.tray_open = False
        self.locked = False
        self.power_condition = 1  # active
        self.power_event = 0
        """GESN power management class event pending (MMC-5 §6.7): 0 none, 1 the power
        state changed successfully (START STOP UNIT, ATA IDLE/STANDBY IMMEDIATE)."""
        self.head_lba = 0
        """Where the optical head is: the block after the last one read or sought
        (READ SUB-CHANNEL current position)."""
        self.read_speed_kbs = 0
        """Read speed chosen by SET CD SPEED / SET STREAMING in kB/s; 0 = the fastest."""
        self.pending_out: tuple[Command, bytes, DataOut] | None = None
        """A command waiting for its data-out parameter list (command, CDB, request)."""

    STATE_FIELDS = ("not_ready_once", "media_event", "tray_open", "locked", "power_condition",
                    "power_event", "head_lba", "read_speed_kbs")
    """Plain fields :meth:`reset` sets; :meth:`state` adds ``sense``, ``pending_ua``, the
    mode pages and the CDB of a data-out command waiting for its parameter list."""

    def state(self) -> dict[str, object]:
        """The unit's saved state.  ``pending_out`` holds a continuation, so it is saved
        as its CDB alone; :meth:`load_state` runs the command's handler again to get the
        continuation back (handlers that return :class:`DataOut` change nothing)."""
        state = capture(self, self.STATE_FIELDS)
        state["sense"] = [self.sense.key, self.sense.asc, self.sense.ascq]
        ua = self.pending_ua
        state["pending_ua"] = None if ua is None else [ua.key, ua.asc, ua.ascq]
        state["mode_state"] = {str(page): np.frombuffer(bytes(data), dtype=np.uint8).copy()
                               for page, data in self.mode_state.items()}
        pending = self.pending_out
        state["pending_out"] = None if pending is None else np.frombuffer(
            pending[1], dtype=np.uint8).copy()
        return state

    def load_state(self, state: dict[str, object]) -> None:
        """Set the unit from :meth:`state`'s dict (the medium is not part of it)."""
        sense = _sense(state.get("sense"), "sense")
        raw_ua = state.get("pending_ua")
        ua = None if raw_ua is None else _sense(raw_ua, "pending_ua")
        pages = state.get("mode_state")
        if not isinstance(pages, dict) or not all(k.isdigit() for k in pages):
            raise StateError("target: field 'mode_state' is not a map of page codes")
        mode_state = {int(k): as_bytes(v, f"mode page {k}") for k, v in pages.items()}
        pending_out = None
        raw_cdb = state.get("pending_out")
        if raw_cdb is not None:
            cdb = as_bytes(raw_cdb, "pending_out")
            cmd = self.table.get(cdb[0]) if cdb else None
            request = cmd.handler(self, cdb) if cmd is not None else None
            if not isinstance(request, DataOut):
                raise StateError(f"target: pending CDB {cdb.hex()} is not a data-out command")
            assert cmd is not None
            pending_out = (cmd, cdb, request)
        apply(self, state, self.STATE_FIELDS)
        self.sense, self.pending_ua = sense, ua
        self.mode_state = mode_state
        self.pending_out = pending_out

    def set_power_condition(self, active: bool) -> None:
        """Enter the active (True) or standby (False) power condition; a change is a
        GESN power event (MMC-5 §6.7, power management class)."""
        condition = 1 if active else 0
        if condition != self.power_condition:
            self.power_condition = condition
            self.power_event = 1

    @property
    def ready(self) -> bool:
        """A medium is loaded and the tray is closed."""
        return self.medium.present and not self.tray_open

    def not_ready_sense(self) -> Sense:
        """The NOT READY sense for the current tray state (MMC-5 Annex F)."""
        if self.tray_open:
            return SENSE_NO_MEDIUM_TRAY_OPEN
        return SENSE_NO_MEDIUM_TRAY_CLOSED

    # -- host side ------------------------------------------------------------------
    def insert(self, medium: Medium) -> None:
        """A medium is loaded and the tray closes (MMC-5 §4.1.6.1, media change).

        The guest sees NOT READY 3A/00 once, then UNIT ATTENTION 28/00 once, and
        GESN reports New Media.
        """
        self.medium = medium
        self.tray_open = False
        self.not_ready_once = True
        self.pending_ua = SENSE_MEDIUM_CHANGED
        self.media_event = MediaEvent.NEW_MEDIA

    def remove(self) -> Medium:
        """The host takes the medium out: a forced eject (the guest's lock is overridden).

        The tray is left open; GESN reports Media Removal.  Returns the old medium
        (not closed: the caller owns it).
        """
        old = self.medium
        self.medium = NoMedium()
        self.locked = False
        self._tray_opened()
        self.media_event = MediaEvent.MEDIA_REMOVAL
        return old

    # -- guest side tray movements (START STOP UNIT, the eject button) --------------
    def open_tray(self) -> None:
        """Open the tray (a guest eject): Media Removal for GESN, then the host hook.

        The hook (``on_guest_eject``) lets the host side release what it
        attached; without a hook the medium stays in the open tray.  A failing hook
        is logged and does not fail the guest's command: the tray did open.
        """
        if self.tray_open:
            return
        self._tray_opened()
        if self.medium.present:
            self.media_event = MediaEvent.MEDIA_REMOVAL
        hook = self.on_guest_eject
        if hook is not None:
            try:
                hook()
            except Exception:
                log.exception("host hook for a guest eject failed")

    def close_tray(self) -> None:
        """Close the tray (a guest load).  A medium left in the tray becomes ready
        again: UNIT ATTENTION 28/00 and New Media, as for any not-ready-to-ready change."""
        if not self.tray_open:
            return
        self.tray_open = False
        if self.medium.present:
            self.pending_ua = SENSE_MEDIUM_CHANGED
            self.media_event = MediaEvent.NEW_MEDIA

    def _tray_opened(self) -> None:
        """The tray is open: no media-change sequence or UNIT ATTENTION is left pending."""
        self.tray_open = True
        self.not_ready_once = False
        self.pending_ua = None

    # -- the dispatcher -------------------------------------------------------------
    def execute(self, cdb: bytes, data_phase_ok: bool = True) -> Outcome:
        """Run one CDB.  ``data_phase_ok`` is False when the transport cannot move
        data (PIO with byte-count limit 0); a command that would then moves none
        is refused with :attr:`Status.ABORTED`."""
        cmd = self.table.get(cdb[0])
        try:
            if cmd is None:
                raise CheckCondition(SENSE_INVALID_OPCODE)
            flags = cmd.mask
            if not flags & _ALLOW_UA:
                if self.not_ready_once:
                    self.not_ready_once = False
                    if self.ready:
                        raise CheckCondition(SENSE_NO_MEDIUM)
                if self.pending_ua is not None:
                    ua, self.pending_ua = self.pending_ua, None
                    raise CheckCondition(ua)
            if flags & _CHECK_READY and not self.ready:
                raise CheckCondition(self.not_ready_sense())
            if not data_phase_ok and not flags & _MAY_MOVE_NOTHING:
                return Outcome(Status.ABORTED, command=cmd)
            reply = cmd.handler(self, cdb)
            if isinstance(reply, DataOut):
                if reply.length == 0:  # no parameter list: nothing to do, no error (SPC-3 §6.9)
                    reply = None
                elif not data_phase_ok:
                    return Outcome(Status.ABORTED, command=cmd)
                else:
                    self.pending_out = (cmd, cdb, reply)
                    return Outcome(Status.DATA_OUT, command=cmd, data_out_length=reply.length)
            data = as_bytes_array(reply)
            if cmd.alloc is not None:
                data = data[: cmd.alloc.of(cdb)]
            if data.size and not data_phase_ok:
                return Outcome(Status.ABORTED, command=cmd)
        except Exception as exc:  # noqa: BLE001 - every failure becomes sense
            return self._failed(cmd, exc)
        self.sense = SENSE_NONE
        return Outcome(Status.GOOD, data, command=cmd)

    def finish_data_out(self, data: bytes) -> Outcome:
        """The host sent the parameter list of the pending data-out command: finish it."""
        pending, self.pending_out = self.pending_out, None
        if pending is None:
            return Outcome(Status.ABORTED)
        cmd, cdb, request = pending
        try:
            reply = as_bytes_array(request.finish(self, cdb, bytes(data)))
        except Exception as exc:  # noqa: BLE001 - every failure becomes sense
            return self._failed(cmd, exc)
        self.sense = SENSE_NONE
        return Outcome(Status.GOOD, reply, command=cmd)

    def recheck_medium(self, view: np.ndarray) -> Sense | None:
        """Before the drive copies ``view``, held since an earlier port access: is the
        medium still backing it (``Medium.recheck``, for media that hand out views)?
        None if so; else the command's sense (MEDIUM ERROR 03/11/00 for a file cut
        short), set as the current sense."""
        recheck = getattr(self.medium, "recheck", None)
        if recheck is None:
            return None
        try:
            recheck(view)
        except MediumError as exc:
            return self._failed(None, exc).sense
        return None

    def _failed(self, cmd: Command | None, exc: Exception) -> Outcome:
        """Turn a handler's exception into CHECK CONDITION (the guest never sees a crash)."""
        name = cmd.name if cmd else "?"
        if isinstance(exc, CheckCondition):
            sense = exc.sense
        elif isinstance(exc, MediumReadError):
            # The image is still attached but these sectors cannot be read (the file was
            # cut short under the drive): MEDIUM ERROR, as a disc with a bad area would.
            log.warning("read failed during %s: %s", name, exc)
            sense = SENSE_UNRECOVERED_READ
        elif isinstance(exc, MediumError):
            # The backing store vanished (host drive unplugged): the guest sees no medium.
            log.warning("medium failed during %s: %s", name, exc)
            sense = SENSE_NO_MEDIUM
        else:  # a bug must not escape into a port access
            log.error("internal error in %s", name, exc_info=exc)
            sense = SENSE_INTERNAL_FAILURE
        self.sense = sense
        return Outcome(Status.CHECK_CONDITION, sense=sense, command=cmd)
