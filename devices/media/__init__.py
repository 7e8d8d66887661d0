"""Media a drive reads: disc images, host drives, and the empty drive (see ``base``)."""

from devices.media.base import (
    SECTOR_SIZE,
    ImageEmpty,
    ImageIsDirectory,
    ImageNotFound,
    ImageNotIso,
    ImageTruncated,
    ImageUnreadable,
    Medium,
    MediumError,
    MediumGone,
    NoMedium,
)
from devices.media.host import HostDrive
from devices.media.iso import BootEntry, IsoImage

__all__ = [
    "SECTOR_SIZE",
    "BootEntry",
    "HostDrive",
    "ImageEmpty",
    "ImageIsDirectory",
    "ImageNotFound",
    "ImageNotIso",
    "ImageTruncated",
    "ImageUnreadable",
    "IsoImage",
    "Medium",
    "MediumError",
    "MediumGone",
    "NoMedium",
]
