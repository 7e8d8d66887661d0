"""What the guest sees on a media change, at the ports (QEMU's AHCI tray test, for IDE).

The sequence (architecture "What the guest sees on a media change"; MMC-5
§4.1.6.1 and Annex F): after a host attach the next command not allowed
through a UNIT ATTENTION fails NOT READY 02/3A/00 once, the next UNIT
ATTENTION 06/28/00 once, then commands succeed; REQUEST SENSE agrees each
time and reports NO SENSE once the drive is ready.  A release opens the tray:
02/3A/02.  A host-side change raises INTRQ when nIEN is clear (ATA/ATAPI-7
vol 1 §5.2.9: the device asserts INTRQ, the host gates it with nIEN).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from emu import VirtualPC
from emu.api.vpc import DVDAttachment, DVDDrive, VirtualMachine
from images.builders import build_patterned_iso, pattern_bytes, pattern_extent
from tests.guest import STATUS_DRDY, STATUS_ERR, Guest

NIEN = 0x02
SECTOR = 2048


@pytest.fixture(scope="module")
def iso(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_patterned_iso(tmp_path_factory.mktemp("tray") / "t.iso", data_sectors=8,
                               boot=False)


@pytest.fixture
def lab() -> Iterator[tuple[VirtualPC, VirtualMachine, DVDDrive, Guest]]:
    vpc = VirtualPC()
    vm = vpc.create_virtual_machine("tray")
    dvd = vm.add_dvd_drive(1, 0)
    vm.power_on()
    yield vpc, vm, dvd, Guest(vm.machine, 1)
    vpc.close()


def tur(guest: Guest) -> int:
    guest.packet(b"\x00", 0)
    return guest.status()


def read10(lba: int, count: int) -> bytes:
    return bytes([0x28, 0, *lba.to_bytes(4, "big"), 0, *count.to_bytes(2, "big"), 0])


def assert_media_change_sequence(guest: Guest) -> None:
    """TUR ⇒ 02/3A/00, TUR ⇒ 06/28/00, TUR ⇒ GOOD, each checked by REQUEST SENSE."""
    status = tur(guest)
    assert status & STATUS_ERR
    assert guest.error() >> 4 == 0x2  # sense key in the Error register (bits 7-4)
    assert guest.sense() == (0x02, 0x3A, 0x00)
    status = tur(guest)
    assert status & STATUS_ERR
    assert guest.error() >> 4 == 0x6
    assert guest.sense() == (0x06, 0x28, 0x00)
    status = tur(guest)
    assert not status & STATUS_ERR and status & STATUS_DRDY
    assert guest.sense() == (0x00, 0x00, 0x00)


def test_tray_sequence_after_release_and_attach(lab, iso: Path) -> None:
    _, _, dvd, guest = lab
    guest.clear_power_on_ua()
    dvd.attach_image(iso)
    assert_media_change_sequence(guest)
    dvd.release_image()
    assert tur(guest) & STATUS_ERR
    assert guest.sense() == (0x02, 0x3A, 0x02)  # medium not present, tray open
    dvd.attach_image(iso)
    assert_media_change_sequence(guest)


def test_tray_sequence_in_the_qemu_order(lab, iso: Path) -> None:
    """Guest eject → tray open; guest load with no medium → tray closed, 3A/01;
    host insert → 3A/00, 28/00, GOOD; final eject and load."""
    _, _, dvd, guest = lab
    ejected: list[str] = []
    dvd.on_media_eject += ejected.append
    guest.clear_power_on_ua()
    dvd.attach_image(iso)
    assert_media_change_sequence(guest)
    guest.packet(bytes([0x1B, 0, 0, 0, 0x02, 0]), 0)  # eject
    assert not guest.status() & STATUS_ERR
    assert ejected == [os.path.abspath(iso)] and dvd.attachment is DVDAttachment.NONE
    assert tur(guest) & STATUS_ERR and guest.sense() == (0x02, 0x3A, 0x02)
    guest.packet(bytes([0x1B, 0, 0, 0, 0x03, 0]), 0)  # load: no medium
    assert not guest.status() & STATUS_ERR
    assert tur(guest) & STATUS_ERR and guest.sense() == (0x02, 0x3A, 0x01)
    dvd.attach_image(iso)
    assert_media_change_sequence(guest)
    guest.packet(bytes([0x1B, 0, 0, 0, 0x02, 0]), 0)
    assert not guest.status() & STATUS_ERR
    guest.packet(bytes([0x1B, 0, 0, 0, 0x03, 0]), 0)
    assert not guest.status() & STATUS_ERR
    assert dvd.attachment is DVDAttachment.NONE


def test_first_read_after_attach_also_sees_not_ready_then_unit_attention(lab, iso: Path) -> None:
    """DOS drivers never send TUR: the NOT READY is reported once, by whatever command comes."""
    _, _, dvd, guest = lab
    guest.clear_power_on_ua()
    dvd.attach_image(iso)
    first, count = pattern_extent(iso)
    data, status = guest.command_reply(read10(first, 1))
    assert status & STATUS_ERR and data == b"" and guest.sense() == (0x02, 0x3A, 0x00)
    data, status = guest.command_reply(read10(first, 1))
    assert status & STATUS_ERR and guest.sense() == (0x06, 0x28, 0x00)
    data, status = guest.command_reply(read10(first, 1))
    assert not status & STATUS_ERR
    assert data == pattern_bytes(first * SECTOR, SECTOR).tobytes()


def test_inquiry_and_request_sense_pass_the_change_and_work_empty(lab, iso: Path) -> None:
    _, _, dvd, guest = lab
    data, status = guest.command_reply([0x12, 0, 0, 0, 36, 0])  # empty drive, UA pending
    assert not status & STATUS_ERR and data[0] == 0x05 and len(data) == 36
    guest.clear_power_on_ua()
    dvd.attach_image(iso)
    data, status = guest.command_reply([0x12, 0, 0, 0, 36, 0])
    assert not status & STATUS_ERR and data[0] == 0x05
    assert_media_change_sequence(guest)  # INQUIRY consumed nothing


def test_read_with_the_tray_open_is_not_ready_tray_open(lab, iso: Path) -> None:
    _, _, dvd, guest = lab
    guest.clear_power_on_ua()
    dvd.attach_image(iso)
    dvd.release_image()
    data, status = guest.command_reply(read10(16, 1))
    assert status & STATUS_ERR and data == b""
    assert guest.sense() == (0x02, 0x3A, 0x02)


@pytest.mark.parametrize("change", ["attach", "release"])
def test_host_change_raises_intrq_when_nien_is_clear(lab, iso: Path, change: str) -> None:
    _, _, dvd, guest = lab
    guest.clear_power_on_ua()
    if change == "release":
        dvd.attach_image(iso)
        guest.status()  # acknowledge the attach interrupt
    assert not guest.irq_level()
    if change == "attach":
        dvd.attach_image(iso)
    else:
        dvd.release_image()
    assert guest.irq_level()
    guest.status()  # reading Status acknowledges it
    assert not guest.irq_level()


def test_host_change_keeps_intrq_off_the_line_when_nien_is_set(lab, iso: Path) -> None:
    _, _, dvd, guest = lab
    guest.clear_power_on_ua()
    guest.control(NIEN)
    dvd.attach_image(iso)
    assert not guest.irq_level()
    dvd.release_image()
    assert not guest.irq_level()


# -- a host drive whose backing store vanishes ------------------------------------------


def test_host_drive_raw_file_that_vanishes_gives_not_ready_not_a_crash(tmp_path: Path) -> None:
    raw = tmp_path / "disc.raw"
    content = bytes(range(256)) * (SECTOR * 16 // 256)
    raw.write_bytes(content)
    with VirtualPC(host_drives={"D": str(raw)}) as vpc:
        vm = vpc.create_virtual_machine("host")
        dvd = vm.add_dvd_drive(1, 0)
        vm.power_on()
        guest = Guest(vm.machine, 1)
        guest.clear_power_on_ua()
        dvd.attach_host_drive("D")
        tur(guest)
        tur(guest)  # 3A/00, 28/00
        data, status = guest.command_reply(read10(2, 2))
        assert not status & STATUS_ERR
        assert data == content[2 * SECTOR : 4 * SECTOR]
        raw.unlink()
        data, status = guest.command_reply(read10(2, 2))
        assert status & STATUS_ERR and data == b""
        assert guest.sense() == (0x02, 0x3A, 0x00)
        # the drive keeps answering, and the host can release it normally
        data, status = guest.command_reply([0x12, 0, 0, 0, 36, 0])
        assert not status & STATUS_ERR
        dvd.release_host_drive()
        assert tur(guest) & STATUS_ERR and guest.sense() == (0x02, 0x3A, 0x02)


def test_host_drive_truncated_under_the_drive_gives_not_ready(tmp_path: Path) -> None:
    raw = tmp_path / "disc.raw"
    raw.write_bytes(b"\x5a" * SECTOR * 8)
    with VirtualPC(host_drives={"D": str(raw)}) as vpc:
        vm = vpc.create_virtual_machine("host")
        dvd = vm.add_dvd_drive(0, 0)
        guest = Guest(vm.machine, 0)
        guest.clear_power_on_ua()
        dvd.attach_host_drive("D")
        tur(guest)
        tur(guest)
        with raw.open("r+b") as f:
            f.truncate(SECTOR)
        data, status = guest.command_reply(read10(4, 1))
        assert status & STATUS_ERR and guest.sense() == (0x02, 0x3A, 0x00)


# -- REQUEST SENSE and a pending UNIT ATTENTION (SPC-3 §5.9.7) -------------------------
#
# SPC-3 §5.9.7 lets a REQUEST SENSE that arrives while a UNIT ATTENTION is pending either
# (a) report the pending sense data and keep the UA, or (b) report the UA and clear it.
# The drive always takes (a): the libata / Windows pattern "command fails -> REQUEST
# SENSE" sees that failure, and the next ordinary command still meets 06/28/00 (Linux sr
# and the Windows class driver act on 06/28 as "medium may have changed"), even when the
# host sends a REQUEST SENSE before anything else (QEMU 7.2 keeps the sequence then too).


def step(guest: Guest) -> tuple[int, int, int, bool]:
    """TEST UNIT READY at the ports: (Status, Error, interrupt reason, INTRQ seen)."""
    guest.packet(b"\x00", 0)
    irq = guest.irq_level()
    regs = guest.regs()
    status = guest.status()  # acknowledges INTRQ
    assert regs.status == status
    return status, regs.error, regs.reason, irq


def test_release_attach_with_request_sense_after_each_failure_reaches_the_guest(
    lab, iso: Path
) -> None:
    _, _, dvd, guest = lab
    guest.clear_power_on_ua()
    assert guest.sense() == (0x06, 0x29, 0x00)  # the TUR's failure, reported by (a)
    dvd.attach_image(iso)
    dvd.release_image()
    assert step(guest) == (0x41, 0x20, 0x03, True)
    assert guest.sense() == (0x02, 0x3A, 0x02)
    dvd.attach_image(iso)
    assert step(guest) == (0x41, 0x20, 0x03, True)  # NOT READY
    assert guest.sense() == (0x02, 0x3A, 0x00)
    assert step(guest) == (0x41, 0x60, 0x03, True)  # UNIT ATTENTION: not consumed above
    assert guest.sense() == (0x06, 0x28, 0x00)
    assert step(guest) == (0x50, 0x00, 0x03, True)  # GOOD
    assert guest.sense() == (0x00, 0x00, 0x00)


def test_request_sense_first_after_a_change_leaves_the_sequence_intact(lab, iso: Path) -> None:
    _, _, dvd, guest = lab
    guest.clear_power_on_ua()
    guest.sense()
    dvd.attach_image(iso)
    assert guest.sense() == (0x00, 0x00, 0x00)  # nothing failed yet: NO SENSE, UA kept
    assert step(guest) == (0x41, 0x20, 0x03, True)  # NOT READY
    data, status = guest.command_reply([0x12, 0, 0, 0, 36, 0])  # INQUIRY: clears the sense
    assert status == 0x50 and len(data) == 36
    assert guest.sense() == (0x00, 0x00, 0x00)  # still not the UA
    assert step(guest) == (0x41, 0x60, 0x03, True)  # the UA, as a CHECK CONDITION
    assert guest.sense() == (0x06, 0x28, 0x00)
    assert step(guest) == (0x50, 0x00, 0x03, True)
