"""A host optical drive (block device) or raw image file, passed through read-only.

A host drive may hold any disc, so nothing is validated: the guest sees the
sectors (2048-byte logical blocks, MMC-5 §4.2.2) and makes of them what it can.

Sectors are read with ``os.preadv`` into a fresh numpy array, never through a
memory map: a file truncated (or a disc ejected) under a mapping raises SIGBUS
in the emulator, while a read just comes back short or fails.  A short or failed
read, a deleted or replaced file, or a file now shorter than the range asked
for all raise :class:`MediumGone`, so the drive can answer NOT READY /
MEDIUM NOT PRESENT (MMC-5 §4.1.4, sense 02/3A/00) instead of crashing.
"""

from __future__ import annotations

import os
import stat

import numpy as np

from devices.media.base import (
    SECTOR_SIZE,
    MediumGone,
    check_range,
    is_dvd_size,
    open_readonly,
)


class HostDrive:
    """A block device or raw image file served read-only by ``pread``.

    ``sector_count`` is the size at open time (``lseek(fd, 0, SEEK_END)``, which
    works for block devices) divided by 2048; a trailing partial sector is not
    served.
    """

    path: str
    sector_count: int

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path, fd, self.size = open_readonly(path)
        self._fd: int | None = fd
        self.sector_count = self.size // SECTOR_SIZE
        st = os.fstat(fd)
        self._identity = (st.st_dev, st.st_ino)
        self._regular = stat.S_ISREG(st.st_mode)

    @property
    def present(self) -> bool:
        return self._fd is not None

    @property
    def is_dvd(self) -> bool:
        return is_dvd_size(self.sector_count)

    def _check_still_there(self, fd: int, end: int) -> None:
        """Raise MediumGone if the file behind ``fd`` was deleted, replaced or cut short."""
        try:
            st = os.fstat(fd)
        except OSError as exc:
            raise MediumGone(self.path, f"the device is gone: {exc.strerror or exc}") from None
        if not self._regular:
            return  # A block device reports its loss through the read itself.
        if st.st_nlink == 0:
            raise MediumGone(self.path, "the file was deleted")
        if st.st_size < end:
            raise MediumGone(self.path, f"the file was truncated to {st.st_size} bytes")
        try:
            now = os.stat(self.path)
        except OSError:
            raise MediumGone(self.path, "the file was removed") from None
        if (now.st_dev, now.st_ino) != self._identity:
            raise MediumGone(self.path, "the file was replaced")

    def read(self, lba: int, count: int) -> np.ndarray:
        """Sectors ``[lba, lba+count)`` as a new uint8 array (a copy)."""
        fd = self._fd
        if fd is None:
            raise MediumGone(self.path, "the drive was closed")
        check_range(lba, count, self.sector_count)
        start = lba * SECTOR_SIZE
        length = count * SECTOR_SIZE
        self._check_still_there(fd, start + length)
        buf = np.empty(length, dtype=np.uint8)
        view = memoryview(buf)
        done = 0
        while done < length:
            try:
                got = os.preadv(fd, [view[done:]], start + done)
            except OSError as exc:
                raise MediumGone(self.path, f"read failed: {exc.strerror or exc}") from None
            if got == 0:
                raise MediumGone(
                    self.path, f"short read: {done} of {length} bytes at offset {start}"
                )
            done += got
        return buf

    def close(self) -> None:
        """Close the descriptor; closing twice is fine."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> HostDrive:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"HostDrive({self.path!r}, sectors={self.sector_count})"
