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
    """Fastest DVD read speed in kB/s (16x DVD; 1x DVD = 1,385 kB/s).  GET PERFORMANCE
    and page 2Ah report it with a DVD loaded."""
    max_cd_read_speed_kbs: int = 48 * 1764 // 10
    """Fastest CD read speed in kB/s (48x CD; 1x CD = 176.4 kB/s, MMC-5 §6.37)."""
    buffer_kib: int = 512
    """Read buffer size in KiB (page 2Ah, READ BUFFER CAPACITY)."""
    loading_mechanism: int = 1
    """Page 2Ah / Removable Medium feature loading mechanism: 0 caddy, 1 tray, 2 pop-up."""
    lockable: bool = True
    """PREVENT ALLOW MEDIUM REMOVAL can lock the tray (Removable Medium feature LOCK)."""
    can_eject: bool = True
    """START STOP UNIT with LoEj opens the tray (Removable Medium feature EJECT)."""
    audio_play: bool = False
    """Page 2Ah AUDIO PLAY.  False: the drive has no PLAY AUDIO commands, so it
    does not claim them (QEMU claims them without implementing any)."""
    multi_read: bool = True
    """Multi-Read feature (MMC-5 §5.3.13): reads CD-R and CD-RW media."""
    volume_levels: int = 256
    """Page 2Ah number of volume levels supported (page 0Eh port volumes)."""
    rpc_scheme: int = 1
    """REPORT KEY RPC state: 0 = RPC Phase I (no region enforcement), 1 = Phase II."""
    region_mask: int = 0xFF
    """REPORT KEY RPC state region mask: a set bit is a region the drive may not play.
    0xFF with type code 0 is a Phase II drive whose region was never set."""

    @property
    def has_dvd(self) -> bool:
        """The DVD-ROM profile (0010h) is among the drive's profiles."""
        return 0x0010 in self.profiles

    def max_speed_kbs(self, dvd: bool) -> int:
        """The fastest read speed for the loaded medium kind."""
        return self.max_read_speed_kbs if dvd else self.max_cd_read_speed_kbs

    @property
    def model(self) -> str:
        """IDENTIFY model number (words 27-46): vendor and product."""
        return f"{self.vendor} {self.product}"


DEFAULT_PERSONALITY = Personality()
