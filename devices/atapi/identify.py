"""IDENTIFY PACKET DEVICE data (ATA/ATAPI-7 vol 1 §6.17, table 26).

256 little-endian words; ATA strings are stored two characters a word with
the first character in the high byte (vol 1 §3.3.10), space padded.
"""

from __future__ import annotations

from dataclasses import dataclass

from devices.personality import Personality

GENERAL_CONFIG = 0x85C0
"""Word 0: ATAPI (15-14 = 10b), CD/DVD device type 05h (12-8), removable (7),
accelerated DRQ (6-5 = 10b: no interrupt before the packet), 12-byte packets (1-0 = 00b)."""


def ata_string(text: str, words: int) -> list[int]:
    """An ATA string field of ``words`` words (first character in the high byte)."""
    raw = text.encode("ascii", "replace")[: words * 2].ljust(words * 2, b" ")
    return [(raw[i] << 8) | raw[i + 1] for i in range(0, len(raw), 2)]


@dataclass
class TransferModes:
    """Transfer modes selected by SET FEATURES 03h (vol 1 §6.47.11); None = not selected."""

    pio: int = 4
    mwdma: int | None = None
    udma: int | None = None

    def set_mode(self, value: int) -> bool:
        """Apply a SET FEATURES transfer-mode value (Sector Count); False if unsupported."""
        kind, mode = value >> 3, value & 7
        if value in (0x00, 0x01):  # PIO default mode (with/without IORDY)
            self.pio = 4
        elif kind == 0x01 and mode <= 4:  # 00001nnn: PIO flow control mode n
            self.pio = mode
        elif kind == 0x04 and mode <= 2:  # 00100nnn: multiword DMA mode n
            self.mwdma, self.udma = mode, None
        elif kind == 0x08 and mode <= 5:  # 01000nnn: Ultra DMA mode n
            self.udma, self.mwdma = mode, None
        else:
            return False
        return True


def identify_packet_data(p: Personality, modes: TransferModes, dma: bool) -> bytes:
    """The 512-byte IDENTIFY PACKET DEVICE reply of a DVD-ROM drive."""
    w = [0] * 256
    w[0] = GENERAL_CONFIG
    w[10:20] = ata_string(p.serial, 10)
    w[23:27] = ata_string(p.revision, 4)
    w[27:47] = ata_string(p.model, 20)
    # Word 49: IORDY supported (11), IORDY may be disabled (10), LBA (9), DMA (8).
    w[49] = 0x0E00 | (0x0100 if dma else 0)
    w[50] = 0x4000  # bit 14 shall be one
    w[53] = 0x0006  # words 64-70 and word 88 are valid
    if dma:
        w[62] = 0x0000  # no DMADIR needed
        w[63] = 0x0007 | ((1 << (8 + modes.mwdma)) if modes.mwdma is not None else 0)
        w[88] = 0x003F | ((1 << (8 + modes.udma)) if modes.udma is not None else 0)
    w[64] = 0x0003  # PIO modes 3 and 4
    w[65] = w[66] = w[67] = w[68] = 120  # minimum cycle times (ns)
    w[71] = w[72] = 0  # packet/service release times not given
    w[80] = 0x00F0  # ATA/ATAPI-4 to -7
    # Words 82-87: supported/enabled feature sets.  82: NOP (14), DEVICE RESET (9),
    # PACKET (4), power management (3).  83/86: FLUSH CACHE (12), bit 14 shall be one.
    w[82] = w[85] = 0x4218
    w[83] = 0x5000
    w[86] = 0x1000
    w[84] = w[87] = 0x4000
    w[93] = 0x0000  # hardware reset result: not reported (SeaBIOS keeps probing device 1)
    w[126] = 0x0000  # a byte count limit of 0 is not accepted for data transfers
    # Word 255: integrity word, signature A5h and a checksum making the byte sum 0.
    data = bytearray(b"".join(v.to_bytes(2, "little") for v in w))
    data[510] = 0xA5
    data[511] = (-sum(data[:511])) & 0xFF
    return bytes(data)
