"""Benchmark workloads, each paired with a baseline measured in the same run.

Shared by the pytest-benchmark suite in ``bench/`` and the quick ``emu
bench``.  Every emulated figure has a baseline that does the same useful
work with nothing emulated, so the ratio (baseline time / emulated time,
i.e. emulated throughput as a fraction of raw) is meaningful on any machine:

* READ(10) by PIO string transfers (``rep insw`` per DRQ block into guest
  RAM) and by bus-master DMA, at 2 KiB, 64 KiB and 1 MiB, against one numpy
  copy of the same bytes from the image's memory map into guest RAM;
* TEST UNIT READY and Linux's GESN poll (``4a 01 00 00 10 00 00 00 08 00``)
  as full port round trips (absolute time; target ≤ 8 µs);
* attaching an image (the management API's AttachImage) with 10,000 files
  and an 8 GiB sparse image, against a small image (time and resident memory);
* a 64 KiB PIO read with tracing on, against tracing off.

Targets: a 64 KiB DMA read at least 0.8× as fast as the raw copy, a PIO
string read at least 0.6×, a TEST UNIT READY or GESN round trip within 8 µs,
and an attach that takes as long for a 10,000-file or 8 GiB image as for a
small one (see docs/benchmarks.md, where each target is explained).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from devices.media.iso import IsoImage
from devices.trace import Tracer
from emu.pc.machine import Machine
from emu.tools.args import positive_float
from images.builders import build_patterned_iso, pattern_extent

SECTOR = 2048
BASE, CTRL = 0x170, 0x376
BM = 0xC008
"""Bus-master registers of channel 1 (the board's PIIX BAR 4 + 8)."""
DEST = 0x200000
PRD_TABLE = 0x1000
SIZES = {"2k": 2048, "64k": 65536, "1m": 1 << 20}
CACHE = Path(os.environ.get("EMU_BENCH_CACHE", Path(tempfile.gettempdir()) / "emu-bench"))


# -- images ---------------------------------------------------------------------------


def patterned_image() -> Path:
    """A patterned ISO with at least 1 MiB of data (built once, cached)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / "pattern-700.iso"
    if not path.exists():
        build_patterned_iso(path, data_sectors=700)
    return path


def many_files_image(count: int = 10_000) -> Path:
    """An ISO with ``count`` (empty) files in 10 directories (built once, cached)."""
    import pycdlib

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"files-{count}.iso"
    if not path.exists():
        iso = pycdlib.PyCdlib()
        iso.new(interchange_level=3, vol_ident="MANYFILES")
        per_dir = count // 10
        for d in range(10):
            iso.add_directory(f"/D{d}")
            for i in range(per_dir):
                iso.add_fp(io.BytesIO(b""), 0, f"/D{d}/F{i}.;1")
        tmp = path.with_suffix(".tmp")
        iso.write(str(tmp))
        iso.close()
        tmp.rename(path)
    return path


def sparse_image(size: int = 8 << 30) -> Path:
    """The small patterned ISO extended to ``size`` bytes with a hole (sparse file)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"sparse-{size >> 30}g.iso"
    if not path.exists():
        small = CACHE / "small-for-sparse.iso"
        build_patterned_iso(small, data_sectors=16)
        data = small.read_bytes()
        with path.open("wb") as f:
            f.write(data)
            f.truncate(size)
        small.unlink()
    return path


def small_image() -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / "small.iso"
    if not path.exists():
        build_patterned_iso(path, data_sectors=16)
    return path


# -- the board --------------------------------------------------------------------------


@dataclass
class Rig:
    """A machine with a DVD drive at bus 1 device 0, ready, polled (nIEN set)."""

    machine: Machine
    medium: IsoImage
    first_lba: int

    @classmethod
    def make(cls, path: Path | None = None) -> Rig:
        path = path or patterned_image()
        medium = IsoImage(path)
        machine = Machine()
        machine.add_dvd_drive(1, 0, medium)
        p = machine.ports
        p.outb(BASE + 6, 0xA0)
        p.outb(CTRL, 0x02)  # nIEN: polled, as firmware and the benchmarks of drivers do
        rig = cls(machine, medium, pattern_extent(path)[0])
        rig.tur()  # consume the power-on UNIT ATTENTION
        rig.tur()
        return rig

    def close(self) -> None:
        self.medium.close()

    # -- packet round trips ------------------------------------------------------
    def _packet(self, cdb: bytes, limit: int, dma: bool = False) -> None:
        """Features, byte-count limit, PACKET, then the 12-byte CDB in one ``rep outsw``."""
        p = self.machine.ports
        p.outb(BASE + 1, 1 if dma else 0)
        p.outb(BASE + 4, limit & 0xFF)
        p.outb(BASE + 5, limit >> 8)
        p.outb(BASE + 7, 0xA0)
        p.outsw(BASE, cdb)

    def tur(self) -> int:
        """TEST UNIT READY: four register writes, the 12-byte CDB, one Status read."""
        self._packet(_TUR, 0)
        return self.machine.ports.inb(BASE + 7)

    def gesn(self) -> int:
        """GET EVENT STATUS NOTIFICATION, polled, media class: Linux's media poll."""
        p = self.machine.ports
        self._packet(_GESN, 8)
        status = p.inb(BASE + 7)
        if status & 0x08:
            p.insw(BASE, 4)
            status = p.inb(BASE + 7)
        return status

    def pio_read(self, size: int) -> None:
        """READ(10) of ``size`` bytes by PIO: one ``rep insw`` per DRQ block into RAM."""
        p = self.machine.ports
        self._packet(_read10(self.first_lba, size // SECTOR), 0xFFFE)
        view = self.machine.memory.view(DEST, size)
        inb, insw_into = p.inb, p.insw_into
        off = 0
        while inb(BASE + 7) & 0x08:
            n = inb(BASE + 4) | (inb(BASE + 5) << 8)
            insw_into(BASE, view[off : off + n])
            off += n
        if off != size:
            raise RuntimeError(f"PIO read moved {off} of {size} bytes")

    def setup_prd(self, size: int) -> None:
        """A PRD table covering ``size`` bytes at DEST in 64 KiB entries (SFF-8038i §1.2)."""
        mem = self.machine.memory
        entries = max(1, (size + 0xFFFF) // 0x10000)
        for i in range(entries):
            length = min(0x10000, size - i * 0x10000)
            eot = 0x8000 if i == entries - 1 else 0
            at = PRD_TABLE + 8 * i
            mem.write_u32(at, DEST + i * 0x10000)
            mem.write_u16(at + 4, length & 0xFFFF)
            mem.write_u16(at + 6, eot)

    def dma_read(self, size: int) -> None:
        """READ(10) of ``size`` bytes by bus-master DMA (SFF-8038i §3 sequence)."""
        p = self.machine.ports
        p.outb(BM, 0)
        p.outb(BM + 2, 0x06)  # clear INTERRUPT and ERROR (write 1 to clear)
        p.outl(BM + 4, PRD_TABLE)
        self._packet(_read10(self.first_lba, size // SECTOR), 0, dma=True)
        p.outb(BM, 0x09)  # START | device-to-memory
        status = p.inb(BASE + 7)
        p.outb(BM, 0)
        if status & 0x89:
            raise RuntimeError(f"DMA read ended with status {status:#04x}")

    def raw_copy(self, size: int) -> None:
        """The baseline: one numpy copy of the same sectors from the memory map into RAM."""
        np.copyto(self.machine.memory.view(DEST, size),
                  self.medium.read(self.first_lba, size // SECTOR))

    @property
    def dma_available(self) -> bool:
        unit = self.machine.ide.unit(1, 0)
        return bool(getattr(unit, "dma_capable", False))


_TUR = bytes(12)
_GESN = bytes([0x4A, 0x01, 0, 0, 0x10, 0, 0, 0, 0x08, 0, 0, 0])


def _read10(lba: int, count: int) -> bytes:
    return bytes([0x28, 0, *lba.to_bytes(4, "big"), 0, *count.to_bytes(2, "big"), 0, 0, 0])


# -- attach ---------------------------------------------------------------------------


def rss_bytes() -> int:
    """Resident set size now (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def attacher() -> tuple[Callable[[Path], None], Callable[[], None], Callable[[], None], str]:
    """(attach(path), release(), close(), how): through the management API if present."""
    try:
        from emu.api.vpc import VirtualPC
    except ImportError:  # pragma: no cover - before the management API landed
        state: dict[str, IsoImage] = {}

        def attach(path: Path) -> None:
            state["m"] = IsoImage(path)

        def release() -> None:
            state.pop("m").close()

        return attach, release, lambda: None, "IsoImage open"
    vpc = VirtualPC()
    drive = vpc.create_virtual_machine("bench").add_dvd_drive(1, 0)
    return drive.attach_image, drive.release_image, vpc.close, "DVDDrive.attach_image"


# -- the quick run (``emu bench``) ------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """Seconds per call over several batches: the spread shows how steady the machine was."""

    samples: tuple[float, ...]

    @property
    def best(self) -> float:
        return min(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def worst(self) -> float:
        return max(self.samples)


def measure(fn: Callable[[], object], min_time: float = 0.2, repeat: int = 5) -> Timing:
    """Seconds per call in ``repeat`` batches, each about ``min_time / repeat`` long."""
    fn()
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt >= min_time / repeat or n >= 1 << 20:
            break
        n *= 2
    samples = [dt / n]
    for _ in range(repeat - 1):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - t0) / n)
    return Timing(tuple(samples))


def best_time(fn: Callable[[], object], min_time: float = 0.2, repeat: int = 5) -> float:
    """Seconds per call: the best of ``repeat`` batches."""
    return measure(fn, min_time, repeat).best


def format_seconds(seconds: float) -> str:
    """A duration in the unit that keeps 1-3 digits before the point: ``216.7 ms``, ``8.5 µs``."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.1f} {unit}"
    return f"{seconds / 1e-9:.0f} ns"


@dataclass
class Row:
    name: str
    emulated: Timing
    baseline: Timing | None
    target: str
    """The goal in words, or "" when the row is only reported."""
    met: bool | None

    @property
    def ratio(self) -> float | None:
        """Baseline time / emulated time, medians."""
        return self.baseline.median / self.emulated.median if self.baseline else None


def _ratio_row(name: str, emulated: Timing, baseline: Timing, floor: float | None) -> Row:
    row = Row(name, emulated, baseline, "", None)
    if floor is not None:
        row.target = f"at least {floor:g}× the raw copy's speed"
        row.met = row.ratio is not None and row.ratio >= floor
    return row


def quick_rows(min_time: float = 0.2) -> list[Row]:
    """Measure every pair once (``emu bench``); each baseline is measured once and shared."""
    rows: list[Row] = []
    rig = Rig.make()
    try:
        raw = {label: measure(lambda s=size: rig.raw_copy(s), min_time)
               for label, size in SIZES.items()}
        for label, size in SIZES.items():
            pio = measure(lambda s=size: rig.pio_read(s), min_time)
            rows.append(_ratio_row(f"READ(10) PIO {label}", pio, raw[label], 0.6))
        if rig.dma_available:
            rig.setup_prd(1 << 20)
            for label, size in SIZES.items():
                dma = measure(lambda s=size: rig.dma_read(s), min_time)
                rows.append(_ratio_row(f"READ(10) DMA {label}", dma, raw[label],
                                       0.8 if label == "64k" else None))
        for name, fn in (("TEST UNIT READY round trip", rig.tur),
                         ("GESN poll round trip", rig.gesn)):
            t = measure(fn, min_time)
            rows.append(Row(name, t, None, "within 8 µs (median)", t.median <= 8e-6))
        off = measure(lambda: rig.pio_read(65536), min_time)
        rig.machine.set_trace(Tracer(keep=False))
        on = measure(lambda: rig.pio_read(65536), min_time)
        rig.machine.set_trace(None)
        rows.append(Row("PIO 64k, trace on (vs off)", on, off, "", None))
    finally:
        rig.close()
    attach, release, close, _ = attacher()
    try:
        def once(path: Path) -> float:
            t0 = time.perf_counter()
            attach(path)
            dt = time.perf_counter() - t0
            release()
            return dt

        small = Timing(tuple(once(small_image()) for _ in range(5)))
        for name, path in (("10,000 files", many_files_image()), ("8 GiB sparse", sparse_image())):
            t = Timing(tuple(once(path) for _ in range(5)))
            rows.append(Row(f"attach {name} (vs small)", t, small,
                            "as fast as a small image (at least 0.5×)",
                            small.median / t.median >= 0.5))
    finally:
        close()
    return rows


def format_table(rows: list[Row]) -> list[str]:
    """One line per row: median time, spread (min-max), baseline, ratio, target and verdict."""
    head = (f"{'measurement':<30} {'median':>9} {'min-max':>19} {'baseline':>9} "
            f"{'ratio':>7}  target")
    lines = [head, "-" * len(head)]
    for r in rows:
        spread = f"{format_seconds(r.emulated.best)}-{format_seconds(r.emulated.worst)}"
        base = format_seconds(r.baseline.median) if r.baseline else ""
        ratio = f"{r.ratio:.2f}×" if r.ratio is not None else ""
        verdict = {True: "(met)", False: "(MISSED)", None: ""}[r.met]
        target = f"{r.target} {verdict}".strip() if r.target else "(reported only)"
        lines.append(f"{r.name:<30} {format_seconds(r.emulated.median):>9} {spread:>19} "
                     f"{base:>9} {ratio:>7}  {target}")
    return lines


def cmd_bench(args: argparse.Namespace) -> int:
    """``emu bench``: the quick table of ratios; with ``--check``, exit 1 if a target is missed."""
    print(f"Test images are built once and kept in {CACHE} (set EMU_BENCH_CACHE to move them); "
          "one is an 8 GiB sparse file that takes almost no disk space.", flush=True)
    rows = quick_rows(args.min_time)
    for line in format_table(rows):
        print(line)
    print("ratio = baseline median / emulated median: the emulated path's speed as a "
          "fraction of the same work done with nothing emulated (1.00× = as fast).")
    missed = [r.name for r in rows if r.met is False]
    print(f"{len(missed)} of {sum(r.met is not None for r in rows)} targets missed"
          + (f": {', '.join(missed)}" if missed else ""))
    return 1 if missed and args.check else 0


def add_arguments(p: argparse.ArgumentParser,
                  drive_options: Callable[[argparse.ArgumentParser], None]) -> None:
    """The arguments of ``emu bench`` (the CLI lists the command and its help)."""
    p.description = ("Time the drive's hot paths (PIO and DMA reads, TEST UNIT READY, GESN, "
                     "attaching large images) against the same work done with nothing "
                     "emulated, measured in the same run; print median, spread and ratio. "
                     "Exit status: 0, or with --check 1 when a target is missed.")
    p.add_argument("--min-time", type=positive_float, default=0.2, metavar="S",
                   help="seconds spent per measurement (default 0.2)")
    p.add_argument("--check", action="store_true",
                   help="exit with status 1 when any target is missed")
    p.set_defaults(func=cmd_bench)
