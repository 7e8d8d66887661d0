"""``emu matrix SUITE.toml``: a declared suite of boots, run in parallel, one process a case.

A suite (TOML, docs/matrix.md) names images and the axes to cross them with:
firmware (``builtin`` | ``seabios``) × memory (MiB) × transfer mode (``pio`` |
``dma``) × drive location (``"bus:device"``), and per image the text to wait
for (``until``), the keys to type and the time limits.  :func:`load_suite`
expands it into :class:`Case` rows in a fixed order.

Each case runs as its own process, ``python -m emu.tools.cli boot ...
--json-result FILE``.  emu boot stops itself at the case's wall-clock
``timeout`` (status ``timeout``, with its final screen); a process still alive
:data:`KILL_GRACE` seconds later is killed (``timeout`` too); a case that
crashes is reported as ``error``; none of them stops the others.  Backends:

* ``local`` (the default): ``--jobs N`` worker threads (default: the number of
  cores), each waiting on its case's process.
* ``ray``: one Ray task per case (``--backend ray``, or ``--cluster
  ray://ADDRESS`` for a remote cluster); each task runs the very same
  :func:`run_case` and so the same subprocess, so its results equal the local
  run's except for the times (:data:`VARYING_FIELDS`).  Ray is an optional extra
  (``pip install 'emu-atapi[cluster]'``), imported only when asked for.

Output: one JSON object per case (``--out``, JSON lines), a
pytest-benchmark-compatible JSON (``--benchmark-json``; one round per case,
the boot's own wall time as the measurement, the rest in ``extra_info``) and a
table on stdout.  Exit status: 0 when every case ended as its suite expected
(``expect``, default ``ok``), 1 when one did not, 2 for a bad suite or option.

The same module writes ``emu boot --json-result`` (:func:`write_boot_json`),
with the drive's traffic counted by :class:`DriveTraffic` from the trace
events of the controller, the drive and the bus-master engines.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from devices.trace import TraceEvent
from emu.boot import DEFAULT_TIMEOUT, BootOptions, BootResult, ExitStatus
from emu.pc.board import BoardError, MiB, parse_memory_size
from images import SAMPLE_ISO

FIRMWARES = ("builtin", "seabios")
TRANSFERS = ("pio", "dma")
KILL_GRACE = 15.0
"""Host seconds past its ``timeout`` after which a case's process is killed: emu boot
stops itself at the timeout; this catches a process that cannot (stuck in one CPU run)."""
VARYING_FIELDS = ("wall_seconds", "boot_seconds", "image_path")
"""The fields of a case result that may differ from run to run and between backends:
the host times, and where a builder's image was put (a temporary directory)."""
STATUS_NAMES = {
    ExitStatus.OK: "ok",
    ExitStatus.BOOT_FAILED: "boot-failed",
    ExitStatus.BAD_INPUT: "bad-input",
    ExitStatus.LIMIT: "limit",
    ExitStatus.UNTIL_NOT_SEEN: "until-not-seen",
    ExitStatus.TRIPLE_FAULT: "triple-fault",
}
"""``emu boot``'s exit statuses as a case reports them.  ``timeout`` is ``LIMIT``
reached by the wall clock (emu boot's ``--timeout``, or the process killed
:data:`KILL_GRACE` seconds later); ``limit`` is the guest-time or instruction limit;
``error`` means no result (the process died, or the image could not be had)."""
STATUSES = (*STATUS_NAMES.values(), "timeout", "error")
SEABIOS_NOTE = "SeaBIOS reads the disc by PIO only"


class SuiteError(ValueError):
    """A suite file or matrix option that cannot be used (a one-line reason)."""


# -- drive traffic and emu boot --json-result ---------------------------------------------


@dataclass
class DriveTraffic:
    """A trace sink counting what crossed the drive (any firmware, any loader).

    ``pio_bytes`` counts DRQ data blocks the drive offered to the host, ``dma_bytes``
    what bus-master engines moved; ``read_sectors`` the sectors that READ(10) and
    READ(12) commands asked for (MMC-6 §6.19, §6.20: the transfer length fields).
    """

    ata_commands: int = 0
    packets: int = 0
    read_sectors: int = 0
    check_conditions: int = 0
    pio_bytes: int = 0
    dma_bytes: int = 0
    commands: Counter[str] = field(default_factory=Counter)

    def __call__(self, event: TraceEvent) -> None:
        kind, fields = event.kind, event.fields
        if kind == "cdb":
            self.packets += 1
            self.commands[fields["name"]] += 1
            cdb = bytes.fromhex(fields["cdb"].replace(" ", ""))
            if cdb[0] == 0x28 and len(cdb) >= 9:  # READ(10): length in bytes 7-8
                self.read_sectors += int.from_bytes(cdb[7:9], "big")
            elif cdb[0] == 0xA8 and len(cdb) >= 10:  # READ(12): length in bytes 6-9
                self.read_sectors += int.from_bytes(cdb[6:10], "big")
        elif kind == "ata":
            self.ata_commands += 1
        elif kind == "drq" and fields.get("dir") == "in":
            self.pio_bytes += fields["bytes"]
        elif kind == "dma" and fields.get("event") == "transfer":
            self.dma_bytes += fields["bytes"]
        elif kind == "sense":
            self.check_conditions += 1

    def as_dict(self) -> dict[str, Any]:
        counts = asdict(self)
        counts["commands"] = dict(sorted(self.commands.items()))
        return counts


def status_name(result: BootResult, options: BootOptions) -> str:
    """The result's status as a case reports it (:data:`STATUS_NAMES`, ``timeout``)."""
    if (result.status is ExitStatus.LIMIT and options.timeout is not None
            and result.wall_seconds >= options.timeout):
        return "timeout"  # the session checks the wall clock last: this is why it stopped
    return STATUS_NAMES[result.status]


def boot_record(result: BootResult, options: BootOptions,
                traffic: DriveTraffic | None) -> dict[str, Any]:
    """What ``emu boot --json-result`` writes (docs/matrix.md, "emu boot --json-result")."""
    firmware = options.firmware
    builtin = firmware == "builtin"
    return {
        "status": int(result.status),
        "status_name": status_name(result, options),
        "message": result.message,
        "firmware": firmware,
        "instructions": result.instructions,
        "guest_seconds": result.virtual_seconds,
        "wall_seconds": result.wall_seconds,
        "sectors_read": result.sectors_read if builtin else None,
        "dma_reads": result.dma_reads if builtin else None,
        "drive": traffic.as_dict() if traffic is not None else None,
        "screen": result.screen,
    }


def write_boot_json(path: str, result: BootResult, options: BootOptions,
                    traffic: DriveTraffic | None) -> None:
    """Write :func:`boot_record` to ``path`` (an OSError reaches the CLI's handler)."""
    Path(path).write_text(json.dumps(boot_record(result, options, traffic), indent=1) + "\n")


# -- the suite ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One boot of the matrix: every parameter a run needs, and what it should end as."""

    id: str
    image: str
    """The image as the suite names it (``builtin:NAME``, ``builder:NAME`` or a path)."""
    firmware: str
    transfer: str
    memory: int
    """Guest RAM in MiB."""
    bus: int
    device: int
    until: str | None
    keys: str
    timeout: float
    """Host seconds, ``emu boot --timeout`` (the process is killed :data:`KILL_GRACE` later)."""
    guest_timeout: float | None
    """Guest (virtual) seconds, ``emu boot --guest-timeout`` (None: no limit)."""
    expect: str = "ok"
    suite_dir: str = "."
    """Where relative image paths start."""

    def params(self) -> dict[str, Any]:
        """The case's parameters, as its result lists them."""
        return {"image": self.image, "firmware": self.firmware, "transfer": self.transfer,
                "memory": self.memory, "bus": self.bus, "device": self.device,
                "until": self.until, "keys": self.keys, "timeout": self.timeout,
                "guest_timeout": self.guest_timeout, "expect": self.expect}


@dataclass
class Suite:
    """A parsed suite: its name, the expanded cases, and combinations left out (and why)."""

    name: str
    cases: list[Case]
    skipped: list[tuple[str, str]] = field(default_factory=list)


AXES = ("firmware", "transfer", "memory", "location")
IMAGE_KEYS = {"name", "image", "until", "keys", "timeout", "guest_timeout", "expect", *AXES}
SUITE_KEYS = {"name", "timeout", "guest_timeout"}
DEFAULT_AXES: dict[str, list[Any]] = {
    "firmware": ["builtin"], "transfer": ["dma"], "memory": ["256M"], "location": ["1:0"]}


def _where(path: Path, what: str) -> str:
    return f"{path.name}: {what}"


def _unknown_keys(table: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise SuiteError(f"{where}: unknown key {extra[0]!r} (known: {', '.join(sorted(allowed))})")


def _positive(value: Any, where: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise SuiteError(f"{where}: {name} must be a number of seconds greater than 0")
    return float(value)


def _axis(table: dict[str, Any], name: str, default: list[Any], where: str) -> list[Any]:
    """An axis as a list (a single value is a list of one), checked value by value."""
    values = table.get(name, default)
    if not isinstance(values, list):
        values = [values]
    if not values:
        raise SuiteError(f"{where}: {name} lists no values")
    checked: list[Any] = []
    for value in values:
        if name == "firmware" and value not in FIRMWARES:
            raise SuiteError(f"{where}: firmware {value!r} is not one of {', '.join(FIRMWARES)}")
        if name == "transfer" and value not in TRANSFERS:
            raise SuiteError(f"{where}: transfer {value!r} is not one of {', '.join(TRANSFERS)}")
        if name == "memory":
            value = _memory_mib(value, where)
        if name == "location":
            value = _location(value, where)
        if value in checked:
            raise SuiteError(f"{where}: {name} lists {value!r} twice")
        checked.append(value)
    return checked


def _memory_mib(value: Any, where: str) -> int:
    """A RAM size, as MiB: a number of MiB, or text as ``emu boot --memory`` takes it."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise SuiteError(f"{where}: memory {value!r} is not a size (MiB, or e.g. \"512M\")")
    try:
        size = parse_memory_size(f"{value}M" if isinstance(value, int) else value)
    except BoardError as exc:
        raise SuiteError(f"{where}: {exc}") from None
    if size % MiB:
        raise SuiteError(f"{where}: memory {value!r} is not a whole number of MiB")
    return size // MiB


def _location(value: Any, where: str) -> tuple[int, int]:
    """``"bus:device"`` (each 0 or 1) as a pair."""
    if isinstance(value, tuple):  # a default already checked
        return value
    text = str(value)
    bus, sep, device = text.partition(":")
    if not sep or bus not in ("0", "1") or device not in ("0", "1"):
        raise SuiteError(f"{where}: location {text!r} is not \"bus:device\" with each 0 or 1")
    return int(bus), int(device)


def parse_suite(text: str, path: Path) -> Suite:
    """Expand a suite file's text (see the module docstring and docs/matrix.md)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(_where(path, f"not valid TOML: {exc}")) from None
    _unknown_keys(doc, {"suite", "axes", "image"}, _where(path, "top level"))
    head = doc.get("suite", {})
    axes = doc.get("axes", {})
    images = doc.get("image", [])
    if not isinstance(head, dict) or not isinstance(axes, dict):
        raise SuiteError(_where(path, "[suite] and [axes] must be tables"))
    _unknown_keys(head, SUITE_KEYS, _where(path, "[suite]"))
    _unknown_keys(axes, set(AXES), _where(path, "[axes]"))
    if not isinstance(images, list) or not images:
        raise SuiteError(_where(path, "no [[image]] tables: nothing to run"))
    name = str(head.get("name", path.stem))
    timeout = _positive(head.get("timeout", DEFAULT_TIMEOUT), _where(path, "[suite]"), "timeout")
    guest = head.get("guest_timeout")
    if guest is not None:
        guest = _positive(guest, _where(path, "[suite]"), "guest_timeout")
    defaults = {axis: _axis(axes, axis, DEFAULT_AXES[axis], _where(path, "[axes]"))
                for axis in AXES}
    suite = Suite(name, [])
    seen: set[str] = set()
    for number, image in enumerate(images, 1):
        where = _where(path, f"[[image]] #{number}")
        if not isinstance(image, dict):
            raise SuiteError(f"{where}: must be a table")
        _unknown_keys(image, IMAGE_KEYS, where)
        spec = image.get("image")
        if not isinstance(spec, str) or not spec:
            raise SuiteError(f"{where}: image (builtin:NAME, builder:NAME or a path) is missing")
        label = str(image.get("name", Path(spec.partition(":")[2] or spec).stem))
        if not label or any(c in label for c in " /\\"):
            raise SuiteError(f"{where}: name {label!r} must be one word")
        if label in seen:
            raise SuiteError(f"{where}: name {label!r} is used twice")
        seen.add(label)
        _check_image_spec(spec, where)
        until = image.get("until")
        keys = image.get("keys", "")
        expect = image.get("expect", "ok")
        if until is not None and (not isinstance(until, str) or not until):
            raise SuiteError(f"{where}: until must be a non-empty string")
        if not isinstance(keys, str):
            raise SuiteError(f"{where}: keys must be a string")
        if expect not in STATUSES:
            raise SuiteError(f"{where}: expect {expect!r} is not one of {', '.join(STATUSES)}")
        case_timeout = _positive(image.get("timeout", timeout), where, "timeout")
        case_guest = guest
        if "guest_timeout" in image:
            case_guest = _positive(image["guest_timeout"], where, "guest_timeout")
        values = {axis: _axis(image, axis, defaults[axis], where) for axis in AXES}
        for firmware in values["firmware"]:
            for transfer in values["transfer"]:
                for memory in values["memory"]:
                    for bus, device in values["location"]:
                        case_id = f"{label}-{firmware}-{transfer}-{memory}M-ide{bus}-{device}"
                        if firmware == "seabios" and transfer != "pio":
                            suite.skipped.append((case_id, SEABIOS_NOTE))
                            continue
                        suite.cases.append(Case(
                            case_id, spec, firmware, transfer, memory, bus, device, until,
                            keys, case_timeout, case_guest, expect, str(path.parent)))
    return suite


def load_suite(path: str | os.PathLike[str]) -> Suite:
    """Read and expand a suite file (a :class:`SuiteError` says what is wrong, in one line)."""
    where = Path(path)
    try:
        text = where.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteError(f"{where}: cannot read the suite: "
                         f"{getattr(exc, 'strerror', None) or exc}") from None
    return parse_suite(text, where)


# -- images ----------------------------------------------------------------------------------


def _builders() -> dict[str, Callable[[Path], Path]]:
    """``builder:NAME`` → a function that makes the image in a directory."""
    from images.loaders import build_isolinux_iso, build_spin_iso, grub_rescue_iso

    return {
        "isolinux": lambda d: build_isolinux_iso(d / "isolinux.iso"),
        "grub-rescue": lambda d: grub_rescue_iso(),
        "spin": lambda d: build_spin_iso(d / "spin.iso"),
    }


BUILTINS = {"sample": SAMPLE_ISO}
"""``builtin:NAME`` → an image shipped with the package."""
BUILDERS = ("isolinux", "grub-rescue", "spin")


def _check_image_spec(spec: str, where: str) -> None:
    kind, sep, name = spec.partition(":")
    if sep and kind == "builtin" and name not in BUILTINS:
        raise SuiteError(f"{where}: no built-in image {name!r} (known: {', '.join(BUILTINS)})")
    if sep and kind == "builder" and name not in BUILDERS:
        raise SuiteError(f"{where}: no image builder {name!r} (known: {', '.join(BUILDERS)})")


def resolve_image(spec: str, suite_dir: str | Path, cache: str | Path) -> Path:
    """The image file for ``spec``; a builder's image is made in ``cache`` once.

    Raises :class:`SuiteError` when the image cannot be had (missing file, a tool a
    builder needs is not installed).  Safe to call from several processes at once.
    """
    from images.loaders import LoaderUnavailable

    kind, sep, name = spec.partition(":")
    if sep and kind == "builtin":
        return Path(BUILTINS[name])
    if sep and kind == "builder":
        final = Path(cache) / f"{name}.iso"
        if final.exists():
            return final
        work = Path(cache) / f".{name}.{uuid.uuid4().hex}"
        work.mkdir(parents=True)
        try:
            built = _builders()[name](work)
            if built.is_relative_to(work):  # made here: move it into place (atomic)
                os.replace(built, final)
                built = final
        except (LoaderUnavailable, subprocess.CalledProcessError) as exc:
            raise SuiteError(f"builder:{name}: {exc}") from None
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return built
    path = Path(spec)
    if not path.is_absolute():
        path = Path(suite_dir) / path
    if not path.is_file():
        raise SuiteError(f"{spec}: no such image file")
    return path


# -- running a case --------------------------------------------------------------------------


def boot_command(case: Case, image: Path, result_file: Path) -> list[str]:
    """The ``emu boot`` command line of a case (run with the current interpreter)."""
    cmd = [sys.executable, "-m", "emu.tools.cli", "boot", str(image),
           "--firmware", case.firmware, "--transfer", case.transfer,
           "--memory", f"{case.memory}M", "--bus", str(case.bus), "--device", str(case.device),
           "--timeout", repr(case.timeout), "--no-interactive",
           "--json-result", str(result_file)]
    if case.guest_timeout is not None:
        cmd += ["--guest-timeout", repr(case.guest_timeout)]
    if case.until is not None:
        cmd += ["--until", case.until]
    if case.keys:
        cmd += ["--keys", case.keys]
    return cmd


def _project_env() -> dict[str, str]:
    """The environment for a case: this checkout first on the module path."""
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def run_case(case: Case, cache: str) -> dict[str, Any]:
    """Run one case in its own process under its wall-clock limit; never raises.

    The record holds the case id and parameters, the status (``emu boot``'s, or
    ``timeout`` / ``error``), whether it ``reached`` its goal, the exit status, the
    times, the instruction count, the drive traffic and the final screen.
    """
    record: dict[str, Any] = {"id": case.id, **case.params()}
    started = time.monotonic()
    outcome: dict[str, Any] = {}
    exit_status: int | None = None
    try:
        image = resolve_image(case.image, case.suite_dir, cache)
        record["image_path"] = str(image)
        with tempfile.TemporaryDirectory(prefix="emu-matrix-") as tmp:
            result_file = Path(tmp) / "result.json"
            proc = subprocess.Popen(boot_command(case, image, result_file),
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, env=_project_env())
            kill_after = case.timeout + KILL_GRACE
            try:
                _, err = proc.communicate(timeout=kill_after)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                status = "timeout"
                message = f"killed after {kill_after:g} s of wall-clock time"
            else:
                exit_status = proc.returncode
                if result_file.exists():
                    outcome = json.loads(result_file.read_text())
                    status, message = outcome["status_name"], outcome["message"]
                else:
                    lines = err.decode("utf-8", "replace").strip().splitlines()
                    status = "error"
                    message = (f"exit status {exit_status}, no result"
                               + (f": {lines[-1]}" if lines else ""))
    except SuiteError as exc:
        record.setdefault("image_path", None)
        status, message = "error", str(exc)
    except OSError as exc:
        record.setdefault("image_path", None)
        status, message = "error", f"cannot run the case: {exc}"
    record.update({
        "status": status,
        "reached": status == "ok",
        "as_expected": status == case.expect,
        "exit_status": exit_status,
        "message": message,
        "wall_seconds": round(time.monotonic() - started, 3),
        "boot_seconds": outcome.get("wall_seconds"),
        "guest_seconds": outcome.get("guest_seconds"),
        "instructions": outcome.get("instructions"),
        "sectors_read": outcome.get("sectors_read"),
        "dma_reads": outcome.get("dma_reads"),
        "drive": outcome.get("drive"),
        "screen": outcome.get("screen"),
    })
    return record


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    """A result without the fields that change from run to run (:data:`VARYING_FIELDS`;
    for a case the wall clock stopped, also where the guest had got to)."""
    varying = VARYING_FIELDS
    if record.get("status") == "timeout":
        varying += ("instructions", "guest_seconds", "message")
    return {k: v for k, v in record.items() if k not in varying}


# -- backends --------------------------------------------------------------------------------


Progress = Callable[[dict[str, Any]], None]


def run_local(cases: list[Case], cache: str, jobs: int, progress: Progress | None = None
              ) -> list[dict[str, Any]]:
    """Run the cases on ``jobs`` local worker threads, each waiting on one case's process."""
    results: dict[str, dict[str, Any]] = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(run_case, case, cache) for case in cases]
        for future in as_completed(futures):
            record = future.result()
            results[record["id"]] = record
            if progress is not None:
                progress(record)
    return [results[case.id] for case in cases]


def import_ray() -> Any:
    """Ray, or a :class:`SuiteError` saying how to get it."""
    try:
        import ray
    except ImportError:
        raise SuiteError("the Ray backend needs Ray: pip install 'emu-atapi[cluster]'") from None
    return ray


def run_ray(cases: list[Case], cache: str, address: str | None = None,
            progress: Progress | None = None) -> list[dict[str, Any]]:
    """Run each case as a Ray task (one CPU each) calling :func:`run_case`.

    Uses the Ray instance already initialised in this process if there is one;
    otherwise connects to ``address`` (``ray://HOST:PORT``, or ``auto``) or
    starts a local instance, and shuts it down afterwards.
    """
    ray = import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        # A new local instance gets no dashboard; a cluster's settings are its own.
        settings = {} if address else {"include_dashboard": False, "log_to_driver": False}
        try:
            with warnings.catch_warnings():  # Ray warns, then raises: say it once, below
                warnings.simplefilter("ignore")
                ray.init(address=address, **settings)
        except Exception as exc:  # ConnectionError, ValueError: Ray's wording, one line
            where = address or "a local Ray instance"
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise SuiteError(f"cannot start or reach {where}: {reason}") from None
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(run_case)
        pending = {task.remote(case, cache): case for case in cases}
        results: dict[str, dict[str, Any]] = {}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                case = pending.pop(ref)
                try:
                    record = ray.get(ref)
                except Exception as exc:  # a lost worker or node: the case, not the run, fails
                    record = {"id": case.id, **case.params(), "status": "error",
                              "reached": False, "as_expected": case.expect == "error",
                              "message": f"Ray task failed: {type(exc).__name__}"}
                results[case.id] = record
                if progress is not None:
                    progress(record)
        return [results[case.id] for case in cases]
    finally:
        if started_here:
            ray.shutdown()


# -- output ----------------------------------------------------------------------------------


def write_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, sort_keys=True) + "\n")


def _git_commit() -> dict[str, Any]:
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"],
                                capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return {"id": None, "dirty": False, "project": "emu-atapi"}
    return {"id": commit.stdout.strip() or None, "dirty": bool(dirty.stdout.strip()),
            "project": "emu-atapi"}


def benchmark_json(suite: Suite, records: list[dict[str, Any]], source: str) -> dict[str, Any]:
    """A pytest-benchmark-compatible document: one benchmark per case with a boot result
    that did not time out, one round each, the boot's own wall time as the measurement."""
    benchmarks = []
    for record in records:
        seconds = record.get("boot_seconds")
        if seconds is None or record["status"] == "timeout":
            continue  # no measurement (the limit, not the boot): pytest-benchmark omits these too
        seconds = max(float(seconds), 1e-9)
        extra = {k: record[k] for k in ("status", "reached", "exit_status", "message",
                                        "guest_seconds", "instructions", "sectors_read",
                                        "dma_reads", "drive")}
        benchmarks.append({
            "group": suite.name,
            "name": f"matrix[{record['id']}]",
            "fullname": f"{source}::matrix[{record['id']}]",
            "params": {k: record[k] for k in ("image", "firmware", "transfer", "memory",
                                              "bus", "device")},
            "param": record["id"],
            "extra_info": extra,
            "options": {"disable_gc": False, "timer": "time.monotonic", "min_rounds": 1,
                        "max_time": record["timeout"], "min_time": 0, "warmup": False},
            "stats": {"min": seconds, "max": seconds, "mean": seconds, "stddev": 0.0,
                      "rounds": 1, "median": seconds, "iqr": 0.0, "q1": seconds,
                      "q3": seconds, "iqr_outliers": 0, "stddev_outliers": 0,
                      "outliers": "0;0", "ld15iqr": seconds, "hd15iqr": seconds,
                      "ops": 1.0 / seconds, "total": seconds, "iterations": 1},
        })
    try:
        from importlib.metadata import version

        bench_version = version("pytest-benchmark")
    except Exception:
        bench_version = "4.0.0"
    uname = platform.uname()
    return {
        "machine_info": {"node": uname.node, "processor": uname.processor,
                         "machine": uname.machine, "python_compiler": platform.python_compiler(),
                         "python_implementation": platform.python_implementation(),
                         "python_implementation_version": platform.python_version(),
                         "python_version": platform.python_version(),
                         "python_build": list(platform.python_build()),
                         "release": uname.release, "system": uname.system,
                         "cpu": {"count": os.cpu_count()}},
        "commit_info": _git_commit(),
        "benchmarks": benchmarks,
        "datetime": datetime.datetime.now(datetime.UTC).isoformat(),
        "version": bench_version,
    }


def _cell(value: Any, fmt: str = "") -> str:
    return "-" if value is None else format(value, fmt)


def table(records: list[dict[str, Any]]) -> str:
    """The results as a text table, one row a case."""
    head = ("case", "status", "wall s", "guest s", "instructions", "sectors", "PIO KiB",
            "DMA KiB")
    rows = [head]
    for r in records:
        drive = r.get("drive") or {}
        rows.append((
            r["id"], r["status"] + ("" if r.get("as_expected", True) else " (!)"),
            _cell(r.get("wall_seconds"), ".2f"), _cell(r.get("guest_seconds"), ".3f"),
            _cell(r.get("instructions"), ","), _cell(drive.get("read_sectors")),
            _cell(None if not drive else drive["pio_bytes"] // 1024),
            _cell(None if not drive else drive["dma_bytes"] // 1024)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1]),
                 *(cell.rjust(width) for cell, width in zip(row[2:], widths[2:], strict=True))]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def summary(suite: Suite, records: list[dict[str, Any]]) -> str:
    counts = Counter(r["status"] for r in records)
    text = f"{len(records)} cases: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    unexpected = [r["id"] for r in records if not r.get("as_expected", False)]
    if unexpected:
        text += f"; {len(unexpected)} not as expected: {', '.join(unexpected)}"
    if suite.skipped:
        reasons = sorted({why for _, why in suite.skipped})
        text += f"; {len(suite.skipped)} combinations left out ({'; '.join(reasons)})"
    return text


# -- the command -----------------------------------------------------------------------------


def run_suite(suite: Suite, *, backend: str = "local", jobs: int | None = None,
              address: str | None = None, cache: str | None = None,
              progress: Progress | None = None) -> list[dict[str, Any]]:
    """Run every case of ``suite`` on ``backend`` and return the records in case order."""
    with tempfile.TemporaryDirectory(prefix="emu-matrix-images-") as tmp:
        where = cache or tmp
        for spec, suite_dir in dict.fromkeys((c.image, c.suite_dir) for c in suite.cases):
            try:  # build each image once, before the cases race for it
                resolve_image(spec, suite_dir, where)
            except SuiteError:
                pass  # reported by every case that uses it
        if backend == "ray":
            return run_ray(suite.cases, where, address, progress)
        return run_local(suite.cases, where, jobs or os.cpu_count() or 1, progress)


def cmd_matrix(args: argparse.Namespace) -> int:
    try:
        suite = load_suite(args.suite)
        backend = "ray" if args.cluster else args.backend
        if backend == "ray":
            import_ray()
        if args.only:
            suite.cases = [c for c in suite.cases if any(p in c.id for p in args.only)]
            if not suite.cases:
                raise SuiteError(f"no case id contains {' or '.join(map(repr, args.only))}")
        if args.list:
            for case in suite.cases:
                print(case.id)
            return 0
        total = len(suite.cases)
        finished = 0

        def progress(record: dict[str, Any]) -> None:
            nonlocal finished
            finished += 1
            print(f"[{finished}/{total}] {record['id']}: {record['status']} "
                  f"({record.get('wall_seconds', 0) or 0:.1f} s)", file=sys.stderr, flush=True)

        records = run_suite(suite, backend=backend, jobs=args.jobs, address=args.cluster,
                            cache=args.cache, progress=progress)
    except SuiteError as exc:
        print(f"emu matrix: {exc}", file=sys.stderr)
        return 2
    if args.out:
        write_jsonl(args.out, records)
    if args.benchmark_json:
        Path(args.benchmark_json).write_text(
            json.dumps(benchmark_json(suite, records, args.suite), indent=1) + "\n")
    print(table(records))
    print(summary(suite, records))
    return 0 if all(r.get("as_expected") for r in records) else 1


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text}")
    return value


def add_arguments(p: argparse.ArgumentParser,
                  drive_options: Callable[[argparse.ArgumentParser], None]) -> None:
    """The arguments of ``emu matrix`` (the CLI lists the command and its help)."""
    p.description = ("Expand SUITE.toml into cases (images x firmware x transfer x memory x "
                     "drive location) and run each as its own `emu boot` process. Exit "
                     "status: 0 every case ended as expected, 1 some did not, 2 bad suite or "
                     "option.")
    p.add_argument("suite", help="the suite file (TOML)")
    p.add_argument("--jobs", "-j", type=_jobs, metavar="N",
                   help="cases run at once by the local backend (default: the number of cores)")
    p.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="local processes (default) or Ray tasks (needs the 'cluster' extra)")
    p.add_argument("--cluster", metavar="ray://ADDRESS",
                   help="run on this Ray cluster (implies --backend ray)")
    p.add_argument("--out", metavar="FILE", help="write one JSON object per case (JSON lines)")
    p.add_argument("--benchmark-json", metavar="FILE",
                   help="write the results as pytest-benchmark JSON")
    p.add_argument("--cache", metavar="DIR",
                   help="keep built images here between runs (default: a temporary directory)")
    p.add_argument("--only", action="append", metavar="TEXT",
                   help="run only the cases whose id contains TEXT (may be repeated)")
    p.add_argument("--list", action="store_true", help="list the case ids and stop")
    p.set_defaults(func=cmd_matrix)


def iter_records(path: str | Path) -> Iterator[dict[str, Any]]:
    """The records of a ``--out`` file."""
    with open(path, encoding="utf-8") as src:
        for line in src:
            if line.strip():
                yield json.loads(line)
