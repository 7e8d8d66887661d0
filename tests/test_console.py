"""``emu console`` driven by a script, as a teacher would prepare one."""

from __future__ import annotations

import io
import subprocess
import sys

from emu.tools.console import TeachingConsole
from images.builders import SAMPLE_PATH

SCRIPT = """\
# a READ(10) with the trace on, then a media change
regs
outb 0x176 0xa0
inb 0x177
trace on
packet tur
trace off
sense
packet read10 16 1
eject
packet tur
sense
attach {iso}
packet tur
packet tur
packet tur
packet 25 00 00 00 00 00 00 00 00 00
quit
"""


def run(script: str) -> tuple[str, TeachingConsole]:
    out = io.StringIO()
    shell = TeachingConsole(str(SAMPLE_PATH), stdin=io.StringIO(script), stdout=out)
    shell.cmdloop()
    shell.close()
    return out.getvalue(), shell


def test_console_script_runs_the_protocol_and_the_media_change():
    text, shell = run(SCRIPT.format(iso=SAMPLE_PATH))
    assert not shell.failed
    lines = text.splitlines()
    # Each command is echoed, so the output is a transcript.
    assert "emu> packet read10 16 1" in lines
    assert "Byte count       0x174  60180 (0xEB14)" in lines  # the packet signature
    # The trace shows the conversation, with INTRQ (interrupts are enabled).
    assert "  | host → Command (0x177) = 0xA0 PACKET" in lines
    assert any(line.startswith("  | drive: CHECK CONDITION") and line.endswith("INTRQ ↑")
               for line in lines)
    assert "sense: 06/29/00 (UNIT ATTENTION, power on, reset, or bus device reset occurred)" in (
        lines
    )
    # READ(10) LBA 16 returns the Primary Volume Descriptor ("\x01CD001").
    at = lines.index("emu> packet read10 16 1")
    assert lines[at + 1] == "CDB: 28 00 00 00 00 10 00 00 01 00 00 00 = READ(10) LBA 16, 1 block"
    assert lines[at + 2] == "data: 2048 bytes"
    assert "|.CD001..        |" in lines[at + 3]
    # Eject: NOT READY, tray open; attach: NOT READY once, UNIT ATTENTION once, then ready.
    assert "sense: 02/3A/02 (NOT READY, medium not present - tray open)" in lines
    def status_after(i: int) -> str:
        return next(line for line in lines[i:] if line.startswith("status:"))

    tur_results = [status_after(i) for i, line in enumerate(lines) if line == "emu> packet tur"]
    assert [r.split()[1] for r in tur_results] == [
        "0x41", "0x41", "0x41", "0x41", "0x50",
    ]
    assert "error 0x20" in tur_results[2] and "error 0x60" in tur_results[3]
    # A raw CDB in hex: READ CAPACITY.
    assert "CDB: 25 00 00 00 00 00 00 00 00 00 00 00 = READ CAPACITY" in lines


def test_console_reports_bad_input_and_keeps_going():
    text, shell = run("outb 0x177\nfrobnicate\npacket read10 x\ninb 0x177\n")
    assert shell.failed
    assert "usage: outb PORT VALUE (e.g. outb 0x177 0xa0)" in text.splitlines()
    assert text.count("error:") == 2
    assert text.splitlines()[-1].startswith("0x")  # the last command still ran


def test_console_checks_ports_values_and_packet_names():
    script = "\n".join([
        "outb 0x999999 1",
        "outb 0x177 0x1a0",  # masked to 0xA0 this would issue PACKET: it must not be written
        "outw 0x170 0x10000",
        "outl 0x170 0x100000000",
        "outb 0x177 -1",
        "inw 0x10000",
        "inb",
        "packet bogus",
        "packet 28 zz",
        "inb 0x376",
    ]) + "\n"
    text, shell = run(script)
    assert shell.failed
    lines = text.splitlines()

    def answer(command: str) -> str:
        return lines[lines.index(f"emu> {command}") + 1]

    assert answer("outb 0x999999 1") == "error: port 0x999999 is out of range (0-65535, 0x0-0xFFFF)"
    assert answer("outb 0x177 0x1a0") == "error: byte value 0x1a0 is out of range (0-255, 0x0-0xFF)"
    assert answer("outw 0x170 0x10000") == (
        "error: word value 0x10000 is out of range (0-65535, 0x0-0xFFFF)")
    assert answer("outl 0x170 0x100000000") == (
        "error: dword value 0x100000000 is out of range (0-4294967295, 0x0-0xFFFFFFFF)")
    assert answer("outb 0x177 -1") == "error: byte value -1 is out of range (0-255, 0x0-0xFF)"
    assert answer("inw 0x10000") == "error: port 0x10000 is out of range (0-65535, 0x0-0xFFFF)"
    assert answer("inb") == "usage: inb PORT (e.g. inb 0x177)"
    assert answer("packet bogus") == (
        "error: unknown packet command 'bogus'; known: tur, sense, inquiry, capacity, read10, "
        "read12, toc, gesn, config, eject, load, lock, unlock, modesense (or the CDB bytes in hex)"
    )
    assert answer("packet 28 zz") == "error: 'zz' is not a CDB byte in hex (00-ff)"
    assert "invalid literal" not in text
    # Nothing was written: no PACKET command went to the drive, so DRQ is clear.
    alt = int(answer("inb 0x376"), 16)
    assert not alt & 0x08
    assert not any(line.startswith("CDB:") for line in lines)


def test_console_still_takes_a_cdb_in_hex_with_or_without_0x():
    text, shell = run("packet 0x25\npacket 25 00 00 00 00 00 00 00 00 00\n")
    assert not shell.failed
    assert text.count("CDB: 25 00 00 00 00 00 00 00 00 00 00 00 = READ CAPACITY") == 2


def test_help_lists_the_commands():
    text, _ = run("help\nhelp packet\n")
    for name in ("outb", "inb", "packet", "sense", "regs", "eject", "attach", "trace"):
        assert name in text
    assert "read10 LBA COUNT" in text


def test_emu_console_reads_a_script_from_stdin():
    proc = subprocess.run(
        [sys.executable, "-m", "emu.tools.cli", "console"],
        input="packet inquiry\nquit\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "= INQUIRY allocation 36 bytes" in proc.stdout
    assert "status: 0x41" in proc.stdout or "status: 0x50" in proc.stdout


def test_trace_lines_come_in_protocol_order_as_emu_trace_renders_them():
    """``trace on`` + ``packet tur``: the live trace is exactly what ``render`` makes of it."""
    from devices.trace import TraceEvent
    from emu.tools.trace import render

    out = io.StringIO()
    shell = TeachingConsole(str(SAMPLE_PATH), stdin=io.StringIO(""), stdout=out)
    try:
        for line in ("trace on", "packet tur"):
            shell.postcmd(shell.onecmd(shell.precmd(line)), line)
            if line == "trace on":  # record the same events for the independent check
                events: list[TraceEvent] = []
                assert shell.tracer is not None
                shell.tracer.sinks.append(events.append)
    finally:
        shell.close()
    traced = [line[4:] for line in out.getvalue().splitlines() if line.startswith("  | ")]
    # PACKET PIO data-in (vol 2 §11.8): the host writes Features and the byte count
    # limit, then the PACKET command; the drive asks for the packet (HP1, DRQ with
    # CoD=1 IO=0); the host polls Alternate Status, sends the 12-byte CDB; the drive
    # (power-on UNIT ATTENTION) completes with CHECK CONDITION and raises INTRQ,
    # which the host's Status read acknowledges; then it reads Error.
    assert traced == [
        "host → Features (0x171) = 0x00",
        "host → Byte count low (0x174) = 0xFE",
        "host → Byte count high (0x175) = 0xFF",
        "host → Command (0x177) = 0xA0 PACKET",
        "drive: DRQ=1 CoD=1 IO=0 → send the 12-byte packet",
        "host ← Alt status (0x376) = 0x58 DRDY DSC DRQ",
        "host → Data (0x170): 00 00 00 00 00 00 00 00 00 00 00 00 = TEST UNIT READY",
        "drive: sense 06/29/00 = UNIT ATTENTION, power on, reset, or bus device reset occurred",
        "drive: CHECK CONDITION, Status 0x41 DRDY ERR, Error 0x60 (sense key 6h UNIT ATTENTION),"
        " IO=1 CoD=1, INTRQ ↑",
        "host ← Status (0x177) = 0x41 DRDY ERR, INTRQ ↓ (reading Status acknowledges)",
        "host ← Error (0x171) = 0x60 (sense key 6h UNIT ATTENTION)",
    ]
    assert traced == render(events)  # the same lines, in the same order, as `emu trace`


def test_trace_of_a_data_in_command_keeps_the_drq_block_after_the_cdb():
    text, _ = run("trace on\npacket inquiry\n")
    traced = [line[4:] for line in text.splitlines() if line.startswith("  | ")]
    order = [
        "host → Byte count low (0x174) = 0xFE",
        "host → Byte count high (0x175) = 0xFF",
        "host → Command (0x177) = 0xA0 PACKET",
        "drive: DRQ=1 CoD=1 IO=0 → send the 12-byte packet",
        "host → Data (0x170): 12 00 00 00 24 00 00 00 00 00 00 00 = INQUIRY allocation 36 bytes",
        "drive: DRQ block of 36 bytes, INTRQ ↑",
    ]
    assert [traced.index(line) for line in order] == sorted(traced.index(line) for line in order)
