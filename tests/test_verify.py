"""``emu verify``: every sector read through the drive equals the file."""

from __future__ import annotations

import hashlib
import io

from emu.tools.cli import main
from emu.tools.verify import Progress, verify_image
from images.builders import SAMPLE_PATH, build_patterned_iso


def test_verify_reads_every_sector_and_hashes_the_disc(tmp_path):
    iso = build_patterned_iso(tmp_path / "p.iso", data_sectors=600)
    result = verify_image(str(iso))
    assert result.ok
    assert result.sectors == iso.stat().st_size // 2048
    assert result.sha256 == hashlib.sha256(iso.read_bytes()).hexdigest()
    assert result.mode in ("PIO", "DMA")


def test_verify_by_pio_gives_the_same_hash(tmp_path):
    iso = build_patterned_iso(tmp_path / "p.iso", data_sectors=300)
    assert verify_image(str(iso), dma=False).sha256 == verify_image(str(iso)).sha256
    assert verify_image(str(iso), dma=False).mode == "PIO"


def test_verify_command_prints_throughput_and_sha256(capsys):
    assert main(["verify", str(SAMPLE_PATH)]) == 0
    out = capsys.readouterr()
    assert "every sector matches the file" in out.out
    assert hashlib.sha256(SAMPLE_PATH.read_bytes()).hexdigest() in out.out
    assert "MiB/s" in out.out
    assert out.err == ""  # no progress bar when stderr is not a terminal


def test_verify_progress_bar_goes_to_stderr_when_asked(capsys):
    assert main(["verify", str(SAMPLE_PATH), "--progress"]) == 0
    err = capsys.readouterr().err
    assert "100.0%" in err and "sectors" in err


def test_progress_bar_draws_a_bar():
    stream = io.StringIO()
    bar = Progress(stream, 100, enabled=True)
    bar.update(50, force=True)
    bar.finish()
    assert "[###############" in stream.getvalue() and "100/100 sectors" in stream.getvalue()
