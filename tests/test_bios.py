"""BIOS services, called by small real-mode programs on the CPU after a real firmware boot."""

from __future__ import annotations

import struct

import pytest

from emu.boot import BootOptions, Session, boot_session
from emu.pc.cpu import StopReason
from emu.pc.keyboard import key_code, parse_keys
from images.emulation import build_floppy_boot_iso
from tests.test_cpu import NASM, assemble

pytestmark = [pytest.mark.usefixtures("both_clocks"),  # every boot, with each clock
              pytest.mark.skipif(NASM is None, reason="nasm is not installed")]

OUT = 0x600
"""Where the test programs store results."""


_sessions: list[Session] = []


@pytest.fixture(autouse=True)
def _close_media():
    yield
    while _sessions:
        _sessions.pop().close()


def run_program(tmp_path, body: str, keys: str = "", limit: int = 20_000_000,
                iso=None) -> Session:
    """Boot the sample (or ``iso``) through the firmware, then run ``body`` at 0000:7C00."""
    session = boot_session(BootOptions(iso=iso, keys=keys))
    _sessions.append(session)
    session.power_on()
    code = assemble(f"bits 16\norg 0x7C00\nxor ax, ax\nmov ds, ax\nmov es, ax\n{body}\n"
                    "halt: cli\nhlt\njmp halt\n", tmp_path)
    session.board.memory.write(0x7C00, code)
    session.cpu.reset_real_mode(0, 0x7C00, ss=0, sp=0x7000)
    session.cpu.set_reg("edx", 0xE0)
    assert session.cpu.run(limit).reason is StopReason.HALTED
    return session


def u16(session: Session, offset: int) -> int:
    return session.board.memory.read_u16(OUT + offset)


def u32(session: Session, offset: int) -> int:
    return session.board.memory.read_u32(OUT + offset)


def u8(session: Session, offset: int) -> int:
    return session.board.memory.read_u8(OUT + offset)


# -- INT 10h ---------------------------------------------------------------------------


def test_int10_write_char_and_set_cursor_draw_like_syslinux(tmp_path):
    s = run_program(tmp_path, """
    mov ah, 0x02
    xor bh, bh
    mov dx, 0x0305          ; row 3, column 5
    int 0x10
    mov ax, 0x0941          ; 'A'
    mov bx, 0x001E
    mov cx, 3
    int 0x10
    mov ah, 0x03
    xor bh, bh
    int 0x10
    mov [0x600], dx
    mov ah, 0x0F
    int 0x10
    mov [0x602], ax
    """)
    assert s.firmware.screen.text().splitlines()[3] == "     AAA"
    assert s.firmware.screen.cells()[3, 5, 1] == 0x1E
    assert u16(s, 0) == 0x0305  # AH=09h leaves the cursor where it was
    assert u16(s, 2) == 0x5003  # 80 columns, mode 3
    ram = s.board.memory
    assert ram.read_u16(0x44A) == 80 and ram.read_u8(0x484) == 24


def test_int10_teletype_scrolls_and_streams(tmp_path):
    s = run_program(tmp_path, """
    mov cx, 30
line:
    mov ax, 0x0E58          ; 'X'
    int 0x10
    mov ax, 0x0E0D
    int 0x10
    mov ax, 0x0E0A
    int 0x10
    loop line
    """)
    assert s.firmware.screen.text().splitlines() == ["X"] * 24
    assert "".join(s.firmware.screen.stream) == "\n".join(["X"] * 30)


# -- INT 13h ---------------------------------------------------------------------------


def test_int13_edd_check_and_drive_parameters_for_the_cd(tmp_path):
    s = run_program(tmp_path, """
    mov ah, 0x41
    mov bx, 0x55AA
    mov dl, 0xE0
    int 0x13
    mov [0x600], bx
    mov [0x602], ax
    mov word [0x700], 0x1E
    mov ah, 0x48
    mov dl, 0xE0
    mov si, 0x700
    int 0x13
    setc [0x604]
    """)
    assert u16(s, 0) == 0xAA55 and u16(s, 2) >> 8 == 0x30
    assert s.board.memory.read_u8(OUT + 4) == 0
    size, flags, *_chs, sectors, bps = struct.unpack_from(
        "<HHIIIQH", s.board.memory.read(0x700, 0x1A))
    assert bps == 2048 and sectors == s.media[0].sector_count and flags & 0x04


def test_int13_el_torito_status_packet(tmp_path):
    s = run_program(tmp_path, """
    mov ax, 0x4B01
    mov dl, 0xE0
    mov si, 0x700
    int 0x13
    setc [0x600]
    """)
    packet = s.board.memory.read(0x700, 0x13)
    assert s.board.memory.read_u8(OUT) == 0
    assert packet[0] == 0x13 and packet[1] == 0 and packet[2] == 0xE0
    assert int.from_bytes(packet[4:8], "little") == s.firmware.bios.image.entry.load_rba
    assert int.from_bytes(packet[0x0C:0x0E], "little") == 0x07C0


def test_int13_cd_reset_and_status_of_the_last_operation(tmp_path):
    """AH=00h resets; AH=01h returns the previous status in AH, CF set if it was an
    error (Ralf Brown INT 13/AH=01h), per drive class: 40:74h for DL bit 7 set,
    40:41h for floppies."""
    s = run_program(tmp_path, """
    mov ah, 0x43            ; EDD write to the CD: 03h write-protected
    mov dl, 0xE0
    mov si, 0x700
    int 0x13
    setc [0x600]
    mov [0x602], ax
    mov ah, 0x01
    mov dl, 0xE0
    int 0x13
    setc [0x604]
    mov [0x606], ax
    mov al, [0x474]
    mov [0x608], al
    mov ah, 0x00            ; reset
    mov dl, 0xE0
    int 0x13
    setc [0x609]
    mov [0x60A], ax
    mov ah, 0x02            ; a floppy read: no drive 00h on a no-emulation boot
    mov al, 1
    mov cx, 1
    xor dx, dx
    mov bx, 0x8000
    int 0x13
    setc [0x60C]
    mov ah, 0x01            ; the CD's status is the reset's, not the floppy's
    mov dl, 0xE0
    int 0x13
    setc [0x60D]
    mov [0x60E], ax
    mov ah, 0x01
    mov dl, 0x00
    int 0x13
    setc [0x610]
    mov [0x612], ax
    """)
    assert u8(s, 0) == 1 and u16(s, 2) >> 8 == 0x03
    assert u8(s, 4) == 1 and u16(s, 6) >> 8 == 0x03 and u8(s, 8) == 0x03
    assert u8(s, 9) == 0 and u16(s, 0xA) >> 8 == 0x00
    assert u8(s, 0xC) == 1
    assert u8(s, 0xD) == 0 and u16(s, 0xE) >> 8 == 0x00
    assert u8(s, 0x10) == 1 and u16(s, 0x12) >> 8 == 0x01  # 01h: invalid (no such drive)
    assert s.board.memory.read_u8(0x474) == 0 and s.board.memory.read_u8(0x441) == 0x01


def test_int13_get_disk_type_of_the_cd(tmp_path):
    """AH=15h: AH=02h, a removable drive with change-line support, CF clear (RBIL
    INT 13/AH=15h); no such drive: CF set."""
    s = run_program(tmp_path, """
    mov ah, 0x15
    mov dl, 0xE0
    int 0x13
    setc [0x600]
    mov [0x602], ax
    mov ah, 0x15
    mov dl, 0x81
    int 0x13
    setc [0x604]
    """)
    assert u8(s, 0) == 0 and u16(s, 2) >> 8 == 0x02
    assert u8(s, 4) == 1


def test_int13_4b00_without_emulation_returns_the_packet_and_keeps_the_cd(tmp_path):
    """AX=4B00h on a no-emulation boot (El Torito §5.3): CF clear, the 13h-byte
    specification packet at DS:SI, and drive E0h goes on working."""
    s = run_program(tmp_path, """
    mov di, 0x700
    mov cx, 0x20
    mov al, 0xCC
    rep stosb
    mov ax, 0x4B00
    mov dl, 0xE0
    mov si, 0x700
    int 0x13
    setc [0x600]
    mov [0x602], ax
    mov si, dap
    mov ah, 0x42
    mov dl, 0xE0
    int 0x13
    setc [0x604]
    mov ax, 0x4B00
    mov dl, 0x81            ; not a drive of this boot
    mov si, 0x740
    int 0x13
    setc [0x605]
    jmp halt
align 4
dap: db 16, 0
    dw 1
    dw 0x0000, 0x2000
    dq 16
    """)
    (entry,) = s.media[0].boot_entries()
    assert entry.media_type == 0
    assert u8(s, 0) == 0 and u16(s, 2) == 0x0000
    packet = s.board.memory.read(0x700, 0x14)
    size, media, drive, controller, lba, spec, cache, segment, count, ch, cl, dh = (
        struct.unpack_from("<BBBBIHHHHBBB", packet))
    assert (size, media, drive) == (0x13, 0x00, 0xE0)
    # The drive's place: BootOptions' channel (secondary by default) and master/slave.
    assert controller == s.options.bus == 1 and spec & 1 == s.options.device == 0
    assert lba == entry.load_rba and cache == 0
    assert segment == (entry.load_segment or 0x07C0) and count == entry.sector_count
    assert (ch, cl, dh) == (0, 0, 0)  # no emulated geometry
    assert packet[0x13] == 0xCC  # 13h bytes, no more
    assert u8(s, 4) == 0 and s.board.memory.read(0x20001, 5) == b"CD001"
    assert u8(s, 5) == 1


@pytest.mark.parametrize(("media_type", "spt"), [(1, 15), (2, 18), (3, 36)])
def test_int13_4b01_then_4b00_ends_floppy_emulation(tmp_path, media_type, spt):
    """Floppy emulation (El Torito §5.3): the packet carries the AH=08h-style
    geometry (CH = last cylinder 4Fh, CL = sectors per track, DH = last head 1);
    AX=4B00h DL=7Fh terminates every emulated drive, so drive 00h is gone."""
    iso = build_floppy_boot_iso(tmp_path / "floppy.iso", media_type)
    s = run_program(tmp_path, """
    mov ax, 0x4B01
    mov dl, 0x00
    mov si, 0x700
    int 0x13
    setc [0x600]
    int 0x11
    mov [0x602], ax
    mov ax, 0x0201          ; CHS 0/0/1 of the emulated floppy: its boot sector
    mov cx, 0x0001
    xor dx, dx
    mov bx, 0x8000
    int 0x13
    setc [0x604]
    mov ax, 0x4B00
    mov dl, 0x7F
    mov si, 0x720
    int 0x13
    setc [0x605]
    mov ax, 0x0201
    mov cx, 0x0001
    xor dx, dx
    mov bx, 0x8200
    int 0x13
    setc [0x606]
    mov [0x608], ax
    """, iso=iso)
    (entry,) = s.media[0].boot_entries()
    assert entry.media_type == media_type
    assert u8(s, 0) == 0
    packet = s.board.memory.read(0x700, 0x13)
    assert packet[0:3] == bytes([0x13, media_type, 0x00])
    assert int.from_bytes(packet[4:8], "little") == entry.load_rba
    assert int.from_bytes(packet[0x0C:0x0E], "little") == 0x07C0  # catalog says 0
    assert packet[0x10:0x13] == bytes([0x4F, spt, 0x01])
    assert u16(s, 2) & 0x00C1 == 0x0001  # one diskette drive: bit 0, bits 6-7 = 00
    assert u8(s, 4) == 0
    assert s.board.memory.read(0x8000, 512) == bytes(s.media[0].read(entry.load_rba, 1))[:512]
    assert u8(s, 5) == 0 and s.board.memory.read(0x720, 3) == packet[0:3]
    assert u8(s, 6) == 1 and u16(s, 8) >> 8 == 0x01  # drive 00h no longer exists


def test_int13_unknown_drive_sets_cf(tmp_path):
    s = run_program(tmp_path, """
    mov ah, 0x08
    mov dl, 0x81
    int 0x13
    setc [0x600]
    mov [0x602], ax
    """)
    assert s.board.memory.read_u8(OUT) == 1
    assert u16(s, 2) >> 8 == 0x01


def test_int13_extended_read_lands_in_memory_through_the_drive(tmp_path):
    s = run_program(tmp_path, """
    mov si, dap
    mov ah, 0x42
    mov dl, 0xE0
    int 0x13
    setc [0x600]
    jmp halt
align 4
dap: db 16, 0
    dw 2
    dw 0x0000, 0x2000
    dq 16
    """)
    assert s.board.memory.read_u8(OUT) == 0
    assert s.board.memory.read(0x20000, 2048) == bytes(s.media[0].read(16, 1))
    assert s.board.memory.read(0x20800, 6)[1:6] == b"CD001"
    assert s.firmware.bios.sectors_read == 2


# -- the IVT holds real stubs ------------------------------------------------------------


def test_far_calling_an_ivt_vector_reaches_the_service_and_returns_flags(tmp_path):
    s = run_program(tmp_path, """
    mov ax, 0x0E46          ; 'F' by pushf; call far [10h*4]
    pushf
    call far [0x10*4]
    mov ah, 0x00
    mov dl, 0x81            ; unknown drive: CF comes back through the stacked FLAGS
    pushf
    call far [0x13*4]
    setc [0x600]
    mov ah, 0x00
    mov dl, 0xE0
    pushf
    call far [0x13*4]
    setc [0x601]
    """)
    assert s.firmware.screen.text().startswith("F")
    assert s.board.memory.read_u8(OUT) == 1
    assert s.board.memory.read_u8(OUT + 1) == 0


def test_a_hooked_int1c_sees_timer_ticks_and_int1a_counts_them(tmp_path):
    s = run_program(tmp_path, """
    cli
    mov word [0x1C*4], tick
    mov word [0x1C*4+2], 0
    sti
again:
    hlt
    cmp word [0x600], 5
    jb again
    mov ah, 0x00
    int 0x1A
    mov [0x602], dx
    jmp halt
tick:
    inc word [cs:0x600]
    iret
    """, limit=200_000_000)
    assert u16(s, 0) == 5
    assert u16(s, 2) == 5 and s.board.memory.read_u32(0x46C) == 5


# -- INT 15h / 11h / 12h ------------------------------------------------------------------


def test_int15_e820_map_and_legacy_sizes(tmp_path):
    s = run_program(tmp_path, """
    xor ebx, ebx
    mov di, 0x700
next:
    mov eax, 0xE820
    mov edx, 0x534D4150
    mov ecx, 20
    int 0x15
    jc done
    add di, 20
    inc word [0x600]
    test ebx, ebx
    jnz next
done:
    mov ax, 0xE801
    int 0x15
    mov [0x602], ax
    mov ah, 0x88
    int 0x15
    mov [0x604], ax
    int 0x12
    mov [0x606], ax
    mov ax, 0x2401
    int 0x15
    setc [0x608]
    mov ah, 0xC0
    int 0x15
    mov [0x60A], bx
    mov [0x60C], es
    """)
    count = u16(s, 0)
    entries = [struct.unpack_from("<QQI", s.board.memory.read(0x700 + 20 * i, 20))
               for i in range(count)]
    assert entries == s.firmware.bios.e820_map()
    assert (0, 0x9FC00, 1) in entries and entries[3][0] == 0x100000
    # E801h AX counts 1 KiB blocks between 1 and 16 MiB (at most 15 MiB); 88h the same,
    # capped at FFFFh.  The e820 map ends at the top of RAM (256 MiB by default).
    above_1m = (s.firmware.bios.bounce - 0x100000) // 1024
    assert u16(s, 2) == min(above_1m, 15 * 1024) and u16(s, 4) == min(above_1m, 0xFFFF)
    assert entries[-1][0] + entries[-1][1] == s.board.memory_map.low == 256 << 20
    assert u16(s, 6) == 639
    assert s.board.memory.read_u8(OUT + 8) == 0
    table = (u16(s, 0xC) << 4) + u16(s, 0xA)
    assert s.board.memory.read_u8(table + 2) == 0xFC


def test_int15_86h_waits_and_timer_ticks_go_on_meanwhile(tmp_path):
    """AH=86h: CX:DX microseconds, CF clear, AH=00h (RBIL INT 15/AH=86h).  One second
    with interrupts on lets IRQ 0 count 18 ticks at 40:6Ch (1193182 / 65536 Hz)."""
    s = run_program(tmp_path, """
    sti
    mov eax, [0x46C]
    mov [0x600], eax
    mov ah, 0x86
    mov cx, 0x000F          ; 000F4240h = 1,000,000 us
    mov dx, 0x4240
    int 0x15
    setc [0x608]
    mov [0x60A], ax
    mov eax, [0x46C]
    mov [0x604], eax
    mov ah, 0x86
    xor cx, cx
    mov dx, 1000            ; 1 ms: shorter than a tick
    int 0x15
    setc [0x60C]
    mov eax, [0x46C]
    mov [0x60E], eax
    """, limit=400_000_000)
    assert u8(s, 8) == 0 and u16(s, 0xA) >> 8 == 0x00
    assert 18 <= u32(s, 4) - u32(s, 0) <= 19
    assert u8(s, 0xC) == 0 and u32(s, 0xE) - u32(s, 4) <= 1


def test_int11_equipment_list(tmp_path):
    """INT 11h = BDA 40:10h (RBIL INT 11): bit 1 FPU, bits 4-5 = 10b 80x25 colour,
    bits 9-11 = one serial port (COM1 at 3F8h), no diskette on a no-emulation boot."""
    s = run_program(tmp_path, """
    int 0x11
    mov [0x600], ax
    """)
    assert s.board.memory.read_u16(0x400) == 0x3F8
    assert u16(s, 0) == 0x0222 == s.board.memory.read_u16(0x410)


# -- INT 16h ------------------------------------------------------------------------------


def test_int16_types_scripted_keys_when_the_guest_waits(tmp_path):
    s = run_program(tmp_path, """
    mov ah, 0x00
    int 0x16
    mov [0x600], ax
poll:
    mov ah, 0x01
    int 0x16
    jz poll
    mov ah, 0x00
    int 0x16
    mov [0x602], ax
    """, keys="a\\r")
    assert u16(s, 0) == key_code("a") == 0x1E61
    assert u16(s, 2) == 0x1C0D


def test_parse_keys_escapes_and_named_keys():
    assert parse_keys("ls\\r") == [0x266C, 0x1F73, 0x1C0D]
    assert parse_keys("{down}\\e\\x41") == [0x5000, 0x011B, key_code("A")]
    assert key_code("A") == 0x1E41 and key_code("?") == 0x353F


# -- serial and debug ports ---------------------------------------------------------------


def test_com1_and_port_e9_output_is_captured(tmp_path):
    s = run_program(tmp_path, """
    mov dx, 0x3F8
    mov al, 'S'
    out dx, al
    mov ax, 0x0149          ; INT 14h AH=01h: send 'I'
    xor dx, dx
    int 0x14
    mov al, 'E'
    out 0xE9, al
    mov al, 0x42
    out 0x80, al
    """)
    assert bytes(s.board.uart.output) == b"SI"
    assert bytes(s.board.debug.output) == b"E"
    assert s.board.debug.post_codes == [0x42]
    assert "".join(s.serial_text) == "SIE"
