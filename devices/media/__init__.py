"""Media a drive reads: disc images, host drives, and the empty drive (see ``base``)."""

from devices.media.base import (
    SECTOR_SIZE,
    ImageBadBootCatalog,
    ImageBadPath,
    ImageEmpty,
    ImageIsDirectory,
    ImageNotFound,
    ImageNotIso,
    ImageTruncated,
    ImageUnreadable,
    Medium,
    MediumError,
    MediumGone,
    MediumReadError,
    NoMedium,
)
from devices.media.host import HostDrive
from devices.media.iso import BootEntry, IsoImage

__all__ = [
    "SECTOR_SIZE",
    "BootEntry",
    "HostDrive",
    "ImageBadBootCatalog",
    "ImageBadPath",
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
    "MediumReadError",
    "NoMedium",
]
