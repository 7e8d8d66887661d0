"""``emu verify ISO``: read every sector through the emulated drive and compare.

The firmware driver probes the drive, waits until it is ready, asks READ
CAPACITY, then reads the whole disc with READ(10) (by bus-master DMA when the
driver and drive support it, else polled PIO) into guest memory; each chunk
is compared with the image file read directly, and hashed.  This exercises
the whole path (driver → ports → controller → drive → SCSI dispatch →
medium) on real images and gives an end-to-end throughput figure.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from devices.media.iso import IsoImage
from emu.firmware.ata import AtaHostDriver, FirmwareError, location_name
from emu.pc.machine import Machine
from images import SAMPLE_ISO

SECTOR = 2048
CHUNK_SECTORS = 256
"""Sectors per verification step (512 KiB of guest memory)."""
DEST = 0x100000


@dataclass
class VerifyResult:
    """What ``verify_image`` found."""

    sectors: int
    mode: str
    seconds: float
    sha256: str
    first_mismatch: int | None
    """LBA of the first sector that differs from the file, or None."""

    @property
    def ok(self) -> bool:
        return self.first_mismatch is None

    @property
    def mib_per_s(self) -> float:
        return self.sectors * SECTOR / (1 << 20) / self.seconds if self.seconds else 0.0


def _driver(machine: Machine, dma: bool) -> tuple[AtaHostDriver, str]:
    """The firmware driver, in DMA mode when asked for and available."""
    if dma and "use_dma" in inspect.signature(AtaHostDriver).parameters:
        return AtaHostDriver(machine.ports, machine.memory, use_dma=True), "DMA"  # type: ignore[call-arg]
    return AtaHostDriver(machine.ports, machine.memory), "PIO"


class Progress:
    """A one-line progress bar on ``stream`` (stderr), redrawn at most 10 times a second."""

    def __init__(self, stream: TextIO, total: int, enabled: bool) -> None:
        self.stream, self.total, self.enabled = stream, total, enabled
        self.start = time.perf_counter()
        self._last = 0.0

    def update(self, done: int, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        frac = done / self.total if self.total else 1.0
        bar = "#" * int(frac * 30)
        rate = done * SECTOR / (1 << 20) / max(now - self.start, 1e-9)
        self.stream.write(f"\r[{bar:<30}] {frac:6.1%} {done}/{self.total} sectors "
                          f"{rate:7.1f} MiB/s")
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self.update(self.total, force=True)
            self.stream.write("\n")


def verify_image(
    iso: str,
    bus: int = 1,
    device: int = 0,
    dma: bool = True,
    progress: Progress | None = None,
    on_total: Callable[[int], Progress] | None = None,
) -> VerifyResult:
    """Read the whole of ``iso`` through the emulated drive and compare it with the file."""
    medium = IsoImage(iso)
    try:
        machine = Machine()
        drive = machine.add_dvd_drive(bus, device, medium)
        driver, mode = _driver(machine, dma)
        dev = next((d for d in driver.probe() if (d.bus, d.device) == (bus, device)), None)
        if dev is None:
            raise FirmwareError(f"no drive answered at {location_name(bus, device)}")
        driver.wait_ready(dev)
        total = driver.read_capacity(dev)
        if mode == "DMA" and not getattr(drive, "dma_capable", False):
            mode = "PIO"  # the driver falls back when the drive cannot do DMA
        bar = on_total(total) if on_total else progress
        raw = np.memmap(iso, dtype=np.uint8, mode="r", shape=(total * SECTOR,))
        digest = hashlib.sha256()
        mismatch: int | None = None
        start = time.perf_counter()
        lba = 0
        while lba < total:
            n = min(CHUNK_SECTORS, total - lba)
            driver.read_sectors(dev, lba, n, DEST)
            got = machine.memory.view(DEST, n * SECTOR)
            digest.update(got)
            want = raw[lba * SECTOR : (lba + n) * SECTOR]
            if mismatch is None and not np.array_equal(got, want):
                bad = np.flatnonzero(got != want)[0] // SECTOR
                mismatch = lba + int(bad)
            lba += n
            if bar is not None:
                bar.update(lba)
        seconds = time.perf_counter() - start
        if bar is not None:
            bar.finish()
        del raw
        return VerifyResult(total, mode, seconds, digest.hexdigest(), mismatch)
    finally:
        medium.close()


def cmd_verify(args: argparse.Namespace) -> int:
    """``emu verify``: exit 0 when every sector matches the file, 1 otherwise."""
    show = args.progress or sys.stderr.isatty()

    def make_bar(total: int) -> Progress:
        return Progress(sys.stderr, total, show)

    iso = str(args.iso or SAMPLE_ISO)
    try:
        result = verify_image(iso, args.bus, args.device, dma=not args.pio,
                              on_total=make_bar)
    except FirmwareError as exc:
        print(f"Verify failed: {exc}", file=sys.stderr)
        return 1
    size = result.sectors * SECTOR
    print(f"Image:       {Path(iso).name}")
    print(f"Sectors:     {result.sectors} ({size / (1 << 20):.1f} MiB), read by {result.mode}")
    print(f"Time:        {result.seconds:.3f} s, {result.mib_per_s:.1f} MiB/s")
    print(f"sha256:      {result.sha256}")
    if result.ok:
        print("Result:      every sector matches the file")
        return 0
    print(f"Result:      MISMATCH, first at LBA {result.first_mismatch}")
    return 1


def add_arguments(p: argparse.ArgumentParser,
                  drive_options: Callable[[argparse.ArgumentParser], None]) -> None:
    """The arguments of ``emu verify`` (the CLI lists the command and its help)."""
    p.description = ("Read the whole disc through the emulated drive (by bus-master DMA, or "
                     "PIO with --pio) and compare every sector with the file. Exit status: "
                     "0 every sector matches, 1 a mismatch or a failed read, 2 bad input.")
    p.add_argument("iso", nargs="?", help="ISO image (default: the built-in sample)")
    p.add_argument("--progress", action="store_true",
                   help="show the progress bar even when stderr is not a terminal")
    p.add_argument("--pio", action="store_true", help="read by PIO even if DMA is available")
    drive_options(p)
    p.set_defaults(func=cmd_verify)
