"""The medium protocol a drive reads from, the empty-drive null medium, and media errors.

A medium serves 2048-byte user-data sectors (MMC-5 §4.2, "logical blocks")
as numpy views: ``read(lba, count)`` returns ``count * 2048`` bytes without
copying where the backing store allows it (a memory map), so the transport
can move them straight into its PIO buffer or into guest memory by DMA.
"""

from __future__ import annotations

import os
import stat
from typing import Protocol, runtime_checkable

import numpy as np

SECTOR_SIZE = 2048
"""User-data bytes per logical block on CD/DVD media (MMC-5 §4.2.2, ECMA-130 mode 1)."""

CD_MAX_SECTORS = 80 * 60 * 75
"""Sectors on an 80-minute CD (75 sectors a second).  A bigger medium is a DVD."""


class MediumError(Exception):
    """A host-side problem with a medium: names the file and the reason."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class ImageNotFound(MediumError):
    """The path does not exist."""


class ImageBadPath(MediumError):
    """The path itself is malformed (a NUL byte): no file can have that name."""


class ImageIsDirectory(MediumError):
    """The path names a directory, not an image file."""


class ImageUnreadable(MediumError):
    """The file exists but cannot be opened or read (permissions, I/O error)."""


class ImageEmpty(MediumError):
    """The file is empty."""


class ImageNotIso(MediumError):
    """No ISO 9660 (or UDF) volume recognition sequence at sector 16."""


class ImageTruncated(MediumError):
    """The file ends inside its own volume descriptors or directory structures."""


class MediumGone(MediumError):
    """The medium vanished under the drive (host drive unplugged, file removed)."""


class MediumReadError(MediumError):
    """Sectors of a medium that is still there cannot be read: an attached image file
    was cut short under the drive, so the asked range lies past its new end.  The
    guest sees MEDIUM ERROR / UNRECOVERED READ ERROR (03/11/00, SPC-3 §4.5.6)."""


class ImageBadBootCatalog(MediumError):
    """The El Torito Boot Record points at a Boot Catalog that is not in the image."""


@runtime_checkable
class Medium(Protocol):
    """What a drive needs from a disc.

    ``read`` raises ``IndexError`` for a range outside ``[0, sector_count)``
    and :class:`MediumGone` when the backing store disappeared.  A medium whose
    ``read`` hands out views of a memory map (not copies) also has ``recheck(view)``:
    raise :class:`MediumReadError` if the bytes of ``view`` are no longer backed (the
    file was cut short since), so a drive that holds a view across port accesses can
    ask again before it copies from it (the drive's target calls it when present).
    """

    path: str
    sector_count: int

    @property
    def present(self) -> bool: ...

    @property
    def is_dvd(self) -> bool: ...

    def read(self, lba: int, count: int) -> np.ndarray: ...

    def close(self) -> None: ...


class NoMedium:
    """The empty drive: no sectors, not present (the null object, never ``None``)."""

    path = ""
    sector_count = 0

    @property
    def present(self) -> bool:
        return False

    @property
    def is_dvd(self) -> bool:
        return False

    def read(self, lba: int, count: int) -> np.ndarray:
        raise IndexError("no medium")

    def close(self) -> None:
        pass


def check_range(lba: int, count: int, sector_count: int) -> None:
    """Raise ``IndexError`` unless ``[lba, lba+count)`` lies on a medium of ``sector_count``."""
    if lba < 0 or count < 0 or lba + count > sector_count:
        raise IndexError(f"sectors {lba}+{count} outside a medium of {sector_count} sectors")


def is_dvd_size(sector_count: int) -> bool:
    """A medium larger than an 80-minute CD is a DVD (the profile a drive reports)."""
    return sector_count > CD_MAX_SECTORS


def open_readonly(path: str | os.PathLike[str]) -> tuple[str, int, int]:
    """Open an image file or host block device read-only; return ``(path, fd, size)``.

    Shared by every medium so a bad path fails the same way whatever is behind it:
    :class:`ImageNotFound`, :class:`ImageIsDirectory`, :class:`ImageUnreadable`
    (permissions, I/O errors, and anything that is neither a regular file nor a block
    device: a FIFO or a socket would block or cannot seek), :class:`ImageEmpty`.
    ``size`` comes from ``lseek(fd, 0, SEEK_END)``, which also works for block
    devices (whose ``st_size`` is 0).  The caller owns ``fd``.
    """
    spath = os.fspath(path)
    if "\0" in spath:
        # No file name can hold a NUL byte (POSIX.1-2017 §3.170): refuse before the OS does.
        raise ImageBadPath(spath.replace("\0", "\\0"), "a path cannot contain a NUL byte")
    try:
        st = os.stat(spath)
    except (FileNotFoundError, NotADirectoryError):
        raise ImageNotFound(spath, "no such file") from None
    except PermissionError:
        raise ImageUnreadable(spath, "permission denied") from None
    except OSError as exc:
        raise ImageUnreadable(spath, f"cannot stat: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageIsDirectory(spath, "is a directory, not an image file")
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        raise ImageUnreadable(spath, "not a regular file or block device")
    try:
        fd = os.open(spath, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ImageNotFound(spath, "no such file") from None
    except PermissionError:
        raise ImageUnreadable(spath, "permission denied") from None
    except OSError as exc:
        raise ImageUnreadable(spath, f"cannot open: {exc.strerror or exc}") from None
    try:
        size = os.lseek(fd, 0, os.SEEK_END)
        os.lseek(fd, 0, os.SEEK_SET)
    except OSError as exc:
        os.close(fd)
        raise ImageUnreadable(spath, f"cannot find its size: {exc.strerror or exc}") from None
    if size == 0:
        os.close(fd)
        raise ImageEmpty(spath, "the file is empty (0 bytes)")
    return spath, fd, size
