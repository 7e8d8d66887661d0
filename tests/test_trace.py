"""The teaching trace: golden transcripts, the renderer's words, the VCD waveform.

Golden transcripts live in ``tests/golden/``; after a deliberate change to the
protocol or the renderer, regenerate them with ``EMU_UPDATE_GOLDEN=1 pytest
tests/test_trace.py`` and review the diff like code.

The VCD file is written with pyvcd and read back with pywellen (the Python
binding of the Rust ``wellen`` waveform library), a parser that shares no
code with the writer.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from devices.media.iso import IsoImage
from devices.trace import TraceEvent, Tracer
from emu.pc.machine import Machine
from emu.tools.cli import main
from emu.tools.trace import (
    Renderer,
    TraceSession,
    VcdRecorder,
    describe_cdb,
    render,
    transcript,
)
from images.builders import SAMPLE_PATH
from tests.guest import Guest

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("EMU_UPDATE_GOLDEN") == "1"


def check_golden(name: str, data: dict) -> None:
    path = GOLDEN / f"{name}.json"
    text = json.dumps(data, indent=1, ensure_ascii=False) + "\n"
    if UPDATE or not path.exists():
        path.write_text(text, encoding="utf-8")
    expected = json.loads(path.read_text(encoding="utf-8"))
    assert data["lines"] == expected["lines"]
    assert data["events"] == expected["events"]


@pytest.fixture
def session():
    s = TraceSession(str(SAMPLE_PATH))
    yield s
    s.close()


# -- golden transcripts ---------------------------------------------------------------


def test_golden_probe(session):
    session.run("probe")
    check_golden("probe", transcript(session.tracer.events, ["probe"]))


def test_golden_pio_read(session):
    session.run("probe", traced=False)
    session.run("ready", traced=False)
    session.run("read")
    data = transcript(session.tracer.events, ["read"])
    check_golden("pio_read", data)
    assert "host → Command (0x177) = 0xA0 PACKET" in data["lines"]
    assert (
        "host → Data (0x170): 28 00 00 00 00 10 00 00 01 00 00 00 = READ(10) LBA 16, 1 block"
        in data["lines"]
    )


def test_golden_media_change(session):
    session.run("probe", traced=False)
    session.run("ready", traced=False)
    session.run("eject")
    data = transcript(session.tracer.events, ["eject"])
    check_golden("media_change", data)
    senses = [line for line in data["lines"] if line.startswith("drive: sense")]
    # Tray open, then the two-step change report: NOT READY 3A/00 once, UNIT ATTENTION 28.
    assert [s.split()[2] for s in senses] == ["02/3A/02", "02/3A/00", "06/28/00"]


def test_golden_dma_read(session):
    session.run("probe", traced=False)
    session.run("ready", traced=False)
    session.run("dma")
    data = transcript(session.tracer.events, ["dma"])
    check_golden("dma_read", data)
    assert "dma bmdma1: PRD 0: 2048 bytes → guest 0x00100000 (EOT: last entry)" in data["lines"]
    assert not any("rep insw" in line for line in data["lines"])  # no PIO data phase


# -- the words ------------------------------------------------------------------------


def interrupt_driven_read() -> tuple[Machine, list[TraceEvent]]:
    """A READ(10) of LBA 16 with interrupts enabled (nIEN clear), as a teaching demo."""
    m = Machine()
    medium = IsoImage(SAMPLE_PATH)
    m.add_dvd_drive(1, 0, medium)
    g = Guest(m, bus=1)
    g.control(0)
    g.clear_power_on_ua()
    tracer = Tracer()
    m.set_trace(tracer)
    g.packet(bytes([0x28, 0, 0, 0, 0, 16, 0, 0, 1]), 2048)
    g.status()
    g.read_words(1024)
    g.status()
    m.set_trace(None)
    medium.close()
    return m, tracer.events


def test_interrupt_driven_read_reads_like_the_protocol():
    _, events = interrupt_driven_read()
    lines = render(events)
    assert lines[lines.index("host → Command (0x177) = 0xA0 PACKET") + 1] == (
        "drive: DRQ=1 CoD=1 IO=0 → send the 12-byte packet"
    )
    assert "drive: DRQ block of 2048 bytes, INTRQ ↑" in lines
    assert "host ← Status (0x177) = 0x58 DRDY DSC DRQ, INTRQ ↓ (reading Status acknowledges)" in (
        lines
    )
    assert "drive: command complete, Status 0x50 DRDY DSC, IO=1 CoD=1, INTRQ ↑" in lines
    data = [line for line in lines if "rep insw" in line]
    assert data == ["host ← Data (0x170): rep insw × 1024 = 2048 bytes "
                    "[01 43 44 30 30 31 01 00 20 20 20 20 20 20 20 20 …]"]


def test_repeated_lines_collapse_with_a_count():
    ev = TraceEvent("port", "ide1", {"dir": "in", "port": 0x376, "reg": "ALT_STATUS",
                                     "value": 0x50})
    assert render([ev] * 4) == ["host ← Alt status (0x376) = 0x50 DRDY DSC (×4)"]
    assert len(render([ev] * 4, collapse=False)) == 4


def test_streaming_renderer_matches_batch_render():
    _, events = interrupt_driven_read()
    r = Renderer()
    lines = [line for e in events for line in r.feed(e)] + r.flush()
    assert lines == render(events)


@pytest.mark.parametrize(
    ("cdb", "text"),
    [
        ("28 00 00 00 00 10 00 00 01 00", "READ(10) LBA 16, 1 block"),
        ("a8 00 00 00 01 00 00 00 00 20 00 00", "READ(12) LBA 256, 32 blocks"),
        ("00", "TEST UNIT READY"),
        ("03 00 00 00 12 00", "REQUEST SENSE allocation 18 bytes"),
        ("4a 01 00 00 10 00 00 00 08 00",
         "GET EVENT STATUS NOTIFICATION polled, classes media, allocation 8 bytes"),
        ("1b 00 00 00 02 00", "START STOP UNIT eject (open the tray)"),
        ("1e 00 00 00 01 00", "PREVENT ALLOW MEDIUM REMOVAL prevent removal (lock)"),
        ("43 02 00 00 00 00 01 03 24 00", "READ TOC/PMA/ATIP format 0 MSF, track 1, "
         "allocation 804 bytes"),
    ],
)
def test_cdb_fields_are_decoded(cdb, text):
    assert describe_cdb(bytes.fromhex(cdb)) == text


def test_tracing_off_records_nothing(session):
    session.run("probe", traced=False)
    session.run("read", traced=False)
    assert session.tracer.events == []


def test_emu_trace_command_prints_and_writes_json(tmp_path, capsys):
    out = tmp_path / "t.json"
    assert main(["trace", str(SAMPLE_PATH), "--script", "probe", "read", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "= READ(10) LBA 16, 1 block" in printed
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["scripts"] == ["probe", "read"]
    assert data["lines"] and data["events"]


# -- the waveform ---------------------------------------------------------------------


def changes(path: Path, names: list[str]) -> dict[str, list[tuple[int, object]]]:
    """Transitions of ``ide1.<name>`` signals as pywellen reads them."""
    pywellen = pytest.importorskip("pywellen")
    wave = pywellen.Waveform(str(path))
    by_name = {v.full_name: v for v in wave.all_vars()}
    result: dict[str, list[tuple[int, object]]] = {}
    for name in names:
        var = by_name[f"ide1.{name}"]
        got: list[tuple[int, object]] = []
        wave.stream_changes(lambda t, _sig, value, got=got: got.append((t, value)), [var])
        result[name] = got
    return result


def values(seq: list[tuple[int, object]]) -> list[object]:
    out: list[object] = []
    for _, v in seq:
        if not out or out[-1] != v:
            out.append(v)
    return out


def test_vcd_waveform_reads_back_with_the_expected_transitions(tmp_path):
    m = Machine()
    medium = IsoImage(SAMPLE_PATH)
    m.add_dvd_drive(1, 0, medium)
    g = Guest(m, bus=1)
    g.control(0)
    g.clear_power_on_ua()
    tracer = Tracer()
    path = tmp_path / "read.vcd"
    with path.open("w", encoding="ascii") as f:
        rec = VcdRecorder(f, m.ide.channel(1))
        tracer.sinks.append(rec)
        m.set_trace(tracer)
        g.packet(bytes([0x28, 0, 0, 0, 0, 16, 0, 0, 1]), 2048)  # READ(10) LBA 16, 1 block
        g.status()
        g.read_words(1024)
        g.status()
        m.set_trace(None)
        rec.close()
    medium.close()
    ch = changes(path, ["DRQ", "INTRQ", "BSY", "ERR", "reason", "byte_count", "phase", "dev"])
    # HP1 asks for the packet (DRQ), HP4 a data block (DRQ again), HP0 completion.
    assert values(ch["DRQ"]) == [0, 1, 0, 1, 0]
    # INTRQ: up for the data block, down on the Status read, up at completion, down again.
    assert values(ch["INTRQ"]) == [0, 1, 0, 1, 0]
    assert values(ch["BSY"]) == [0, 1, 0]  # HP2 executing the packet
    assert values(ch["ERR"]) == [1, 0]  # the power-on UNIT ATTENTION, then none
    # Interrupt reason: completion of the TUR (3), CoD (1), IO (2), IO|CoD (3).
    assert values(ch["reason"]) == [3, 1, 2, 3]
    assert values(ch["byte_count"]) == [0, 2048]
    assert values(ch["phase"]) == ["HP0_idle", "HP1_send_packet", "HP2_busy", "HP4_data_in",
                                   "HP0_idle"]
    assert values(ch["dev"]) == [0]
    # The transitions are in order: the packet request precedes the data block.
    drq_up = [t for t, v in ch["DRQ"] if v == 1]
    intrq_up = [t for t, v in ch["INTRQ"] if v == 1]
    assert drq_up[0] < drq_up[1] <= intrq_up[0]


def test_emu_trace_vcd_option_writes_a_waveform(tmp_path, capsys):
    path = tmp_path / "probe.vcd"
    assert main(["trace", "--script", "probe", "--vcd", str(path)]) == 0
    capsys.readouterr()
    text = path.read_text(encoding="ascii")
    assert "$var wire 1" in text and "INTRQ" in text and "byte_count" in text
    ch = changes(path, ["BSY"])
    assert 1 in values(ch["BSY"])  # SRST holds BSY


def test_management_api_calls_are_traced_with_their_hresults(tmp_path):
    from devices.trace import Tracer
    from emu import VirtualPC
    from emu.api.hresult import VMError
    from emu.tools.trace import render
    from images.builders import build_patterned_iso

    iso = build_patterned_iso(tmp_path / "api.iso", data_sectors=4, boot=False)
    with VirtualPC() as vpc:
        vm = vpc.create_virtual_machine("traced")
        dvd = vm.add_dvd_drive(1, 0)
        tracer = Tracer()
        vm.machine.set_trace(tracer)
        dvd.attach_image(iso)
        dvd.release_image()
        try:
            dvd.release_image()  # nothing captured: VM_E_MEDIA_WRONG_TYPE
        except VMError:
            pass
    calls = [e.fields for e in tracer.events if e.kind == "api"]
    assert [(c["call"], c["hresult"], c["name"]) for c in calls] == [
        ("DVDDrive.attach_image", 0, "S_OK"),
        ("DVDDrive.release_image", 0, "S_OK"),
        ("DVDDrive.release_image", 0xA0040728, "VM_E_MEDIA_WRONG_TYPE"),
    ]
    assert calls[0]["args"] == [str(iso)]
    lines = render(tracer.events)
    assert any("api: DVDDrive.release_image() → VM_E_MEDIA_WRONG_TYPE (0xA0040728)" in line
               for line in lines)
