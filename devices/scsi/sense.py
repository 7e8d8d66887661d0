"""Sense data: a value (key, ASC, ASCQ) and the exception that carries it.

SPC-3 §4.5 (sense data), §4.5.3 (fixed format); ASC/ASCQ assignments from
SPC-3 Annex D and MMC-5 Annex F.  Handlers ``raise CheckCondition(SENSE_X)``;
only the dispatcher turns a sense into CHECK CONDITION status.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class SenseKey(IntEnum):
    """SPC-3 §4.5.6, table 27."""

    NO_SENSE = 0x0
    RECOVERED_ERROR = 0x1
    NOT_READY = 0x2
    MEDIUM_ERROR = 0x3
    HARDWARE_ERROR = 0x4
    ILLEGAL_REQUEST = 0x5
    UNIT_ATTENTION = 0x6
    DATA_PROTECT = 0x7
    ABORTED_COMMAND = 0xB


@dataclass(frozen=True, slots=True)
class Sense:
    """One sense condition (SPC-3 §4.5): key, additional sense code and qualifier."""

    key: int
    asc: int
    ascq: int = 0

    @property
    def text(self) -> str:
        """Human-readable meaning for traces and error messages."""
        name = _TEXT.get((self.asc, self.ascq)) or _TEXT.get((self.asc, -1), "")
        return f"{SenseKey(self.key).name.replace('_', ' ')}" + (f", {name}" if name else "")

    def __str__(self) -> str:
        return f"{self.key:02X}/{self.asc:02X}/{self.ascq:02X} ({self.text})"


SENSE_NONE = Sense(SenseKey.NO_SENSE, 0x00)
# NOT READY
SENSE_BECOMING_READY = Sense(SenseKey.NOT_READY, 0x04, 0x01)  # LUN is in process of becoming ready
SENSE_NO_MEDIUM = Sense(SenseKey.NOT_READY, 0x3A, 0x00)  # medium not present
SENSE_NO_MEDIUM_TRAY_CLOSED = Sense(SenseKey.NOT_READY, 0x3A, 0x01)  # ... tray closed
SENSE_NO_MEDIUM_TRAY_OPEN = Sense(SenseKey.NOT_READY, 0x3A, 0x02)  # ... tray open
SENSE_REMOVAL_PREVENTED_NR = Sense(SenseKey.NOT_READY, 0x53, 0x02)  # medium removal prevented
# MEDIUM / HARDWARE ERROR
SENSE_UNRECOVERED_READ = Sense(SenseKey.MEDIUM_ERROR, 0x11, 0x00)  # unrecovered read error
SENSE_INTERNAL_FAILURE = Sense(SenseKey.HARDWARE_ERROR, 0x44, 0x00)  # internal target failure
# ILLEGAL REQUEST
SENSE_INVALID_OPCODE = Sense(SenseKey.ILLEGAL_REQUEST, 0x20, 0x00)  # invalid command op code
SENSE_LBA_OUT_OF_RANGE = Sense(SenseKey.ILLEGAL_REQUEST, 0x21, 0x00)  # LBA out of range
SENSE_INVALID_FIELD = Sense(SenseKey.ILLEGAL_REQUEST, 0x24, 0x00)  # invalid field in CDB
SENSE_INVALID_PARAM = Sense(SenseKey.ILLEGAL_REQUEST, 0x26, 0x00)  # invalid field in param list
SENSE_INCOMPATIBLE_MEDIUM = Sense(SenseKey.ILLEGAL_REQUEST, 0x30, 0x00)  # incompatible medium
SENSE_SAVING_NOT_SUPPORTED = Sense(SenseKey.ILLEGAL_REQUEST, 0x39, 0x00)  # saving params
SENSE_REMOVAL_PREVENTED = Sense(SenseKey.ILLEGAL_REQUEST, 0x53, 0x02)  # medium removal prevented
SENSE_ILLEGAL_MODE = Sense(SenseKey.ILLEGAL_REQUEST, 0x64, 0x00)  # illegal mode for this track
# UNIT ATTENTION
SENSE_MEDIUM_CHANGED = Sense(SenseKey.UNIT_ATTENTION, 0x28, 0x00)  # not ready to ready change
SENSE_POWER_ON = Sense(SenseKey.UNIT_ATTENTION, 0x29, 0x00)  # power on, reset or bus reset

_TEXT: dict[tuple[int, int], str] = {
    (0x00, 0x00): "no additional sense information",
    (0x04, 0x01): "logical unit is in process of becoming ready",
    (0x11, 0x00): "unrecovered read error",
    (0x20, 0x00): "invalid command operation code",
    (0x21, 0x00): "logical block address out of range",
    (0x24, 0x00): "invalid field in CDB",
    (0x26, 0x00): "invalid field in parameter list",
    (0x28, 0x00): "not ready to ready change, medium may have changed",
    (0x29, 0x00): "power on, reset, or bus device reset occurred",
    (0x30, 0x00): "incompatible medium installed",
    (0x39, 0x00): "saving parameters not supported",
    (0x3A, 0x00): "medium not present",
    (0x3A, 0x01): "medium not present - tray closed",
    (0x3A, 0x02): "medium not present - tray open",
    (0x44, 0x00): "internal target failure",
    (0x53, 0x02): "medium removal prevented",
    (0x64, 0x00): "illegal mode for this track",
}


class CheckCondition(Exception):  # noqa: N818 - the SCSI status name
    """A command ends in CHECK CONDITION status with ``sense`` (SAM-3 §5.3.1)."""

    def __init__(self, sense: Sense) -> None:
        super().__init__(str(sense))
        self.sense = sense


def fixed_sense_data(sense: Sense) -> bytes:
    """REQUEST SENSE reply in fixed format (SPC-3 §4.5.3): 18 bytes, response code 70h."""
    data = bytearray(18)
    data[0] = 0x70  # current error, fixed format; VALID=0 (no information field)
    data[2] = sense.key & 0x0F
    data[7] = 10  # additional sense length: bytes 8..17
    data[12] = sense.asc
    data[13] = sense.ascq
    return bytes(data)
