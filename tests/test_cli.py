"""The ``emu`` command as a user runs it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from emu.tools.cli import SAMPLE_ISO, main
from emu.tools.hexdump import hexdump
from tests.conftest import expected

pytestmark = pytest.mark.usefixtures("both_clocks")  # every boot, with each clock


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "emu.tools.cli", *args], capture_output=True,
                          text=True, timeout=120)


def test_emu_boot_without_arguments_boots_the_sample():
    out = run("boot")
    assert out.returncode == 0, out.stderr
    assert "Drive:       ide1-0: EMU Virtual DVD-ROM" in out.stdout
    assert "platform x86, no emulation, load segment 0x07c0" in out.stdout
    assert "sha256" in out.stdout


def test_emu_info_describes_the_sample(capsys):
    assert main(["info", str(SAMPLE_ISO)]) == 0
    text = capsys.readouterr().out
    assert "EMU_SAMPLE" in text and "Joliet:           yes" in text
    assert "bootable, no emulation" in text


def test_emu_read_dumps_sectors_read_through_the_drive(capsys, patterned_iso, pattern_lba):
    assert main(["read", str(patterned_iso), str(pattern_lba), "2"]) == 0
    text = capsys.readouterr().out
    assert text.strip() == "\n".join(hexdump(expected(pattern_lba, 2), pattern_lba * 2048))


def test_emu_read_outside_the_disc_is_a_clear_error(capsys, patterned_iso):
    assert main(["read", str(patterned_iso), "5000"]) == 2
    assert "outside the disc" in capsys.readouterr().err


def test_bad_paths_are_clear_errors(tmp_path, capsys):
    assert main(["info", str(tmp_path / "missing.iso")]) == 2
    assert "no such file" in capsys.readouterr().err
    junk = tmp_path / "junk.iso"
    junk.write_bytes(b"\x00" * 40_000)
    assert main(["boot", str(junk)]) == 2
    err = capsys.readouterr().err
    assert str(junk) in err


def test_emu_read_rejects_negative_and_non_numeric_sectors(capsys, patterned_iso):
    for bad, message in ((["-5"], "LBA -5 is out of range (0-4294967295"),
                         (["abc"], "LBA 'abc' is not a whole number"),
                         (["0", "-1"], "COUNT -1 is out of range (1-7680"),
                         (["0x100000000"], "LBA 0x100000000 is out of range")):
        assert main(["read", str(patterned_iso), *bad]) == 2
        err = capsys.readouterr().err
        assert err.startswith("emu read: error: ") and message in err
        assert err.count("\n") == 1  # one line, no traceback


def test_emu_info_says_what_load_segment_0_means(capsys):
    assert main(["info", str(SAMPLE_ISO)]) == 0
    assert "load segment 0x0000 (default 0x07c0)" in capsys.readouterr().out


def test_boot_limits_must_be_positive(capsys):
    import pytest

    for bad in (["--timeout", "-1"], ["--timeout", "0"], ["--max-instructions", "0"],
                ["--wall-timeout", "x"]):
        with pytest.raises(SystemExit) as exc:
            main(["boot", *bad])
        assert exc.value.code == 2
        assert "argument" in capsys.readouterr().err


def test_trace_output_files_that_cannot_be_written_are_clear_errors(tmp_path, capsys):
    missing = tmp_path / "no-such-dir"
    for option in ("--vcd", "--json"):
        assert main(["trace", "--script", "probe", option, str(missing / "out")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("emu: ") and "No such file or directory" in err
        assert "Traceback" not in err


def test_a_closed_pipe_ends_the_output_quietly():
    proc = subprocess.Popen([sys.executable, "-m", "emu.tools.cli", "trace", "--script", "read"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # like `| head -1`
    err = proc.stderr.read().decode()
    proc.stderr.close()
    proc.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_seabios_until_sees_text_printed_just_before_the_halt():
    from pathlib import Path

    import pytest

    if not Path("/usr/share/seabios/bios.bin").exists():
        pytest.skip("seabios is not installed (.ci/run installs it)")
    out = run("boot", "--firmware", "seabios", "--until", "checksum OK")
    assert out.returncode == 0, out.stderr
    assert "saw 'checksum OK'" in out.stderr


def test_seabios_boot_names_the_drives_seabios_found():
    from pathlib import Path

    import pytest

    if not Path("/usr/share/seabios/bios.bin").exists():
        pytest.skip("seabios is not installed (.ci/run installs it)")
    out = run("boot", "--firmware", "seabios", "--bus", "0", "--device", "1")
    assert out.returncode == 0, out.stderr
    assert ("SeaBIOS boot list: 1. DVD/CD ide0-1: EMU Virtual DVD-ROM ATAPI-7 DVD/CD"
            in out.stderr)
