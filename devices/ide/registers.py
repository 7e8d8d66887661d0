"""ATA register map, status/error/control bits and command codes.

ATA/ATAPI-7 vol 1 §7 (registers), vol 2 §5-§6 (packet interrupt reason).
Registers are ``IntEnum``s, one per direction, whose names appear in traces.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag


class ReadReg(IntEnum):
    """Command-block registers as the host reads them (offset from the base port)."""

    DATA = 0
    ERROR = 1
    SECTOR_COUNT = 2  # interrupt reason for packet commands
    LBA_LOW = 3
    LBA_MID = 4  # byte count low for packet commands
    LBA_HIGH = 5  # byte count high
    DEVICE = 6
    STATUS = 7
    ALT_STATUS = 8  # control block (base 0x3F6 / 0x376): does not clear INTRQ


class WriteReg(IntEnum):
    """Command-block registers as the host writes them."""

    DATA = 0
    FEATURES = 1
    SECTOR_COUNT = 2
    LBA_LOW = 3
    LBA_MID = 4
    LBA_HIGH = 5
    DEVICE = 6
    COMMAND = 7
    DEVICE_CONTROL = 8  # control block


class Status(IntFlag):
    """Status register (ATA/ATAPI-7 vol 1 §7.15)."""

    ERR = 0x01  # CHK for packet commands
    DRQ = 0x08
    DSC = 0x10  # SERV for packet devices; old drivers poll it as "seek complete"
    DF = 0x20
    DRDY = 0x40
    BSY = 0x80


class Error(IntFlag):
    """Error register bits (ATA/ATAPI-7 vol 1 §7.9); packet commands put the sense key
    in bits 7-4."""

    ILI = 0x01
    EOM = 0x02
    ABRT = 0x04


class Control(IntFlag):
    """Device Control register (ATA/ATAPI-7 vol 1 §7.8)."""

    NIEN = 0x02
    SRST = 0x04
    HOB = 0x80


class Reason(IntFlag):
    """Packet interrupt reason in the Sector Count register (ATA/ATAPI-7 vol 1 §7.17)."""

    COD = 0x01  # command (1) or data (0)
    IO = 0x02  # to the host (1) or to the device (0)
    REL = 0x04


class AtaCommand(IntEnum):
    """Command codes a packet device sees (ATA/ATAPI-7 vol 1 §6)."""

    NOP = 0x00
    DEVICE_RESET = 0x08
    READ_SECTORS = 0x20
    READ_SECTORS_EXT = 0x24
    READ_DMA = 0xC8
    READ_DMA_EXT = 0x25
    WRITE_SECTORS = 0x30
    EXECUTE_DEVICE_DIAGNOSTIC = 0x90
    STANDBY_IMMEDIATE_OLD = 0x94
    IDLE_IMMEDIATE_OLD = 0x95
    CHECK_POWER_MODE_OLD = 0x98
    PACKET = 0xA0
    IDENTIFY_PACKET_DEVICE = 0xA1
    STANDBY_IMMEDIATE = 0xE0
    IDLE_IMMEDIATE = 0xE1
    CHECK_POWER_MODE = 0xE5
    FLUSH_CACHE = 0xE7
    IDENTIFY_DEVICE = 0xEC
    SET_FEATURES = 0xEF


def ata_command_name(code: int) -> str:
    try:
        return AtaCommand(code).name.replace("_", " ")
    except ValueError:
        return f"command {code:#04x}"


SIGNATURE_PACKET = (0x01, 0x01, 0x14, 0xEB)
"""Sector count, LBA low, LBA mid, LBA high after reset (ATA/ATAPI-7 vol 1 §9.12)."""
DIAG_PASSED = 0x01
"""Diagnostic code: device 0 passed, device 1 passed or not present (vol 1 table 28)."""
