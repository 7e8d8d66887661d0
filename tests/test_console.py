"""``emu console`` driven by a script, as a teacher would prepare one."""

from __future__ import annotations

import io
import subprocess
import sys

from emu.console import TeachingConsole
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
    assert text.count("error:") == 3
    assert text.splitlines()[-1].startswith("0x")  # the last command still ran


def test_help_lists_the_commands():
    text, _ = run("help\nhelp packet\n")
    for name in ("outb", "inb", "packet", "sense", "regs", "eject", "attach", "trace"):
        assert name in text
    assert "read10 LBA COUNT" in text


def test_emu_console_reads_a_script_from_stdin():
    proc = subprocess.run(
        [sys.executable, "-m", "emu.cli", "console"],
        input="packet inquiry\nquit\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "= INQUIRY allocation 36 bytes" in proc.stdout
    assert "status: 0x41" in proc.stdout or "status: 0x50" in proc.stdout
