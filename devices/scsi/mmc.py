"""MMC-5 multimedia commands: capacity, user-data reads, verify and cache.

READ CAPACITY (MMC-5 §6.19), READ(10) (§6.15), READ(12) (§6.16), VERIFY(10)
(§6.43) and SYNCHRONIZE CACHE (§6.41).  Reads return a numpy view of the
medium (zero copy); the transport moves it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from devices.media.base import SECTOR_SIZE
from devices.scsi.cdb import be16, be32, put32
from devices.scsi.commands import MMC_COMMANDS as T
from devices.scsi.commands import Flag
from devices.scsi.sense import SENSE_INVALID_FIELD, SENSE_LBA_OUT_OF_RANGE, CheckCondition

if TYPE_CHECKING:
    from devices.scsi.target import MmcTarget


@T.command(0x25, "READ CAPACITY", Flag.CHECK_READY)
def cmd_read_capacity(unit: MmcTarget, cdb: bytes) -> bytes:
    """MMC-5 §6.19: last logical block address and the 2048-byte block length (8 bytes)."""
    return put32(unit.medium.sector_count - 1) + put32(SECTOR_SIZE)


def read_blocks(unit: MmcTarget, lba: int, count: int) -> np.ndarray | None:
    """The user data of ``count`` blocks from ``lba``, or LBA OUT OF RANGE (05/21/00).

    A transfer length of 0 moves nothing and is not an error (SBC-3 §5.7).
    """
    if lba + count > unit.medium.sector_count:
        raise CheckCondition(SENSE_LBA_OUT_OF_RANGE)
    if count == 0:
        return None
    data = unit.medium.read(lba, count)
    unit.head_lba = lba + count
    return data


@T.command(0x28, "READ(10)", Flag.CHECK_READY | Flag.CONDDATA)
def cmd_read10(unit: MmcTarget, cdb: bytes) -> np.ndarray | None:
    """MMC-5 §6.15: LBA in bytes 2-5, transfer length in bytes 7-8."""
    return read_blocks(unit, be32(cdb, 2), be16(cdb, 7))


@T.command(0xA8, "READ(12)", Flag.CHECK_READY | Flag.CONDDATA)
def cmd_read12(unit: MmcTarget, cdb: bytes) -> np.ndarray | None:
    """MMC-5 §6.16: LBA in bytes 2-5, transfer length in bytes 6-9."""
    return read_blocks(unit, be32(cdb, 2), be32(cdb, 6))


BYTCHK_BIT = 0x02
"""VERIFY(10) CDB byte 1 bit 1: compare with a data-out buffer instead of a medium check."""


@T.command(0x2F, "VERIFY(10)", Flag.CHECK_READY | Flag.NONDATA)
def cmd_verify10(unit: MmcTarget, cdb: bytes) -> None:
    """MMC-5 §6.43 VERIFY (10): LBA bytes 2-5, verification length bytes 7-8.

    BytChk=0: a medium check of the range, which must lie on the disc (05/21/00 as
    READ) and be readable (an image cut short: 03/11/00).  Nothing is transferred.
    BytChk=1 (compare against data from the host) is not supported: 05/24/00.
    """
    if cdb[1] & BYTCHK_BIT:
        raise CheckCondition(SENSE_INVALID_FIELD)
    lba, count = be32(cdb, 2), be16(cdb, 7)
    if lba + count > unit.medium.sector_count:
        raise CheckCondition(SENSE_LBA_OUT_OF_RANGE)
    if count:
        unit.medium.read(lba, count)  # raises for sectors the image no longer has
        unit.head_lba = lba + count


@T.command(0x35, "SYNCHRONIZE CACHE", Flag.NONDATA)
def cmd_synchronize_cache(unit: MmcTarget, cdb: bytes) -> None:
    """MMC-5 §6.41 SYNCHRONIZE CACHE: a read-only drive caches nothing to write,
    so the command succeeds at once, with or without a disc (like ATA FLUSH CACHE).
    The Immed bit, LBA and number of blocks are accepted and change nothing."""
