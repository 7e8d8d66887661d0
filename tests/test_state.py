"""Saved state (issue 15, docs/state.md): a restored run is indistinguishable from one that
never stopped.

Equivalence is defined against the same stop continued in-process (docs/state.md, "What
indistinguishable means"): the reference runs to a stop point and resumes; the subject
runs to the same stop point, saves, restores into a newly built session (from the file)
and resumes the same way.  Screens, COM1/E9h text, the drive's trace transcript after the
stop, the instruction count and every saved section must then be equal, under both
firmwares.  Instruction counts are compared on ISOLINUX runs, where the clock counts
whole slices on both sides (the slice cut at the stop is the same one).

The stop points: ISOLINUX's ``boot:`` prompt (``until``), a ``max_instructions`` count
in the middle of SeaBIOS's POST and of the loader, a ``guest_timeout``, and the middle of
a PIO data phase driven at the ports (a DRQ block half read).
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from devices.atapi.drive import Stage
from devices.trace import Tracer
from emu.boot import BootOptions, ExitStatus, boot_session, restore_session
from emu.firmware.seabios import SEABIOS_BIN
from emu.pc import state
from emu.pc.board import PcBoard
from emu.pc.state import StateFileError, StateMismatch
from emu.tools.cli import main as emu_main
from images import SAMPLE_ISO
from images.loaders import LoaderUnavailable, build_isolinux_iso

needs_seabios = pytest.mark.skipif(not SEABIOS_BIN.exists(),
                                   reason="Debian's seabios package is not installed")
FIRMWARES = ["builtin", pytest.param("seabios", marks=needs_seabios)]
KEYS = "ls.c32 /\r/hello.bs\r"
CHAIN = "CHAINLOADED"


@pytest.fixture(scope="module")
def isolinux_iso(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        return build_isolinux_iso(tmp_path_factory.mktemp("isolinux") / "isolinux.iso")
    except LoaderUnavailable as exc:
        pytest.skip(str(exc))


def _session(iso: Path, firmware: str, **kw: object) -> tuple[object, Tracer]:
    trace = Tracer()
    options = BootOptions(iso=iso, firmware=firmware, timeout=None, trace=trace, **kw)
    return boot_session(options), trace


def _events(trace: Tracer, start: int = 0) -> list[dict]:
    return [e.as_dict() for e in trace.events[start:]]


def _same_sections(a: state.Snapshot, b: state.Snapshot) -> None:
    """Every saved section equal (arrays by value), RAM and the CPU context too."""
    assert a.sections.keys() == b.sections.keys()
    for name in a.sections:
        assert _plain(a.sections[name]) == _plain(b.sections[name]), name
    assert np.array_equal(a.ram_index, b.ram_index)
    assert np.array_equal(a.ram_pages, b.ram_pages)
    assert a.context == b.context


def _plain(value: object) -> object:
    if isinstance(value, np.ndarray):
        return ("array", str(value.dtype), value.shape, value.tobytes())
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _continue_both(session: object, trace: Tracer, path: Path, until: str = CHAIN,
                   keys: str = KEYS) -> tuple[object, object, list, list]:
    """Save at the current stop, go on in place (reference) and from the file (subject)."""
    session.save_state(path)
    mark = len(trace.events)
    ref = session.resume(until=until, keys=keys, timeout=None)
    ref_snap = session.snapshot()
    sub_trace = Tracer()
    restored = restore_session(path, options=BootOptions(timeout=None, trace=sub_trace))
    try:
        sub = restored.resume(until=until, keys=keys, timeout=None)
        sub_snap = restored.snapshot()
    finally:
        restored.close()
    _same_sections(ref_snap, sub_snap)
    return ref, sub, _events(trace, mark), _events(sub_trace)


def _assert_equivalent(ref: object, sub: object, ref_events: list, sub_events: list) -> None:
    assert sub.status == ref.status
    assert sub.message == ref.message
    assert sub.screen == ref.screen
    assert sub.serial == ref.serial
    assert sub.console == ref.console
    assert sub.instructions == ref.instructions
    assert sub.drive_commands == ref.drive_commands
    assert sub_events == ref_events
    assert ref_events, "the continuation used the drive"


# -- devices ---------------------------------------------------------------------------------
def test_every_device_state_survives_a_round_trip_onto_a_fresh_board():
    board, other = PcBoard(16 << 20), PcBoard(16 << 20)
    for b in (board, other):
        b.add_dvd_drive(1, 0)
    board.outb(0x43, 0x34)
    board.outb(0x40, 0x12)
    board.outb(0x21, 0xB8)
    board.outb(0x70, 0x0B)
    board.outl(0xCF8, 0x8000_0920)
    board.outl(0xCFC, 0xC001)
    names = [*state.PLATFORM_SECTIONS]
    for name in names:
        saved = getattr(board, name).state()
        json.dumps(state._pack(saved, {}))  # plain data only
        getattr(other, name).load_state(saved)
        assert _plain(getattr(other, name).state()) == _plain(saved), name
    assert other.pit.channels[0].write_low == 0x12
    assert other.pic.master.imr == 0xB8
    drive, twin = board.ide.unit(1, 0), other.ide.unit(1, 0)
    twin.load_state(drive.state())
    assert _plain(twin.state()) == _plain(drive.state())


def test_a_bad_field_is_refused_by_name_and_leaves_the_device_alone():
    board = PcBoard(16 << 20)
    drive = board.add_dvd_drive(1, 0)
    saved = drive.state()
    saved["stage"] = "hp7"
    with pytest.raises(ValueError, match="stage"):
        drive.load_state(saved)
    assert drive.stage is Stage.IDLE


def test_a_pending_mode_select_is_saved_as_its_cdb_and_finds_its_continuation():
    board = PcBoard(16 << 20)
    drive = board.add_dvd_drive(1, 0)
    target = drive.target
    cdb = bytes([0x55, 0x10, 0, 0, 0, 0, 0, 0, 0x18, 0, 0, 0])  # MODE SELECT(10), 24 bytes
    target.pending_ua = None
    outcome = target.execute(cdb)
    assert outcome.status.name == "DATA_OUT"
    saved = drive.state()
    other = PcBoard(16 << 20).add_dvd_drive(1, 0)
    other.load_state(saved)
    assert other.target.pending_out is not None
    assert other.target.pending_out[1] == cdb


# -- equivalence -----------------------------------------------------------------------------
@pytest.mark.parametrize("firmware", FIRMWARES)
def test_a_run_restored_at_the_isolinux_prompt_goes_on_as_if_it_never_stopped(
        isolinux_iso, tmp_path, firmware):
    session, trace = _session(isolinux_iso, firmware, until="boot:")
    try:
        first = session.resume(until="boot:", timeout=None)
        assert first.status is ExitStatus.OK and "boot:" in first.screen
        ref, sub, ref_events, sub_events = _continue_both(session, trace,
                                                          tmp_path / "lab.emustate")
    finally:
        session.close()
    assert CHAIN in ref.screen
    _assert_equivalent(ref, sub, ref_events, sub_events)


@pytest.mark.parametrize(("firmware", "count"), [
    ("builtin", 15_000_000),  # inside ISOLINUX, before its prompt
    pytest.param("seabios", 3_000_000, marks=needs_seabios),  # SeaBIOS's POST
    pytest.param("seabios", 20_000_000, marks=needs_seabios),  # ISOLINUX under SeaBIOS
])
def test_a_run_restored_at_an_instruction_count_goes_on_as_if_it_never_stopped(
        isolinux_iso, tmp_path, firmware, count):
    session, trace = _session(isolinux_iso, firmware, max_instructions=count)
    try:
        first = session.resume(until=None, timeout=None)
        assert first.status is ExitStatus.LIMIT
        session.options.max_instructions = None  # the next run's limits are its own
        ref, sub, ref_events, sub_events = _continue_both(session, trace,
                                                          tmp_path / "mid.emustate")
    finally:
        session.close()
    assert CHAIN in ref.screen
    _assert_equivalent(ref, sub, ref_events, sub_events)


def test_a_run_restored_at_a_guest_timeout_goes_on_as_if_it_never_stopped(isolinux_iso,
                                                                         tmp_path):
    session, trace = _session(isolinux_iso, "builtin", guest_timeout=0.12)
    try:
        first = session.resume(until=None, timeout=None)
        assert first.status is ExitStatus.LIMIT
        session.options.guest_timeout = None
        ref, sub, ref_events, sub_events = _continue_both(session, trace,
                                                          tmp_path / "t.emustate")
    finally:
        session.close()
    _assert_equivalent(ref, sub, ref_events, sub_events)


def _start_pio_read(board: PcBoard, lba: int, sectors: int) -> None:
    """READ(10) by PIO at the ports, as a driver does (ATA/ATAPI-7 vol 2 §11.8)."""
    board.outb(0x176, 0xA0)
    board.outb(0x171, 0x00)  # PIO
    board.outb(0x174, 0x00)
    board.outb(0x175, 0x08)  # byte-count limit 2048: one sector a DRQ block
    board.outb(0x177, 0xA0)  # PACKET
    cdb = bytes([0x28, 0, *lba.to_bytes(4, "big"), 0, *sectors.to_bytes(2, "big"), 0, 0, 0])
    for i in range(0, 12, 2):
        board.outw(0x170, cdb[i] | cdb[i + 1] << 8)


def _read_words(board: PcBoard, n: int) -> bytes:
    return b"".join(board.inw(0x170).to_bytes(2, "little") for _ in range(n))


@pytest.mark.parametrize("firmware", FIRMWARES)
def test_a_drq_block_half_read_at_the_ports_survives_save_and_restore(isolinux_iso,
                                                                      tmp_path, firmware):
    session, _ = _session(isolinux_iso, firmware)
    try:
        session.resume(until="boot:", timeout=None)
        board = session.board
        _start_pio_read(board, 16, 3)
        head = _read_words(board, 300)  # 600 of the first block's 2048 bytes
        drive = session.drive
        assert drive.stage is Stage.PIO_IN and 0 < drive._pos < drive._end
        path = tmp_path / "pio.emustate"
        session.save_state(path)
        ref_rest = _read_words(board, 3 * 1024 - 300)
        ref_status = board.inb(0x177)
        ref_snap = session.snapshot()
        restored = restore_session(path, options=BootOptions(timeout=None))
        try:
            sub_board = restored.board
            assert restored.drive.stage is Stage.PIO_IN
            sub_rest = _read_words(sub_board, 3 * 1024 - 300)
            sub_status = sub_board.inb(0x177)
            _same_sections(ref_snap, restored.snapshot())
        finally:
            restored.close()
    finally:
        session.close()
    assert sub_rest == ref_rest
    assert sub_status == ref_status
    data = head + ref_rest
    assert data[1:6] == b"CD001"  # the primary volume descriptor, all 3 sectors read whole
    assert len(data) == 3 * 2048


def test_an_in_memory_restore_goes_back_in_place_as_often_as_wanted(isolinux_iso):
    session, _ = _session(isolinux_iso, "builtin")
    try:
        session.resume(until="boot:", timeout=None)
        snap = session.snapshot()
        runs = []
        for _ in range(3):
            session.restore(snap)
            runs.append(session.resume(until=CHAIN, keys=KEYS, timeout=None))
    finally:
        session.close()
    assert len({(r.screen, r.instructions, r.serial, r.drive_commands) for r in runs}) == 1
    assert CHAIN in runs[0].screen


# -- the file --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved(isolinux_iso, tmp_path_factory) -> tuple[Path, state.Snapshot]:
    session, _ = _session(isolinux_iso, "builtin")
    try:
        session.resume(until="boot:", timeout=None)
        snap = session.snapshot()
        path = tmp_path_factory.mktemp("state") / "lab.emustate"
        state.save(snap, path)
    finally:
        session.close()
    return path, snap


def test_the_file_holds_exactly_the_snapshot(saved):
    path, snap = saved
    loaded = state.load(path)
    _same_sections(snap, loaded)
    assert loaded.manifest["format"] == "emu-atapi-state"
    assert loaded.manifest["format_version"] == state.FORMAT_VERSION
    assert "boot:" in loaded.manifest["screen"]
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
    assert {"manifest.json", "cpu/context.bin", "ram/index.npy", "ram/pages.npy",
            "sections/drive1-0.json", "sections/firmware.json"} <= names


def test_a_different_image_is_refused_unless_forced(saved, tmp_path):
    path, _ = saved
    with pytest.raises(StateMismatch, match="not the image the state was saved with"):
        restore_session(path, media={(1, 0): str(SAMPLE_ISO)})
    forced = restore_session(path, media={(1, 0): str(SAMPLE_ISO)}, force=True)
    forced.close()


def test_an_in_place_restore_onto_another_image_is_refused_and_changes_nothing(saved):
    _, snap = saved
    other = boot_session(BootOptions(iso=SAMPLE_ISO, timeout=None))
    try:
        other.resume(timeout=None)
        before = other.snapshot()
        with pytest.raises(StateMismatch):
            other.restore(snap)
        _same_sections(before, other.snapshot())
    finally:
        other.close()


def test_a_bad_section_rolls_the_session_back(saved, isolinux_iso):
    _, snap = saved
    session, _ = _session(isolinux_iso, "builtin")
    try:
        session.resume(until="boot:", timeout=None, keys="")
        session.resume(until=CHAIN, keys=KEYS, timeout=None)
        before = session.snapshot()
        broken = state.Snapshot(dict(snap.manifest), {**snap.sections}, snap.context,
                                snap.ram_index, snap.ram_pages)
        broken.sections["drive1-0"] = {**snap.sections["drive1-0"], "stage": "hp7"}
        with pytest.raises(StateFileError, match="stage"):
            session.restore(broken)
        _same_sections(before, session.snapshot())
    finally:
        session.close()


def _rewrite(src: Path, dst: Path, change) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        members = {name: zin.read(name) for name in zin.namelist()}
        change(members)
        for name, data in members.items():
            zout.writestr(name, data)


def _manifest_edit(edit):
    def change(members: dict) -> None:
        manifest = json.loads(members["manifest.json"])
        edit(manifest)
        members["manifest.json"] = json.dumps(manifest).encode()
    return change


@pytest.mark.parametrize(("name", "change", "message"), [
    ("future-format", _manifest_edit(lambda m: m.update(format_version=99)),
     "state format 99 is newer than this emu-atapi"),
    ("future-section", _manifest_edit(lambda m: m["sections"].update(pit=7)),
     "section pit version 7 is newer"),
    ("flipped-byte", lambda m: m.update({"ram/pages.npy": m["ram/pages.npy"][:-1] + b"\x01"}),
     "checksum mismatch"),
    ("missing-member", lambda m: m.pop("sections/pit.json"), "member sections/pit.json"),
    ("not-ours", _manifest_edit(lambda m: m.update(format="something")),
     "not an emu-atapi state file"),
    ("other-unicorn", _manifest_edit(lambda m: m.update(cpu_context_size=1234)),
     "another Unicorn build"),
])
def test_a_damaged_newer_or_foreign_file_is_one_clear_error(saved, tmp_path, name, change,
                                                            message):
    path, _ = saved
    bad = tmp_path / f"{name}.emustate"
    _rewrite(path, bad, change)
    with pytest.raises(StateFileError, match=message) as info:
        restore_session(bad)
    assert "\n" not in str(info.value)


def test_every_truncation_of_the_file_is_refused(saved, tmp_path):
    path, _ = saved
    data = path.read_bytes()
    bad = tmp_path / "cut.emustate"
    for length in (0, 10, 100, len(data) // 3, len(data) // 2, len(data) - 22, len(data) - 1):
        bad.write_bytes(data[:length])
        with pytest.raises(StateFileError) as info:
            state.load(bad)
        assert "\n" not in str(info.value), length


def test_a_machine_never_started_has_no_state_to_save(tmp_path):
    session = boot_session(BootOptions(timeout=None))
    try:
        with pytest.raises(StateFileError, match="never started"):
            session.save_state(tmp_path / "x.emustate")
    finally:
        session.close()
    assert not (tmp_path / "x.emustate").exists()


def test_a_missing_file_and_a_non_zip_are_one_line_errors(tmp_path):
    with pytest.raises(StateFileError, match="no such file"):
        state.load(tmp_path / "nothing.emustate")
    junk = tmp_path / "junk.emustate"
    junk.write_text("hello")
    with pytest.raises(StateFileError, match="damaged"):
        state.load(junk)


# -- the tools -------------------------------------------------------------------------------
def test_emu_boot_save_then_restore_with_keys(isolinux_iso, tmp_path, capsys):
    path = tmp_path / "lab.emustate"
    assert emu_main(["boot", str(isolinux_iso), "--until", "boot:", "--save", str(path),
                     "--no-interactive", "--timeout", "60"]) == 0
    assert path.exists()
    capsys.readouterr()
    assert emu_main(["boot", "--restore", str(path), "--keys", "ls.c32 /\\r/hello.bs\\r",
                     "--until", CHAIN, "--no-interactive", "--screen"]) == 0
    out = capsys.readouterr()
    assert CHAIN in out.out and "Restored:" in out.out
    assert emu_main(["boot", str(SAMPLE_ISO), "--restore", str(path), "--no-interactive"]) == 2
    err = capsys.readouterr().err
    assert "not the image the state was saved with" in err and "Traceback" not in err
    bad = tmp_path / "bad.emustate"
    bad.write_bytes(path.read_bytes()[:1000])
    assert emu_main(["boot", "--restore", str(bad), "--no-interactive"]) == 2
    assert "damaged" in capsys.readouterr().err


def test_a_virtual_machine_saved_and_restored_goes_on_the_same(isolinux_iso, tmp_path):
    from emu.api.hresult import FailError
    from emu.api.vpc import VirtualPC

    path = tmp_path / "vm.emustate"
    with VirtualPC() as vpc:
        vm = vpc.create_virtual_machine("lab", 64 << 20)
        vm.add_dvd_drive(1, 0).attach_image(str(isolinux_iso))
        session = vm.boot("builtin")
        session.resume(until="boot:")
        vm.save_state(path)
        ref = session.resume(until=CHAIN, keys=KEYS)
        twin = vpc.restore_virtual_machine(path, name="twin")
        assert twin.session is not None
        sub = twin.session.resume(until=CHAIN, keys=KEYS)
        assert (sub.screen, sub.instructions, sub.drive_commands) == (
            ref.screen, ref.instructions, ref.drive_commands)
        bad = tmp_path / "bad.emustate"
        bad.write_bytes(path.read_bytes()[:500])
        with pytest.raises(FailError, match="damaged"):
            vpc.restore_virtual_machine(bad, name="broken")
        assert vpc.find_virtual_machine("broken") is None


# -- nothing left out ------------------------------------------------------------------------
_DERIVED = {"_buf", "_np", "_u16", "_src", "_src_pos", "medium", "trace", "wmask", "items",
            "files", "_bm_ranges"}
"""Attributes a restore rebuilds or that hold no guest-visible state: the drive's transfer
buffer outside a DRQ block and its source (saved as the bytes still to move), the medium
(checked by identity), the trace, fw_cfg's items and PCI write masks (built by the board)."""


def _device_fields(obj: object, path: str, out: dict, seen: set) -> None:
    """Every plain attribute reachable from a device (the board's objects only)."""
    if id(obj) in seen:
        return
    seen.add(id(obj))
    for name, value in vars(obj).items():
        if name in _DERIVED or callable(value):
            continue
        where = f"{path}.{name}"
        if isinstance(value, (bool, int, float, str, type(None), bytes, bytearray)):
            out[where] = value
        elif isinstance(value, (list, tuple, dict)) or type(value).__name__ == "deque":
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if callable(item):
                    continue
                if hasattr(item, "__dict__") and type(item).__module__.startswith("devices"):
                    _device_fields(item, f"{where}[{key}]", out, seen)
                else:
                    out[f"{where}[{key}]"] = repr(item)
        elif hasattr(value, "__dict__") and type(value).__module__.startswith("devices"):
            _device_fields(value, where, out, seen)
        elif hasattr(value, "__dataclass_fields__"):  # compared by value (an IntEnum is its int)
            out[where] = tuple(int(v) if isinstance(v, int) else repr(v)
                               for v in dataclasses.astuple(value))


def _all_device_fields(session: object) -> dict:
    board = session.board
    out: dict = {}
    seen: set = set()
    for name in (*state.PLATFORM_SECTIONS, "ide"):
        _device_fields(getattr(board, name), name, out, seen)
    for i, engine in enumerate(board.bus_masters):
        _device_fields(engine, f"bmdma{i}", out, seen)
    return out


@pytest.mark.parametrize("firmware", FIRMWARES)
def test_a_restored_board_has_every_device_field_of_the_saved_one(isolinux_iso, tmp_path,
                                                                 firmware):
    """Not only the saved sections: every plain field of every device object (a field a
    device grows without saving it shows up here)."""
    session, _ = _session(isolinux_iso, firmware)
    try:
        session.resume(until="boot:", timeout=None)
        session.save_state(tmp_path / "all.emustate")
        restored = restore_session(tmp_path / "all.emustate")
        try:
            want, got = _all_device_fields(session), _all_device_fields(restored)
        finally:
            restored.close()
    finally:
        session.close()
    assert len(want) > 300
    assert {k: v for k, v in got.items() if want.get(k) != v} == {}
    assert want.keys() == got.keys()


@pytest.mark.parametrize("firmware", FIRMWARES)
def test_a_state_restored_in_another_process_goes_on_the_same(isolinux_iso, tmp_path,
                                                              firmware):
    """The file is all there is: `emu boot --restore` in a new process continues as the
    saving process does (same screen, instruction count, drive traffic)."""
    import subprocess
    import sys

    from emu.tools.matrix import DriveTraffic

    path = tmp_path / "lab.emustate"
    session, _ = _session(isolinux_iso, firmware)
    try:
        session.resume(until="boot:", timeout=None)
        session.save_state(path)
        traffic = DriveTraffic()
        session.board.set_trace(Tracer(keep=False, sinks=[traffic]))
        ref = session.resume(until=CHAIN, keys=KEYS, timeout=None)
    finally:
        session.close()
    out = tmp_path / "sub.json"
    run = subprocess.run(
        [sys.executable, "-m", "emu.tools.cli", "boot", "--restore", str(path), "--keys",
         "ls.c32 /\\r/hello.bs\\r", "--until", CHAIN, "--no-interactive", "--json-result",
         str(out)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    sub = json.loads(out.read_text())
    assert sub["screen"] == ref.screen
    assert sub["instructions"] == ref.instructions
    assert sub["message"] == ref.message
    assert sub["firmware"] == firmware
    assert sub["drive"] == traffic.as_dict()
