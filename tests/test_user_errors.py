"""What a user typing at the tools gets: one clear line and a documented exit status.

Every case here was a traceback once (issue 14): numbers that overflowed
``int.to_bytes``, Ctrl-C during an interactive boot, ``--script`` swallowing
the ISO.  The rule (README, "Using it"): bad input is one line on stderr and
exit status 2; Ctrl-C is ``emu: stopped`` and 130 (128 + SIGINT).
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emu.tools.cli import build_parser, main
from emu.tools.console import TeachingConsole
from images import SAMPLE_ISO


def one_line_error(err: str) -> str:
    """The single line a bad input prints; fails on a traceback or several lines."""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line and not line.startswith("usage:")
             and not line.startswith(" ")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("argv, message", [
    (["trace", "--lba", "-1", "--script", "read"],
     "argument --lba: LBA -1 is out of range (0-4294967295, 0x0-0xFFFFFFFF)"),
    (["trace", "--lba", "0x100000000"], "LBA 0x100000000 is out of range"),
    (["trace", "--count", "0"], "argument --count: sector count 0 is out of range (1-7680"),
    (["trace", "--count", "99999"], "sector count 99999 is out of range (1-7680"),
    (["trace", "--bcl", "3"], "byte-count limit 3 must be even (2-65534"),
    (["trace", "--bcl", "0x10000"], "byte-count limit 0x10000 is out of range (2-65534"),
    (["read", "-1"], "LBA -1 is out of range (0-4294967295"),
    (["read", "16", "100000"], "COUNT 100000 is out of range (1-7680"),
    (["boot", "--drive", "ide2-0"], "drive location 'ide2-0' is not one of ide0-0"),
])
def test_out_of_range_numbers_are_one_line_with_the_limits(argv, message, capsys):
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's own exit for a bad option value
        status = exc.code
    assert status == 2
    line = one_line_error(capsys.readouterr().err)
    assert line.startswith(f"emu {argv[0]}: error: ")
    assert message in line


def test_the_firmware_driver_refuses_an_lba_beyond_32_bits_instead_of_overflowing():
    from devices.media.iso import IsoImage
    from emu.firmware.ata import AtaHostDriver, FirmwareError
    from emu.pc.machine import Machine

    m = Machine()
    with IsoImage(SAMPLE_ISO) as medium:
        m.add_dvd_drive(1, 0, medium)
        driver = AtaHostDriver(m.ports, m.memory)
        dev = driver.probe()[0]
        for lba, count in ((-1, 1), (0x1_0000_0000, 1), (0xFFFF_FFFF, 2), (16, 0)):
            with pytest.raises(FirmwareError, match="cannot be read"):
                driver.read_sectors(dev, lba, count, 0x100000)


def console_answers(*commands: str) -> dict[str, str]:
    """Run ``commands`` in a scripted console; the line printed after each one."""
    out = io.StringIO()
    shell = TeachingConsole(stdin=io.StringIO("\n".join(commands) + "\n"), stdout=out)
    shell.cmdloop()
    shell.close()
    lines = out.getvalue().splitlines()
    return {c: lines[lines.index(f"emu> {c}") + 1] for c in commands}


def test_console_packet_numbers_out_of_range_are_errors_and_the_session_goes_on():
    answers = console_answers("packet read10 -1 1", "packet read10 0x100000000 1",
                              "packet read10 16 70000", "packet read12 16 0x100000000",
                              "packet modesense 99999", "packet read10 x 1", "packet tur")
    assert answers["packet read10 -1 1"] == (
        "error: LBA -1 is out of range (0-4294967295, 0x0-0xFFFFFFFF)")
    assert answers["packet read10 0x100000000 1"] == (
        "error: LBA 0x100000000 is out of range (0-4294967295, 0x0-0xFFFFFFFF)")
    assert answers["packet read10 16 70000"] == (
        "error: READ(10) block count 70000 is out of range (0-65535, 0x0-0xFFFF)")
    assert answers["packet read12 16 0x100000000"].startswith(
        "error: READ(12) block count 0x100000000 is out of range")
    # A page code is 6 bits: 99999 is refused, not silently masked to page 1Fh.
    assert answers["packet modesense 99999"] == (
        "error: mode page 99999 is out of range (0-63, 0x0-0x3F)")
    assert answers["packet read10 x 1"].startswith("error: LBA 'x' is not a whole number")
    assert answers["packet tur"].startswith("CDB: 00 00")  # still running


def test_console_modesense_sends_the_page_asked_for():
    answers = console_answers("packet modesense 0x1a")
    assert answers["packet modesense 0x1a"].startswith("CDB: 5a 00 1a 00 00 00 00 01 00")


def test_ctrl_c_during_a_boot_is_one_line_and_status_130(monkeypatch, capsys):
    import emu.boot  # the CLI imports run_boot from here when a boot starts (lazily)

    def interrupted(options: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(emu.boot, "run_boot", interrupted)
    assert main(["boot"]) == 130
    assert one_line_error(capsys.readouterr().err) == "emu: stopped"


def default_sigint() -> None:
    """In a child about to exec: SIGINT back to its default disposition.  A test run started
    where SIGINT is ignored (a background job of a non-interactive shell) would hand the
    ignoring on through exec, and Python then installs no KeyboardInterrupt handler: the
    Ctrl-C under test would never arrive."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_a_real_sigint_stops_emu_with_status_130_and_no_traceback():
    # The boot loop is replaced by a sleep so the signal arrives mid-run, as a
    # Ctrl-C at the terminal would; the handling under test is the real one.
    code = ("import sys, time, emu.boot, emu.tools.cli as c\n"
            "emu.boot.run_boot = lambda options: (print('running', flush=True), time.sleep(30))\n"
            "sys.exit(c.main(['boot', '--no-interactive']))\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    assert proc.stdout is not None
    # Skip the boot summary lines; "running" is printed from inside the (fake) boot loop.
    for line in proc.stdout:  # ends at EOF if the child died: the status check then fails
        if line.strip() == "running":
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert one_line_error(err) == "emu: stopped"


def test_boot_help_says_how_to_quit():
    help_text = " ".join(_subparser("boot").format_help().split())
    assert "Ctrl-C stops the emulator" in help_text and "130 stopped by Ctrl-C" in help_text


def _subparser(name: str):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "cmd")
    return sub.choices[name]


def test_trace_takes_the_iso_before_or_after_the_scripts(capsys):
    assert main(["trace", str(SAMPLE_ISO), "--script", "read"]) == 0
    before = capsys.readouterr().out
    assert main(["trace", "--script", "read", str(SAMPLE_ISO)]) == 0
    after = capsys.readouterr().out
    assert main(["trace", "--script", "probe,read"]) == 0
    commas = capsys.readouterr().out
    assert before == after and "READ(10) LBA 16, 1 block" in before
    assert commas.count("## script: probe") == 1 and "## script: read" in commas


def test_trace_rejects_an_unknown_script_in_one_line(capsys):
    assert main(["trace", "--script", "red"]) == 2
    assert one_line_error(capsys.readouterr().err) == (
        "emu trace: error: unknown script 'red' (choose from probe, ready, read, dma, "
        "eject, boot)")


def test_help_texts_have_no_markup_and_every_subcommand_a_description():
    parser = build_parser()
    texts = [parser.format_help()]
    sub = next(a for a in parser._actions if a.dest == "cmd")
    for name, p in sub.choices.items():
        assert p.description, f"emu {name} has no description"
        texts.append(p.format_help())
    for text in texts:
        assert "``" not in text and ":func:" not in text and ":class:" not in text


def test_every_iso_argument_defaults_to_the_sample(capsys):
    assert main(["info"]) == 0
    assert "EMU_SAMPLE" in capsys.readouterr().out
    assert main(["read", "16"]) == 0
    assert capsys.readouterr().out.startswith("00008000  01 43 44 30 30 31")
    assert main(["read", str(SAMPLE_ISO), "16", "1"]) == 0
    assert capsys.readouterr().out.startswith("00008000  01 43 44 30 30 31")
    assert main(["verify"]) == 0
    assert "every sector matches" in capsys.readouterr().out


def test_read_collapses_repeated_lines_as_hexdump_does(capsys, tmp_path):
    assert main(["read", "0"]) == 0  # the system area: 2048 zero bytes
    assert capsys.readouterr().out.splitlines() == [
        "00000000  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|",
        "*",
        "00000800",
    ]


def test_firmware_log_without_seabios_is_an_error_not_silence(capsys):
    assert main(["boot", "--firmware-log"]) == 2
    assert one_line_error(capsys.readouterr().err) == (
        "emu boot: error: --firmware-log needs --firmware seabios (the built-in BIOS writes "
        "no debug log)")


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("emu ") and out != "emu "


@pytest.mark.parametrize("spelling", ["ide0-1", "ata0-1", "0-1", "0:1", "IDE0-1"])
def test_a_drive_location_is_accepted_in_every_spelling_and_printed_as_ide(spelling, capsys):
    assert main(["trace", "--script", "probe", "--drive", spelling]) == 0
    out = capsys.readouterr().out
    assert "## found ide0-1: EMU Virtual DVD-ROM" in out
    assert "ata0-1" not in out


def test_serial_adds_com1_to_the_screen_and_serial_only_replaces_it(monkeypatch, capsys):
    import emu.boot  # the CLI imports run_boot from here when a boot starts (lazily)

    seen = {}

    def fake_boot(options):
        seen["console"], seen["serial"] = options.on_console, options.on_serial
        raise KeyboardInterrupt  # stop before running anything

    monkeypatch.setattr(emu.boot, "run_boot", fake_boot)
    main(["boot", "--no-interactive"])
    assert seen["console"] is not None and seen["serial"] is None
    main(["boot", "--no-interactive", "--serial"])
    assert seen["console"] is not None and seen["serial"] is not None
    main(["boot", "--no-interactive", "--serial-only"])
    assert seen["console"] is None and seen["serial"] is not None
    capsys.readouterr()


def test_console_eject_honours_the_guest_lock_unless_forced():
    out = io.StringIO()
    script = "packet tur\npacket lock\neject\npacket gesn\neject --force\npacket tur\n"
    shell = TeachingConsole(stdin=io.StringIO(script), stdout=out)
    shell.cmdloop()
    shell.close()
    text = out.getvalue()
    eject = text.split("emu> eject\n")[1].split("emu> ")[0]
    assert eject.startswith("the guest has locked the tray")
    # GESN (MMC-5 §6.6): media class 4, event 1 Eject Request, media status 02h
    # (tray shut, disc present): the button press reached the guest, the disc did not move.
    gesn = text.split("emu> packet gesn\n")[1].split("emu> ")[0]
    assert re.search(r"00 06 04 [0-9a-f]{2} 01 02 00 00", gesn)  # byte 3: supported classes
    forced = text.split("emu> eject --force\n")[1].split("emu> ")[0]
    assert forced == "ejected sample.iso\n"
    last = text.split("emu> packet tur\n")[-1]
    assert "CHECK CONDITION, error 0x20 (sense key 2h NOT READY)" in last


def test_bench_units_scale_and_check_fails_on_a_missed_target(monkeypatch, capsys):
    from emu.tools import bench

    assert [bench.format_seconds(t) for t in (2.5, 0.2166686, 8.46e-6, 4.2e-7)] == [
        "2.5 s", "216.7 ms", "8.5 µs", "420 ns"]
    fast, slow = bench.Timing((1e-6, 2e-6, 3e-6)), bench.Timing((9e-6, 1e-5, 2e-5))
    rows = [bench.Row("TEST UNIT READY round trip", fast, None, "within 8 µs (median)", True),
            bench.Row("GESN poll round trip", slow, None, "within 8 µs (median)", False),
            bench.Row("PIO 64k, trace on (vs off)", slow, fast, "", None)]
    monkeypatch.setattr(bench, "quick_rows", lambda min_time: rows)
    assert main(["bench"]) == 0
    out = capsys.readouterr().out
    assert main(["bench", "--check"]) == 1
    assert f"kept in {bench.CACHE}" in out and "8 GiB sparse file" in out
    assert re.search(r"round trip +2\.0 µs +1\.0 µs-3\.0 µs", out)  # median, spread
    assert "(MISSED)" in out and "(met)" in out and "(reported only)" in out
    assert "0.20×" in out  # 2 µs baseline median / 10 µs emulated median
    assert "1 of 2 targets missed: GESN poll round trip" in out
    assert "issue" not in out.lower()
    rows[1].met = True
    capsys.readouterr()
    assert main(["bench", "--check"]) == 0


def test_ctrl_c_typed_at_the_terminal_of_an_interactive_boot_stops_it_cleanly():
    """A pseudo-terminal: keys go to the guest (cbreak mode), ^C still interrupts (ISIG)."""
    import pty

    code = ("import sys, time, emu.boot, emu.tools.cli as c\n"
            "emu.boot.run_boot = lambda options: (print('running', flush=True), time.sleep(30))\n"
            "sys.exit(c.main(['boot']))\n")
    pid, fd = pty.fork()
    if pid == 0:  # the child: stdin/stdout/stderr are the terminal
        default_sigint()
        os.execv(sys.executable, [sys.executable, "-c", code])
    seen = read_until(fd, b"running", b"")
    os.write(fd, b"\x03")  # Ctrl-C typed at the terminal
    seen, status = drain_and_wait(fd, pid, seen)
    text = seen.decode(errors="replace")
    assert status == 130
    assert "Ctrl-C stops the emulator" in text and "emu: stopped" in text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text


def test_a_failing_trace_script_is_reported_in_the_transcript_with_status_1(capsys):
    # LBA 99999 is past the end of the sample: the drive answers CHECK CONDITION
    # ILLEGAL REQUEST (LBA out of range), which the transcript shows, then the failure.
    assert main(["trace", "--script", "read", "--lba", "99999", "--skip-setup"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "## read failed: command 0x28 failed"
    assert any("sense 05/21/00" in line for line in out)


NUMBERS = st.one_of(st.integers(-(1 << 40), 1 << 40).map(str),
                    st.integers(-(1 << 40), 1 << 40).map(hex),
                    st.sampled_from(["", "x", "0x", "1e3", "--force", "-", "0b101", "٣"]))
COMMANDS = st.sampled_from([
    "inb", "inw", "inl", "outb", "outw", "outl", "packet read10", "packet read12",
    "packet modesense", "packet tur", "packet 28", "bcl", "eject", "attach", "trace",
    "regs", "status", "reset", "identify", "sense", "dump", "history", "nonsense",
])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(COMMANDS, st.lists(NUMBERS, max_size=3)), min_size=1, max_size=8))
def test_no_typed_console_line_ends_the_session(lines):
    script = "\n".join(" ".join([cmd, *args]) for cmd, args in lines) + "\nstatus\n"
    out = io.StringIO()
    shell = TeachingConsole(stdin=io.StringIO(script), stdout=out)
    try:
        shell.cmdloop()  # must not raise
    finally:
        shell.close()
    text = out.getvalue()
    assert "Traceback" not in text
    assert text.splitlines()[-2] == "emu> status"  # the session reached the last line


def test_the_q_subchannel_crc_is_the_standard_librarys_crc_hqx_inverted():
    """ECMA-130 §22.3.4: CRC-16 x^16+x^12+x^5+1 over the 10 Q bytes, stored inverted."""
    import binascii

    import numpy as np

    from devices.media.cdframe import q_subchannel

    lbas = np.array([0, 1, 74, 75, 4499, 4500, 300_000], dtype=np.int64)
    for row in q_subchannel(lbas):
        crc = binascii.crc_hqx(bytes(row[:10]), 0) ^ 0xFFFF
        assert bytes(row[10:12]) == crc.to_bytes(2, "big")


def test_ctrl_c_at_the_console_prompt_drops_the_line_and_the_session_goes_on():
    import pty

    pid, fd = pty.fork()
    if pid == 0:
        default_sigint()
        os.execv(str(Path(sys.executable).parent / "emu"), ["emu", "console"])
    seen = b""
    try:
        seen = read_until(fd, b"emu> ", seen)
        # A SIGINT that lands after readline printed its prompt but before it waits for
        # input only takes effect at the next key (CPython runs signal handlers when
        # select() is interrupted): type when the console is really waiting.
        wait_until_sleeping(pid)
        os.write(fd, b"packet tu\x03")  # Ctrl-C in the middle of typing a command
        # The console's whole message, then its next prompt, before typing again: on a
        # loaded machine SIGINT can land late, and a line typed before it is dropped
        # with the interrupted input.
        marker = b"Ctrl-D leaves)"
        seen = read_until(fd, marker, seen)
        head, _, tail = seen.partition(marker)
        seen = head + marker + read_until(fd, b"emu> ", tail)
        os.write(fd, b"status\r")  # the session goes on: Status after reset reads 00h
        seen = read_until(fd, b"(no bits set)", seen)
        os.write(fd, b"quit\r")
    finally:
        seen, status = drain_and_wait(fd, pid, seen)
    text = seen.decode(errors="replace")
    assert status == 0
    assert "(interrupted; 'quit' or Ctrl-D leaves)" in text
    assert "emu> status\r\n0x00 (no bits set)" in text and "Traceback" not in text


def drain_and_wait(fd: int, pid: int, seen: bytes, timeout: float = 30) -> tuple[bytes, int]:
    """Read a pty child's output until it closes the terminal, then its exit status.

    Never hangs a test run: after ``timeout`` seconds the child is killed.
    """
    import select

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not select.select([fd], [], [], 0.5)[0]:
            if os.waitpid(pid, os.WNOHANG) != (0, 0):
                os.close(fd)
                return seen, -1
            continue
        try:
            chunk = os.read(fd, 1024)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    else:
        os.kill(pid, signal.SIGKILL)
    _, wait_status = os.waitpid(pid, 0)
    os.close(fd)
    return seen, os.waitstatus_to_exitcode(wait_status)


def wait_until_sleeping(pid: int, timeout: float = 10) -> None:
    """Wait until process ``pid`` sleeps (state S in /proc/PID/stat: blocked waiting)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return
        if stat[stat.rindex(")") + 2] == "S":
            return
        time.sleep(0.01)


def read_until(fd: int, marker: bytes, seen: bytes, timeout: float = 30) -> bytes:
    """Read a pty until ``marker`` shows up (or ``timeout`` passes, or the child is gone)."""
    import select

    deadline = time.monotonic() + timeout
    while marker not in seen and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.5)[0]:
            try:
                seen += os.read(fd, 1024)
            except OSError:  # the child closed the terminal
                break
    return seen
