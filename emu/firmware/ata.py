"""The firmware's ATA/ATAPI host driver: ports and guest memory only, as real firmware.

It follows what SeaBIOS does (anchors b.10): per channel, a register echo
(55h/AAh) to see whether a unit answers, one SRST pulse with nIEN set, then
IDENTIFY PACKET DEVICE by polled PIO.  Every packet command runs polled with
nIEN set: byte-count limit = block size (0 for TEST UNIT READY), PACKET,
wait for DRQ, the 12-byte CDB, then ``count`` DRQ blocks of ``blocksize``
bytes moved with one string read each straight into guest memory.

For teaching (``emu trace --interrupts --bcl N``) the driver can instead run
packet commands with nIEN clear (:attr:`AtaHostDriver.interrupts`) and a
byte-count limit of its choosing (:attr:`AtaHostDriver.byte_count_limit`):
then, as an interrupt handler does, it reads Status after each wait (the read
that acknowledges INTRQ) and Byte Count before each DRQ block, so the whole
protocol appears in the trace.  Sector ranges outside READ(10)'s 32-bit LBA
are refused with :class:`FirmwareError` before any port is touched.

With ``use_dma`` the driver reads sectors by bus-master DMA instead
(SFF-8038i §3, the standard programming sequence; ATA/ATAPI-7 vol 2 §11.9,
PACKET DMA): it builds a Physical Region Descriptor table at
:data:`PRD_TABLE`, one entry per piece of the destination that does not cross
a 64 KiB boundary, points the channel's engine at it, sends PACKET with the
DMA feature bit and the CDB, starts the engine with the device-to-memory
direction, polls until the drive leaves its data phase, stops the engine and
checks both the drive's status and the engine's ERROR bit.  There is no PCI
configuration space on this board, so the driver takes the engine's I/O base
as a board constant (``bm_base``, default 0xC000 as a PIIX's BAR 4 would
hold; channel 1 at +8), as firmware for a fixed board would.  nIEN stays set
throughout, so the engine's INTERRUPT bit never latches: the driver polls the
drive's Alternate Status, not the interrupt.  It uses DMA only for units whose
IDENTIFY PACKET word 49 bit 8 says DMA is supported; others stay on PIO.

ATA/ATAPI-7 vol 2 §11.8 (PACKET PIO data-in protocol), vol 1 §9.12 (signature).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from emu.pc.memory import GuestMemory
from emu.pc.ports import PortBus

CHANNELS = ((0x1F0, 0x3F6), (0x170, 0x376))
ST_BSY, ST_DRDY, ST_DRQ, ST_ERR = 0x80, 0x40, 0x08, 0x01
CTL_NIEN, CTL_SRST = 0x02, 0x04
CMD_PACKET, CMD_IDENTIFY_PACKET, CMD_IDENTIFY = 0xA0, 0xA1, 0xEC
SCRATCH = 0x1000
"""Guest address of the firmware's 2 KiB sector bounce buffer."""
SECTOR = 2048
MAX_LBA = 0xFFFF_FFFF
"""The largest LBA a READ(10) can carry (a 32-bit field, MMC-5 §6.19)."""
MAX_SECTORS_PER_READ = 32
"""Sectors per READ(10), as SeaBIOS (64 KiB per command)."""
BM_BASE = 0xC000
"""The board's bus-master I/O base (channel 0; channel 1 at +8): the PIIX BAR 4 value."""
BM_COMMAND, BM_STATUS, BM_PRD_TABLE = 0, 2, 4
BM_START, BM_READ = 0x01, 0x08
BM_ACTIVE, BM_ERROR, BM_INTERRUPT = 0x01, 0x02, 0x04
BM_DRIVE_DMA = (0x20, 0x40)
"""Status bits 5/6: "drive 0/1 is DMA capable", which firmware sets (SFF-8038i §2.2)."""
PRD_TABLE = 0x0800
"""Guest address of the firmware's PRD table (dword aligned, inside one 64 KiB page)."""
PRD_EOT = 0x8000_0000
"""End-of-table bit in the second dword of a PRD entry."""


class FirmwareError(Exception):
    """A firmware-level failure, worded as a BIOS would report it."""


class CommandFailed(FirmwareError):
    """A packet command ended with CHECK CONDITION (error register has the sense key)."""

    def __init__(self, message: str, error: int) -> None:
        super().__init__(message)
        self.error = error


def location_name(bus: int, device: int) -> str:
    """A drive location as every tool prints it: ``ide1-0`` (bus 1, device 0).

    The IDE controller names its units the same way in trace events.
    """
    return f"ide{bus}-{device}"


@dataclass(frozen=True)
class AtapiDevice:
    """A packet device found by the probe."""

    bus: int
    device: int
    model: str
    serial: str
    firmware: str
    device_type: int
    """IDENTIFY word 0 bits 12-8 (5 = CD/DVD)."""
    removable: bool
    identify: bytes

    @property
    def base(self) -> int:
        return CHANNELS[self.bus][0]

    @property
    def ctrl(self) -> int:
        return CHANNELS[self.bus][1]

    @property
    def kind(self) -> str:
        return "DVD/CD" if self.device_type == 5 else f"ATAPI type {self.device_type:#x}"

    @property
    def location(self) -> str:
        return location_name(self.bus, self.device)

    def describe(self) -> str:
        return f"{self.location}: {self.model} ATAPI {self.kind}"


def ata_string(identify: bytes, first_word: int, words: int) -> str:
    """Decode an ATA string (two characters a word, first in the high byte)."""
    raw = identify[first_word * 2 : (first_word + words) * 2]
    swapped = bytes(b for i in range(0, len(raw), 2) for b in (raw[i + 1], raw[i]))
    return swapped.decode("ascii", "replace").strip()


class AtaHostDriver:
    """Polled ATA/ATAPI host driver over a :class:`PortBus` and :class:`GuestMemory`."""

    def __init__(
        self,
        ports: PortBus,
        memory: GuestMemory,
        max_polls: int = 100_000,
        *,
        use_dma: bool = False,
        bm_base: int = BM_BASE,
    ) -> None:
        self.ports = ports
        self.memory = memory
        self.max_polls = max_polls
        self.use_dma = use_dma
        """Read sectors by bus-master DMA where the unit supports it."""
        self.bm_base = bm_base
        self.interrupts = False
        """Run packet commands with nIEN clear, so INTRQ reaches the line (see :meth:`packet`)."""
        self.byte_count_limit: int | None = None
        """The byte-count limit for PIO data (None: one block, SeaBIOS style)."""
        self.log: list[str] = []

    # -- low level ------------------------------------------------------------------
    def _delay400(self, ctrl: int) -> None:
        """The 400 ns settle time: four reads of Alternate Status (vol 2 §5.2.12)."""
        for _ in range(4):
            self.ports.inb(ctrl)

    def wait_not_busy(self, base: int, ctrl: int) -> int:
        """Poll Alternate Status until BSY clears; returns the status."""
        inb = self.ports.inb
        for _ in range(self.max_polls):
            status = inb(ctrl)
            if not status & ST_BSY:
                return status
        raise FirmwareError(f"IDE channel at {base:#x}: device stays busy")

    def select(self, base: int, ctrl: int, device: int) -> None:
        self.ports.outb(base + 6, 0xA0 | (device << 4))
        self._delay400(ctrl)

    # -- probe --------------------------------------------------------------------
    def probe(self) -> list[AtapiDevice]:
        """Find packet devices on both channels (SeaBIOS ``ata_detect`` sequence)."""
        found: list[AtapiDevice] = []
        for bus, (base, ctrl) in enumerate(CHANNELS):
            if self.ports.inb(base + 7) == 0xFF:
                self.log.append(f"ide{bus}: floating bus, no devices")
                continue
            reset_done = False
            for device in (0, 1):
                self.select(base, ctrl, device)
                self.ports.outb(base + 2, 0x55)
                self.ports.outb(base + 3, 0xAA)
                sc, sn = self.ports.inb(base + 2), self.ports.inb(base + 3)
                dh = self.ports.inb(base + 6)
                if sc != 0x55 or sn != 0xAA or (dh & 0x10) != (device << 4):
                    self.log.append(f"{location_name(bus, device)}: no register echo")
                    continue
                if not reset_done:
                    self.soft_reset(base, ctrl)
                    reset_done = True
                    self.select(base, ctrl, device)
                dev = self.identify_packet(bus, device)
                if dev is None:
                    self.log.append(f"{location_name(bus, device)}: not a packet device")
                    continue
                self.log.append(dev.describe())
                found.append(dev)
        return found

    def soft_reset(self, base: int, ctrl: int) -> None:
        """Pulse SRST with nIEN set and wait for BSY to clear (vol 2 §9.2)."""
        self.ports.outb(ctrl, CTL_SRST | CTL_NIEN)
        self._delay400(ctrl)
        self.ports.outb(ctrl, CTL_NIEN)
        self._delay400(ctrl)
        self.wait_not_busy(base, ctrl)

    def identify_packet(self, bus: int, device: int) -> AtapiDevice | None:
        """IDENTIFY PACKET DEVICE, polled; None if the unit does not answer it."""
        base, ctrl = CHANNELS[bus]
        self.ports.outb(ctrl, CTL_NIEN)
        self.wait_not_busy(base, ctrl)
        self.select(base, ctrl, device)
        self.ports.outb(base + 7, CMD_IDENTIFY_PACKET)
        self._delay400(ctrl)
        status = self.wait_not_busy(base, ctrl)
        if not status & ST_DRQ or status & ST_ERR:
            return None
        words = self.ports.insw(base, 256)
        status = self.wait_not_busy(base, ctrl)
        if status & (ST_BSY | ST_DRQ | ST_ERR):
            return None
        ident = words.tobytes()
        word0 = int(words[0])
        if (word0 >> 14) != 0b10:
            return None
        return AtapiDevice(
            bus=bus,
            device=device,
            model=ata_string(ident, 27, 20),
            serial=ata_string(ident, 10, 10),
            firmware=ata_string(ident, 23, 4),
            device_type=(word0 >> 8) & 0x1F,
            removable=bool(word0 & 0x80),
            identify=ident,
        )

    # -- packet commands ----------------------------------------------------------
    def _send_packet(self, dev: AtapiDevice, cdb: bytes, dma: bool, limit: int) -> None:
        """PACKET with nIEN set, then the 12-byte CDB once the drive asks for it (HP1)."""
        base, ctrl = dev.base, dev.ctrl
        ports = self.ports
        ports.outb(ctrl, 0 if self.interrupts else CTL_NIEN)
        self.wait_not_busy(base, ctrl)
        self.select(base, ctrl, dev.device)
        ports.outb(base + 1, 0x01 if dma else 0x00)  # Features bit 0: DMA
        ports.outb(base + 2, 0)
        ports.outb(base + 4, limit & 0xFF)
        ports.outb(base + 5, (limit >> 8) & 0xFF)
        ports.outb(base + 7, CMD_PACKET)
        self._delay400(ctrl)
        status = self.wait_not_busy(base, ctrl)
        if status & ST_ERR:
            raise CommandFailed("PACKET refused", ports.inb(base + 1))
        if not status & ST_DRQ:
            raise FirmwareError("drive did not ask for the command packet")
        ports.outsw(base, bytes(cdb).ljust(12, b"\0"))

    def packet(
        self,
        dev: AtapiDevice,
        cdb: bytes,
        blocksize: int = 0,
        count: int = 0,
        dest: int | None = None,
    ) -> None:
        """Run one packet command polled; data lands at guest address ``dest``.

        Raises :class:`CommandFailed` on CHECK CONDITION or a protocol error.
        """
        if self.interrupts or self.byte_count_limit is not None:
            self._packet_by_interrupt(dev, cdb, blocksize * count, dest)
            return
        base, ctrl = dev.base, dev.ctrl
        ports = self.ports
        self._send_packet(dev, cdb, dma=False, limit=blocksize)
        status = self.wait_not_busy(base, ctrl)
        if status & ST_ERR:
            raise CommandFailed(f"command {cdb[0]:#04x} failed", ports.inb(base + 1))
        addr = dest if dest is not None else SCRATCH
        for block in range(count):
            if not status & ST_DRQ:
                raise FirmwareError(f"data block {block} of {count} missing")
            view = self.memory.view(addr + block * blocksize, blocksize)
            ports.insw_into(base, view)
            status = self.wait_not_busy(base, ctrl)
        if count:
            self.memory.notify_written(addr, count * blocksize)
        status = ports.inb(base + 7)  # acknowledge the completion interrupt
        if status & (ST_BSY | ST_DRQ | ST_ERR):
            raise FirmwareError(f"command {cdb[0]:#04x} did not complete (status {status:#04x})")

    def _packet_by_interrupt(self, dev: AtapiDevice, cdb: bytes, length: int,
                             dest: int | None) -> None:
        """The PACKET PIO data-in protocol as an interrupt handler runs it (vol 2 §11.8).

        With :attr:`interrupts` the drive raises INTRQ for each DRQ block and
        for completion; the driver still waits by polling Alternate Status
        (there is no CPU here to take the interrupt), then reads Status, which
        acknowledges INTRQ as a handler's first read does.  Each DRQ block is
        as long as the drive says in Byte Count (at most the limit set with
        :attr:`byte_count_limit`), so the host reads those two registers
        before moving the block.
        """
        base, ctrl = dev.base, dev.ctrl
        ports = self.ports
        limit = self.byte_count_limit
        if limit is None:
            limit = min(length, 0xFFFE) if length else 0
        self._send_packet(dev, cdb, dma=False, limit=limit)
        addr = dest if dest is not None else SCRATCH
        moved = 0
        while True:
            self.wait_not_busy(base, ctrl)
            status = ports.inb(base + 7)  # the handler's Status read acknowledges INTRQ
            if status & ST_ERR:
                raise CommandFailed(f"command {cdb[0]:#04x} failed", ports.inb(base + 1))
            if not status & ST_DRQ:
                break
            n = ports.inb(base + 4) | (ports.inb(base + 5) << 8)
            if n == 0 or n & 1 or moved + n > length:
                raise FirmwareError(f"command {cdb[0]:#04x}: unexpected DRQ block of {n} bytes "
                                    f"({moved} of {length} moved)")
            ports.insw_into(base, self.memory.view(addr + moved, n))
            moved += n
        if moved:
            self.memory.notify_written(addr, moved)
        if moved != length or status & ST_BSY:
            raise FirmwareError(f"command {cdb[0]:#04x} moved {moved} of {length} bytes "
                                f"(status {status:#04x})")

    def request_sense(self, dev: AtapiDevice) -> tuple[int, int, int]:
        """REQUEST SENSE (18 bytes); returns (key, ASC, ASCQ)."""
        self.packet(dev, bytes([0x03, 0, 0, 0, 18]), 18, 1)
        data = self.memory.read(SCRATCH, 18)
        return data[2] & 0x0F, data[12], data[13]

    def wait_ready(self, dev: AtapiDevice, attempts: int = 20) -> None:
        """TEST UNIT READY / REQUEST SENSE until ready (SeaBIOS ``scsi_is_ready``).

        Three "medium not present" answers mean there is no disc.
        """
        no_medium = 0
        for _ in range(attempts):
            try:
                self.packet(dev, bytes(12), 0, 0)
                return
            except CommandFailed:
                key, asc, ascq = self.request_sense(dev)
                self.log.append(f"TEST UNIT READY: sense {key:02X}/{asc:02X}/{ascq:02X}")
                if asc == 0x3A:
                    no_medium += 1
                    if no_medium >= 3:
                        raise FirmwareError(f"{dev.describe()}: no medium") from None
        raise FirmwareError(f"{dev.describe()}: drive not ready")

    def read_sectors(self, dev: AtapiDevice, lba: int, count: int, dest: int) -> None:
        """READ(10) ``count`` 2048-byte sectors from ``lba`` into guest memory at ``dest``.

        By bus-master DMA when ``use_dma`` is set and the unit supports it.
        Raises :class:`FirmwareError` when the range does not fit READ(10)'s
        32-bit LBA (MMC-5 §6.19) or ``count`` is not positive.
        """
        if count < 1 or not 0 <= lba <= MAX_LBA or lba + count - 1 > MAX_LBA:
            raise FirmwareError(f"sectors {lba}+{count} cannot be read: the LBA must be "
                                f"0-{MAX_LBA} and the count at least 1")
        dma = self.use_dma and supports_dma(dev)
        done = 0
        while done < count:
            n = min(MAX_SECTORS_PER_READ, count - done)
            at = lba + done
            cdb = bytes([0x28, 0, *at.to_bytes(4, "big"), 0, *n.to_bytes(2, "big")])
            if dma:
                self.packet_dma(dev, cdb, n * SECTOR, dest + done * SECTOR)
            else:
                self.packet(dev, cdb, SECTOR, n, dest + done * SECTOR)
            done += n

    # -- bus-master DMA (SFF-8038i §3) ----------------------------------------------
    def build_prd_table(self, dest: int, length: int, table: int = PRD_TABLE) -> int:
        """Describe ``[dest, dest+length)`` at ``table``; returns the number of entries.

        A region may not cross a 64 KiB boundary (SFF-8038i §1.2), so the
        destination is cut at each boundary; a 64 KiB piece is written as byte
        count 0.  The last entry carries EOT.
        """
        if length <= 0 or length & 1 or dest & 1:
            raise FirmwareError("DMA buffers must be word aligned and a whole number of words")
        entries: list[tuple[int, int]] = []
        at, end = dest, dest + length
        while at < end:
            piece = min(end, (at | 0xFFFF) + 1) - at
            entries.append((at, piece))
            at += piece
        raw = bytearray()
        for i, (address, piece) in enumerate(entries):
            flags = PRD_EOT if i == len(entries) - 1 else 0
            raw += address.to_bytes(4, "little")
            raw += ((piece & 0xFFFF) | flags).to_bytes(4, "little")
        self.memory.write(table, bytes(raw))
        return len(entries)

    def packet_dma(self, dev: AtapiDevice, cdb: bytes, length: int, dest: int) -> None:
        """Run one data-in packet command by bus-master DMA into ``[dest, dest+length)``.

        SFF-8038i §3: PRD table, table address, direction with START clear and
        ERROR/INTERRUPT cleared; then PACKET (feature bit 0 = DMA, ATA/ATAPI-7
        vol 1 §6.18) and the CDB; START; poll the drive until its data phase
        ends; STOP; check drive and engine.  Raises :class:`CommandFailed` on
        CHECK CONDITION and :class:`FirmwareError` on an engine error.
        """
        base, ctrl = dev.base, dev.ctrl
        bm = self.bm_base + 8 * dev.bus
        ports = self.ports
        self.build_prd_table(dest, length)
        ports.outb(bm + BM_COMMAND, BM_READ)  # direction first, engine stopped
        ports.outl(bm + BM_PRD_TABLE, PRD_TABLE)
        ports.outb(bm + BM_STATUS, BM_ERROR | BM_INTERRUPT | BM_DRIVE_DMA[dev.device])
        self._send_packet(dev, cdb, dma=True, limit=0)  # the limit is not used for DMA
        ports.outb(bm + BM_COMMAND, BM_READ | BM_START)
        for _ in range(self.max_polls):
            status = ports.inb(ctrl)
            if not status & (ST_BSY | ST_DRQ) or ports.inb(bm + BM_STATUS) & BM_ERROR:
                break
        else:
            ports.outb(bm + BM_COMMAND, BM_READ)
            raise FirmwareError(f"command {cdb[0]:#04x}: DMA did not finish")
        ports.outb(bm + BM_COMMAND, BM_READ)  # stop the engine
        bm_status = ports.inb(bm + BM_STATUS)
        ports.outb(bm + BM_STATUS, (bm_status & ~BM_ACTIVE) | BM_ERROR | BM_INTERRUPT)
        status = ports.inb(base + 7)  # acknowledge the completion
        if status & ST_ERR:
            raise CommandFailed(f"command {cdb[0]:#04x} failed", ports.inb(base + 1))
        if bm_status & BM_ERROR:
            raise FirmwareError(f"command {cdb[0]:#04x}: bus-master DMA error")
        if status & (ST_BSY | ST_DRQ):
            raise FirmwareError(f"command {cdb[0]:#04x} did not complete (status {status:#04x})")

    def read_capacity(self, dev: AtapiDevice) -> int:
        """READ CAPACITY: the number of 2048-byte sectors."""
        self.packet(dev, bytes([0x25]), 8, 1)
        return int.from_bytes(self.memory.read(SCRATCH, 4), "big") + 1


def supports_dma(dev: AtapiDevice) -> bool:
    """IDENTIFY PACKET DEVICE word 49 bit 8: DMA supported (ATA/ATAPI-7 vol 1 §6.17)."""
    word49 = int.from_bytes(dev.identify[98:100], "little")
    return bool(word49 & 0x0100)


def sha256_of(memory: GuestMemory, address: int, length: int) -> str:
    return hashlib.sha256(memory.view(address, length).tobytes()).hexdigest()
