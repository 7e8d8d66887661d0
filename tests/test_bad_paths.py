"""Bad host-side paths and images: typed errors in our own words, never a traceback.

A path with a NUL byte names no file (POSIX.1-2017 §3.170: a filename holds no
NUL), so the management API refuses it as E_INVALIDARG before the OS does, and
the media layer raises ``ImageBadPath``.  An El Torito Boot Record whose catalog
pointer lies past the image, or whose catalog does not start with a Validation
Entry (El Torito §2.0, §2.1), is ``ImageBadBootCatalog`` (VM_E_IMAGE_CAPTURE_FAIL
through the API), with the sector numbers and not a parser's internal message.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from devices.media import ImageBadBootCatalog, ImageBadPath, IsoImage
from emu import VirtualPC
from emu.api import hresult as H
from emu.api.com import VMVirtualPC
from images.builders import build_patterned_iso

SECTOR = 2048
CATALOG_POINTER = 17 * SECTOR + 71  # Boot Record at sector 17, pointer at byte 47h


@pytest.fixture(scope="module")
def boot_iso(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_patterned_iso(tmp_path_factory.mktemp("bad") / "b.iso", data_sectors=8)


def _with_catalog_at(boot_iso: Path, tmp_path: Path, lba: int) -> Path:
    raw = bytearray(boot_iso.read_bytes())
    assert raw[17 * SECTOR + 7 : 17 * SECTOR + 30] == b"EL TORITO SPECIFICATION"
    struct.pack_into("<I", raw, CATALOG_POINTER, lba)
    out = tmp_path / f"catalog-{lba}.iso"
    out.write_bytes(bytes(raw))
    return out


@pytest.mark.parametrize("where", ["a\0b.iso", "/tmp/\0", "\0"])
def test_nul_byte_in_an_image_path_is_e_invalidarg(where: str) -> None:
    vpc = VirtualPC()
    try:
        dvd = vpc.create_virtual_machine("nul").add_dvd_drive(1, 0)
        with pytest.raises(H.InvalidArgError) as info:
            dvd.attach_image(where)
        assert info.value.hresult == 0x80070057
        assert "NUL" in str(info.value)
        with pytest.raises(H.InvalidArgError):
            dvd.attach_host_drive("/dev/\0sr0")
    finally:
        vpc.close()


def test_nul_byte_through_the_com_facade_returns_e_invalidarg() -> None:
    vpc = VMVirtualPC()
    hr, vm = vpc.CreateVirtualMachine("nul")
    assert hr == H.S_OK
    hr, drive = vm.AddDVDROMDrive(1, 0)
    assert hr == H.S_OK
    assert drive.AttachImage("x\0.iso") == H.E_INVALIDARG


def test_nul_byte_in_a_media_path_is_a_typed_error() -> None:
    with pytest.raises(ImageBadPath) as info:
        IsoImage("a\0b.iso")
    assert "NUL" in info.value.reason


def test_boot_catalog_past_the_image_is_a_typed_error(boot_iso: Path, tmp_path: Path) -> None:
    bad = _with_catalog_at(boot_iso, tmp_path, 10_000)
    with pytest.raises(ImageBadBootCatalog) as info:
        IsoImage(bad)
    assert "sector 10000" in info.value.reason and "past the end" in info.value.reason
    assert "unpack" not in str(info.value)


@pytest.mark.parametrize("lba", [0, 16, 20])
def test_boot_catalog_without_a_validation_entry_is_a_typed_error(boot_iso: Path,
                                                                  tmp_path: Path,
                                                                  lba: int) -> None:
    bad = _with_catalog_at(boot_iso, tmp_path, lba)
    with pytest.raises(ImageBadBootCatalog) as info:
        IsoImage(bad)
    assert f"sector {lba}" in info.value.reason and "Validation Entry" in info.value.reason


def test_boot_catalog_errors_reach_the_api_as_image_capture_fail(boot_iso: Path,
                                                                 tmp_path: Path) -> None:
    bad = _with_catalog_at(boot_iso, tmp_path, 10_000)
    vpc = VirtualPC()
    try:
        dvd = vpc.create_virtual_machine("cat").add_dvd_drive(1, 0)
        with pytest.raises(H.ImageCaptureFailError) as info:
            dvd.attach_image(bad)
        assert info.value.hresult == 0xA0040650
        assert "Boot Catalog" in str(info.value) and "unpack" not in str(info.value)
    finally:
        vpc.close()
