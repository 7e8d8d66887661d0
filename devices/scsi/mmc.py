"""MMC-5 multimedia commands: capacity and user-data reads.

READ CAPACITY (MMC-5 §6.23), READ(10) (§6.19), READ(12) (§6.20).  Reads
return a numpy view of the medium (zero copy); the transport moves it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from devices.media.base import SECTOR_SIZE
from devices.scsi.cdb import be16, be32, put32
from devices.scsi.commands import MMC_COMMANDS as T
from devices.scsi.commands import Flag
from devices.scsi.sense import SENSE_LBA_OUT_OF_RANGE, CheckCondition

if TYPE_CHECKING:
    from devices.scsi.target import MmcTarget


@T.command(0x25, "READ CAPACITY", Flag.CHECK_READY)
def cmd_read_capacity(unit: MmcTarget, cdb: bytes) -> bytes:
    """MMC-5 §6.23: last logical block address and the 2048-byte block length (8 bytes)."""
    return put32(unit.medium.sector_count - 1) + put32(SECTOR_SIZE)


def read_blocks(unit: MmcTarget, lba: int, count: int) -> np.ndarray | None:
    """The user data of ``count`` blocks from ``lba``, or LBA OUT OF RANGE (05/21/00).

    A transfer length of 0 moves nothing and is not an error (SBC-3 §5.7).
    """
    if lba + count > unit.medium.sector_count:
        raise CheckCondition(SENSE_LBA_OUT_OF_RANGE)
    if count == 0:
        return None
    return unit.medium.read(lba, count)


@T.command(0x28, "READ(10)", Flag.CHECK_READY | Flag.CONDDATA)
def cmd_read10(unit: MmcTarget, cdb: bytes) -> np.ndarray | None:
    """MMC-5 §6.19: LBA in bytes 2-5, transfer length in bytes 7-8."""
    return read_blocks(unit, be32(cdb, 2), be16(cdb, 7))


@T.command(0xA8, "READ(12)", Flag.CHECK_READY | Flag.CONDDATA)
def cmd_read12(unit: MmcTarget, cdb: bytes) -> np.ndarray | None:
    """MMC-5 §6.20: LBA in bytes 2-5, transfer length in bytes 6-9."""
    return read_blocks(unit, be32(cdb, 2), be32(cdb, 6))
