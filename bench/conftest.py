"""pytest-benchmark suite: each emulated figure paired with a baseline in the same run.

Run: ``.venv/bin/python -m pytest bench/ -p no:randomly`` (add ``--benchmark-json
FILE`` to keep the numbers).  Tests in one ``group`` are a pair: ``kind="raw"``
(the baseline) and ``kind="emu"``; at the end a table of ratios (baseline
median / emulated median, i.e. emulated throughput as a fraction of raw) is
printed after pytest-benchmark's own tables.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from emu.tools.bench import Rig

RESULTS: dict[str, dict[str, float]] = {}
EXTRA: dict[str, dict[str, object]] = {}
TARGETS: dict[str, str] = {}


@pytest.fixture(scope="session")
def rig():
    r = Rig.make()
    r.setup_prd(1 << 20)
    yield r
    r.close()


@pytest.fixture
def record(benchmark):
    """Call ``record(group, kind, fn, target="")``: benchmark ``fn`` and keep its median."""

    def run(group: str, kind: str, fn, target: str = "") -> None:
        benchmark.group = group
        benchmark(fn)
        RESULTS.setdefault(group, {})[kind] = benchmark.stats.stats.median
        if target:
            TARGETS[group] = target

    return run


@pytest.fixture
def record_pair():
    """Call ``record_pair(group, emu_times, baseline_times, target="", **info)`` for pairs
    timed by hand (whole processes, unbounded engines): medians go to the ratio table,
    every figure to ``EXTRA`` (printed after it)."""

    def run(group: str, emu_times, raw_times, target: str = "", **info) -> None:
        emu, raw = statistics.median(emu_times), statistics.median(raw_times)
        RESULTS.setdefault(group, {}).update(emu=emu, raw=raw)
        if target:
            TARGETS[group] = target
        EXTRA[group] = {"emu_s": [round(t, 3) for t in emu_times],
                        "baseline_s": [round(t, 3) for t in raw_times], **info}

    return run


def pytest_terminal_summary(terminalreporter) -> None:
    if not RESULTS:
        return
    tr = terminalreporter
    tr.section("emulated vs baseline (medians)")
    tr.write_line(f"{'group':<28} {'emulated':>11} {'baseline':>11} {'ratio':>7}  target")
    for group in sorted(RESULTS):
        r = RESULTS[group]
        emu, raw = r.get("emu"), r.get("raw")
        if emu is None:
            continue
        base = f"{raw * 1e6:9.1f}µs" if raw else f"{'':>11}"
        ratio = f"{raw / emu:6.2f}×" if raw else f"{'':>7}"
        tr.write_line(f"{group:<28} {emu * 1e6:9.1f}µs {base} {ratio}  {TARGETS.get(group, '')}")
    for group in sorted(EXTRA):
        tr.write_line(f"{group}: {EXTRA[group]}")


@pytest.fixture(scope="session")
def isolinux_iso(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ISOLINUX disc the tests boot (images/loaders.py), built once for the benchmarks."""
    from images.loaders import LoaderUnavailable, build_isolinux_iso

    try:
        return build_isolinux_iso(tmp_path_factory.mktemp("isolinux-bench") / "isolinux.iso")
    except LoaderUnavailable as exc:
        pytest.skip(str(exc))
