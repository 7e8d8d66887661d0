"""Media: IsoImage and HostDrive against good, bad and real-tool images.

Standards exercised: ECMA-119 §6.2.1 (volume recognition at sector 16), §8.4
(Primary Volume Descriptor), ECMA-167 2/9 (UDF extended area), El Torito §2.0-2.4.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from devices.media import (
    SECTOR_SIZE,
    BootEntry,
    HostDrive,
    ImageEmpty,
    ImageIsDirectory,
    ImageNotFound,
    ImageNotIso,
    ImageTruncated,
    ImageUnreadable,
    IsoImage,
    Medium,
    MediumError,
    MediumGone,
    NoMedium,
)
from images.builders import build_patterned_iso, pattern_bytes, pattern_extent

OPENERS = [IsoImage, HostDrive]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def patterned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_patterned_iso(tmp_path_factory.mktemp("iso") / "pattern.iso", data_sectors=64)


def expect_pattern(medium: Medium, lba: int, count: int = 1) -> None:
    got = medium.read(lba, count)
    assert got.dtype == np.uint8
    assert got.shape == (count * SECTOR_SIZE,)
    np.testing.assert_array_equal(got, pattern_bytes(lba * SECTOR_SIZE, count * SECTOR_SIZE))


# -- bad paths: every opener fails the same typed way --------------------------------


@pytest.mark.parametrize("opener", OPENERS)
def test_missing_path_is_image_not_found_naming_the_file(opener, tmp_path):
    missing = tmp_path / "nope.iso"
    with pytest.raises(ImageNotFound) as info:
        opener(missing)
    assert str(missing) in str(info.value)
    assert info.value.path == str(missing)
    assert "no such file" in info.value.reason


@pytest.mark.parametrize("opener", OPENERS)
def test_path_under_a_file_is_image_not_found(opener, tmp_path):
    plain = tmp_path / "plain"
    plain.write_bytes(b"x")
    with pytest.raises(ImageNotFound):
        opener(plain / "child.iso")


@pytest.mark.parametrize("opener", OPENERS)
def test_directory_is_image_is_directory(opener, tmp_path):
    with pytest.raises(ImageIsDirectory) as info:
        opener(tmp_path)
    assert str(tmp_path) in str(info.value)
    assert "directory" in info.value.reason


@pytest.mark.parametrize("opener", OPENERS)
def test_empty_file_is_image_empty(opener, tmp_path):
    empty = tmp_path / "empty.iso"
    empty.write_bytes(b"")
    with pytest.raises(ImageEmpty) as info:
        opener(empty)
    assert str(empty) in str(info.value)
    assert "empty" in info.value.reason


@pytest.mark.parametrize("opener", OPENERS)
def test_permission_denied_on_open_is_image_unreadable(opener, patterned, monkeypatch):
    # As root, chmod 000 does not stop reads, so make the open itself fail the way
    # the kernel does for an unprivileged user (EACCES).
    real_open = os.open

    def denying_open(path, flags, *args, **kwargs):
        if os.fspath(path) == str(patterned):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", denying_open)
    with pytest.raises(ImageUnreadable) as info:
        opener(patterned)
    assert str(patterned) in str(info.value)
    assert "permission denied" in info.value.reason


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
@pytest.mark.parametrize("opener", OPENERS)
def test_chmod_000_is_image_unreadable(opener, tmp_path, patterned):
    locked = tmp_path / "locked.iso"
    shutil.copyfile(patterned, locked)
    locked.chmod(0)
    try:
        with pytest.raises(ImageUnreadable, match="permission denied"):
            opener(locked)
    finally:
        locked.chmod(0o644)


@pytest.mark.parametrize("opener", OPENERS)
def test_fifo_is_image_unreadable_without_blocking(opener, tmp_path):
    fifo = tmp_path / "pipe.iso"
    os.mkfifo(fifo)
    with pytest.raises(ImageUnreadable) as info:
        opener(fifo)
    assert "not a regular file or block device" in info.value.reason


def test_medium_errors_share_a_base_class():
    for cls in (
        ImageNotFound,
        ImageIsDirectory,
        ImageUnreadable,
        ImageEmpty,
        ImageNotIso,
        ImageTruncated,
        MediumGone,
    ):
        assert issubclass(cls, MediumError)


# -- not an ISO, truncated -----------------------------------------------------------


def test_random_bytes_are_not_iso(tmp_path):
    junk = tmp_path / "random.iso"
    junk.write_bytes(np.random.default_rng(1).integers(0, 256, 40 * SECTOR_SIZE, np.uint8))
    with pytest.raises(ImageNotIso) as info:
        IsoImage(junk)
    assert str(junk) in str(info.value)
    assert "no volume recognition sequence at sector 16" in info.value.reason


def test_zip_file_is_not_iso(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("hello.txt", "hello " * 20000)
        zf.writestr("random.bin", os.urandom(50000))
    archive = tmp_path / "archive.iso"
    archive.write_bytes(buf.getvalue())
    with pytest.raises(ImageNotIso, match="no volume recognition sequence"):
        IsoImage(archive)


def test_file_shorter_than_the_system_area_is_not_iso(tmp_path):
    small = tmp_path / "small.iso"
    small.write_bytes(b"\x00" * 1000)
    with pytest.raises(ImageNotIso, match="ends before sector 16"):
        IsoImage(small)


def test_descriptors_without_a_primary_volume_descriptor_are_not_iso(tmp_path):
    sector = bytearray(SECTOR_SIZE)
    sector[0:7] = b"\xffCD001\x01"  # a lone Set Terminator (ECMA-119 §8.3)
    image = tmp_path / "noprimary.iso"
    image.write_bytes(bytes(16 * SECTOR_SIZE) + bytes(sector) + bytes(SECTOR_SIZE))
    with pytest.raises(ImageNotIso, match="neither a Primary Volume Descriptor"):
        IsoImage(image)


@pytest.mark.parametrize(
    "cut",
    [
        16 * SECTOR_SIZE + 100,  # inside the Primary Volume Descriptor
        17 * SECTOR_SIZE,  # after the PVD, before the boot record
        18 * SECTOR_SIZE + 7,  # before the Set Terminator
        20 * SECTOR_SIZE,  # inside the path tables / directories
        25 * SECTOR_SIZE + 1,  # at the boot catalog
    ],
)
def test_iso_cut_inside_its_structures_is_truncated(tmp_path, patterned, cut):
    cut_iso = tmp_path / "cut.iso"
    cut_iso.write_bytes(patterned.read_bytes()[:cut])
    with pytest.raises(ImageTruncated) as info:
        IsoImage(cut_iso)
    assert str(cut_iso) in str(info.value)
    assert "ends" in info.value.reason


def test_iso_cut_inside_file_data_still_opens_with_the_smaller_capacity(tmp_path, patterned):
    first, count = pattern_extent(patterned)
    cut_iso = tmp_path / "cut.iso"
    cut_iso.write_bytes(patterned.read_bytes()[: (first + 10) * SECTOR_SIZE])
    with IsoImage(cut_iso) as medium:
        assert medium.sector_count == first + 10
        assert medium.volume_size > medium.sector_count
        expect_pattern(medium, first + 9)
        with pytest.raises(IndexError):
            medium.read(first + 10, 1)


def test_udf_extended_area_cut_before_tea01_is_truncated(tmp_path):
    image = tmp_path / "udfcut.img"
    image.write_bytes(bytes(16 * SECTOR_SIZE) + _vsd(b"BEA01") + _vsd(b"NSR02")[:100])
    with pytest.raises(ImageTruncated, match="inside its volume descriptors"):
        IsoImage(image)


# -- good images ---------------------------------------------------------------------


def test_iso_image_is_a_medium(patterned):
    with IsoImage(patterned) as medium:
        assert isinstance(medium, Medium)
        assert medium.present
        assert not medium.is_dvd
        assert medium.path == str(patterned)


def test_pattern_reads_at_several_lbas(patterned):
    first, count = pattern_extent(patterned)
    assert count == 64
    with IsoImage(patterned) as medium:
        for lba in (first, first + 1, first + 17, first + count - 1):
            expect_pattern(medium, lba)
        expect_pattern(medium, first, count)
        expect_pattern(medium, first + 5, 7)


def test_read_is_a_read_only_view_of_the_map(patterned):
    first, _ = pattern_extent(patterned)
    with IsoImage(patterned) as medium:
        view = medium.read(first, 2)
        assert not view.flags.writeable
        assert view.base is not None  # a view, not a copy
        assert type(view) is np.ndarray
        with pytest.raises(ValueError):
            view[0] = 1


@pytest.mark.parametrize("opener", OPENERS)
@pytest.mark.parametrize("lba,count", [(-1, 1), (0, -1), (10**6, 1), ("end", 1), ("end-1", 2)])
def test_out_of_range_reads_raise_index_error(opener, patterned, lba, count):
    with opener(patterned) as medium:
        if lba == "end":
            lba = medium.sector_count
        elif lba == "end-1":
            lba = medium.sector_count - 1
        with pytest.raises(IndexError):
            medium.read(lba, count)


@pytest.mark.parametrize("opener", OPENERS)
def test_last_sector_and_zero_count_reads(opener, patterned):
    with opener(patterned) as medium:
        assert medium.read(medium.sector_count - 1, 1).shape == (SECTOR_SIZE,)
        assert medium.read(medium.sector_count, 0).shape == (0,)


@pytest.mark.parametrize("opener", OPENERS)
def test_open_read_close_leaves_the_image_bytes_unchanged(opener, patterned):
    before = sha256(patterned)
    mtime = patterned.stat().st_mtime_ns
    medium = opener(patterned)
    first, count = pattern_extent(patterned)
    medium.read(first, count)
    medium.read(0, medium.sector_count)
    medium.close()
    medium.close()  # closing twice is fine
    assert sha256(patterned) == before
    assert patterned.stat().st_mtime_ns == mtime


@pytest.mark.parametrize("opener", OPENERS)
def test_read_after_close_is_medium_gone(opener, patterned):
    medium = opener(patterned)
    medium.close()
    assert not medium.present
    with pytest.raises(MediumGone):
        medium.read(0, 1)


def test_capacity_comes_from_the_file_size_past_the_iso_volume(tmp_path):
    padded = build_patterned_iso(tmp_path / "padded.iso", data_sectors=8, total_sectors=500)
    with IsoImage(padded) as medium:
        assert medium.sector_count == 500
        assert medium.volume_size < 500
        assert medium.info()["volume_size"] == medium.volume_size
        for lba in (medium.volume_size, 333, 499):
            expect_pattern(medium, lba)


def test_trailing_partial_sector_is_not_served(tmp_path, patterned):
    ragged = tmp_path / "ragged.iso"
    ragged.write_bytes(patterned.read_bytes() + b"\x01" * 1000)
    for opener in OPENERS:
        with opener(ragged) as medium:
            assert medium.sector_count == patterned.stat().st_size // SECTOR_SIZE
            with pytest.raises(IndexError):
                medium.read(medium.sector_count, 1)
    with IsoImage(ragged) as medium:
        assert medium.info()["trailing_bytes"] == 1000


def test_dvd_sized_image_is_a_dvd(tmp_path, patterned):
    sparse = tmp_path / "dvd.iso"
    shutil.copyfile(patterned, sparse)
    with open(sparse, "r+b") as f:
        f.truncate(400_000 * SECTOR_SIZE)  # sparse: past the 80-minute CD (360,000 sectors)
    with IsoImage(sparse) as medium:
        assert medium.is_dvd
        assert medium.read(399_999, 1).sum() == 0


def test_structural_answers_of_a_patterned_iso(patterned):
    with IsoImage(patterned) as medium:
        assert medium.has_iso9660
        assert medium.volume_id == "PATTERN"
        assert not medium.has_joliet
        assert not medium.has_rock_ridge
        assert not medium.has_udf
        assert medium.files() == ["/BOOT.CAT;1", "/BOOT.IMG;1", "/PATTERN.BIN;1"]
        assert medium.boot_catalog_lba is not None
        (entry,) = medium.boot_entries()
        assert entry == BootEntry(
            platform=0,
            platform_name="x86",
            bootable=True,
            media_type=0,
            media_name="no emulation",
            load_segment=0,
            sector_count=4,
            load_rba=medium.file_extent("/BOOT.IMG")[0],
        )
        boot = medium.read(entry.load_rba, 1)
        assert bytes(boot[510:512]) == b"\x55\xaa"
        assert b"PATTERN BOOT IMAGE" in bytes(boot)
        catalog = bytes(medium.read(medium.boot_catalog_lba, 1))
        assert catalog[0] == 0x01 and catalog[30:32] == b"\x55\xaa"  # Validation Entry §2.1
        info = medium.info()
        assert info["capacity_sectors"] == medium.sector_count
        assert info["file_size"] == patterned.stat().st_size
        assert info["boot_entries"][0]["media_name"] == "no emulation"


def test_file_extent_of_a_missing_file_is_a_key_error(patterned):
    with IsoImage(patterned) as medium, pytest.raises(KeyError):
        medium.file_extent("/NOPE.BIN")


def test_no_medium_is_the_empty_drive():
    empty = NoMedium()
    assert isinstance(empty, Medium)
    assert not empty.present and empty.sector_count == 0
    with pytest.raises(IndexError):
        empty.read(0, 1)


# -- UDF-only images -----------------------------------------------------------------


def _vsd(ident: bytes) -> bytes:
    """An ECMA-167 volume structure descriptor: type 0, identifier, version 1 (2/9.1)."""
    return (b"\x00" + ident + b"\x01").ljust(SECTOR_SIZE, b"\x00")


def test_handmade_udf_recognition_sequence_is_accepted(tmp_path):
    image = tmp_path / "udf.img"
    body = _vsd(b"BEA01") + _vsd(b"NSR02") + _vsd(b"TEA01")
    image.write_bytes(bytes(16 * SECTOR_SIZE) + body + bytes(13 * SECTOR_SIZE))
    with IsoImage(image) as medium:
        assert medium.sector_count == 32
        assert medium.has_udf and not medium.has_iso9660
        assert medium.volume_id == "" and medium.volume_size == 0
        assert medium.files() == [] and medium.boot_entries() == []
        assert medium.boot_catalog_lba is None
        assert bytes(medium.read(17, 1)[1:6]) == b"NSR02"


def test_bea01_without_nsr_is_not_a_disc_image(tmp_path):
    image = tmp_path / "bea.img"
    body = _vsd(b"BEA01") + _vsd(b"TEA01")
    image.write_bytes(bytes(16 * SECTOR_SIZE) + body + bytes(4 * SECTOR_SIZE))
    with pytest.raises(ImageNotIso):
        IsoImage(image)


@pytest.mark.skipif(shutil.which("mkudffs") is None, reason="mkudffs (udftools) not installed")
def test_mkudffs_image_is_accepted_and_served(tmp_path):
    image = tmp_path / "udf.img"
    with open(image, "wb") as f:
        f.truncate(8 * 1024 * 1024)
    subprocess.run(
        ["mkudffs", "--media-type=dvd", "--blocksize=2048", "--label=UDFONLY", str(image)],
        check=True,
        capture_output=True,
    )
    raw = image.read_bytes()
    with IsoImage(image) as medium:
        assert medium.sector_count == len(raw) // SECTOR_SIZE
        assert medium.has_udf
        assert not medium.has_iso9660
        assert medium.info()["udf"] and not medium.info()["iso9660"]
        assert bytes(medium.read(16, 3)) == raw[16 * SECTOR_SIZE : 19 * SECTOR_SIZE]
        assert bytes(medium.read(256, 1)) == raw[256 * SECTOR_SIZE : 257 * SECTOR_SIZE]


# -- images made by real tools -------------------------------------------------------


@pytest.fixture
def source_tree(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    rng = np.random.default_rng(7)
    (src / "hello.txt").write_bytes(b"hello, drive\n")
    (src / "sub" / "random.bin").write_bytes(rng.integers(0, 256, 10_000, np.uint8).tobytes())
    (src / "big.bin").write_bytes(rng.integers(0, 256, 5 * SECTOR_SIZE, np.uint8).tobytes())
    boot = bytearray(SECTOR_SIZE)
    boot[:6] = b"\xeb\xfeBOOT"
    boot[510:512] = b"\x55\xaa"
    (src / "boot.img").write_bytes(bytes(boot))
    return src


def _read_file(medium: IsoImage, iso_path: str) -> bytes:
    lba, length = medium.file_extent(iso_path)
    sectors = -(-length // SECTOR_SIZE)
    return bytes(medium.read(lba, sectors)[:length])


TOOLS = {
    "xorriso": ["xorriso", "-as", "mkisofs"],
    "genisoimage": ["genisoimage"],
}


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_tool_built_iso_boot_entry_and_files_match_the_sources(tool, source_tree, tmp_path):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not installed")
    image = tmp_path / f"{tool}.iso"
    subprocess.run(
        [
            *TOOLS[tool],
            "-quiet",
            "-J",
            "-R",
            "-V",
            "TOOLVOL",
            "-o",
            str(image),
            "-b",
            "boot.img",
            "-c",
            "boot.cat",
            "-no-emul-boot",
            "-boot-load-size",
            "4",
            str(source_tree),
        ],
        check=True,
        capture_output=True,
    )
    before = sha256(image)
    with IsoImage(image) as medium:
        assert medium.volume_id == "TOOLVOL"
        assert medium.has_joliet and medium.has_rock_ridge and not medium.has_udf
        assert "/SUB/RANDOM.BIN;1" in medium.files()
        (entry,) = medium.boot_entries()
        assert (entry.platform, entry.media_type, entry.sector_count) == (0, 0, 4)
        assert entry.bootable and entry.load_segment == 0
        assert entry.load_rba == medium.file_extent("/BOOT.IMG")[0]
        assert bytes(medium.read(entry.load_rba, 1)) == (source_tree / "boot.img").read_bytes()
        assert medium.boot_catalog_lba == medium.file_extent("/BOOT.CAT")[0]
        for iso_path, rel in [
            ("/HELLO.TXT", "hello.txt"),
            ("/SUB/RANDOM.BIN", "sub/random.bin"),
            ("/BIG.BIN", "big.bin"),
        ]:
            assert _read_file(medium, iso_path) == (source_tree / rel).read_bytes()
    assert sha256(image) == before


def test_genisoimage_udf_bridge_reports_udf(source_tree, tmp_path):
    if shutil.which("genisoimage") is None:
        pytest.skip("genisoimage not installed")
    image = tmp_path / "bridge.iso"
    subprocess.run(
        [
            "genisoimage",
            "-quiet",
            "-udf",
            "-J",
            "-R",
            "-V",
            "BRIDGE",
            "-o",
            str(image),
            str(source_tree),
        ],
        check=True,
        capture_output=True,
    )
    with IsoImage(image) as medium:
        assert medium.has_iso9660 and medium.has_udf
        assert medium.volume_id == "BRIDGE"
        assert medium.boot_entries() == [] and medium.boot_catalog_lba is None
        assert _read_file(medium, "/HELLO.TXT") == b"hello, drive\n"


# -- HostDrive -----------------------------------------------------------------------


def test_host_drive_reads_a_raw_file(tmp_path):
    raw = tmp_path / "raw.bin"
    raw.write_bytes(pattern_bytes(0, 40 * SECTOR_SIZE).tobytes())  # no ISO at all
    with HostDrive(raw) as drive:
        assert isinstance(drive, Medium)
        assert drive.present and not drive.is_dvd
        assert drive.sector_count == 40
        for lba in (0, 16, 39):
            expect_pattern(drive, lba)
        expect_pattern(drive, 3, 20)
        copy = drive.read(5, 1)
        assert copy.flags.writeable and copy.flags.owndata


def test_host_drive_on_a_truncated_file_is_medium_gone(tmp_path):
    raw = tmp_path / "raw.bin"
    raw.write_bytes(pattern_bytes(0, 40 * SECTOR_SIZE).tobytes())
    drive = HostDrive(raw)
    expect_pattern(drive, 30)
    os.truncate(raw, 20 * SECTOR_SIZE)
    expect_pattern(drive, 10)  # what is still there can be read
    with pytest.raises(MediumGone, match="truncated"):
        drive.read(30, 1)
    with pytest.raises(MediumGone):
        drive.read(19, 2)
    drive.close()


def test_host_drive_on_a_deleted_file_is_medium_gone(tmp_path):
    raw = tmp_path / "raw.bin"
    raw.write_bytes(pattern_bytes(0, 8 * SECTOR_SIZE).tobytes())
    drive = HostDrive(raw)
    expect_pattern(drive, 1)
    raw.unlink()
    with pytest.raises(MediumGone, match="deleted") as info:
        drive.read(1, 1)
    assert str(raw) in str(info.value)
    drive.close()


def test_host_drive_on_a_replaced_file_is_medium_gone(tmp_path):
    raw = tmp_path / "raw.bin"
    raw.write_bytes(pattern_bytes(0, 8 * SECTOR_SIZE).tobytes())
    drive = HostDrive(raw)
    keep = tmp_path / "old.bin"
    os.link(raw, keep)  # the old inode stays linked, so only the path changes
    raw.unlink()
    raw.write_bytes(bytes(8 * SECTOR_SIZE))
    with pytest.raises(MediumGone, match="replaced"):
        drive.read(0, 1)
    drive.close()


def test_host_drive_serves_iso_sectors_like_the_image(patterned):
    with HostDrive(patterned) as drive, IsoImage(patterned) as image:
        assert drive.sector_count == image.sector_count
        np.testing.assert_array_equal(
            drive.read(0, drive.sector_count), image.read(0, image.sector_count)
        )


def test_corrupted_structures_either_open_or_raise_a_medium_error(tmp_path):
    source = build_patterned_iso(
        tmp_path / "src.iso", data_sectors=4, joliet=True, rock_ridge=True
    ).read_bytes()
    structures_end = pattern_extent(tmp_path / "src.iso")[0]
    rng = np.random.default_rng(2024)
    target = tmp_path / "fuzz.iso"
    for _ in range(300):
        corrupt = bytearray(source)
        for pos in rng.integers(16 * SECTOR_SIZE, structures_end * SECTOR_SIZE, 6):
            corrupt[pos] = int(rng.integers(0, 256))
        target.write_bytes(bytes(corrupt))
        try:
            medium = IsoImage(target)
        except MediumError:
            continue
        with medium:
            medium.files()
            medium.info()
            medium.read(0, medium.sector_count)
