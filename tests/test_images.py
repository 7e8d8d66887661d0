"""Image builders: the self-checking pattern, patterned ISOs, the sample, floppy emulation."""

from __future__ import annotations

import hashlib
import struct
import time
from pathlib import Path

import numpy as np
import pycdlib
import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.media import SECTOR_SIZE, IsoImage
from images import builders
from images.builders import (
    FLOPPY_144_SIZE,
    SAMPLE_PATH,
    build_floppy_emulation_iso,
    build_patterned_iso,
    build_sample_iso,
    pattern_bytes,
    pattern_extent,
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- the pattern ---------------------------------------------------------------------


def test_pattern_record_holds_its_offset_and_its_complement():
    data = pattern_bytes(5 * SECTOR_SIZE, SECTOR_SIZE).tobytes()
    for i in range(0, SECTOR_SIZE, 16):
        offset, inverse = struct.unpack_from("<QQ", data, i)
        assert offset == 5 * SECTOR_SIZE + i
        assert inverse == offset ^ 0xFFFF_FFFF_FFFF_FFFF


@given(st.integers(0, 1 << 40), st.integers(0, 3000))
def test_pattern_of_any_range_is_a_slice_of_the_whole(offset, length):
    got = pattern_bytes(offset, length)
    assert got.dtype == np.uint8 and got.shape == (length,)
    base = offset - offset % 16
    whole = pattern_bytes(base, length + 32)
    np.testing.assert_array_equal(got, whole[offset - base : offset - base + length])


def test_pattern_sectors_differ_and_are_never_zero():
    a = pattern_bytes(0, SECTOR_SIZE)
    b = pattern_bytes(SECTOR_SIZE, SECTOR_SIZE)
    assert not np.array_equal(a, b)
    assert all(any(pattern_bytes(n * 16, 16)) for n in range(4))


def test_pattern_rejects_negative_ranges():
    with pytest.raises(ValueError):
        pattern_bytes(-1, 16)


# -- patterned ISOs ------------------------------------------------------------------


def test_patterned_iso_without_boot_has_no_catalog(tmp_path):
    image = build_patterned_iso(tmp_path / "p.iso", data_sectors=3, boot=False, volume_id="NB")
    first, count = pattern_extent(image)
    assert count == 3
    with IsoImage(image) as medium:
        assert medium.volume_id == "NB"
        assert medium.boot_entries() == [] and medium.boot_catalog_lba is None
        assert medium.files() == ["/PATTERN.BIN;1"]
        np.testing.assert_array_equal(
            medium.read(first, 3), pattern_bytes(first * SECTOR_SIZE, 3 * SECTOR_SIZE)
        )


def test_patterned_iso_padding_appends_patterned_sectors(tmp_path):
    image = build_patterned_iso(tmp_path / "p.iso", data_sectors=4, total_sectors=200)
    assert image.stat().st_size == 200 * SECTOR_SIZE
    raw = image.read_bytes()
    with IsoImage(image) as medium:
        tail = medium.volume_size
    assert (
        raw[tail * SECTOR_SIZE :]
        == pattern_bytes(tail * SECTOR_SIZE, (200 - tail) * SECTOR_SIZE).tobytes()
    )


def test_patterned_iso_padding_smaller_than_the_volume_is_refused(tmp_path):
    with pytest.raises(ValueError, match="smaller than the ISO volume"):
        build_patterned_iso(tmp_path / "p.iso", data_sectors=4, total_sectors=10)


def test_patterned_iso_with_joliet_and_rock_ridge(tmp_path):
    image = build_patterned_iso(tmp_path / "p.iso", data_sectors=2, joliet=True, rock_ridge=True)
    with IsoImage(image) as medium:
        assert medium.has_joliet and medium.has_rock_ridge


def test_patterned_iso_is_deterministic(tmp_path):
    a = build_patterned_iso(tmp_path / "a.iso", data_sectors=5, total_sectors=100)
    b = build_patterned_iso(tmp_path / "b.iso", data_sectors=5, total_sectors=100)
    assert sha256(a) == sha256(b)


# -- the sample ----------------------------------------------------------------------


def test_sample_iso_is_deterministic_and_matches_the_committed_copy(tmp_path, monkeypatch):
    first = build_sample_iso(tmp_path / "one.iso")
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # +14:00: any local-time leak shows
    time.tzset()
    try:
        second = build_sample_iso(tmp_path / "two.iso")
    finally:
        monkeypatch.undo()
        time.tzset()
    assert sha256(first) == sha256(second)
    assert SAMPLE_PATH.exists(), "run: python -m images.builders sample"
    assert sha256(first) == sha256(SAMPLE_PATH), "images/sample.iso is stale; regenerate it"


def test_sample_iso_contents():
    assert SAMPLE_PATH.stat().st_size < 200 * 1024
    with IsoImage(SAMPLE_PATH) as medium:
        assert medium.volume_id == "EMU_SAMPLE"
        assert medium.has_joliet and medium.has_rock_ridge and not medium.has_udf
        assert set(medium.files()) == {"/BOOT.CAT;1", "/BOOT.IMG;1", "/DATA.BIN;1", "/README.TXT;1"}
        (entry,) = medium.boot_entries()
        assert (entry.media_type, entry.sector_count, entry.load_segment) == (0, 4, 0)
        assert entry.bootable and entry.platform_name == "x86"
        boot = bytes(medium.read(entry.load_rba, 1))
        assert boot[0] == 0xEB  # jmp short
        assert b"EMU SAMPLE BOOT IMAGE" in boot[:510]
        assert boot[510:512] == b"\x55\xaa"
        lba, length = medium.file_extent("/DATA.BIN")
        assert length == 16 * SECTOR_SIZE
        np.testing.assert_array_equal(
            medium.read(lba, 16), pattern_bytes(lba * SECTOR_SIZE, 16 * SECTOR_SIZE)
        )
        lba, length = medium.file_extent("/README.TXT")
        assert bytes(medium.read(lba, 1)[:length]) == builders.SAMPLE_README


def test_sample_dates_are_the_fixed_build_time():
    iso = pycdlib.PyCdlib()
    iso.open(str(SAMPLE_PATH))
    try:
        created = iso.pvd.volume_creation_date
        assert (created.year, created.month, created.dayofmonth) == (2024, 1, 1)
        assert created.gmtoffset == 0
        record = iso.get_record(iso_path="/README.TXT;1")
        assert record.date.years_since_1900 == 124 and record.date.gmtoffset == 0
    finally:
        iso.close()


def test_fixed_clock_restores_pycdlib_time():
    import pycdlib.headervd as headervd

    with builders.fixed_clock(0):
        assert headervd.time.time() == 0
    assert headervd.time is time


def test_cli_regenerates_the_sample(tmp_path, capsys):
    out = tmp_path / "cli.iso"
    assert builders.main(["sample", "-o", str(out)]) == 0
    assert sha256(out) == sha256(SAMPLE_PATH)
    assert str(out) in capsys.readouterr().out


# -- floppy emulation ----------------------------------------------------------------


@pytest.mark.parametrize(("size", "media_type", "name"), [
    (1_228_800, 1, "1.2M floppy"), (FLOPPY_144_SIZE, 2, "1.44M floppy"),
    (2_949_120, 3, "2.88M floppy"),
])
def test_floppy_emulation_iso_has_a_floppy_entry_of_the_image_size(tmp_path, size,
                                                                    media_type, name):
    floppy = bytearray(size)
    floppy[0:3] = b"\xeb\x3c\x90"
    floppy[510:512] = b"\x55\xaa"
    floppy[-4:] = b"LAST"
    image = build_floppy_emulation_iso(tmp_path / "f.iso", bytes(floppy))
    with IsoImage(image) as medium:
        (entry,) = medium.boot_entries()
        assert entry.media_type == media_type and entry.media_name == name
        assert entry.sector_count == 1 and entry.load_segment == 0
        sectors = size // SECTOR_SIZE
        assert bytes(medium.read(entry.load_rba, sectors)) == bytes(floppy)


def test_floppy_emulation_refuses_the_wrong_size(tmp_path):
    with pytest.raises(ValueError, match="1474560"):
        build_floppy_emulation_iso(tmp_path / "f.iso", bytes(1000))
