"""Debian's Linux 6.1 kernel as the guest (issue 12's milestones, as far as they go today).

ISOLINUX loads Debian's ``vmlinuz`` and a busybox initramfs from the emulated DVD
(images/guests.py); the kernel's real-mode setup, its XZ decompressor and its 64-bit
start run on the board's CPU glue (paging, long-mode interrupt delivery) under either
firmware.  The evidence is the guest's own output on COM1 (``console=ttyS0``).

Milestones 1 to 5 in one boot under each firmware (under SeaBIOS, Linux in symmetric I/O
mode through the I/O APIC that SeaBIOS's MP table describes), through the management
API: the banner; ``/init`` runs; ``ata_piix`` +
``sr_mod`` attach the drive; the disc is mounted and a file's md5 matches, read by
bus-master DMA; a disc swapped with ``release_image``/``attach_image`` is noticed by the
kernel's media polling and read.  Milestone 6 (time against QEMU) is in bench/.
"""

from __future__ import annotations

from collections import Counter

import pytest

from devices.trace import TraceEvent, Tracer
from emu import VirtualPC
from emu.boot import BootResult, ExitStatus, Session
from emu.firmware.seabios import SEABIOS_BIN
from images import guests

BANNER = "Linux version 6.1"


def banner_line(serial: str) -> str:
    """Milestone 1: the kernel's banner, as the guest's UART printed it."""
    assert BANNER in serial, serial[-2000:]
    line = serial[serial.index(BANNER):].splitlines()[0]
    assert "-amd64" in line and "Debian" in line
    return line


def resume_until_on_com1(session: Session, text: str) -> BootResult:
    """Run until ``text`` is on COM1.  /init prints each line on /dev/console (COM1) and on
    tty0 (the screen): the screen is written at once, the serial line drains behind it by
    interrupts, so a stop at the text on the screen comes early for COM1: run on until the
    serial line has it too."""
    result = session.resume(until=text, timeout=400)
    for _ in range(3):
        if result.status is not ExitStatus.OK or text in result.serial:
            break
        result = session.resume(until=text, timeout=400)
    return result


FIRMWARES = ["builtin", pytest.param("seabios", marks=pytest.mark.skipif(
    not SEABIOS_BIN.exists(), reason="seabios is not installed (.ci/run installs it)"))]


@pytest.mark.parametrize("firmware", FIRMWARES)
def test_linux_reads_the_disc_by_dma_and_sees_the_management_api_swap_it(firmware: str) -> None:
    """Milestones 1 to 5 in one boot under each firmware, through the management API.

    1. the kernel's banner on COM1 (``console=ttyS0``: the 8250 driver found a 16550A);
       under SeaBIOS, whose MP table describes the I/O APIC, the kernel switches to
       symmetric I/O mode and IRQ 15 arrives through the I/O APIC instead of the 8259;
    2. the initramfs's ``/init`` runs and prints its marker;
    3. the kernel's own ata_piix driver probes the PIIX3 IDE function, IDENTIFY PACKET
       DEVICE names our drive, SCSI INQUIRY makes it a CD-ROM, sr_mod attaches it and
       ``/dev/sr0`` appears;
    4. ``mount -t iso9660 /dev/sr0`` and the md5 of a 3 MB file match the host's sum, the
       reads coming by bus-master DMA (the drive's trace: READ(10) commands, PRD
       transfers of at least the file's size);
    5. ``DVDDrive.release_image`` + ``attach_image`` while the guest runs: the kernel's
       media polling (GESN every 2 s) raises its media-change uevent, and after a remount
       the guest reads disc 2's file with disc 2's md5 (no stale data from disc 1).
    """
    try:
        iso = guests.linux_iso(media_change=True)
        disc2 = guests.second_disc_iso()
    except guests.GuestUnavailable as exc:
        pytest.skip(f"{exc} (.ci/run fetches the packages)")
    counts: Counter[str] = Counter()

    def count(event: TraceEvent) -> None:
        if event.kind == "cdb":
            counts[event.fields["name"]] += 1
        elif event.kind == "dma" and event.fields.get("event") == "transfer":
            counts["dma bytes"] += event.fields["bytes"]
        elif event.kind == "sense":
            counts["sense"] += 1

    vpc = VirtualPC()
    vm = vpc.create_virtual_machine("linux", memory_size=512 << 20)
    try:
        dvd = vm.add_dvd_drive(bus=1, device=0)
        dvd.attach_image(str(iso))
        session = vm.boot(firmware)
        session.board.set_trace(Tracer(keep=False, sinks=[count]))
        first = resume_until_on_com1(session, guests.MILESTONES["waiting"])
        serial = first.serial
        assert first.status is ExitStatus.OK, (first.message, serial[-2000:])
        banner_line(serial)
        assert "is a 16550A" in serial  # the 8250 driver's autodetection
        if firmware == "seabios":
            assert "APIC: Switch to symmetric I/O mode" in serial
        assert guests.MILESTONES["init"] in serial
        assert "ATAPI: EMU Virtual DVD-ROM" in serial  # IDENTIFY PACKET DEVICE, words 27-46
        cdrom = [line for line in serial.splitlines() if "CD-ROM" in line and "EMU" in line]
        assert cdrom and "Virtual DVD-ROM" in cdrom[0]  # INQUIRY: vendor and product
        assert "bmdma 0xc008 irq 15" in serial  # the secondary channel with its bus master
        assert guests.MILESTONES["sr0"] in serial
        assert guests.MILESTONES["mount"] in serial
        assert f"INIT: md5 {guests.data_md5(1)}" in serial and guests.MILESTONES["md5"] in serial
        assert counts["READ(10)"] > 0 and counts["dma bytes"] >= guests.DATA_SIZE
        reads_before = counts["READ(10)"]

        dvd.release_image()
        dvd.attach_image(str(disc2))
        second = resume_until_on_com1(session, guests.MILESTONES["poweroff"])
        serial = second.serial
        assert second.status is ExitStatus.OK, (second.message, serial[-2000:])
        after = serial[serial.index(guests.MILESTONES["waiting"]):]
        assert "INIT: media change event sr0" in after  # the kernel's poll noticed
        assert guests.MILESTONES["change"] in after
        assert f"INIT: disc 2 md5 {guests.data_md5(2)}" in after
        assert guests.MILESTONES["md5_2"] in after
        assert counts["READ(10)"] > reads_before
    finally:
        vm.power_off()
        vpc.delete_virtual_machine(vm)


def test_two_boots_to_the_decompressed_kernel_run_the_same_instructions() -> None:
    """Guest time stays a pure function of the guest's execution with paging on: ISOLINUX
    to the kernel's first line after its XZ decompressor (which runs in IA-32e mode with
    4-level paging, so through the C TLB walk, its hand-overs to the engine's MMU and the
    block clock's count cache under paging) twice, the same count and the same text."""
    from emu.boot import BootOptions, run_boot

    try:
        iso = guests.linux_iso(append=guests.EARLY_SERIAL_APPEND)
    except guests.GuestUnavailable as exc:
        pytest.skip(f"{exc} (.ci/run fetches the packages)")
    runs = [run_boot(BootOptions(iso=iso, memory_size=512 << 20, until=BANNER, timeout=120))
            for _ in range(2)]
    for result in runs:
        assert result.status is ExitStatus.OK, (result.message, result.serial[-2000:])
    assert runs[0].instructions == runs[1].instructions
    assert runs[0].serial == runs[1].serial
    assert BANNER in runs[0].serial  # the run stops as soon as the banner's start is out
