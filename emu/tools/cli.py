"""The ``emu`` command: boot, inspect and read discs through the emulated drive.

* ``emu boot [ISO]``: power on, probe, El Torito, load, then run the boot image
  on the CPU with BIOS services; guest text streams to the terminal.
* ``emu info [ISO]``: what pycdlib sees in an image.
* ``emu read [ISO] LBA [COUNT]``: a hexdump of sectors read through the whole
  path (firmware driver → ports → controller → drive → medium).
* ``emu matrix SUITE.toml``: a suite of boots, one process a case (emu.tools.matrix).

Every subcommand that takes an ISO defaults to the built-in sample
(``images.SAMPLE_ISO``).  Exit statuses shared by all subcommands: 0 done,
1 the emulated operation failed, 2 bad input (a one-line message, never a
traceback), 130 stopped by Ctrl-C.
"""

from __future__ import annotations

import os

# Before numpy can load (lazily, below): one BLAS thread.  numpy's OpenBLAS otherwise
# starts a pool of threads at import that this program never uses (about 50 ms of CPU).
for _blas in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_blas, "1")

import argparse  # noqa: E402 - after the BLAS settings on purpose
import importlib  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from typing import TYPE_CHECKING  # noqa: E402

from emu.tools.args import MAX_LBA, location, parse_int, positive_float  # noqa: E402
from images import SAMPLE_ISO  # noqa: E402

if TYPE_CHECKING:
    from devices.media.iso import IsoImage
    from emu.boot import BootOptions, BootResult
    from emu.firmware.eltorito import LoadedImage
    from emu.pc.machine import Machine

# Start-up: numpy, pycdlib and unicorn load only in the command that uses them, and a
# subcommand's arguments are built only when it is the one asked for, so ``emu --help``
# stays quick (the emu-help figure in docs/benchmarks.md).

EXIT_OK, EXIT_BOOT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
EXIT_INTERRUPTED = 130
"""128 + SIGINT, what a shell reports for a program stopped by Ctrl-C."""
READ_DEST = 0x100000
"""Guest address ``emu read`` reads to (1 MiB, above the real-mode area)."""
MAX_READ_SECTORS = ((16 << 20) - READ_DEST) // 2048
"""Sectors ``emu read`` can hold in the 16 MiB machine's memory above :data:`READ_DEST`."""
DESCRIPTION = ("emu: boot, inspect and read discs through an emulated IDE/ATAPI DVD drive. "
               "Every ISO argument defaults to the built-in sample. Exit status: 0 done, "
               "1 failed, 2 bad input, 130 stopped by Ctrl-C.")
TOOLS = {
    "trace": ("emu.tools.trace", "show the host-drive conversation in words"),
    "console": ("emu.tools.console", "an interactive teaching shell (ports, packets, sense)"),
    "verify": ("emu.tools.verify", "read every sector through the drive and compare"),
    "bench": ("emu.tools.bench", "quick benchmark: emulated paths against raw baselines"),
    "matrix": ("emu.tools.matrix", "run a declared suite of boots in parallel (docs/matrix.md)"),
}
"""Tool commands: name → (module with ``add_arguments``, one-line help)."""


def open_machine(iso: str | None, bus: int, device: int) -> tuple[Machine, IsoImage]:
    """A machine with a DVD drive at (bus, device) holding ``iso`` (or the sample)."""
    from devices.media.iso import IsoImage
    from emu.pc.machine import Machine

    medium = IsoImage(iso or SAMPLE_ISO)
    machine = Machine()
    machine.add_dvd_drive(bus, device, medium)
    return machine, medium


class TerminalKeys:
    """Keys typed on the controlling terminal, read without echo or line buffering."""

    def __init__(self) -> None:
        import termios
        import tty

        self.fd = sys.stdin.fileno()
        self.saved = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd)
        self._termios = termios

    def __call__(self) -> int | None:
        import os
        import select

        ready, _, _ = select.select([self.fd], [], [], 0.01)  # also paces an idle guest
        if not ready:
            return None
        ch = os.read(self.fd, 1).decode("latin-1")
        from emu.pc.keyboard import parse_keys

        return parse_keys("\r" if ch == "\n" else ch)[0]

    def close(self) -> None:
        self._termios.tcsetattr(self.fd, self._termios.TCSADRAIN, self.saved)


def print_boot_summary(medium_path: str, loaded: LoadedImage) -> None:
    """What the firmware found, before the CPU starts."""
    dev, entry = loaded.device, loaded.entry
    print(f"Disc:        {medium_path}")
    print(f"Drive:       {dev.location}: {dev.model} "
          f"(serial {dev.serial}, firmware {dev.firmware}, {dev.kind})")
    print(f"Catalog:     LBA {loaded.catalog_lba}")
    print(f"Boot entry:  platform {entry.platform_name}, {entry.media_name}, "
          f"load segment {entry.segment:#06x}, {entry.sector_count} sectors, "
          f"load RBA {entry.load_rba}")
    print(f"Loaded:      {loaded.length} bytes at {loaded.address:#07x}, sha256 {loaded.sha256}")
    print(flush=True)


def cmd_boot(args: argparse.Namespace) -> int:
    """Boot a disc on the CPU; guest text streams to stdout (see emu.boot for statuses)."""
    from devices.trace import Tracer
    from emu.boot import DEFAULT_TIMEOUT, BootOptions
    from emu.firmware.seabios import TRANSFERS as SEABIOS_TRANSFERS

    def echo(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    if args.firmware_log and args.firmware != "seabios":
        print("emu boot: error: --firmware-log needs --firmware seabios (the built-in BIOS "
              "writes no debug log)", file=sys.stderr)
        return EXIT_BAD_INPUT
    iso = args.iso or str(SAMPLE_ISO)
    if args.restore is None and args.force:
        print("emu: --force applies to --restore", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.firmware == "seabios" and args.transfer not in (None, *SEABIOS_TRANSFERS):
        print(f"emu: SeaBIOS reads the disc by {'/'.join(SEABIOS_TRANSFERS).upper()} only; "
              f"--transfer {args.transfer} applies to the built-in BIOS", file=sys.stderr)
        return EXIT_BAD_INPUT
    traffic = None
    if args.json_result:
        from emu.tools.matrix import DriveTraffic  # the matrix tool's record format

        traffic = DriveTraffic()
    live = TerminalKeys() if args.interactive and sys.stdin.isatty() else None
    if live is not None:
        print("[emu] keys go to the guest; Ctrl-C stops the emulator", file=sys.stderr)
    timeout = args.timeout if args.timeout is not None else (None if live else DEFAULT_TIMEOUT)
    options = BootOptions(
        iso=iso, bus=args.bus, device=args.device, keys=args.keys or "", until=args.until,
        timeout=timeout, guest_timeout=args.guest_timeout,
        max_instructions=args.max_instructions, memory_size=args.memory, live_keys=live,
        on_console=None if args.serial_only else echo,
        on_serial=echo if args.serial or args.serial_only else None,
        on_loaded=lambda loaded: print_boot_summary(iso, loaded),
        firmware=args.firmware, transfer=args.transfer,
        trace=None if traffic is None else Tracer(keep=False, sinks=[traffic]),
    )
    try:
        if args.save is None and args.restore is None and not args.swap:
            from emu.boot import run_boot  # looked up here: tests replace the boot loop

            _banner(args, iso)
            result = run_boot(options)
        else:
            outcome = _run_session(args, options, iso, timeout)
            if isinstance(outcome, int):
                return outcome
            result = outcome
    finally:
        if live is not None:
            live.close()
    if args.json_result:
        from emu.tools.matrix import write_boot_json

        write_boot_json(args.json_result, result, options, traffic)
    if args.firmware == "seabios":
        if args.firmware_log:
            print("\n--- SeaBIOS debug log (port 402h) " + "-" * 45, file=sys.stderr)
            print("\n".join(result.firmware_log), file=sys.stderr)
        # SeaBIOS shows its boot list on screen only in its ESC menu; the drives it
        # registered for booting are in its debug log, so say which ones it found.
        found = [line for line in result.firmware_log if line.startswith("DVD/CD [")]
        listing = "; ".join(f"{i}. {_seabios_location(line)}"
                            for i, line in enumerate(found, 1)) or "none"
        print(f"\n[emu] SeaBIOS boot list: {listing}", file=sys.stderr)
    elif result.loaded is None:
        for line in result.firmware_log:
            print(line)
        print(result.message, file=sys.stderr)
        return int(result.status)
    if args.screen:
        print("\n--- screen " + "-" * 69)
        print(result.screen)
        print("-" * 80)
    # The virtual clock advances by whole slices (Unicorn reports no instruction count
    # for a slice that a hook stops early), so it is not shown as a measurement here.
    reads = ("SeaBIOS" if args.firmware == "seabios"
             else f"{result.sectors_read} CD sectors read by INT 13h")
    print(f"\n[emu] {result.message} ({result.wall_seconds:.2f} s wall, {reads})",
          file=sys.stderr)
    return int(result.status)


def _seabios_location(line: str) -> str:
    """SeaBIOS's ``DVD/CD [ata1-0: model]`` with the location spelled as every tool does."""
    from emu.firmware.ata import location_name

    match = re.match(r"DVD/CD \[ata([01])-([01]): (.*)\]$", line)
    if match is None:
        return line
    return f"DVD/CD {location_name(int(match[1]), int(match[2]))}: {match[3]}"


def cmd_info(args: argparse.Namespace) -> int:
    from devices.media.iso import IsoImage

    with IsoImage(args.iso or SAMPLE_ISO) as image:
        info = image.info()
    if args.json:
        print(json.dumps(info, indent=2))
        return EXIT_OK
    print(f"Image:            {info['path']}")
    print(f"File size:        {info['file_size']} bytes")
    print(f"Capacity:         {info['capacity_sectors']} sectors of 2048 bytes "
          f"({'DVD' if info['is_dvd'] else 'CD'}-sized)")
    print(f"Volume id:        {info['volume_id']!r}")
    print(f"ISO 9660 volume:  {info['volume_size']} sectors")
    print(f"Joliet:           {'yes' if info['joliet'] else 'no'}")
    print(f"Rock Ridge:       {'yes' if info['rock_ridge'] else 'no'}")
    print(f"UDF:              {'yes' if info['udf'] else 'no'}")
    entries = info["boot_entries"]
    if not entries:
        print("El Torito:        none")
    for i, e in enumerate(entries):
        print(f"El Torito [{i}]:    platform {e['platform_name']}, "
              f"{'bootable' if e['bootable'] else 'not bootable'}, {e['media_name']}, "
              f"load segment {_segment_text(e['load_segment'])}, {e['sector_count']} sectors, "
              f"load RBA {e['load_rba']}")
    return EXIT_OK


def read_positionals(words: Sequence[str]) -> tuple[str | None, int, int]:
    """``[ISO] LBA [COUNT]`` → (ISO or None, LBA, COUNT).

    One word is the LBA; three are ISO, LBA and COUNT; of two, the first is
    the ISO unless it is a number (write ``./16`` for a file named 16).
    """
    words = list(words)
    if not 1 <= len(words) <= 3:
        raise ValueError("expected [ISO] LBA [COUNT]")
    iso: str | None = None
    if len(words) == 3 or (len(words) == 2 and not _is_number(words[0])):
        iso = words.pop(0)
    lba = parse_int(words[0], "LBA", 0, MAX_LBA)
    count = parse_int(words[1], "COUNT", 1, MAX_READ_SECTORS) if len(words) > 1 else 1
    return iso, lba, count


def _is_number(word: str) -> bool:
    try:
        int(word, 0)
    except ValueError:
        return False
    return True


def cmd_read(args: argparse.Namespace) -> int:
    from emu.firmware.ata import AtaHostDriver, FirmwareError
    from emu.tools.hexdump import hexdump

    try:
        iso, args.lba, args.count = read_positionals(args.words)
    except ValueError as exc:
        print(f"emu read: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    machine, medium = open_machine(iso, args.bus, args.device)
    driver = AtaHostDriver(machine.ports, machine.memory)
    dest = READ_DEST
    try:
        devices = [d for d in driver.probe() if d.device_type == 5]
        if not devices:
            raise FirmwareError("no DVD/CD drive found")
        dev = devices[0]
        driver.wait_ready(dev)
        if args.lba + args.count > medium.sector_count:
            print(f"emu read: error: sectors {args.lba}+{args.count} are outside the disc "
                  f"({medium.sector_count} sectors)", file=sys.stderr)
            return EXIT_BAD_INPUT
        driver.read_sectors(dev, args.lba, args.count, dest)
    except FirmwareError as exc:
        print(f"Read failed: {exc}", file=sys.stderr)
        return EXIT_BOOT_FAILED
    finally:
        medium.close()
    data = machine.memory.read(dest, args.count * 2048)
    print("\n".join(hexdump(data, args.lba * 2048)))
    return EXIT_OK


def _segment_text(segment: int) -> str:
    """A boot entry's load segment; 0 means the BIOS default 07C0h (El Torito §2.2)."""
    return f"{segment:#06x}" if segment else "0x0000 (default 0x07c0)"


def _memory_size(text: str) -> int:
    """A RAM size such as 512M or 2G, for argparse."""
    from emu.pc.board import BoardError, parse_memory_size

    try:
        return parse_memory_size(text)
    except BoardError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _swap(text: str) -> tuple[str, str]:
    """``TEXT=ISO`` for ``--swap`` (split at the last ``=``), the image checked to exist."""
    guest_text, sep, path = text.rpartition("=")
    if not sep or not guest_text or not path:
        raise argparse.ArgumentTypeError(f"expected TEXT=ISO, got {text!r}")
    if not os.path.isfile(path):
        raise argparse.ArgumentTypeError(f"no such image file: {path}")
    return guest_text, path


def _positive_int(text: str) -> int:
    """A whole number greater than zero, for argparse."""
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0: {text}")
    return value


def drive_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--drive", type=location, metavar="LOC",
                   help="where the DVD drive sits: ide1-0 (default), ide1-1, ide0-0 or "
                        "ide0-1 (ata1-0 and 1-0 are accepted too); or --bus/--device")
    p.add_argument("--bus", type=int, choices=(0, 1), default=1,
                   help="IDE bus of the DVD drive (default 1)")
    p.add_argument("--device", type=int, choices=(0, 1), default=0,
                   help="device number on that bus (default 0)")


def boot_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``emu boot`` (its defaults come from the session and the board)."""
    from emu.boot import DEFAULT_TIMEOUT
    from emu.pc.board import DEFAULT_MEMORY

    p.add_argument("iso", nargs="?", help="ISO image (default: the built-in sample)")
    drive_options(p)
    p.add_argument("--keys", metavar="KEYS",
                   help='keys to type when the guest waits for input, e.g. "ls\\r" '
                        "(escapes \\r \\t \\b \\e \\xNN, {up} {down} {f1} ...)")
    p.add_argument("--until", metavar="TEXT",
                   help="stop as soon as the guest prints TEXT (screen or serial)")
    p.add_argument("--timeout", "--wall-timeout", type=positive_float, metavar="S",
                   help=f"stop after S seconds of wall-clock time "
                        f"(default {DEFAULT_TIMEOUT:g}; none when interactive)")
    p.add_argument("--guest-timeout", type=positive_float, metavar="S",
                   help="stop after S seconds of guest (virtual) time: the same instruction "
                        "every run")
    p.add_argument("--memory", type=_memory_size, default=DEFAULT_MEMORY, metavar="SIZE",
                   help=f"guest RAM, e.g. 512M or 2G (default {DEFAULT_MEMORY >> 20}M)")
    p.add_argument("--max-instructions", type=_positive_int, metavar="N",
                   help="stop after N guest instructions")
    p.add_argument("--screen", action="store_true",
                   help="print the final 80x25 screen when the run ends")
    p.add_argument("--serial", action="store_true",
                   help="also stream COM1 (and port E9h) output beside the screen text")
    p.add_argument("--serial-only", action="store_true",
                   help="stream only COM1 (and port E9h) output, not the screen text")
    p.add_argument("--no-interactive", dest="interactive", action="store_false",
                   help="do not read keys from the terminal after --keys runs out")
    p.add_argument("--firmware", choices=("builtin", "seabios"), default="builtin",
                   help="builtin: the Python BIOS (default, fast); seabios: Debian's SeaBIOS "
                        "from its reset vector (see docs/seabios.md)")
    p.add_argument("--firmware-log", action="store_true",
                   help="with --firmware seabios: print SeaBIOS's debug output (port 402h)")
    p.add_argument("--transfer", choices=("pio", "dma"),
                   help="how the built-in BIOS reads the disc: PIO or bus-master DMA "
                        "(default: DMA); SeaBIOS reads by PIO")
    p.add_argument("--json-result", metavar="FILE",
                   help="write the result (status, times, counts, drive traffic, final "
                        "screen) as JSON to FILE (see docs/matrix.md)")
    p.add_argument("--swap", metavar="TEXT=ISO", action="append", type=_swap, default=[],
                   help="when the guest prints TEXT, take the disc out and put ISO in (as "
                        "the management API's release_image + attach_image), then go on; "
                        "repeatable, in order")
    p.add_argument("--save", metavar="FILE",
                   help="when the run stops, save the whole machine's state to FILE (a "
                        ".emustate zip, docs/state.md)")
    p.add_argument("--restore", metavar="FILE",
                   help="go on from a saved state instead of powering on: RAM, firmware, "
                        "drives and transfer mode come from FILE; ISO, if given, names where "
                        "its image is now; limits count from power-on")
    p.add_argument("--force", action="store_true",
                   help="with --restore: accept an image other than the one saved with")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``emu`` parser.  With ``command``, only that subcommand gets its arguments
    (and imports what they need); the others are listed by name and help."""
    parser = argparse.ArgumentParser(prog="emu", description=DESCRIPTION)
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def wanted(name: str) -> bool:
        return command is None or command == name

    p = sub.add_parser(
        "boot", help="boot a disc (the built-in sample if none is given)",
        description="Boot a disc on the emulated PC. On a terminal, keys go to the guest "
                    "once --keys runs out; Ctrl-C stops the emulator. Exit status: 0 done "
                    "(halted, --until seen, or waiting for input), 1 boot failed, 2 bad input, "
                    "3 limit reached, 4 --until text not seen, 5 the guest triple-faulted, "
                    "130 stopped by Ctrl-C.")
    if wanted("boot"):
        boot_arguments(p)
    p.set_defaults(func=cmd_boot)

    p = sub.add_parser(
        "info", help="what pycdlib sees in an image",
        description="Describe an ISO image as pycdlib reads it: volume id, ISO 9660 size, "
                    "capacity from the file size, Joliet / Rock Ridge / UDF, El Torito boot "
                    "entries. Nothing is emulated. Exit status: 0 done, 2 bad input.")
    p.add_argument("iso", nargs="?", help="ISO image (default: the built-in sample)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser(
        "read", help="hexdump sectors read through the emulated drive",
        usage="emu read [-h] [--drive LOC | --bus {0,1} --device {0,1}] [ISO] LBA [COUNT]",
        description="Read sectors through the whole path (firmware driver, ports, IDE "
                    "controller, ATAPI drive, medium) and print them as hexdump -C does "
                    "(repeated lines as *). Exit status: 0 done, 1 the read failed, "
                    "2 bad input.")
    p.add_argument("words", nargs="+", metavar="[ISO] LBA [COUNT]",
                   help=f"ISO image (default: the built-in sample), first sector (2048-byte "
                        f"LBA, 0-{MAX_LBA}) and number of sectors (1-{MAX_READ_SECTORS}, "
                        "default 1)")
    drive_options(p)
    p.set_defaults(func=cmd_read)

    # The teaching and measuring commands: a tool module is imported only for its own
    # command (its arguments); otherwise it is listed by name and help.
    for name, (module, help_text) in TOOLS.items():
        tool = sub.add_parser(name, help=help_text)
        if wanted(name):
            importlib.import_module(module).add_arguments(tool, drive_options)
    return parser


class _VersionAction(argparse.Action):
    """``--version``: the installed version, looked up only when asked for (importlib.metadata
    scans the installed distributions, which ``emu --help`` should not pay for)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings, dest=dest, default=default, nargs=0,
                         help=help or "show the program's version number and exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        print(f"emu {package_version()}")
        parser.exit()


def package_version() -> str:
    """The installed distribution's version (``emu --version``)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("emu-atapi")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def _banner(args: argparse.Namespace, iso: str) -> None:
    """What a SeaBIOS boot says before it starts."""
    if args.firmware == "seabios":
        from emu.firmware.ata import location_name
        from emu.firmware.seabios import SEABIOS_BIN

        print(f"Disc:        {iso}\nFirmware:    SeaBIOS ({SEABIOS_BIN}), drive at "
              f"{location_name(args.bus, args.device)}, {args.memory >> 20} MiB RAM\n",
              flush=True)


def _run_session(args: argparse.Namespace, options: BootOptions, iso: str,
                 timeout: float | None) -> BootResult | int:
    """``--swap``, ``--save``, ``--restore``: run a new session, or the saved one (its board
    built from the file: RAM, firmware, drives; ISO then names where its image is now),
    changing discs at the ``--swap`` texts, and save it when the run stops.  An int is an
    exit status (a one-line error was said)."""
    from devices.media.base import MediumError
    from emu.boot import StateFileError, boot_session, restore_session

    try:
        if args.restore is None:
            _banner(args, iso)
            session = boot_session(options)
        else:
            media = {(args.bus, args.device): args.iso} if args.iso else None
            session = restore_session(args.restore, force=args.force, media=media,
                                      options=options)
            print(f"Restored:    {args.restore} ({options.firmware}, "
                  f"{session.clock.instructions:,} instructions)\n", flush=True)
    except StateFileError as exc:
        print(f"emu: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    args.firmware = options.firmware  # a restored state's, from its file
    try:
        # A restored run types --keys from where it stopped; a new one has them already.
        keys = options.keys if args.restore else ""
        started = time.monotonic()

        def left() -> float | None:
            return None if timeout is None else max(0.001, timeout - (time.monotonic() - started))

        for text, path in args.swap:
            result = session.resume(until=text, timeout=left(), keys=keys)
            keys = ""
            if not session.until_seen:
                result.message += f" (waiting for {text!r} to swap discs)"
                break
            try:
                session.change_disc(path)
            except MediumError as exc:
                print(f"emu boot: error: --swap: {exc}", file=sys.stderr)
                return EXIT_BAD_INPUT
            print(f"\n[emu] saw {text!r}: the drive now holds {path}", file=sys.stderr,
                  flush=True)
        else:
            result = session.resume(until=args.until, timeout=left(), keys=keys)
        if args.save is not None and session.installed:
            try:
                session.save_state(args.save)
            except StateFileError as exc:
                print(f"emu: {exc}", file=sys.stderr)
                return EXIT_BAD_INPUT
            print(f"\n[emu] state saved to {args.save} after "
                  f"{result.instructions:,} instructions", file=sys.stderr)
    finally:
        session.close()
    return result


def _command(argv: Sequence[str]) -> str:
    """The subcommand named in ``argv`` (its first word that is not an option)."""
    return next((arg for arg in argv if not arg.startswith("-")), "")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _command(argv)
    try:
        args = build_parser(command).parse_args(argv)
    except KeyboardInterrupt:
        return _stopped()
    if getattr(args, "drive", None) is not None:
        args.bus, args.device = args.drive
    from devices.media.base import MediumError  # after parsing: --help loads no numpy

    try:
        return args.func(args)
    except KeyboardInterrupt:
        return _stopped()
    except MediumError as exc:
        print(f"emu: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        # The reader went away (``emu trace | head``): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:  # an output file (--json, --vcd) that cannot be written
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"emu: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


FAST_EXIT_COMMANDS = frozenset({"boot", "info", "read", "verify"})
"""Commands whose process ends without the interpreter's teardown (see :func:`run`)."""


def run() -> None:
    """The ``emu`` executable: :func:`main`, then exit.

    A command in :data:`FAST_EXIT_COMMANDS` holds nothing that must be released at exit
    (its images are read-only, its result files are closed, nothing runs in the
    background), so after flushing stdout and stderr the process leaves with
    ``os._exit``: freeing the guest's RAM, the CPU engine's translation cache and every
    module takes about 10 ms, 5 % of a boot to ISOLINUX's prompt.  Other commands (the
    matrix's Ray workers, the console's readline history) exit normally."""
    argv = sys.argv[1:]
    status = main(argv)
    if _command(argv) in FAST_EXIT_COMMANDS:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BrokenPipeError:
            pass
        os._exit(status)
    sys.exit(status)


def _stopped() -> int:
    """Ctrl-C: one line, and the status a shell expects (128 + SIGINT)."""
    print("\nemu: stopped", file=sys.stderr)
    return EXIT_INTERRUPTED


if __name__ == "__main__":
    run()
