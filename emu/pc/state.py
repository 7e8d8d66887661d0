"""Saved state of a whole PC session: take it, put it back, write it to a file.

A :class:`Snapshot` holds everything a :class:`~emu.pc.session.Session` needs to go on
exactly where it stopped (docs/state.md): Unicorn's CPU context and the glue's fields,
the non-zero 4 KiB pages of RAM, the virtual clock, every device of the board
(``state()`` of each, devices/state.py), the firmware plug's own state, the session's
stop-rule and text state, and the identity of each medium (path, size, sha256 of the
first and last MiB — never its content).

A state is taken only between runs (after ``Session.run``/``resume`` returned), when
no device is inside a port access, so each device's named fields describe it fully.

* :func:`snapshot` / :func:`restore` work in memory; a restore is done in place on a
  session built the same way (same board size, drives and firmware), and rolls back to
  where it was if anything in the snapshot cannot be applied.
* :func:`save` / :func:`load` write and read the file: a zip of ``manifest.json``,
  ``sections/<name>.json`` (small byte fields as hex, larger arrays as
  ``arrays/<n>.npy`` members), ``cpu/context.bin`` and ``ram/index.npy`` +
  ``ram/pages.npy``.  Every member's sha256 is in the manifest.  Reading checks the
  whole file before anything is built; a damaged, truncated or newer file is a
  :class:`StateFileError` with a one-line message.

The board knows no firmware: building a fresh session from a file needs the firmware
plug, so that is :func:`emu.boot.restore_session`; this module gives it
:func:`options_for` and :func:`restore`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import zipfile
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from devices.state import StateError

if TYPE_CHECKING:
    from emu.pc.session import BootOptions, Session

FORMAT_NAME = "emu-atapi-state"
FORMAT_VERSION = 1
"""The archive's layout; a file with a larger number is refused."""
SECTION_VERSION = 1
"""Every section's layout version (each section carries its own in the manifest)."""
PAGE = 4096
MiB = 1 << 20
HEX_LIMIT = 4096
"""Byte arrays up to this size are written inline as hex; larger ones as ``.npy``."""

PLATFORM_SECTIONS = ("pic", "pit", "kbc", "cmos", "uart", "debug", "system", "vga", "pci",
                     "fw_cfg", "lapic", "ioapic", "intc")
"""Board attributes saved by their own ``state()`` (the section name is the attribute)."""

_REGISTERS = ("eax", "ebx", "ecx", "edx", "esi", "edi", "esp", "ebp", "eip", "eflags",
              "cs", "ds", "es", "fs", "gs", "ss", "cr0", "cr2", "cr3", "cr4")


class StateFileError(Exception):
    """A state that cannot be read or applied; the message is one line for the user."""


class StateMismatch(StateFileError):
    """A state taken on another board, medium, firmware or Unicorn build."""


@dataclass
class Snapshot:
    """A session's whole state in memory (module docstring)."""

    manifest: dict[str, Any]
    sections: dict[str, Any]
    context: bytes
    ram_index: np.ndarray
    """Page numbers (uint32) of the pages in :attr:`ram_pages`."""
    ram_pages: np.ndarray
    """The non-zero 4 KiB pages of RAM, shape ``(n, 4096)``, uint8."""
    path: str = field(default="<memory>")

    @property
    def instructions(self) -> int:
        return int(self.manifest.get("instructions", 0))


# -- media -----------------------------------------------------------------------------------
def medium_identity(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``{path, size, head_sha256, tail_sha256}`` of an image file (first/last MiB)."""
    resolved = os.path.realpath(path)
    with open(resolved, "rb") as fp:
        size = os.fstat(fp.fileno()).st_size
        head = hashlib.sha256(fp.read(MiB)).hexdigest()
        fp.seek(max(0, size - MiB))
        tail = hashlib.sha256(fp.read(MiB)).hexdigest()
    return {"path": str(path), "resolved": resolved, "size": size, "head_sha256": head,
            "tail_sha256": tail}


def _drive_media(session: Session) -> list[dict[str, Any]]:
    """Each drive's place and its medium's identity (None: an empty drive)."""
    out = []
    for channel in session.board.ide.channels:
        for slot, unit in enumerate(channel.units):
            if unit.kind != "dvd":
                continue
            medium = unit.target.medium  # type: ignore[attr-defined]
            path = getattr(medium, "path", None) if medium.present else None
            ident = medium_identity(path) if path else None
            out.append({"bus": channel.number, "device": slot, "medium": ident})
    return out


def _check_media(saved: list[dict[str, Any]], now: list[dict[str, Any]], where: str,
                 force: bool) -> None:
    places = [(d["bus"], d["device"]) for d in saved]
    if places != [(d["bus"], d["device"]) for d in now]:
        raise StateMismatch(f"{where}: the state has drives at {places}, this machine at "
                            f"{[(d['bus'], d['device']) for d in now]}")
    if force:
        return
    for old, new in zip(saved, now, strict=True):
        a, b = old["medium"], new["medium"]
        if (a is None) != (b is None):
            raise StateMismatch(f"{where}: drive {old['bus']}-{old['device']} "
                                f"{'had no medium' if a is None else 'had ' + a['path']} "
                                "when saved (force=True / --force to restore anyway)")
        if a is not None and b is not None and any(
                a[k] != b[k] for k in ("size", "head_sha256", "tail_sha256")):
            raise StateMismatch(f"{where}: {b['path']} is not the image the state was saved "
                                f"with ({a['path']}, {a['size']:,} bytes); force=True / "
                                "--force to restore anyway")


# -- taking a state --------------------------------------------------------------------------
def _ram_pages(ram: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    words = ram.view(np.uint64).reshape(-1, PAGE // 8)
    index = np.flatnonzero(words.any(axis=1)).astype(np.uint32)
    pages = ram.reshape(-1, PAGE)[index]
    return index, pages


def _drive_sections(session: Session) -> dict[str, Any]:
    sections: dict[str, Any] = {}
    board = session.board
    for channel in board.ide.channels:
        ch = channel.state()
        ch["units"] = [unit.kind for unit in channel.units]
        sections[f"ide{channel.number}"] = ch
        for slot, unit in enumerate(channel.units):
            name = "drive" if unit.kind == "dvd" else "unit"
            sections[f"{name}{channel.number}-{slot}"] = unit.state()
    for engine in board.bus_masters:
        sections[engine.name] = engine.state()
    return sections


def snapshot(session: Session) -> Snapshot:
    """The session's whole state, between runs (module docstring)."""
    import unicorn

    if not session.installed:
        raise StateFileError("nothing to save yet: the machine was never started (a state is "
                             "taken between runs)")
    board = session.board
    cpu = board.cpu
    with board.lock:
        sections: dict[str, Any] = {
            "cpu": {"glue": cpu.glue_state(),
                    "registers": {name: cpu.reg(name) for name in _REGISTERS}},
            "clock": board.clock.saved_state(),
            "board": {"reset_requests": board.reset_requests,
                      "firmware_log": np.frombuffer(bytes(board.firmware_log),
                                                    dtype=np.uint8).copy(),
                      "irq_levels": [line.level for line in board.irqs]},
        }
        for name in PLATFORM_SECTIONS:
            sections[name] = getattr(board, name).state()
        sections.update(_drive_sections(session))
        firmware_state = getattr(session.firmware, "state", None)
        sections["firmware"] = firmware_state() if firmware_state is not None else {}
        sections["session"] = session.state()
        context = cpu.context_bytes()
        # A restored CPU starts with no translated blocks; the one that goes on drops its
        # own too, so both translate the same blocks from here (a precaution: where a
        # block starts is the one piece of engine state a context does not carry).
        cpu.uc.ctl_flush_tb()
        index, pages = _ram_pages(board.memory.data)
        options = session.options
        manifest = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "writer": {"emu_atapi": _version(), "unicorn": unicorn.__version__,
                       "numpy": np.__version__, "python": platform.python_version()},
            "board": {"memory_size": board.memory.size, "ips": board.clock.ips},
            "firmware": getattr(session.firmware, "name", "?"),
            "transfer": options.transfer,
            "drives": _drive_media(session),
            "cpu_context_size": len(context),
            "instructions": board.clock.instructions,
            "screen": session.scraper.text(),
            "sections": {name: SECTION_VERSION for name in sections},
        }
    return Snapshot(manifest, sections, context, index, pages)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("emu-atapi")
    except Exception:  # noqa: BLE001 - not installed as a distribution
        return "0"


# -- putting it back -------------------------------------------------------------------------
def check_compatible(session: Session, snap: Snapshot, force: bool = False) -> None:
    """Refuse a snapshot taken on a different board, firmware, Unicorn build or medium."""
    where = snap.path
    m = snap.manifest
    board = session.board
    if m["board"]["memory_size"] != board.memory.size or m["board"]["ips"] != board.clock.ips:
        raise StateMismatch(f"{where}: saved on a {m['board']['memory_size'] // MiB} MiB board "
                            f"at {m['board']['ips']:,} IPS; this one has "
                            f"{board.memory.size // MiB} MiB at {board.clock.ips:,}")
    name = getattr(session.firmware, "name", "?")
    if m["firmware"] != name:
        raise StateMismatch(f"{where}: saved under firmware {m['firmware']!r}, not {name!r}")
    size = board.cpu.context_size()
    if m["cpu_context_size"] != size or len(snap.context) != size:
        raise StateMismatch(f"{where}: CPU context of {len(snap.context)} bytes was written by "
                            f"another Unicorn build (this one's is {size})")
    _check_media(m["drives"], _drive_media(session), where, force)
    units = [s for s in snap.sections if s.startswith("drive")]
    here = [f"drive{d['bus']}-{d['device']}" for d in m["drives"]]
    if sorted(units) != sorted(here):
        raise StateFileError(f"{where}: not a state file this emu can read (drive sections "
                             f"{units} do not match the drives {here})")


def restore(session: Session, snap: Snapshot, force: bool = False) -> None:
    """Put ``snap`` back into ``session`` in place (same board, drives and firmware).

    Checks first (:func:`check_compatible`); if applying a section then fails, the
    session is put back as it was and a :class:`StateFileError` says why.
    """
    check_compatible(session, snap, force)
    backup = snapshot(session) if session.installed else None
    try:
        _apply(session, snap)
    except (StateError, ValueError, KeyError, TypeError, IndexError) as exc:
        if backup is not None:
            _apply(session, backup)
        raise StateFileError(f"{snap.path}: not a state file this emu can read ({exc})") \
            from None


def _apply(session: Session, snap: Snapshot) -> None:
    board = session.board
    cpu = board.cpu
    sections = snap.sections
    with board.lock:
        firmware = session.firmware
        if not session.installed:
            attach = getattr(firmware, "attach", None)
            if attach is None:
                raise StateMismatch(f"{snap.path}: firmware {firmware.name!r} cannot be "
                                    "attached to a saved state")
            attach(session, sections["firmware"])
            session.installed = True
        else:
            load = getattr(firmware, "load_state", None)
            if load is not None:
                load(sections["firmware"])
        _load_ram(board, snap)
        for name in PLATFORM_SECTIONS:
            getattr(board, name).load_state(sections[name])
        decision = board.pci.functions[(1, 1)]._state  # type: ignore[attr-defined]
        if decision is not None:
            board.place_bus_masters(decision[0], decision[1])
        else:
            board.place_bus_masters(0, False)
        for channel in board.ide.channels:
            saved = sections[f"ide{channel.number}"]
            if saved.get("units") != [unit.kind for unit in channel.units]:
                raise StateError(f"ide{channel.number}: units {saved.get('units')} are not "
                                 "this board's")
            channel.load_state(saved)
            for slot, unit in enumerate(channel.units):
                name = "drive" if unit.kind == "dvd" else "unit"
                unit.load_state(sections[f"{name}{channel.number}-{slot}"])
        for engine in board.bus_masters:
            engine.load_state(sections[engine.name])
        b = sections["board"]
        levels = b["irq_levels"]
        if not isinstance(levels, list) or len(levels) != len(board.irqs):
            raise StateError("board: field 'irq_levels' is not 16 levels")
        for line, level in zip(board.irqs, levels, strict=True):
            line.level = bool(level)  # the devices' own edge state is in their sections
        board.reset_requests = int(b["reset_requests"])
        board.firmware_log[:] = _bytes(b["firmware_log"])
        board.clock.load_saved_state(sections["clock"])
        cpu.load_context_bytes(snap.context)
        cpu.load_glue_state(sections["cpu"]["glue"])
        for name, value in sections["cpu"]["registers"].items():
            if cpu.reg(name) != value:
                raise StateMismatch(f"{snap.path}: register {name} reads {cpu.reg(name):#x} "
                                    f"after restoring the context, not {value:#x} (another "
                                    "Unicorn build?)")
        session.load_state(sections["session"])


def _bytes(value: Any) -> bytes:
    if isinstance(value, np.ndarray):
        return value.tobytes()
    raise StateError("expected a byte array")


def _load_ram(board: Any, snap: Snapshot) -> None:
    """RAM in place: pages not in the snapshot become zero, the others are copied back.

    Only pages that are non-zero now are cleared, so a fresh board's untouched RAM is
    never written (its pages stay unallocated)."""
    ram: np.ndarray = board.memory.data
    pages_now = ram.reshape(-1, PAGE)
    index = snap.ram_index
    if index.size and (int(index.max()) >= pages_now.shape[0] or
                       snap.ram_pages.shape != (index.size, PAGE)):
        raise StateError("ram: pages outside this board's memory")
    words = ram.view(np.uint64).reshape(-1, PAGE // 8)
    dirty = words.any(axis=1)
    dirty[index] = False
    pages_now[dirty] = 0
    pages_now[index] = snap.ram_pages
    board.cpu.flush_code()


# -- the file --------------------------------------------------------------------------------
def _pack(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """Plain data → JSON: small byte arrays as hex, others as ``arrays/<n>.npy``."""
    if isinstance(value, np.ndarray):
        if value.dtype == np.uint8 and value.ndim == 1 and value.size <= HEX_LIMIT:
            return {"$hex": value.tobytes().hex()}
        name = f"arrays/{len(arrays)}.npy"
        arrays[name] = value
        return {"$npy": name}
    if isinstance(value, dict):
        return {k: _pack(v, arrays) for k, v in value.items()}
    if isinstance(value, (list, tuple, deque)):
        return [_pack(v, arrays) for v in value]
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    return value


def _unpack(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$hex"}:
            try:
                return np.frombuffer(bytes.fromhex(value["$hex"]), dtype=np.uint8).copy()
            except (ValueError, TypeError):
                raise StateError("a byte field is not hex") from None
        if set(value) == {"$npy"}:
            if value["$npy"] not in arrays:
                raise StateError(f"member {value['$npy']} is missing")
            return arrays[value["$npy"]]
        return {k: _unpack(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_unpack(v, arrays) for v in value]
    return value


def _npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=False)
    return out.getvalue()


def save(snap: Snapshot, path: str | os.PathLike[str]) -> None:
    """Write ``snap`` as a ``.emustate`` file (written to a temporary name, then renamed)."""
    arrays: dict[str, np.ndarray] = {}
    members: dict[str, bytes] = {}
    for name, section in snap.sections.items():
        packed = _pack(section, arrays)
        members[f"sections/{name}.json"] = json.dumps(packed, sort_keys=True).encode()
    for name, array in arrays.items():
        members[name] = _npy(array)
    members["cpu/context.bin"] = snap.context
    members["ram/index.npy"] = _npy(snap.ram_index)
    members["ram/pages.npy"] = _npy(snap.ram_pages)
    manifest = dict(snap.manifest)
    manifest["members"] = {name: hashlib.sha256(data).hexdigest()
                           for name, data in members.items()}
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            zf.writestr("manifest.json", json.dumps(manifest, indent=1, sort_keys=True))
            for name, data in members.items():
                zf.writestr(name, data)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StateFileError(f"{path}: cannot write ({exc.strerror or exc})") from None


def load(path: str | os.PathLike[str]) -> Snapshot:
    """Read and check a ``.emustate`` file completely (a :class:`StateFileError` if not)."""
    where = str(path)
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if "manifest.json" not in names:
                raise StateFileError(f"{where}: not a state file (no manifest.json)")
            manifest = json.loads(zf.read("manifest.json"))
            _check_manifest(manifest, where)
            members: dict[str, bytes] = {}
            for name, digest in manifest["members"].items():
                if name not in names:
                    raise StateFileError(f"{where}: damaged (member {name} is missing)")
                data = zf.read(name)
                if hashlib.sha256(data).hexdigest() != digest:
                    raise StateFileError(f"{where}: damaged (member {name}: checksum mismatch)")
                members[name] = data
    except FileNotFoundError:
        raise StateFileError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise StateFileError(f"{where}: is a directory") from None
    except OSError as exc:
        raise StateFileError(f"{where}: cannot read ({exc.strerror or exc})") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise StateFileError(f"{where}: damaged ({exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise StateFileError(f"{where}: damaged (manifest.json is not JSON)") from None
    try:
        arrays = {name: _read_npy(data) for name, data in members.items()
                  if name.startswith("arrays/")}
        sections = {}
        for name in manifest["sections"]:
            raw = members.get(f"sections/{name}.json")
            if raw is None:
                raise StateError(f"section {name} is not listed among the members")
            sections[name] = _unpack(json.loads(raw), arrays)
        index = _read_npy(members["ram/index.npy"])
        pages = _read_npy(members["ram/pages.npy"])
        if index.dtype != np.uint32 or pages.dtype != np.uint8 or pages.ndim != 2 or \
                pages.shape != (index.size, PAGE):
            raise StateError("ram/pages.npy and ram/index.npy do not match")
        context = members["cpu/context.bin"]
    except (StateError, KeyError, ValueError) as exc:
        raise StateFileError(f"{where}: not a state file this emu can read ({exc})") from None
    return Snapshot(manifest, sections, context, index, pages, path=where)


def _read_npy(data: bytes) -> np.ndarray:
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise StateError(f"an array member is damaged ({exc})") from None


def _check_manifest(manifest: Any, where: str) -> None:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise StateFileError(f"{where}: not an emu-atapi state file")
    version = manifest.get("format_version")
    if not isinstance(version, int):
        raise StateFileError(f"{where}: not a state file this emu can read (no format version)")
    if version > FORMAT_VERSION:
        raise StateFileError(f"{where}: state format {version} is newer than this emu-atapi "
                             f"(reads up to {FORMAT_VERSION})")
    sections = manifest.get("sections")
    if not isinstance(sections, dict) or not isinstance(manifest.get("members"), dict):
        raise StateFileError(f"{where}: not a state file this emu can read (no section list)")
    for name, section_version in sections.items():
        if not isinstance(section_version, int) or section_version > SECTION_VERSION:
            raise StateFileError(f"{where}: section {name} version {section_version} is newer "
                                 f"than this emu-atapi (reads up to {SECTION_VERSION})")
    for key in ("board", "firmware", "drives", "cpu_context_size"):
        if key not in manifest:
            raise StateFileError(f"{where}: not a state file this emu can read (manifest has "
                                 f"no {key!r})")


def options_for(snap: Snapshot, media: dict[tuple[int, int], str] | None = None
                ) -> BootOptions:
    """Boot options that build the board ``snap`` was taken on (drives, RAM, firmware).

    ``media`` names where an image is now, by (bus, device), when it moved."""
    from emu.pc.session import BootOptions, DriveSpec

    m = snap.manifest
    drives = []
    for d in m["drives"]:
        place = (int(d["bus"]), int(d["device"]))
        path = (media or {}).get(place)
        if path is None and d["medium"] is not None:
            path = d["medium"]["path"]
        drives.append(DriveSpec(place[0], place[1], path))
    return BootOptions(drives=drives, memory_size=int(m["board"]["memory_size"]),
                       firmware=str(m["firmware"]), transfer=m.get("transfer"))
