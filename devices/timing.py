"""An optional speed model for the drive: a virtual clock, never wall-clock time.

Off by default: nothing in the emulator consults it unless a medium is
wrapped with :meth:`SpeedModel.wrap` (or :func:`attach_speed_model` is
called on a drive).  It exists for experiments that need realistic numbers —
installers that time the drive (dosbox-x issue #2835: the MegaRace installer
wants at least 2×), benchmarks comparing PIO and DMA in drive time — and it
never sleeps: it only adds to a :class:`VirtualClock`.

The model, kept deliberately small and deterministic:

* Transfer rate: ``speed × 1,385,000`` bytes/s (1× DVD, ECMA-267's
  26.16 Mbit/s user-data rate at 1×, the figure MMC-5's GET PERFORMANCE and
  SET STREAMING use for DVD speeds; for a CD speed model pass
  ``base_rate=CD_1X`` = 176,400 B/s, the 1× CD-DA rate of IEC 60908).
* Seek: free when a read starts at the block after the previous read (the
  head is already there); otherwise ``seek_min_ns`` plus a part of
  ``seek_full_ns - seek_min_ns`` proportional to the distance over the
  medium's capacity (a linear stroke model; 86Box also charges a seek per
  non-sequential read, though its formula differs).
* A read of ``n`` bytes at ``lba`` takes ``seek + n / rate`` seconds of
  virtual time, rounded to whole nanoseconds (``last_ns``).  It starts when
  the previous one is over or now, whichever is later, and ends at
  ``busy_until_ns``.  With ``auto_advance`` (the default) the clock jumps to
  that end at once — the host is taken to have waited — so ``clock.now_ns``
  is the total drive time; without it the experiment moves the clock itself
  and :meth:`SpeedModel.busy` says whether the drive would still be busy.

The drive still completes commands synchronously: the model reports the
virtual time a command took, it does not make the guest wait.  Showing BSY
while :meth:`SpeedModel.busy` needs the guest's own accesses to advance the
clock; that is left out on purpose
(TODO(ATA/ATAPI-7 vol 2 §11.8, HP2): optional BSY while the model is busy).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from devices.media.base import Medium

if TYPE_CHECKING:
    from devices.atapi.drive import AtapiDrive

DVD_1X = 1_385_000
"""Bytes per second of user data at 1× DVD speed."""
CD_1X = 176_400
"""Bytes per second at 1× CD speed (75 frames of 2352 bytes)."""
SECTOR = 2048
NS_PER_S = 1_000_000_000


@dataclass
class VirtualClock:
    """Nanoseconds of virtual drive time; only :meth:`advance` moves it."""

    now_ns: int = 0

    def advance(self, ns: int) -> int:
        if ns < 0:
            raise ValueError("the virtual clock never runs backwards")
        self.now_ns += ns
        return self.now_ns


@dataclass
class SpeedModel:
    """Seek + transfer time per read at ``speed`` × ``base_rate`` bytes/s."""

    speed: float = 16.0
    base_rate: int = DVD_1X
    seek_min_ns: int = 20_000_000
    """Shortest non-sequential seek (20 ms)."""
    seek_full_ns: int = 150_000_000
    """Full-stroke seek (150 ms)."""
    clock: VirtualClock = field(default_factory=VirtualClock)
    enabled: bool = True
    """Turn the model off without unwrapping: reads then cost nothing."""
    auto_advance: bool = True
    """Move the clock to the end of each read at once (the host waited for it)."""
    next_lba: int | None = None
    """Where the head is after the previous read (None: unknown, e.g. at power-on)."""
    last_ns: int = 0
    """Virtual time the last read took."""
    busy_until_ns: int = 0
    """Virtual time at which the last read is over."""
    reads: int = 0
    bytes_read: int = 0

    def __post_init__(self) -> None:
        if self.speed <= 0 or self.base_rate <= 0:
            raise ValueError("speed and base rate must be positive")

    @property
    def rate(self) -> float:
        """Bytes per second at the current speed."""
        return self.speed * self.base_rate

    def seek_ns(self, lba: int, capacity: int) -> int:
        """Virtual seek time to ``lba`` on a medium of ``capacity`` blocks."""
        if self.next_lba is not None and lba == self.next_lba:
            return 0
        origin = 0 if self.next_lba is None else self.next_lba
        span = max(capacity, 1)
        fraction = min(abs(lba - origin), span) / span
        return self.seek_min_ns + round((self.seek_full_ns - self.seek_min_ns) * fraction)

    def transfer_ns(self, nbytes: int) -> int:
        """Virtual time to stream ``nbytes`` off the disc."""
        return round(nbytes * NS_PER_S / self.rate)

    def read(self, lba: int, blocks: int, capacity: int, block_size: int = SECTOR) -> int:
        """Charge a read of ``blocks`` blocks at ``lba``; returns its virtual duration (ns)."""
        if not self.enabled:
            self.last_ns = 0
            return 0
        nbytes = blocks * block_size
        duration = self.seek_ns(lba, capacity) + self.transfer_ns(nbytes)
        start = max(self.clock.now_ns, self.busy_until_ns)
        self.busy_until_ns = start + duration
        if self.auto_advance:
            self.clock.advance(self.busy_until_ns - self.clock.now_ns)
        self.next_lba = lba + blocks
        self.last_ns = duration
        self.reads += 1
        self.bytes_read += nbytes
        return duration

    def busy(self) -> bool:
        """True while the virtual clock has not reached the end of the last read."""
        return self.clock.now_ns < self.busy_until_ns

    def wrap(self, medium: Medium) -> TimedMedium:
        """``medium`` with every sector read charged to this model."""
        return TimedMedium(medium, self)


class TimedMedium:
    """A :class:`Medium` that charges each :meth:`read` to a :class:`SpeedModel`.

    Everything else is the wrapped medium's (``inner``).
    """

    def __init__(self, inner: Medium, model: SpeedModel) -> None:
        self.inner = inner
        self.model = model

    @property
    def path(self) -> str:
        return self.inner.path

    @property
    def sector_count(self) -> int:
        return self.inner.sector_count

    @property
    def present(self) -> bool:
        return self.inner.present

    @property
    def is_dvd(self) -> bool:
        return self.inner.is_dvd

    def read(self, lba: int, count: int) -> np.ndarray:
        data = self.inner.read(lba, count)
        self.model.read(lba, count, self.inner.sector_count)
        return data

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> object:
        # Structural questions (volume id, El Torito catalog, ...) go to the real medium.
        return getattr(self.inner, name)


def attach_speed_model(drive: AtapiDrive, model: SpeedModel | None = None) -> SpeedModel:
    """Wrap the medium in ``drive`` so its reads run on ``model``'s virtual clock.

    A medium inserted later (a media change) is not wrapped: call this again.
    """
    model = model if model is not None else SpeedModel()
    medium = drive.target.medium
    if not isinstance(medium, TimedMedium):
        drive.target.medium = model.wrap(medium)
    else:
        medium.model = model
    return model


__all__ = ["CD_1X", "DVD_1X", "SpeedModel", "TimedMedium", "VirtualClock", "attach_speed_model"]
