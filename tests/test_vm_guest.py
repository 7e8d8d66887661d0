"""A management-API virtual machine runs a real guest, and the host swaps the disc under it.

``VirtualMachine.boot(firmware)`` starts the guest on the machine's own board; between
``session.resume`` runs the host releases and attaches images with the Virtual PC calls,
and the guest — reading the disc's primary volume descriptor in a loop through its BIOS
(INT 13h AH=42h, which both firmwares serve with their own ATAPI drivers) — sees the
volume go away and the new one arrive.
"""

from __future__ import annotations

import pytest

from emu import VirtualPC
from emu.boot import ExitStatus
from emu.tools.cli import main
from images import SAMPLE_ISO
from images.builders import build_patterned_iso
from tests.test_session import FIRMWARES, boot_program

READ_LOOP = """
    mov [drive], dl
.again:
    mov word [dap + 2], 1   ; the BIOS writes back how many blocks it moved (EDD 3.0)
    mov si, dap
    mov dl, [drive]
    mov ah, 0x42
    int 0x13
    mov al, 0xFF            ; status byte: AH on failure, 00h on success
    jc .failed
    xor ah, ah
.failed:
    mov [status], ah
    mov al, [0x8000 + 40]   ; first character of the volume identifier (ECMA-119 §8.4.6)
    jnc .have
    mov al, '-'
.have:
    mov [volume], al
    mov ax, [status]        ; print "status:volume " whenever either changes
    cmp ax, [last]
    je .again
    mov [last], ax
    movzx eax, byte [status]
    call hex32
    mov al, ':'
    call putc
    mov al, [volume]
    call putc
    mov al, ' '
    call putc
    jmp .again
drive: db 0
status: db 0
volume: db 0
last: dw 0xFFFF
dap: db 16, 0
     dw 1                   ; one 2048-byte sector
     dw 0x8000, 0           ; to 0000:8000
     dq 16                  ; LBA 16: the primary volume descriptor
"""


@pytest.mark.parametrize("firmware", FIRMWARES)
def test_the_guest_notices_a_disc_swapped_by_the_management_api(tmp_path, firmware):
    boot_disc = boot_program(tmp_path, READ_LOOP, "reader")  # its volume id is PATTERN
    other = build_patterned_iso(tmp_path / "other.iso", data_sectors=4, volume_id="OTHER")
    vpc = VirtualPC()
    vm = vpc.create_virtual_machine("lab")
    dvd = vm.add_dvd_drive(bus=1, device=0)
    dvd.attach_image(str(boot_disc))
    session = vm.boot(firmware)
    try:
        swap_discs(session, dvd, other)
    finally:
        vm.power_off()
        vpc.delete_virtual_machine(vm)  # releases the image it holds


def swap_discs(session, dvd, other) -> None:
    first = session.resume(until="00000000:P", timeout=60)
    assert first.status is ExitStatus.OK, first.message
    dvd.release_image()
    gone = session.resume(until=":- ", timeout=60)
    assert gone.status is ExitStatus.OK, gone.message
    dvd.attach_image(str(other))
    back = session.resume(until="00000000:O", timeout=60)
    assert back.status is ExitStatus.OK, back.message
    dvd.release_image()
    dvd.attach_image(str(SAMPLE_ISO))
    sample = session.resume(until="00000000:E", timeout=60)  # EMU_SAMPLE
    assert sample.status is ExitStatus.OK, sample.message
    # Every read reached the drive through the ports: the guest read a volume it was
    # never booted from.
    assert sample.drive_commands > back.drive_commands > first.drive_commands


@pytest.mark.parametrize("firmware", FIRMWARES)
def test_emu_boot_swap_changes_the_disc_when_the_guest_prints_a_text(tmp_path, capsys,
                                                                    firmware):
    """``emu boot --swap TEXT=ISO``: the same change from the command line, at a text."""
    boot_disc = boot_program(tmp_path, READ_LOOP, "reader")
    other = build_patterned_iso(tmp_path / "other.iso", data_sectors=4, volume_id="OTHER")
    status = main(["boot", str(boot_disc), "--firmware", firmware, "--no-interactive",
                   "--serial-only", "--swap", f"00000000:P={other}", "--until", "00000000:O",
                   "--timeout", "60"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert f"saw '00000000:P': the drive now holds {other}" in err
    # The guest's own output (port E9h): the first volume, a failed read (the change
    # reported by sense), then the new volume.
    assert out.index("00000000:P") < out.index(":- ") < out.index("00000000:O"), out


def test_emu_boot_swap_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["boot", "--swap", "no equals sign"])
    assert "expected TEXT=ISO" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["boot", "--swap", f"text={tmp_path / 'missing.iso'}"])
    assert "no such image file" in capsys.readouterr().err
    bad = tmp_path / "bad.iso"
    bad.write_bytes(b"not an ISO" * 300)
    boot_disc = boot_program(tmp_path, READ_LOOP, "reader")
    status = main(["boot", str(boot_disc), "--no-interactive", "--swap", f"00000000:P={bad}",
                   "--timeout", "60"])
    err = capsys.readouterr().err
    assert status == 2 and "--swap:" in err and "Traceback" not in err
