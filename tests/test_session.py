"""One PC, one session: the board under both firmwares and every stop rule.

Each test boots a small real-mode program (assembled by nasm, the El Torito boot image of a
patterned disc) under the built-in BIOS and under SeaBIOS, and asserts what the guest saw
(printed on the E9h debug console, which both firmwares' sessions capture) or how the run
ended (docs/booting.md, "Stop rules").
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from devices.media.iso import IsoImage
from emu.boot import BootOptions, ExitStatus, run_boot
from emu.firmware.seabios import SEABIOS_BIN
from images.builders import build_patterned_iso
from tests.test_cpu import NASM, assemble

pytestmark = pytest.mark.skipif(NASM is None, reason="nasm is not installed")

FIRMWARES = ["builtin", pytest.param("seabios", marks=pytest.mark.skipif(
    not SEABIOS_BIN.exists(), reason="seabios is not installed"))]

PRELUDE = """bits 16
org 0x7C00
    jmp 0:start
hex32:                      ; print EAX as 8 hex digits on port E9h
    push cx
    mov cx, 8
.next:
    rol eax, 4
    push eax
    and al, 0x0F
    add al, '0'
    cmp al, '9'
    jbe .digit
    add al, 7
.digit:
    out 0xE9, al
    pop eax
    loop .next
    pop cx
    ret
putc:
    out 0xE9, al
    ret
start:
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7000
    sti
"""


def boot_program(tmp_path: Path, body: str, name: str = "prog") -> Path:
    """A disc whose no-emulation boot image (2048 bytes at 0000:7C00) is ``body``."""
    code = assemble(PRELUDE + body, tmp_path, name)
    assert len(code) <= 2048, "the boot image holds 2048 bytes"
    iso = build_patterned_iso(tmp_path / f"{name}.iso", data_sectors=4)
    with IsoImage(iso) as medium:
        (entry,) = medium.boot_entries()
        rba = entry.load_rba
    with open(iso, "r+b") as fp:
        fp.seek(rba * 2048)
        fp.write(code)
    return iso


def boot(iso: Path, firmware: str, **options: object):
    opts = BootOptions(iso=iso, firmware=firmware, **options)  # type: ignore[arg-type]
    return run_boot(opts)


# -- the board the guest sees ---------------------------------------------------------------

E820_PROGRAM = """
    xor ebx, ebx
.entry:
    mov eax, 0xE820
    mov edx, 0x534D4150
    mov ecx, 20
    mov di, 0x6000
    int 0x15
    jc .done
    mov eax, [0x6004]
    call hex32
    mov eax, [0x6000]
    call hex32
    mov al, ' '
    call putc
    mov eax, [0x600C]
    call hex32
    mov eax, [0x6008]
    call hex32
    mov al, ' '
    call putc
    mov eax, [0x6010]
    call hex32
    mov al, 10
    call putc
    test ebx, ebx
    jnz .entry
.done:
    mov al, 'C'             ; CMOS 34h/35h: 64 KiB blocks above 16 MiB
    call putc
    mov al, 0x35
    out 0x70, al
    in al, 0x71
    mov ah, al
    mov al, 0x34
    out 0x70, al
    in al, 0x71
    movzx eax, ax
    call hex32
    mov al, 10
    call putc
    cli
.halt:
    hlt
    jmp .halt
"""


def e820_entries(serial: str) -> list[tuple[int, int, int]]:
    rows = []
    for line in serial.splitlines():
        parts = line.split()
        if len(parts) == 3 and all(len(p) in (8, 16) for p in parts):
            rows.append((int(parts[0], 16), int(parts[1], 16), int(parts[2], 16)))
    return rows


@pytest.mark.parametrize("firmware", FIRMWARES)
@pytest.mark.parametrize("megabytes", [64, 512])
def test_the_guest_sees_the_ram_it_was_given_in_e820_and_cmos(tmp_path, firmware, megabytes):
    iso = boot_program(tmp_path, E820_PROGRAM)
    result = boot(iso, firmware, memory_size=megabytes << 20, guest_timeout=20)
    assert result.status is ExitStatus.OK, result.message
    entries = e820_entries(result.serial)
    usable = [(base, length) for base, length, kind in entries if kind == 1]
    assert usable and usable[0][0] == 0
    top = max(base + length for base, length, kind in entries
              if kind in (1, 2) and 1 << 20 <= base < 0xE000_0000)
    assert top == megabytes << 20  # RAM up to the size asked for, nothing beyond
    assert sum(length for _, length in usable) > (megabytes - 2) << 20
    cmos = [line for line in result.serial.splitlines() if line.startswith("C")][0]
    assert int(cmos[1:], 16) * 65536 + (16 << 20) == megabytes << 20


def test_seabios_logs_the_ram_it_found(tmp_path):
    if not SEABIOS_BIN.exists():
        pytest.skip("seabios is not installed")
    iso = boot_program(tmp_path, "cli\n.h:\n hlt\n jmp .h\n")
    result = boot(iso, "seabios", memory_size=512 << 20)
    assert result.status is ExitStatus.OK, result.message
    ram_lines = [line for line in result.firmware_log if "RAM" in line and "e820" in line]
    assert "len 0x0000000020000000 [RAM]" in ram_lines[0]


def test_ram_above_the_pci_hole_is_mapped_from_4_gib(tmp_path):
    from emu.pc.board import PCI_HOLE_START, PcBoard

    board = PcBoard(4 << 30)
    assert board.memory_map.low == PCI_HOLE_START
    assert board.e820()[-1] == (1 << 32, (4 << 30) - PCI_HOLE_START, 1)
    board.cpu.uc.mem_write(1 << 32, b"high")
    assert board.memory.data[PCI_HOLE_START : PCI_HOLE_START + 4].tobytes() == b"high"


PCI_PROGRAM = """
    mov cx, 0               ; devices 0..3 of bus 0, function 0 and 1
.dev:
    mov eax, 0x80000000
    movzx ebx, cx
    shl ebx, 8              ; device << 11 | function << 8  (cx = device*8 + function)
    or eax, ebx
    mov dx, 0xCF8
    out dx, eax
    mov dx, 0xCFC
    in eax, dx
    cmp ax, 0xFFFF
    je .skip
    call hex32
    mov al, 10
    call putc
.skip:
    inc cx
    cmp cx, 32
    jb .dev
    cli
.halt:
    hlt
    jmp .halt
"""


@pytest.mark.parametrize("firmware", FIRMWARES)
def test_pci_enumeration_finds_the_same_chipset_under_both_firmwares(tmp_path, firmware):
    result = boot(boot_program(tmp_path, PCI_PROGRAM), firmware, guest_timeout=20)
    assert result.status is ExitStatus.OK, result.message
    ids = result.serial.split()
    assert ids == ["12378086", "70008086", "70108086"]  # i440FX, PIIX3, PIIX3 IDE


# -- stop rules ------------------------------------------------------------------------------


@pytest.mark.parametrize("firmware", FIRMWARES)
def test_a_triple_fault_is_reported_as_such_with_cs_ip(tmp_path, firmware):
    iso = boot_program(tmp_path, """
    lidt [idt0]
    int 0x21
    jmp $
idt0: dw 0
      dd 0
""")
    result = boot(iso, firmware, guest_timeout=20)
    assert result.status is ExitStatus.TRIPLE_FAULT
    assert "triple fault at 0000:" in result.message


@pytest.mark.parametrize("firmware", FIRMWARES)
def test_until_matches_a_whole_screen_drawn_at_once(tmp_path, firmware):
    # 25 rows written by one rep movsw; the text asked for is on the first row, so a
    # matcher that keeps only the last few hundred streamed characters would miss it.
    iso = boot_program(tmp_path, """
    mov di, 0x8000          ; build the frame off screen: 25 rows of filler...
    mov ax, 0x072E
    mov cx, 80*25
    cld
    rep stosw
    mov si, marker          ; ...with the marker on the first row
    mov di, 0x8000
.copy:
    lodsb
    test al, al
    jz .show
    mov ah, 0x07
    stosw
    jmp .copy
.show:
    mov ax, 0xB800          ; then show it with one instruction
    mov es, ax
    mov si, 0x8000
    xor di, di
    mov cx, 80*25
    rep movsw
.spin:
    jmp .spin
marker: db 'FIRST ROW MARKER', 0
""")
    assert iso.stat().st_size > 0
    result = boot(iso, firmware, until="FIRST ROW MARKER", guest_timeout=30)
    assert result.status is ExitStatus.OK, result.message
    assert result.screen.splitlines()[0].startswith("FIRST ROW MARKER....")


@pytest.mark.parametrize("firmware", FIRMWARES)
def test_a_spinning_guest_is_stopped_by_the_wall_clock_timeout(tmp_path, firmware):
    iso = boot_program(tmp_path, "cli\n.spin:\n jmp .spin\n")
    started = time.monotonic()
    result = boot(iso, firmware, timeout=2)
    elapsed = time.monotonic() - started
    assert result.status is ExitStatus.LIMIT
    assert "time limit of 2 s" in result.message
    assert elapsed < 3.0


@pytest.mark.parametrize("firmware", FIRMWARES)
def test_guest_timeout_stops_at_the_same_instruction_every_run(tmp_path, firmware):
    iso = boot_program(tmp_path, "cli\n.spin:\n inc eax\n jmp .spin\n")
    runs = [boot(iso, firmware, guest_timeout=0.5) for _ in range(2)]
    assert all(r.status is ExitStatus.LIMIT for r in runs)
    assert runs[0].instructions == runs[1].instructions == 50_000_000


COMPUTE_SECONDS = 10.0
"""Guest seconds of silent computing (ten times the quiet time that could otherwise mean
"waiting for input")."""


@pytest.mark.parametrize("firmware", FIRMWARES)
def test_a_guest_that_computes_silently_is_never_called_waiting(tmp_path, firmware):
    # Interrupts on (the timer ticks), no output, no keyboard, no halt: it computes.
    iso = boot_program(tmp_path, """
.spin:
    imul eax, eax, 33
    add eax, ecx
    inc ecx
    jmp .spin
""")
    result = boot(iso, firmware, guest_timeout=COMPUTE_SECONDS)
    assert result.status is ExitStatus.LIMIT, result.message
    assert result.virtual_seconds >= COMPUTE_SECONDS


@pytest.mark.parametrize("firmware", FIRMWARES)
def test_a_guest_that_polls_the_keyboard_in_silence_waits_for_input(tmp_path, firmware):
    iso = boot_program(tmp_path, """
    mov al, '>'
    call putc
.poll:
    mov ah, 0x01
    int 0x16
    jz .poll
    cli
.halt:
    hlt
    jmp .halt
""")
    result = boot(iso, firmware, guest_timeout=30)
    assert result.status is ExitStatus.OK, result.message
    assert "waits for keyboard input" in result.message
    result = boot(iso, firmware, guest_timeout=30, until="never printed")
    assert result.status is ExitStatus.UNTIL_NOT_SEEN


@pytest.mark.parametrize("firmware", FIRMWARES)
def test_a_guest_that_halts_with_interrupts_on_waits_for_input(tmp_path, firmware):
    iso = boot_program(tmp_path, ".wait:\n hlt\n jmp .wait\n")
    result = boot(iso, firmware, guest_timeout=60)
    assert result.status is ExitStatus.OK, result.message
    assert "waits for keyboard input" in result.message
    assert 30 <= result.virtual_seconds < 35  # halts alone: HALT_QUIET_SECONDS of quiet


def test_limits_that_cannot_be_honoured_are_refused():
    for bad in ({"timeout": float("inf")}, {"guest_timeout": float("nan")}, {"timeout": 0},
                {"max_instructions": 0}):
        with pytest.raises(ValueError):
            run_boot(BootOptions(**bad))  # type: ignore[arg-type]


@pytest.mark.parametrize("firmware", FIRMWARES)
def test_a_session_resumes_where_it_stopped_with_new_keys_and_text(tmp_path, firmware):
    from emu.boot import boot_session

    iso = boot_program(tmp_path, """
.prompt:
    mov al, '>'
    call putc
    xor ah, ah
    int 0x16                ; wait for a key
    push ax
    mov al, 'G'
    call putc
    pop ax
    call putc
    mov al, 10
    call putc
    jmp .prompt
""")
    session = boot_session(BootOptions(iso=iso, firmware=firmware))
    try:
        first = session.resume(until=">")
        assert first.status is ExitStatus.OK, first.message
        second = session.resume(until="Gx", keys="x")
        assert second.status is ExitStatus.OK, second.message
        third = session.resume(keys="yz", until="Gz")
        assert third.status is ExitStatus.OK, third.message
        assert third.serial.count(">") >= 3 and "Gy" in third.serial
    finally:
        session.close()


@pytest.mark.parametrize("firmware", FIRMWARES)
def test_com1_is_a_16550a_whose_interrupt_reaches_the_guest_on_irq4(tmp_path, firmware):
    # Scratch register, FIFO bits in IIR, then a THR-empty interrupt through the 8259 on
    # IRQ 4 (vector 0Ch in real mode), handled by the guest's own IVT entry.
    iso = boot_program(tmp_path, """
    mov dx, 0x3FF           ; scratch register keeps what is written
    mov al, 0x5A
    out dx, al
    in al, dx
    call putc
    mov dx, 0x3FA           ; FCR: enable FIFOs; IIR then reads C1h (no interrupt)
    mov al, 0x07
    out dx, al
    in al, dx
    movzx eax, al
    call hex32
    cli
    mov word [0x0C*4], irq4
    mov word [0x0C*4+2], 0
    in al, 0x21
    and al, ~0x10           ; unmask IRQ 4 at the master 8259
    out 0x21, al
    mov dx, 0x3FC           ; MCR: OUT2 routes the UART's interrupt to the PC's IRQ 4
    mov al, 0x08
    out dx, al
    mov dx, 0x3F9           ; IER: THR empty
    mov al, 0x02
    out dx, al
    sti
.wait:
    cmp byte [got], 0
    je .wait
    mov al, '!'
    call putc
    cli
.halt:
    hlt
    jmp .halt
irq4:
    push ax
    push dx
    mov dx, 0x3FA           ; reading IIR (02h: THR empty) clears the THRE interrupt
    in al, dx
    mov [got], al
    mov dx, 0x3F9
    xor al, al
    out dx, al
    mov al, 0x20
    out 0x20, al
    pop dx
    pop ax
    iret
got: db 0
""")
    result = boot(iso, firmware, guest_timeout=20)
    assert result.status is ExitStatus.OK, result.message
    assert result.serial.startswith("Z000000C1!")


def test_a_cpu_run_of_many_tiny_engine_runs_still_honours_the_wall_clock(monkeypatch):
    # A guest the engine keeps stopping after a block or two (seen with Linux) must not
    # keep Cpu.run from returning to the session's wall-clock check.
    import emu.pc.cpu as cpu_module
    from emu.pc.cpu import StopReason
    from tests.test_cpu import make_cpu

    monkeypatch.setattr(cpu_module, "MAX_SLICE", 2)
    cpu, memory, _ = make_cpu()
    memory.write(0x7C00, b"\x40\x40\xeb\xfc")  # inc ax; inc ax; jmp back
    cpu.reset_real_mode(0, 0x7C00, ss=0, sp=0x7000)
    cpu.wall_deadline = time.monotonic() - 1
    started = time.monotonic()
    outcome = cpu.run(10**12)
    assert outcome.reason is StopReason.WALL_CLOCK
    assert time.monotonic() - started < 1.0
