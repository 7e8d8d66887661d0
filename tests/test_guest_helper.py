"""The public guest-side helper: what a guest sees after the management API changes media.

Expected sequence (docs/management-api.md, "What the guest sees on a media
change"; MMC-5 §4.1.5 / SPC-3 §5.9.7): after ``attach_image`` the first TEST
UNIT READY fails NOT READY 02/3A/00, the next UNIT ATTENTION 06/28/00 (medium
may have changed), then GOOD; after ``release_image`` NOT READY 02/3A/02
(tray open).  The helper drives the ports; nothing here calls into the drive.
"""

from __future__ import annotations

import pytest

from devices.media.iso import IsoImage
from emu import SAMPLE_ISO, AtapiHost, Machine, VirtualPC
from emu.api.hresult import DriveInvalidError


@pytest.fixture
def dvd():
    vpc = VirtualPC()
    drive = vpc.create_virtual_machine("lab").add_dvd_drive(bus=1, device=0)
    yield drive
    vpc.close()


def test_attach_then_the_guest_sees_not_ready_unit_attention_good(dvd):
    dvd.attach_image(SAMPLE_ISO)
    outcomes = [dvd.guest.test_unit_ready().outcome for _ in range(3)]
    assert outcomes == ["NOT READY", "UNIT ATTENTION", "GOOD"]


def test_the_sense_key_comes_from_the_error_register_and_request_sense_gives_the_rest(dvd):
    dvd.attach_image(SAMPLE_ISO)
    host = dvd.guest
    first = host.test_unit_ready()
    assert (first.status, first.error, first.sense_key) == (0x41, 0x20, 2)
    assert str(host.request_sense()).startswith("02/3A/00")
    dvd.release_image()
    assert host.test_unit_ready().outcome == "NOT READY"
    assert str(host.request_sense()).startswith("02/3A/02")


def test_reads_return_the_sectors_of_the_attached_image(dvd):
    dvd.attach_image(SAMPLE_ISO)
    host = dvd.guest
    while not host.test_unit_ready().good:
        pass
    reply = host.read10(16)
    assert reply.good and reply.data[:6] == b"\x01CD001"
    with IsoImage(SAMPLE_ISO) as image:
        assert host.read_capacity() == image.sector_count


def test_a_small_byte_count_limit_splits_the_reply_into_blocks():
    m = Machine()
    with IsoImage(SAMPLE_ISO) as medium:
        m.add_dvd_drive(0, 1, medium)
        host = AtapiHost(m, bus=0, device=1, byte_count_limit=512)
        host.test_unit_ready()  # the power-on UNIT ATTENTION
        reply = host.read10(16, 2)
        assert reply.good and len(reply.data) == 4096 and reply.data[1:6] == b"CD001"


def test_the_helper_of_a_removed_drive_is_refused(dvd):
    vm = dvd.virtual_machine
    vm.remove_dvd_drive(dvd)
    with pytest.raises(DriveInvalidError):
        dvd.guest  # noqa: B018


def test_polled_mode_sets_nien_and_sees_no_intrq():
    m = Machine()
    with IsoImage(SAMPLE_ISO) as medium:
        m.add_dvd_drive(1, 0, medium)
        host = AtapiHost(m, interrupts=False)
        assert host.test_unit_ready().outcome == "UNIT ATTENTION"
        assert host.test_unit_ready().good
        assert not m.irq_level(15)
