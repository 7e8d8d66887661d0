"""Reference timings: boot a disc image in QEMU (TCG) until a text appears, and time it.

QEMU is the yardstick the emulator's speed goals are stated against (issue 12: "no slower
than QEMU"); it is never a dependency of the project.  The machine is QEMU's default ``pc``
(i440FX + PIIX3), whose ``-cdrom`` is an ide-cd on the secondary PIIX IDE channel
(``ide1-cd0``), with SeaBIOS as firmware: the same shape as the emulator's board.

Text is watched in two places, as a user sees it:

* COM1 (``-serial`` to a pipe): what the guest prints to ttyS0;
* the VGA text screen, read every ``screen_poll`` seconds through the human monitor on a Unix
  socket (``pmemsave`` of the 80x50 text buffer at 0xB8000, characters at even offsets),
  so ``-display none`` still shows boot loaders that only write to the screen.

Times are whole-process wall times, from starting QEMU to the moment the text was seen
(screen text is seen up to ``screen_poll`` seconds late).  ``swap`` changes the disc (``change
ide1-cd0 ISO`` on the monitor) when a text appears: the media-change step of the Linux
reference guest.

Use: ``python bench/qemu_reference.py ISO --until TEXT [--watch TEXT ...] [--swap-at TEXT
--swap-to ISO] [--wait-exit] [--timeout S]``; or ``boot(...)`` from Python (the guest tests
and benchmarks do).  ``python bench/qemu_reference.py --all`` boots every reference guest of
:mod:`images.guests` and prints a table.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

QEMU = "qemu-system-x86_64"
TEXT_BUFFER = 0xB8000
TEXT_BYTES = 80 * 50 * 2
"""Enough of the text buffer for an 80x25 or 80x50 screen (character, attribute pairs)."""


def qemu_available() -> bool:
    """Whether QEMU's x86-64 system emulator is on PATH."""
    return shutil.which(QEMU) is not None


@dataclass
class QemuRun:
    """What one QEMU boot showed, with whole-process times in seconds."""

    found: bool
    """``until`` was seen (and, with ``wait_exit``, QEMU then exited by itself)."""
    seconds: float
    """Start of the process to ``until`` (or to the exit, with ``wait_exit``)."""
    seen: dict[str, float] = field(default_factory=dict)
    """Each watched text (and ``until``) → when it was first seen."""
    serial: str = ""
    screen: str = ""
    exit_code: int | None = None
    cpu_seconds: float = 0.0
    """QEMU's user + system CPU time: steadier than wall time on a busy machine."""


class _Monitor:
    """QEMU's human monitor over a Unix socket: send a command, read up to the prompt."""

    PROMPT = b"(qemu) "

    def __init__(self, path: str, deadline: float) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        while True:
            try:
                self.sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        self._read_prompt()

    def _read_prompt(self) -> bytes:
        data = b""
        while not data.endswith(self.PROMPT):
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("QEMU closed its monitor")
            data += chunk
        return data

    def command(self, text: str) -> str:
        self.sock.sendall(text.encode() + b"\n")
        return self._read_prompt().decode(errors="replace")

    def close(self) -> None:
        self.sock.close()


def _screen_text(raw: bytes) -> str:
    chars = raw[0::2]
    rows = [chars[i:i + 80].decode("cp437").rstrip() for i in range(0, len(chars), 80)]
    return "\n".join(rows).rstrip()


def boot(image: Path | str, until: str, *, timeout: float = 60.0, memory: str = "512M",
         watch: Iterable[str] = (), swap: tuple[str, Path | str] | None = None,
         wait_exit: bool = False, screen_poll: float | None = 0.1,
         extra: Iterable[str] = ()) -> QemuRun:
    """Boot ``image`` from QEMU's ``-cdrom`` until ``until`` shows on COM1 or the screen.

    ``swap=(text, iso)`` changes the disc when ``text`` appears.  With ``wait_exit`` the run
    also waits for QEMU to exit (the guest powers off; ``-no-reboot`` turns a reboot into an
    exit) and ``seconds`` is the whole process.  ``screen_poll`` is the interval between
    screen reads (``None``: COM1 only; each read pauses the guest briefly, so a guest
    watched on COM1 alone runs a little faster).  QEMU is killed at ``timeout``."""
    if not qemu_available():
        raise FileNotFoundError(f"{QEMU} is not installed")
    watched = [*watch, until] + ([swap[0]] if swap else [])
    seen: dict[str, float] = {}
    serial = bytearray()
    lock = threading.Lock()
    with tempfile.TemporaryDirectory(prefix="qemu-ref-") as tmp:
        mon_path = os.path.join(tmp, "mon")
        dump = os.path.join(tmp, "screen")
        args = [QEMU, "-accel", "tcg", "-m", memory, "-cdrom", str(image),
                "-serial", "stdio", "-display", "none", "-no-reboot",
                "-monitor", f"unix:{mon_path},server=on,wait=off", *extra]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.monotonic()
        deadline = start + timeout
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)

        def pump() -> None:
            assert proc.stdout is not None
            while chunk := proc.stdout.read1(4096):  # type: ignore[attr-defined]
                with lock:
                    serial.extend(chunk)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        screen = ""
        monitor: _Monitor | None = None
        swapped = swap is None
        next_screen = next_swap = start
        try:
            monitor = _Monitor(mon_path, deadline)
            while time.monotonic() < deadline:
                if screen_poll is not None and time.monotonic() >= next_screen:
                    next_screen = time.monotonic() + screen_poll
                    try:
                        monitor.command(f"pmemsave {TEXT_BUFFER:#x} {TEXT_BYTES} \"{dump}\"")
                        screen = _screen_text(Path(dump).read_bytes())
                    except (ConnectionError, OSError):
                        pass  # QEMU has exited (or is exiting): COM1 still counts
                now = time.monotonic() - start
                with lock:
                    text = serial.decode(errors="replace")
                for want in watched:
                    if want not in seen and (want in text or want in screen):
                        seen[want] = now
                if not swapped and swap and swap[0] in seen and time.monotonic() >= next_swap:
                    next_swap = time.monotonic() + 0.5
                    reply = monitor.command(f"change ide1-cd0 {swap[1]}")
                    # A guest holding the tray locked gets an eject request; try again.
                    swapped = "Error" not in reply
                if until in seen and not wait_exit:
                    break
                if proc.poll() is not None:
                    break
                time.sleep(0.02)
            if wait_exit and until in seen:
                remaining = max(0.0, deadline - time.monotonic())
                try:
                    proc.wait(remaining)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            exited = proc.poll() is not None
            end = time.monotonic() - start
            if monitor is not None:
                if not exited:
                    try:
                        monitor.command("quit")
                    except (ConnectionError, OSError):
                        pass
                monitor.close()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            reader.join(5)
            if proc.stdout is not None:
                proc.stdout.close()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    text = serial.decode(errors="replace")
    for want in watched:  # COM1 output that arrived as QEMU exited
        if want not in seen and want in text:
            seen[want] = end
    found = until in seen and (exited or not wait_exit)
    seconds = end if wait_exit else seen.get(until, end)
    return QemuRun(found, seconds, seen, text, screen, proc.returncode if exited else None, cpu)


# -- the reference guests ----------------------------------------------------------------------


def reference_runs() -> list[tuple[str, QemuRun]]:
    """Boot each reference guest of :mod:`images.guests` to its first screen or milestone."""
    from images import guests

    m = guests.MILESTONES
    images = guests.all_images()
    plan: list[tuple[str, Path, str, dict[str, object]]] = [
        (name, images[name], text, {"timeout": 180.0})
        for name, text in guests.FIRST_SCREENS.items() if name != "linux.iso"]
    plan += [
        ("linux.iso (to md5 ok)", images["linux.iso"], m["md5"],
         {"watch": ["Linux version", m["init"], m["modules"], m["sr0"], m["mount"]],
          "screen_poll": None}),
        ("linux.iso (to exit)", images["linux.iso"], m["poweroff"],
         {"wait_exit": True, "screen_poll": None}),
        ("linux media change", images["linux-media-change.iso"], m["md5_2"],
         {"watch": [m["md5"], m["change"]], "screen_poll": None, "timeout": 90,
          "swap": (m["waiting"], images["disc2.iso"])}),
    ]
    return [(name, boot(iso, until, **opts)) for name, iso, until, opts in plan]  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qemu_reference", description=__doc__.splitlines()[0])
    parser.add_argument("image", nargs="?", help="disc image for -cdrom")
    parser.add_argument("--until", help="text to wait for (COM1 or screen)")
    parser.add_argument("--watch", action="append", default=[], help="also time this text")
    parser.add_argument("--swap-at", help="change the disc when this text appears")
    parser.add_argument("--swap-to", help="the disc to change to")
    parser.add_argument("--wait-exit", action="store_true", help="time to QEMU's exit")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--memory", default="512M")
    parser.add_argument("--serial", action="store_true", help="print COM1's output at the end")
    parser.add_argument("--com1-only", action="store_true", help="do not read the screen")
    parser.add_argument("--all", action="store_true", help="time every reference guest")
    args = parser.parse_args(argv)
    if not qemu_available():
        print(f"qemu_reference: {QEMU} is not installed", file=sys.stderr)
        return 2
    if args.all:
        for name, run in reference_runs():
            print(f"{name:26} {'ok  ' if run.found else 'FAIL'} {run.seconds:6.2f} s wall"
                  f" {run.cpu_seconds:6.2f} s CPU")
        return 0
    if not args.image or not args.until:
        parser.error("give IMAGE and --until TEXT (or --all)")
    swap = (args.swap_at, args.swap_to) if args.swap_at and args.swap_to else None
    run = boot(args.image, args.until, timeout=args.timeout, memory=args.memory,
               watch=args.watch, swap=swap, wait_exit=args.wait_exit,
               screen_poll=None if args.com1_only else 0.1)
    for text, when in sorted(run.seen.items(), key=lambda item: item[1]):
        print(f"{when:7.2f} s  {text}")
    if args.serial:
        print(run.serial)
    if not run.found:
        print(f"not found within {args.timeout} s; screen:\n{run.screen}", file=sys.stderr)
        return 1
    print(f"ok: {run.seconds:.2f} s whole process ({run.cpu_seconds:.2f} s CPU)")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main())
