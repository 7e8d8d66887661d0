"""The Device register and the absent unit's shadow registers, at the ports.

ATA/ATAPI-7 vol 1 §7 (Device register): DEV is written by the host; a device never changes
the selection on its own.  A signature left by a refused IDENTIFY DEVICE / READ
SECTORS (vol 1 §6.16) or by DEVICE RESET (§6.9) loads Sector Count and LBA
Low/Mid/High only: the Device register still reads A0h or B0h as the host wrote
it.  SRST (vol 2 §9.2) and EXECUTE DEVICE DIAGNOSTIC (vol 2 §9.7), after which
device 0 answers, clear DEV and keep the obsolete bits 7 and 5: A0h.

Vol 1 §9.16.1: when device 1 is absent, device 0 answers for it; the
command-block registers echo what the host wrote last, never device 0's own
live values.
"""

from __future__ import annotations

import pytest

from emu.machine import Machine
from tests.guest import Guest

SIGNATURE = (0x01, 0x01, 0x14, 0xEB)


def taskfile(g: Guest) -> tuple[int, int, int, int]:
    return tuple(g.m.inb(g.base + r) for r in (2, 3, 4, 5))  # type: ignore[return-value]


def rig(device: int, both: bool = False) -> Guest:
    m = Machine()
    m.add_dvd_drive(0, device)
    if both:
        m.add_dvd_drive(0, 1 - device)
    g = Guest(m, 0)
    g.select(device)
    return g


@pytest.mark.parametrize("device", [0, 1])
@pytest.mark.parametrize("code", [0xEC, 0x20, 0x24, 0xC8, 0x25, 0x30])
def test_refused_disk_command_leaves_the_signature_and_keeps_dev(device: int, code: int) -> None:
    g = rig(device)
    g.m.outb(0x1F3, 0x77)
    g.command(code)
    assert g.status() == 0x41 and g.error() == 0x04
    assert taskfile(g) == SIGNATURE
    assert g.m.inb(0x1F6) == 0xA0 | (device << 4)


@pytest.mark.parametrize("device", [0, 1])
def test_device_reset_keeps_dev(device: int) -> None:
    g = rig(device, both=True)
    g.m.outb(0x1F6, 0xA5 | (device << 4))  # head bits set: the reset clears them
    g.command(0x08)
    assert g.alt_status() == 0x00 and g.error() == 0x01
    assert taskfile(g) == SIGNATURE
    assert g.m.inb(0x1F6) == 0xA0 | (device << 4)
    g.command(0xA1)  # the same drive still answers IDENTIFY PACKET
    assert g.status() & 0x08


@pytest.mark.parametrize("device", [0, 1])
def test_execute_device_diagnostic_selects_device_0_and_reads_a0h(device: int) -> None:
    # Device 0 reports the diagnostic (vol 2 §9.7): DEV cleared, obsolete bits 7 and 5
    # as the host wrote them, so the register reads A0h, never 00h (QEMU 7.2: A0h).
    g = rig(device, both=True)
    g.command(0x90)
    assert g.m.inb(0x1F6) == 0xA0
    assert g.alt_status() == 0x00 and g.error() == 0x01
    assert taskfile(g) == SIGNATURE


def test_srst_selects_device_0_and_keeps_the_obsolete_bits() -> None:
    g = rig(1, both=True)
    g.control(0x04)
    g.control(0x00)
    assert g.m.inb(0x1F6) == 0xA0  # QEMU 7.2 reads A0h too
    assert taskfile(g) == SIGNATURE


def test_absent_device_1_reads_01_01_ff_ff_before_any_write_and_after_srst() -> None:
    g = rig(0)
    g.select(1)
    assert taskfile(g) == (0x01, 0x01, 0xFF, 0xFF)
    g.m.outb(0x1F2, 0x55)
    g.control(0x04)
    g.control(0x00)
    g.select(1)
    assert taskfile(g) == (0x01, 0x01, 0xFF, 0xFF)


def test_absent_device_1_echoes_what_the_host_wrote_not_device_0s_live_values() -> None:
    g = rig(0)
    g.clear_power_on_ua()
    # device 0 reads one sector's worth of nothing (no medium): its registers move
    g.packet(bytes([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0]), 0xFFFE)
    g.status()
    live = taskfile(g)
    g.select(1)
    # The byte-count limit the host wrote (FFFEh) over the shadow's power-on values
    # (01h, 01h, FFh, FFh: QEMU 7.2 reads the same), never device 0's live 03/01/00/08.
    assert taskfile(g) == (0x01, 0x01, 0xFE, 0xFF)
    assert taskfile(g) != live
    assert g.error() == 0x00 and g.status() == 0x00
    g.m.outb(0x1F2, 0x12)
    g.m.outb(0x1F3, 0x34)
    g.m.outb(0x1F4, 0x56)
    g.m.outb(0x1F5, 0x78)
    assert taskfile(g) == (0x12, 0x34, 0x56, 0x78)
    assert g.m.inb(0x1F6) == 0xB0
    g.select(0)
    assert taskfile(g) == (0x12, 0x34, 0x56, 0x78)  # device 0 latched the same writes
