"""READ(10) by PIO string transfers and by DMA against a raw numpy copy of the same bytes."""

from __future__ import annotations

import pytest

from emu.tools.bench import SIZES

PAIRS = [(label, kind) for label in SIZES for kind in ("raw", "emu")]


@pytest.mark.parametrize(("label", "kind"), PAIRS)
def test_pio_read(rig, record, label, kind):
    size = SIZES[label]
    fn = (lambda: rig.raw_copy(size)) if kind == "raw" else (lambda: rig.pio_read(size))
    record(f"pio-{label}", kind, fn, "≥ 0.6× raw")


@pytest.mark.parametrize(("label", "kind"), PAIRS)
def test_dma_read(rig, record, label, kind):
    if not rig.dma_available:
        pytest.skip("no bus-master DMA engine on this board")
    size = SIZES[label]
    fn = (lambda: rig.raw_copy(size)) if kind == "raw" else (lambda: rig.dma_read(size))
    record(f"dma-{label}", kind, fn, "≥ 0.8× raw" if label == "64k" else "")


@pytest.mark.parametrize("kind", ["raw", "emu"])
def test_trace_off_vs_on(rig, record, kind):
    """'raw' here is tracing off, 'emu' tracing on (a Tracer that keeps nothing)."""
    from devices.trace import Tracer

    rig.machine.set_trace(Tracer(keep=False) if kind == "emu" else None)
    try:
        record("pio-64k-trace-on-vs-off", kind, lambda: rig.pio_read(65536))
    finally:
        rig.machine.set_trace(None)
