"""The guest's side of a DVD drive, from Python: packet commands sent at the I/O ports.

The management API changes media from the host's side; to see what a guest
sees afterwards, a script needs a guest driver.  :class:`AtapiHost` is that
driver, as small as a teaching one: it drives one drive's IDE channel with the
PACKET PIO data-in protocol of ATA/ATAPI-7 vol 2 §11.8 and returns each
command's outcome as a :class:`Reply` (status, Error register, data), so that
NOT READY, UNIT ATTENTION and GOOD can be read off after an ``attach_image``::

    host = dvd.guest                       # or AtapiHost(machine, bus=1, device=0)
    host.test_unit_ready().outcome         # 'NOT READY' / 'UNIT ATTENTION' / 'GOOD'
    host.request_sense()                   # Sense(key, asc, ascq) of the last failure

Everything goes through the ports, under the machine's lock like any port
access, so what the helper sees is what a guest would see.  It never asks for
sense on its own (a host driver that does changes what the next command
reports); call :meth:`request_sense` when the ASC/ASCQ matter.  The sense key
of a failed command is in the Error register, bits 7-4 (vol 1 §7.17.5).

By default interrupts are enabled (nIEN clear) so a trace shows INTRQ: the
helper waits for INTRQ as an interrupt handler would (falling back to polling
Alternate Status while the line is low), and its Status read acknowledges it.
With ``interrupts=False`` it sets nIEN and polls, as firmware does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from devices.scsi.sense import Sense, SenseKey
from emu.pc.machine import Machine

CHANNELS = {0: (0x1F0, 0x3F6), 1: (0x170, 0x376)}
"""Command and control block base ports of the two IDE channels."""
ST_BSY, ST_DRQ, ST_ERR = 0x80, 0x08, 0x01
CMD_PACKET = 0xA0
CTL_NIEN = 0x02
DEFAULT_BYTE_COUNT_LIMIT = 0xFFFE
"""The largest even byte-count limit: one DRQ block per command where it fits."""
MAX_BLOCKS = 4096
"""DRQ blocks read for one command at most (a guard against a drive that never ends)."""
MAX_POLLS = 100_000


@dataclass(frozen=True)
class Reply:
    """How one packet command ended, as the host's registers show it."""

    cdb: bytes
    status: int
    """The Status register after the command (0x50 GOOD, 0x41 CHECK CONDITION)."""
    error: int
    """The Error register when ``status`` has ERR set (sense key in bits 7-4), else 0."""
    data: bytes = b""
    accepted: bool = True
    """False when the drive refused the PACKET command itself (no DRQ for the CDB)."""

    @property
    def good(self) -> bool:
        return self.accepted and not self.status & ST_ERR

    @property
    def sense_key(self) -> int:
        """The failed command's sense key (Error bits 7-4); 0 for GOOD."""
        return self.error >> 4 if self.status & ST_ERR else 0

    @property
    def outcome(self) -> str:
        """``GOOD``, or the sense key's name: ``NOT READY``, ``UNIT ATTENTION``, ..."""
        if not self.accepted:
            return "REFUSED"
        if self.good:
            return "GOOD"
        try:
            return SenseKey(self.sense_key).name.replace("_", " ")
        except ValueError:
            return f"sense key {self.sense_key:X}h"

    def __str__(self) -> str:
        return self.outcome


class AtapiHost:
    """A polled guest driver for the packet device at (``bus``, ``device``) of ``machine``."""

    def __init__(self, machine: Machine, bus: int = 1, device: int = 0, *,
                 interrupts: bool = True,
                 byte_count_limit: int = DEFAULT_BYTE_COUNT_LIMIT) -> None:
        if bus not in CHANNELS or device not in (0, 1):
            raise ValueError(f"no IDE location bus {bus} device {device} (0-1, 0-1)")
        self.machine = machine
        self.bus, self.device = bus, device
        self.base, self.ctrl = CHANNELS[bus]
        self.interrupts = interrupts
        self.byte_count_limit = byte_count_limit
        self.select()

    def select(self) -> None:
        """Select the device and set nIEN as asked (Device, then Device Control)."""
        ports = self.machine.ports
        ports.outb(self.base + 6, 0xA0 | (self.device << 4))
        ports.outb(self.ctrl, 0 if self.interrupts else CTL_NIEN)

    def _wait_for_drive(self) -> None:
        """Wait until the drive is done: its INTRQ when interrupts are on, else BSY clear.

        An interrupt-driven driver sleeps until INTRQ and then reads Status; a
        polled one reads Alternate Status until BSY clears.  Either way the
        next access is the Status read that acknowledges.
        """
        if self.interrupts and self.machine.ide.channel(self.bus).irq.level:
            return
        self._wait_not_busy()

    def _wait_not_busy(self) -> int:
        inb = self.machine.ports.inb
        for _ in range(MAX_POLLS):
            status = inb(self.ctrl)  # Alternate Status: leaves INTRQ alone
            if not status & ST_BSY:
                return status
        raise TimeoutError(f"ide{self.bus}-{self.device} stays busy")

    def packet(self, cdb: bytes | Sequence[int], byte_count_limit: int | None = None) -> Reply:
        """Send one packet command; read every DRQ block until DRQ clears (vol 2 §11.8).

        HP0: Features 0 (PIO) and the byte-count limit; HP1: PACKET, then the
        12-byte CDB once the drive asks for it; HP4: per DRQ block, Status (the
        acknowledge), Byte Count, then the block; HP0: the final Status.
        """
        cdb = bytes(cdb).ljust(12, b"\0")[:12]
        limit = self.byte_count_limit if byte_count_limit is None else byte_count_limit
        ports, b = self.machine.ports, self.base
        with self.machine.lock:
            ports.outb(b + 1, 0)  # Features: PIO
            ports.outb(b + 4, limit & 0xFF)
            ports.outb(b + 5, (limit >> 8) & 0xFF)
            ports.outb(b + 7, CMD_PACKET)
            if not self._wait_not_busy() & ST_DRQ:
                status = ports.inb(b + 7)
                error = ports.inb(b + 1) if status & ST_ERR else 0
                return Reply(cdb, status, error, accepted=False)
            ports.outsw(b, cdb)
            data = bytearray()
            status = 0
            for _ in range(MAX_BLOCKS):
                self._wait_for_drive()
                status = ports.inb(b + 7)  # acknowledges the block's (or completion's) INTRQ
                if not status & ST_DRQ:
                    break
                n = ports.inb(b + 4) | (ports.inb(b + 5) << 8)
                data += ports.insw(b, (n + 1) // 2).tobytes()[:n]
            error = ports.inb(b + 1) if status & ST_ERR else 0
        return Reply(cdb, status, error, bytes(data))

    # -- commands by name ----------------------------------------------------------
    def test_unit_ready(self) -> Reply:
        """TEST UNIT READY (SPC-3 §6.33): GOOD when a disc is in and ready."""
        return self.packet(bytes(12))

    def request_sense(self) -> Sense:
        """REQUEST SENSE, 18 bytes of fixed-format sense (SPC-3 §6.27, §4.5.3)."""
        reply = self.packet(bytes([0x03, 0, 0, 0, 18]))
        if not reply.good or len(reply.data) < 14:
            raise RuntimeError(f"REQUEST SENSE failed: {reply}")
        d = reply.data
        return Sense(d[2] & 0x0F, d[12], d[13])

    def inquiry(self) -> Reply:
        """INQUIRY, 36 bytes of standard data (SPC-3 §6.4)."""
        return self.packet(bytes([0x12, 0, 0, 0, 36]))

    def read_capacity(self) -> int:
        """READ CAPACITY (MMC-5 §6.23): the number of 2048-byte sectors."""
        reply = self.packet(bytes([0x25]))
        if not reply.good:
            raise RuntimeError(f"READ CAPACITY failed: {reply}")
        return int.from_bytes(reply.data[:4], "big") + 1

    def read10(self, lba: int, count: int = 1) -> Reply:
        """READ(10) of ``count`` 2048-byte sectors from ``lba`` (MMC-5 §6.19)."""
        if not 0 <= lba <= 0xFFFF_FFFF or not 0 <= count <= 0xFFFF:
            raise ValueError(f"READ(10) takes an LBA 0-4294967295 and a count 0-65535, "
                             f"not {lba} and {count}")
        cdb = bytes([0x28, 0, *lba.to_bytes(4, "big"), 0, *count.to_bytes(2, "big"), 0])
        return self.packet(cdb)

    def event_status(self) -> Reply:
        """GET EVENT STATUS NOTIFICATION, polled, media class (MMC-5 §6.6)."""
        return self.packet(bytes([0x4A, 0x01, 0, 0, 0x10, 0, 0, 0, 0x08]))


__all__ = ["AtapiHost", "Reply"]
