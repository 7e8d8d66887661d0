"""GET EVENT STATUS NOTIFICATION, PREVENT ALLOW MEDIUM REMOVAL and START STOP UNIT at the ports.

Expected bytes are built from MMC-5 §6.6: a 4-byte header (event descriptor
length = bytes after that field, NEA bit 7 + notification class in byte 2,
supported classes in byte 3 = 10h, media only) and a 4-byte media event
descriptor (event code: 0 no change, 1 eject request, 2 new media, 3 media
removal; media status: bit 0 tray open, bit 1 media present; start and end
slot 0).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devices.scsi.mmc_media import request_eject
from emu import VirtualPC
from emu.api.vpc import DVDAttachment, DVDDrive, VirtualMachine
from images.builders import build_patterned_iso
from tests.guest import STATUS_ERR, Guest

LINUX_POLL = bytes.fromhex("4a 01 00 00 10 00 00 00 08 00")
"""The CDB Linux polls with every ~2 s: polled, media class, allocation length 8."""

NO_CHANGE, EJECT_REQUEST, NEW_MEDIA, MEDIA_REMOVAL = 0, 1, 2, 3
TRAY_OPEN, PRESENT = 0x01, 0x02

PREVENT = bytes([0x1E, 0, 0, 0, 0x01, 0])
ALLOW = bytes([0x1E, 0, 0, 0, 0x00, 0])
EJECT = bytes([0x1B, 0, 0, 0, 0x02, 0])  # LoEj=1 Start=0 (what Windows 9x "Eject" sends)
LOAD = bytes([0x1B, 0, 0, 0, 0x03, 0])  # LoEj=1 Start=1


def media_reply(event: int, status: int) -> bytes:
    """Header (length 6: bytes 2..7 follow the length field; class 4; supported 14h:
    power management and media) and the media event descriptor."""
    return bytes([0x00, 0x06, 0x04, 0x14, event, status, 0x00, 0x00])


def power_reply(event: int, status: int) -> bytes:
    """Header (class 2, supported 14h) and the power management event descriptor
    (MMC-5 §6.7: event 0 no change / 1 power change successful; status 1 active,
    3 standby)."""
    return bytes([0x00, 0x06, 0x02, 0x14, event, status, 0x00, 0x00])


NO_EVENT_AVAILABLE = bytes([0x00, 0x02, 0x80, 0x14])
"""NEA=1, class 0, supported 14h; the length (2) counts bytes 2 and 3."""


@pytest.fixture(scope="module")
def iso(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_patterned_iso(tmp_path_factory.mktemp("gesn") / "g.iso", data_sectors=8,
                               boot=False)


@pytest.fixture
def lab() -> Iterator[tuple[VirtualPC, VirtualMachine, DVDDrive, Guest]]:
    vpc = VirtualPC()
    vm = vpc.create_virtual_machine("gesn")
    dvd = vm.add_dvd_drive(1, 0)
    vm.power_on()
    yield vpc, vm, dvd, Guest(vm.machine, 1)
    vpc.close()


def gesn(guest: Guest, cdb: bytes = LINUX_POLL) -> tuple[bytes, int]:
    return guest.command_reply(cdb, 0xFFFE)


def nondata(guest: Guest, cdb: bytes) -> int:
    guest.packet(cdb, 0)
    return guest.status()


def tur(guest: Guest) -> tuple[int, int, int] | None:
    """TEST UNIT READY: None when GOOD, else the sense REQUEST SENSE returns."""
    if not nondata(guest, b"\x00") & STATUS_ERR:
        return None
    return guest.sense()


def settle(guest: Guest) -> None:
    for _ in range(4):
        if tur(guest) is None:
            return


# -- the command itself ----------------------------------------------------------------


def test_linux_poll_on_an_empty_drive_at_power_on_is_answered_exactly(lab) -> None:
    _, _, _, guest = lab
    data, status = gesn(guest)
    assert not status & STATUS_ERR
    assert data == media_reply(NO_CHANGE, 0)


def test_gesn_passes_a_pending_unit_attention_without_consuming_it(lab) -> None:
    _, _, _, guest = lab
    gesn(guest)
    assert tur(guest) == (0x06, 0x29, 0x00)  # the power-on UNIT ATTENTION is still there


def test_asynchronous_request_is_invalid_field_in_cdb(lab) -> None:
    _, _, _, guest = lab
    guest.clear_power_on_ua()
    data, status = gesn(guest, bytes.fromhex("4a 00 00 00 10 00 00 00 08 00"))
    assert status & STATUS_ERR and data == b""
    assert guest.sense() == (0x05, 0x24, 0x00)


@pytest.mark.parametrize("classes", [0x00, 0x02, 0x08, 0x40, 0xEA])
def test_classes_not_supported_get_no_event_available(lab, classes: int) -> None:
    _, _, _, guest = lab
    data, status = gesn(guest, bytes([0x4A, 1, 0, 0, classes, 0, 0, 0, 8, 0]))
    assert not status & STATUS_ERR
    assert data == NO_EVENT_AVAILABLE


def test_allocation_length_in_bytes_7_8_truncates_and_keeps_the_event(lab, iso: Path) -> None:
    _, _, dvd, guest = lab
    dvd.attach_image(iso)
    data, _ = gesn(guest, bytes([0x4A, 1, 0, 0, 0x10, 0, 0, 0, 4, 0]))
    assert data == media_reply(NEW_MEDIA, PRESENT)[:4]
    data, _ = gesn(guest, bytes([0x4A, 1, 0, 0, 0x10, 0, 0, 0x01, 0x00, 0]))  # 256
    assert data == media_reply(NEW_MEDIA, PRESENT)  # not lost by the short read
    data, _ = gesn(guest)
    assert data == media_reply(NO_CHANGE, PRESENT)


# -- sequences --------------------------------------------------------------------------


def test_attach_reports_new_media_once_then_status(lab, iso: Path) -> None:
    _, _, dvd, guest = lab
    guest.clear_power_on_ua()
    dvd.attach_image(iso)
    assert gesn(guest)[0] == media_reply(NEW_MEDIA, PRESENT)
    assert gesn(guest)[0] == media_reply(NO_CHANGE, PRESENT)
    # GESN did not consume the media-change sequence (guests that do not poll need it)
    assert tur(guest) == (0x02, 0x3A, 0x00)
    assert tur(guest) == (0x06, 0x28, 0x00)
    assert tur(guest) is None


def test_release_reports_media_removal_once_then_tray_open_empty(lab, iso: Path) -> None:
    _, _, dvd, guest = lab
    dvd.attach_image(iso)
    settle(guest)
    gesn(guest)
    dvd.release_image()
    assert gesn(guest)[0] == media_reply(MEDIA_REMOVAL, TRAY_OPEN)
    assert gesn(guest)[0] == media_reply(NO_CHANGE, TRAY_OPEN)
    assert tur(guest) == (0x02, 0x3A, 0x02)


def test_locked_guest_eject_is_refused_and_reports_nothing(lab, iso: Path) -> None:
    _, _, dvd, guest = lab
    ejected: list[str] = []
    dvd.on_media_eject += ejected.append
    dvd.attach_image(iso)
    settle(guest)
    gesn(guest)
    assert not nondata(guest, PREVENT) & STATUS_ERR
    assert nondata(guest, EJECT) & STATUS_ERR
    assert guest.sense() == (0x05, 0x53, 0x02)  # ILLEGAL REQUEST, MEDIUM REMOVAL PREVENTED
    assert gesn(guest)[0] == media_reply(NO_CHANGE, PRESENT)
    assert dvd.attachment is DVDAttachment.IMAGE and ejected == []
    assert tur(guest) is None  # the disc is still there and ready
    # unlocked, the same CDB ejects: Media Removal, the host side released the image
    assert not nondata(guest, ALLOW) & STATUS_ERR
    assert not nondata(guest, EJECT) & STATUS_ERR
    assert gesn(guest)[0] == media_reply(MEDIA_REMOVAL, TRAY_OPEN)
    assert dvd.attachment is DVDAttachment.NONE and ejected == [str(iso)]
    assert tur(guest) == (0x02, 0x3A, 0x02)


def test_host_release_of_a_locked_tray_is_forced(lab, iso: Path) -> None:
    _, _, dvd, guest = lab
    dvd.attach_image(iso)
    settle(guest)
    gesn(guest)
    nondata(guest, PREVENT)
    dvd.release_image()  # S_OK although the guest holds the lock
    assert dvd.attachment is DVDAttachment.NONE
    assert gesn(guest)[0] == media_reply(MEDIA_REMOVAL, TRAY_OPEN)
    assert tur(guest) == (0x02, 0x3A, 0x02)
    # the forced eject dropped the lock: the guest can close and reopen the tray
    assert not nondata(guest, LOAD) & STATUS_ERR
    assert gesn(guest)[0] == media_reply(NO_CHANGE, 0)
    assert tur(guest) == (0x02, 0x3A, 0x01)  # medium not present, tray closed
    assert not nondata(guest, EJECT) & STATUS_ERR
    assert gesn(guest)[0] == media_reply(NO_CHANGE, TRAY_OPEN)


def test_eject_button_on_a_locked_tray_reports_eject_request(lab, iso: Path) -> None:
    _, _, dvd, guest = lab
    dvd.attach_image(iso)
    settle(guest)
    gesn(guest)
    nondata(guest, PREVENT)
    with dvd.virtual_machine.machine.lock:
        assert request_eject(dvd.unit.target) is False
    assert gesn(guest)[0] == media_reply(EJECT_REQUEST, PRESENT)
    assert gesn(guest)[0] == media_reply(NO_CHANGE, PRESENT)
    # a cooperative guest unlocks and ejects
    nondata(guest, ALLOW)
    assert not nondata(guest, EJECT) & STATUS_ERR
    assert dvd.attachment is DVDAttachment.NONE


def test_eject_button_on_an_unlocked_tray_opens_it(lab, iso: Path) -> None:
    _, _, dvd, guest = lab
    dvd.attach_image(iso)
    settle(guest)
    gesn(guest)
    with dvd.virtual_machine.machine.lock:
        assert request_eject(dvd.unit.target) is True
    assert dvd.attachment is DVDAttachment.NONE
    assert gesn(guest)[0] == media_reply(MEDIA_REMOVAL, TRAY_OPEN)


def test_start_stop_power_condition_and_spin_do_not_move_the_tray(lab, iso: Path) -> None:
    _, _, dvd, guest = lab
    dvd.attach_image(iso)
    settle(guest)
    gesn(guest)
    for cdb in (
        bytes([0x1B, 0, 0, 0, 0x32, 0]),  # power condition 3 (standby) with LoEj: no tray action
        bytes([0x1B, 0, 0, 0, 0x12, 0]),  # power condition 1 (active) with LoEj
        bytes([0x1B, 0, 0, 0, 0x00, 0]),  # stop the disc
        bytes([0x1B, 0, 0, 0, 0x01, 0]),  # start the disc
    ):
        assert not nondata(guest, cdb) & STATUS_ERR
    assert dvd.attachment is DVDAttachment.IMAGE
    assert gesn(guest)[0] == media_reply(NO_CHANGE, PRESENT)


def test_bare_machine_guest_eject_and_load_keep_the_disc(iso: Path) -> None:
    """Without the management API (no host hook) the disc stays in the open tray;
    closing it again is a not-ready-to-ready change (UNIT ATTENTION 28/00, New Media)."""
    from devices.media.iso import IsoImage
    from emu.pc.machine import Machine

    machine = Machine()
    with IsoImage(iso) as medium:
        machine.add_dvd_drive(0, 0, medium)
        guest = Guest(machine, 0)
        guest.clear_power_on_ua()
        assert not nondata(guest, EJECT) & STATUS_ERR
        # The disc stays in the open tray, but it is not in the drive: 01h (tray open only).
        assert gesn(guest)[0] == media_reply(MEDIA_REMOVAL, TRAY_OPEN)
        assert gesn(guest)[0] == media_reply(NO_CHANGE, TRAY_OPEN)
        assert tur(guest) == (0x02, 0x3A, 0x02)
        assert not nondata(guest, LOAD) & STATUS_ERR
        assert gesn(guest)[0] == media_reply(NEW_MEDIA, PRESENT)
        assert tur(guest) == (0x06, 0x28, 0x00)
        assert tur(guest) is None


def test_power_class_reports_a_power_change_once_then_the_status(lab) -> None:
    """Power Management feature (0100h) ⇒ GESN power class: STANDBY IMMEDIATE (E0h)
    and START STOP UNIT power condition ACTIVE (1b 00 00 00 10 00) are power changes."""
    _, _, _, guest = lab
    power = bytes([0x4A, 1, 0, 0, 0x04, 0, 0, 0, 8, 0])
    assert gesn(guest, power)[0] == power_reply(0, 0x01)
    guest.command(0xE0)  # ATA STANDBY IMMEDIATE
    guest.status()
    assert gesn(guest, power)[0] == power_reply(1, 0x03)
    assert gesn(guest, power)[0] == power_reply(0, 0x03)
    guest.clear_power_on_ua()
    assert not nondata(guest, bytes([0x1B, 0, 0, 0, 0x10, 0])) & STATUS_ERR
    both = bytes([0x4A, 1, 0, 0, 0x14, 0, 0, 0, 8, 0])
    assert gesn(guest, both)[0] == power_reply(1, 0x01)  # the class with an event wins
    assert gesn(guest, both)[0] == power_reply(0, 0x01)  # none: the lowest class asked
    assert gesn(guest)[0] == media_reply(NO_CHANGE, 0)  # Linux asks for media only


def test_media_event_wins_over_a_quiet_power_class(lab, iso: Path) -> None:
    _, _, dvd, guest = lab
    dvd.attach_image(iso)
    both = bytes([0x4A, 1, 0, 0, 0x14, 0, 0, 0, 8, 0])
    assert gesn(guest, both)[0] == media_reply(NEW_MEDIA, PRESENT)
    assert gesn(guest, both)[0] == power_reply(0, 0x01)
