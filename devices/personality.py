"""Drive personality: the identity and abilities of one drive model, as data.

INQUIRY (SPC-3 §6.4), IDENTIFY PACKET DEVICE (ATA/ATAPI-7 vol 1 §6.17),
GET CONFIGURATION (MMC-5 §5) and the MODE SENSE capabilities page
(MMC-5 §7.9 / page 2Ah) all read from one :class:`Personality`.  A new
drive model is a new row, not a subclass.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Personality:
    """Identity strings and abilities of a drive model."""

    vendor: str = "EMU"
    """INQUIRY T10 vendor identification (8 characters, space padded)."""
    product: str = "Virtual DVD-ROM"
    """INQUIRY product identification (16 characters)."""
    revision: str = "1.00"
    """INQUIRY product revision level and IDENTIFY firmware revision (4 / 8 characters)."""
    serial: str = "EMU0000001"
    """IDENTIFY serial number (20 characters) and INQUIRY VPD page 80h."""
    profiles: tuple[int, ...] = (0x0010, 0x0008)
    """MMC-5 §5.3.1 profiles, most capable first: DVD-ROM, CD-ROM."""
    max_read_speed_kbs: int = 16 * 1385
    """Fastest read speed in kB/s (16x DVD; 1x DVD = 1,385 kB/s)."""
    buffer_kib: int = 512

    @property
    def model(self) -> str:
        """IDENTIFY model number (words 27-46): vendor and product."""
        return f"{self.vendor} {self.product}"


DEFAULT_PERSONALITY = Personality()
