"""The firmware's ATAPI driver and El Torito loader, over ports and memory only."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from devices.media.iso import IsoImage
from emu.firmware.ata import AtaHostDriver, FirmwareError
from emu.firmware.eltorito import BootError, firmware_boot, load_boot_image
from emu.pc.machine import Machine
from images.builders import build_patterned_iso
from tests.conftest import expected

pytestmark = pytest.mark.usefixtures("both_clocks")  # every boot, with each clock


def boot(machine: Machine):
    return firmware_boot(AtaHostDriver(machine.ports, machine.memory))


@pytest.mark.parametrize("bus,device", [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_probe_finds_the_drive_at_every_location(bus, device, iso_medium):
    m = Machine()
    m.add_dvd_drive(bus, device, iso_medium)
    driver = AtaHostDriver(m.ports, m.memory)
    found = driver.probe()
    assert [(d.bus, d.device) for d in found] == [(bus, device)]
    dev = found[0]
    assert dev.model == "EMU Virtual DVD-ROM" and dev.device_type == 5 and dev.removable


def test_probe_finds_two_drives_on_one_cable(patterned_iso):
    m = Machine()
    a, b = IsoImage(patterned_iso), IsoImage(patterned_iso)
    m.add_dvd_drive(0, 0, a)
    m.add_dvd_drive(0, 1, b)
    found = AtaHostDriver(m.ports, m.memory).probe()
    assert [(d.bus, d.device) for d in found] == [(0, 0), (0, 1)]
    a.close()
    b.close()


def test_boot_loads_the_no_emulation_image_through_the_drive(rig, patterned_iso):
    m, drive, g = rig
    loaded = boot(m)
    with IsoImage(patterned_iso) as image:
        (entry,) = image.boot_entries()
        want = image.read(entry.load_rba, 1).tobytes()[: entry.sector_count * 512]
    assert loaded.entry.media_type == 0 and loaded.entry.segment == 0x07C0
    assert loaded.address == 0x7C00 and loaded.length == len(want)
    assert m.memory.read(0x7C00, loaded.length) == want
    assert loaded.sha256 == hashlib.sha256(want).hexdigest()


def test_read_sectors_through_the_firmware_driver(rig, pattern_lba):
    m, drive, g = rig
    driver = AtaHostDriver(m.ports, m.memory)
    (dev,) = driver.probe()
    driver.wait_ready(dev)
    driver.read_sectors(dev, pattern_lba, 40, 0x200000)  # two READ(10)s: 32 + 8
    assert m.memory.read(0x200000, 40 * 2048) == expected(pattern_lba, 40)
    assert driver.read_capacity(dev) == 200


def test_boot_with_no_drive_says_so():
    with pytest.raises(BootError, match="no DVD/CD drive"):
        boot(Machine())


def test_boot_from_an_empty_drive_gives_up_after_three_not_ready():
    m = Machine()
    m.add_dvd_drive(1, 0)
    with pytest.raises(BootError, match="no medium"):
        boot(m)


def test_boot_from_a_disc_without_el_torito(tmp_path):
    path = build_patterned_iso(tmp_path / "plain.iso", data_sectors=4, boot=False)
    m = Machine()
    with IsoImage(path) as image:
        m.add_dvd_drive(0, 0, image)
        with pytest.raises(BootError, match="El Torito"):
            boot(m)


def test_boot_tries_the_next_drive_when_the_first_cannot_boot(tmp_path, patterned_iso):
    plain = build_patterned_iso(tmp_path / "plain.iso", data_sectors=4, boot=False)
    m = Machine()
    with IsoImage(plain) as a, IsoImage(patterned_iso) as b:
        m.add_dvd_drive(0, 0, a)
        m.add_dvd_drive(1, 1, b)
        loaded = boot(m)
        assert (loaded.device.bus, loaded.device.device) == (1, 1)


def test_firmware_errors_are_firmware_errors(rig):
    m, drive, g = rig
    driver = AtaHostDriver(m.ports, m.memory, max_polls=10)
    (dev,) = driver.probe()
    drive.status |= 0x80  # a drive stuck busy
    with pytest.raises(FirmwareError, match="busy"):
        driver.wait_ready(dev)


TOOLS = [t for t in ("xorriso", "genisoimage") if shutil.which(t)]


def make_tool_iso(tool: str, tmp: Path) -> tuple[Path, bytes, bytes]:
    tree = tmp / "tree"
    (tree / "boot").mkdir(parents=True)
    boot_image = bytes(range(256)) * 8  # 2048 bytes
    (tree / "boot" / "boot.img").write_bytes(boot_image)
    payload = bytes((i * 7 + 3) & 0xFF for i in range(300_000))
    (tree / "data.bin").write_bytes(payload)
    out = tmp / f"{tool}.iso"
    args = ["-quiet", "-o", str(out), "-b", "boot/boot.img", "-c", "boot/boot.cat",
            "-no-emul-boot", "-boot-load-size", "4", "-J", "-R", str(tree)]
    cmd = ["xorriso", "-as", "mkisofs", *args] if tool == "xorriso" else ["genisoimage", *args]
    subprocess.run(cmd, check=True, capture_output=True)
    return out, boot_image, payload


@pytest.mark.skipif(not TOOLS, reason="xorriso/genisoimage not installed (.ci/run installs them)")
@pytest.mark.parametrize("tool", ["xorriso", "genisoimage"])
def test_tool_built_iso_boots_and_reads_through_the_drive(tool, tmp_path):
    if not shutil.which(tool):
        pytest.skip(f"{tool} not installed")
    path, boot_image, payload = make_tool_iso(tool, tmp_path)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    m = Machine()
    with IsoImage(path) as image:
        m.add_dvd_drive(1, 0, image)
        loaded = boot(m)
        assert m.memory.read(loaded.address, 2048) == boot_image
        first, length = image.file_extent("/DATA.BIN")
        driver = AtaHostDriver(m.ports, m.memory)
        dev = loaded.device
        sectors = (length + 2047) // 2048
        driver.read_sectors(dev, first, sectors, 0x300000)
        assert m.memory.read(0x300000, length) == payload
        again = load_boot_image(driver, dev)
        assert again.sha256 == loaded.sha256
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before  # never written
