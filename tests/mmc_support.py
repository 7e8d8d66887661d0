"""Shared helpers for the MMC command tests: a synthetic medium and a guest with a drive.

The fake medium answers any size without a file (a DVD-sized one costs
nothing); its sector ``lba`` holds bytes ``(lba + i) & 0xFF`` so reads can be
checked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from devices.atapi.drive import AtapiDrive
from devices.media.base import CD_MAX_SECTORS
from devices.personality import DEFAULT_PERSONALITY, Personality
from emu.pc.machine import Machine
from tests.guest import STATUS_ERR, Guest

CD_SECTORS = 1000
DVD_SECTORS = CD_MAX_SECTORS + 1000


class FakeMedium:
    """A medium of ``sector_count`` sectors whose bytes are ``(lba + offset) & 0xFF``."""

    def __init__(self, sector_count: int, path: str = "fake.iso") -> None:
        self.path = path
        self.sector_count = sector_count

    @property
    def present(self) -> bool:
        return True

    @property
    def is_dvd(self) -> bool:
        return self.sector_count > CD_MAX_SECTORS

    def read(self, lba: int, count: int) -> np.ndarray:
        if lba < 0 or lba + count > self.sector_count:
            raise IndexError("outside the medium")
        return sector_pattern(lba, count)

    def close(self) -> None:
        pass


def sector_pattern(lba: int, count: int) -> np.ndarray:
    base = np.arange(2048, dtype=np.int64)
    return np.concatenate([((base + n) & 0xFF).astype(np.uint8)
                           for n in range(lba, lba + count)]) if count else np.zeros(0, np.uint8)


@dataclass
class Reply:
    data: bytes
    status: int
    sense: tuple[int, int, int] | None
    """(key, asc, ascq) when the command ended in CHECK CONDITION."""

    @property
    def good(self) -> bool:
        return self.sense is None


class Host:
    """A guest with one DVD drive at bus 0 device 0, power-on UNIT ATTENTION consumed."""

    def __init__(self, medium: FakeMedium | None = None,
                 personality: Personality = DEFAULT_PERSONALITY) -> None:
        self.machine = Machine()
        self.drive: AtapiDrive = self.machine.add_dvd_drive(0, 0, medium, personality)
        self.guest = Guest(self.machine, 0)
        self.guest.select(0)
        self.guest.clear_power_on_ua()

    @property
    def unit(self):  # noqa: ANN201 - the MmcTarget
        return self.drive.target

    def run(self, cdb: list[int] | bytes, bcl: int = 0xFFFE) -> Reply:
        data, status = self.guest.command_reply(bytes(cdb).ljust(12, b"\0"), bcl)
        sense = self.guest.sense() if status & STATUS_ERR else None
        return Reply(data, status, sense)

    def run_out(self, cdb: list[int] | bytes, params: bytes, bcl: int = 0xFFFE) -> Reply:
        """A data-out command: PACKET, the CDB, then the parameter list in the DRQ blocks
        the drive opens (IO=0 CoD=0, each block's size in the byte-count registers)."""
        g = self.guest
        g.packet(bytes(cdb).ljust(12, b"\0"), bcl)
        sent = 0
        while g.alt_status() & 0x08:
            assert g.reason() == 0x00, "expected a data-out block (IO=0 CoD=0)"
            n = g.byte_count()
            chunk = params[sent : sent + n]
            sent += n
            self.machine.ports.outsw(g.base, chunk + b"\0" * (len(chunk) & 1))
        status = g.status()
        sense = g.sense() if status & STATUS_ERR else None
        return Reply(b"", status, sense)

    def ok(self, cdb: list[int] | bytes, bcl: int = 0xFFFE) -> bytes:
        reply = self.run(cdb, bcl)
        assert reply.good, f"CDB {bytes(cdb).hex(' ')}: CHECK CONDITION {reply.sense}"
        return reply.data

    def fails(self, cdb: list[int] | bytes, bcl: int = 0xFFFE) -> tuple[int, int, int]:
        reply = self.run(cdb, bcl)
        assert reply.sense is not None, f"CDB {bytes(cdb).hex(' ')} unexpectedly succeeded"
        return reply.sense


INVALID_FIELD = (0x05, 0x24, 0x00)
INVALID_PARAM = (0x05, 0x26, 0x00)
LBA_RANGE = (0x05, 0x21, 0x00)
SAVING = (0x05, 0x39, 0x00)
INCOMPATIBLE = (0x05, 0x30, 0x00)
ILLEGAL_MODE = (0x05, 0x64, 0x00)
PARAM_LENGTH = (0x05, 0x1A, 0x00)
