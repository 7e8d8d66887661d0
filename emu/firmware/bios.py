"""BIOS services for a CD boot, in Python, on top of the firmware's ATAPI driver.

What a boot loader calls (IBM PC/AT Technical Reference BIOS interface;
Phoenix Enhanced Disk Drive Specification 3.0 for INT 13h AH=41h-48h; El
Torito 1.0 §5 for INT 13h AX=4B00h/4B01h and the emulated drives; ACPI §15
for INT 15h E820h):

* INT 10h text video over :class:`~emu.firmware.video.Screen`; INT 11h, 12h;
* INT 13h: the CD as drive E0h (2048-byte sectors, reads by EDD packet),
  an emulated floppy as drive 00h or an emulated hard disk as drive 80h
  (512-byte sectors served from the El Torito image, CHS and EDD reads).
  Every sector comes from the drive by READ(10) through the IDE ports, via
  :class:`~emu.firmware.ata.AtaHostDriver` — by bus-master DMA straight into
  guest RAM when the board has the engine, else by PIO; nothing reads the
  image file;
* INT 14h COM1, INT 15h memory map and waits, INT 16h keyboard, INT 1Ah clock,
  INT 18h/19h (end of the boot), INT 08h timer tick → INT 1Ch.

**The IVT holds real stubs.**  Vector *n* points at F000:E000 + 4n, four
bytes of real code: ``nop; iret; jmp short -4`` (vector 08h: ``nop; int 1Ch;
iret``).  A range-limited ``UC_HOOK_CODE`` over the stub table serves the BIOS
function when the ``nop`` is about to run; results in CF/ZF go into the FLAGS
image the caller's ``int`` or ``pushf; call far`` left on the stack.  A loader
that far-calls a vector, or hooks one (1Ch, 13h) and chains to the old value,
therefore reaches the service exactly as on a PC.  As a shortcut, an ``int n``
whose vector still points at our own stub is served straight from the CPU's
interrupt hook (no frame, flags set live): same service, a tenth of the cost.

Writes into guest RAM: sector data goes through :class:`GuestMemory` (its
listeners drop translated code, pitfall 4); result packets and stacked FLAGS
through ``uc.mem_write``, which Unicorn invalidates itself; BIOS data area
counters and the text screen at B8000h are written straight into the array
(data pages no guest executes).

A service that must wait (INT 16h AH=00h on an empty buffer) rewinds to retry
(the ``int`` instruction, or the stub's ``jmp`` back to its ``nop``) and asks
the CPU to sleep until the next timer tick, so the clock and IRQ 0 go on.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from unicorn import UC_HOOK_CODE, Uc
from unicorn import x86_const as X

from devices.platform.cmos import Cmos
from devices.platform.pic import Pic8259Pair
from devices.platform.uart import Uart16550
from emu.firmware.ata import (
    PRD_TABLE,
    SCRATCH,
    SECTOR,
    AtaHostDriver,
    AtapiDevice,
    FirmwareError,
)
from emu.firmware.eltorito import LoadedImage
from emu.firmware.video import COLUMNS, ROWS, Screen
from emu.pc.cpu import FLAG_CF, FLAG_ZF, Cpu
from emu.pc.engine import UC_SEGMENT, RegisterBatch, Registers
from emu.pc.keyboard import Keyboard

BIOS_SEGMENT = 0xF000
STUB_OFFSET = 0xE000
STUB_SIZE = 4
STUB_BASE = (BIOS_SEGMENT << 4) + STUB_OFFSET
CONFIG_TABLE_OFFSET = 0xE6F5
DISKETTE_TABLE_OFFSET = 0xEFC7
EBDA_SEGMENT = 0x9FC0
CONVENTIONAL_KB = EBDA_SEGMENT * 16 // 1024
CDROM_DRIVE = 0xE0
PRD_AREA = 64
"""Bytes of the driver's PRD table the BIOS preserves for the guest (up to 8 entries)."""
BOUNCE_SIZE = 0x10000
"""The BIOS's own sector buffer, at the top of RAM (reserved in the E820 map)."""

# INT 13h status codes (AH), as the BIOS writes them to BDA 40:41h / 40:74h.
DISK_OK, DISK_BAD_COMMAND, DISK_NOT_FOUND, DISK_WRITE_PROTECTED = 0x00, 0x01, 0x04, 0x03
DISK_CHANGED, DISK_CONTROLLER, DISK_NO_MEDIA = 0x06, 0x20, 0x31

EMULATED_GEOMETRY = {1: (80, 2, 15), 2: (80, 2, 18), 3: (80, 2, 36)}
"""El Torito §2.2 media types → (cylinders, heads, sectors per track)."""
FLOPPY_DRIVE_TYPE = {1: 2, 2: 4, 3: 6}
"""INT 13h AH=08h BL drive type for 1.2M, 1.44M, 2.88M."""


@dataclass
class EmulatedDisk:
    """A floppy or hard disk served from an El Torito image (El Torito §3)."""

    number: int
    media_type: int
    image_lba: int
    """First 2048-byte CD sector of the image."""
    cylinders: int
    heads: int
    spt: int

    @property
    def sectors(self) -> int:
        return self.cylinders * self.heads * self.spt


@dataclass(frozen=True)
class BiosStop:
    """The guest ended the boot (INT 18h/19h), crashed, or waits for input forever."""

    kind: str
    message: str


class Bios:
    """BIOS data, IVT stubs and services for one boot."""

    def __init__(
        self,
        cpu: Cpu,
        driver: AtaHostDriver,
        pic: Pic8259Pair,
        keyboard: Keyboard,
        screen: Screen,
        serial: Uart16550 | None = None,
        cmos: Cmos | None = None,
        on_stop: Callable[[BiosStop], None] | None = None,
        ram_top: int | None = None,
        high_ram: int = 0,
        on_input_poll: Callable[[], None] | None = None,
    ) -> None:
        self.cpu = cpu
        self.uc: Uc = cpu.uc
        self._regs = Registers(self.uc)  # a BIOS call reads and writes a few registers
        self._abcd = RegisterBatch(self.uc, [X.UC_X86_REG_EAX, X.UC_X86_REG_EBX,
                                             X.UC_X86_REG_ECX, X.UC_X86_REG_EDX])
        self.ram = cpu.ram
        self.memory = cpu.memory
        self.driver = driver
        self.pic = pic
        self.keyboard = keyboard
        self.screen = screen
        self.serial = serial
        self.cmos = cmos
        self.on_stop = on_stop
        self.on_input_poll = on_input_poll
        """Told each time the guest polls INT 16h and finds no key."""
        self.ram_top = self.memory.size if ram_top is None else ram_top
        """End of RAM below 4 GiB (the board's memory map)."""
        self.high_ram = high_ram
        """Bytes of RAM from 4 GiB up."""
        self.cdrom: AtapiDevice | None = None
        self.cd_capacity = 0
        self.image: LoadedImage | None = None
        self.emulated: EmulatedDisk | None = None
        self.bounce = self.ram_top - BOUNCE_SIZE
        self.calls: dict[tuple[int, int], int] = {}
        """(vector, AH) → count, for reports and tests."""
        self.sectors_read = 0
        self.dma_reads = 0
        """READ(10) runs done by bus-master DMA (the rest by PIO)."""
        self._frame: int | None = None
        self._retry_ip: int | None = None
        self._wait_until: int | None = None
        """INT 15h AH=86h: the clock reading the current wait ends at."""
        self._services: dict[int, Callable[[], None]] = {
            0x08: self.int08_timer, 0x10: self.int10_video, 0x11: self.int11_equipment,
            0x12: self.int12_memory, 0x13: self.int13_disk, 0x14: self.int14_serial,
            0x15: self.int15_system, 0x16: self.int16_keyboard, 0x17: self.int17_printer,
            0x18: self.int18_boot_failure, 0x19: self.int19_bootstrap, 0x1A: self.int1a_clock,
        }
        self._install()

    # -- setup ---------------------------------------------------------------------
    def stub_address(self, vector: int) -> tuple[int, int]:
        return BIOS_SEGMENT, STUB_OFFSET + vector * STUB_SIZE

    def _install(self) -> None:
        stubs = bytearray()
        for vector in range(256):
            stubs += b"\x90\xcd\x1c\xcf" if vector == 0x08 else b"\x90\xcf\xeb\xfc"
        ivt = bytearray(1024)
        for vector in range(256):
            seg, off = self.stub_address(vector)
            struct.pack_into("<HH", ivt, vector * 4, off, seg)
        for vector in (0x1D, 0x1F, 0x41, 0x43, 0x46, *range(0x60, 0x67)):
            struct.pack_into("<HH", ivt, vector * 4, 0, 0)  # tables/user vectors: none
        struct.pack_into("<HH", ivt, 0x1E * 4, DISKETTE_TABLE_OFFSET, BIOS_SEGMENT)
        self.memory.write(0, bytes(ivt))
        self.memory.write(STUB_BASE, bytes(stubs))
        rom = BIOS_SEGMENT << 4
        # INT 15h AH=C0h system configuration: 8 bytes, model FCh, 2nd PIC, RTC.
        self.memory.write(rom + CONFIG_TABLE_OFFSET,
                          bytes([8, 0, 0xFC, 0x00, 0x01, 0x74, 0x00, 0x00, 0x00, 0x00]))
        # INT 1Eh diskette parameter table (1.44M values).
        self.memory.write(rom + DISKETTE_TABLE_OFFSET,
                          bytes([0xAF, 0x02, 0x25, 0x02, 0x12, 0x1B, 0xFF, 0x6C, 0xF6, 0x0F, 0x08]))
        self.memory.write(rom + 0xFFF0, b"\xfa\xf4\xeb\xfd\x00" + b"01/01/24" + b"\x00\xfc\x00")
        # BIOS data area (40:00h) and EBDA.
        bda = bytearray(256)
        struct.pack_into("<H", bda, 0x00, 0x3F8 if self.serial is not None else 0)
        struct.pack_into("<H", bda, 0x0E, EBDA_SEGMENT)
        # Equipment word (INT 11h): FPU, 80x25 colour, bits 9-11 = serial ports.
        struct.pack_into("<H", bda, 0x10, 0x0022 | (0x0200 if self.serial is not None else 0))
        struct.pack_into("<H", bda, 0x13, CONVENTIONAL_KB)
        struct.pack_into("<HH", bda, 0x1A, 0x1E, 0x1E)
        struct.pack_into("<HH", bda, 0x80, 0x1E, 0x3E)
        self.memory.write(0x400, bytes(bda))
        self.memory.write(EBDA_SEGMENT << 4, bytes([1]) + bytes(1023))
        self.screen.set_mode(3)
        self.uc.hook_add(UC_HOOK_CODE, self._stub_hook, None, STUB_BASE,
                         STUB_BASE + 256 * STUB_SIZE - 1)
        self.cpu.software_interrupt = self._software_interrupt

    def attach_boot(self, image: LoadedImage) -> None:
        """Remember the boot device and set up floppy/hard-disk emulation (El Torito §3)."""
        self.image = image
        self.cdrom = image.device
        self.cd_capacity = self.driver.read_capacity(image.device)
        entry = image.entry
        if entry.media_type in EMULATED_GEOMETRY:
            cyl, heads, spt = EMULATED_GEOMETRY[entry.media_type]
            self.emulated = EmulatedDisk(0x00, entry.media_type, entry.load_rba, cyl, heads, spt)
            self.ram[0x410] |= 0x01  # one diskette drive
        elif entry.media_type == 4:
            mbr = self.memory.read(image.address, 512)
            heads, spt, total = 16, 63, 0
            for i in range(4):
                part = mbr[0x1BE + 16 * i : 0x1BE + 16 * i + 16]
                if part[4] == 0:
                    continue
                heads = part[5] + 1
                spt = part[6] & 0x3F or 63
                total = max(total, int.from_bytes(part[8:12], "little")
                            + int.from_bytes(part[12:16], "little"))
            if total == 0:
                total = max(1, (self.cd_capacity - entry.load_rba) * 4)
            cylinders = max(1, -(-total // (heads * spt)))
            self.emulated = EmulatedDisk(0x80, 4, entry.load_rba, cylinders, heads, spt)
            self.ram[0x475] = 1  # one hard disk

    @property
    def boot_drive(self) -> int:
        return self.emulated.number if self.emulated is not None else CDROM_DRIVE

    # -- dispatch ------------------------------------------------------------------
    def _software_interrupt(self, vector: int) -> bool:
        """The CPU's ``int n`` shortcut: serve it here if the IVT still points at our stub."""
        off, seg = struct.unpack_from("<HH", self.ram, vector * 4)
        if (seg, off) != self.stub_address(vector) or vector == 0x08:
            return False
        self._frame = None
        self._retry_ip = None
        self.service(vector)
        if self._retry_ip is not None:
            self._regs.write(X.UC_X86_REG_EIP, self._regs.read(X.UC_X86_REG_EIP) - 2)
            self.cpu.sleep()
        return True

    def _stub_hook(self, uc: Uc, address: int, size: int, _user: object) -> None:
        offset = address - STUB_BASE
        if offset % STUB_SIZE:
            return
        vector = offset // STUB_SIZE
        ss = self._regs.read(X.UC_X86_REG_SS)
        sp = self._regs.read(X.UC_X86_REG_ESP) & 0xFFFF
        self._frame = (ss << 4) + ((sp + 4) & 0xFFFF)
        self._retry_ip = None
        if vector < 0x08 and vector not in (1, 3, 4, 5):
            ip, cs = struct.unpack_from("<HH", self.ram, (ss << 4) + sp)
            names = {0: "divide error", 2: "NMI", 6: "invalid opcode", 7: "no coprocessor"}
            self._stop("crash", f"CPU exception {vector} ({names.get(vector, 'fault')}) "
                                f"at {cs:04X}:{ip:04X}")
            return
        self.service(vector)
        if self._retry_ip is not None:
            self._regs.write(X.UC_X86_REG_EIP, STUB_OFFSET + vector * STUB_SIZE + 2)
            self.cpu.sleep()

    def service(self, vector: int) -> None:
        """Run BIOS function ``vector`` on the current registers."""
        handler = self._services.get(vector)
        ah = (self._regs.read(X.UC_X86_REG_EAX) >> 8) & 0xFF
        key = (vector, ah)
        self.calls[key] = self.calls.get(key, 0) + 1
        if handler is not None:
            handler()
        elif 0x70 <= vector <= 0x77:
            self.pic.eoi(8 + vector - 0x70)
        elif 0x09 <= vector <= 0x0F:
            self.pic.eoi(vector - 0x08)

    def _stop(self, kind: str, message: str) -> None:
        if self.on_stop is not None:
            self.on_stop(BiosStop(kind, message))

    # -- register and flag helpers ---------------------------------------------------
    def _r(self, reg: int) -> int:
        return self._regs.read(reg)

    def _w(self, reg: int, value: int) -> None:
        if reg in UC_SEGMENT:
            self.cpu.load_segment(reg, value)  # a bare reg_write sets the selector only
            return
        self._regs.write(reg, value)

    def _ah(self) -> int:
        return (self._r(X.UC_X86_REG_EAX) >> 8) & 0xFF

    def _set_ah(self, value: int) -> None:
        eax = self._r(X.UC_X86_REG_EAX)
        self._w(X.UC_X86_REG_EAX, (eax & ~0xFF00) | ((value & 0xFF) << 8))

    def _set_al(self, value: int) -> None:
        eax = self._r(X.UC_X86_REG_EAX)
        self._w(X.UC_X86_REG_EAX, (eax & ~0xFF) | (value & 0xFF))

    def _set16(self, reg: int, value: int) -> None:
        self._w(reg, (self._r(reg) & 0xFFFF_0000) | (value & 0xFFFF))

    def _flags(self, cf: bool | None = None, zf: bool | None = None) -> None:
        """Set CF/ZF for the caller: live, or in the stacked FLAGS image of a stub call."""
        if self._frame is None:
            flags = self._r(X.UC_X86_REG_EFLAGS)
        else:
            flags = struct.unpack_from("<H", self.ram, self._frame)[0]
        if cf is not None:
            flags = (flags | FLAG_CF) if cf else (flags & ~FLAG_CF)
        if zf is not None:
            flags = (flags | FLAG_ZF) if zf else (flags & ~FLAG_ZF)
        if self._frame is None:
            self._w(X.UC_X86_REG_EFLAGS, flags)
        else:
            self.uc.mem_write(self._frame, struct.pack("<H", flags & 0xFFFF))

    def _ok(self) -> None:
        self._flags(cf=False)

    def _fail(self, ah: int = 0x86) -> None:
        self._set_ah(ah)
        self._flags(cf=True)

    def _seg_off(self, seg_reg: int, off_reg: int) -> int:
        return (self._r(seg_reg) << 4) + (self._r(off_reg) & 0xFFFF)

    def _wait(self) -> None:
        """Retry this call after the next timer tick."""
        self._retry_ip = 1

    # -- INT 08h / 1Ch: the timer tick ------------------------------------------------
    def int08_timer(self) -> None:
        """IRQ 0: count ticks at 40:6Ch (midnight at 1800B0h), EOI; the stub then does INT 1Ch."""
        ticks = struct.unpack_from("<I", self.ram, 0x46C)[0] + 1
        if ticks >= 0x1800B0:
            ticks = 0
            self.ram[0x470] = 1
        struct.pack_into("<I", self.ram, 0x46C, ticks)
        self.pic.eoi(0)

    # -- INT 10h: video --------------------------------------------------------------
    def int10_video(self) -> None:
        eax, ebx, ecx, edx = self._abcd.read()
        ah, al = (eax >> 8) & 0xFF, eax & 0xFF
        bh, bl = (ebx >> 8) & 0xFF, ebx & 0xFF
        cx, dh, dl = ecx & 0xFFFF, (edx >> 8) & 0xFF, edx & 0xFF
        scr = self.screen
        if ah == 0x0E:
            scr.teletype(al)
        elif ah == 0x02:
            scr.set_cursor(dh, dl, bh)
        elif ah == 0x09:
            scr.write_repeated(al, bl, cx, bh)
        elif ah == 0x0A:
            scr.write_repeated(al, None, cx, bh)
        elif ah == 0x03:
            row, col = scr.cursor(bh)
            self._set16(X.UC_X86_REG_EDX, (row << 8) | col)
            self._set16(X.UC_X86_REG_ECX, struct.unpack_from("<H", self.ram, 0x460)[0])
        elif ah == 0x00:
            scr.set_mode(al)
            self._set_al(0x30 if al & 0x7F <= 7 else 0x20)
        elif ah == 0x01:
            struct.pack_into("<H", self.ram, 0x460, cx)
        elif ah == 0x05:
            self.ram[0x462] = al & 7
        elif ah in (0x06, 0x07):
            scr.scroll(al, bh, (ecx >> 8) & 0xFF, ecx & 0xFF, dh, dl, up=ah == 0x06)
        elif ah == 0x08:
            row, col = scr.cursor(bh)
            cell = scr.cells(bh)[min(row, ROWS - 1), min(col, COLUMNS - 1)]
            self._set16(X.UC_X86_REG_EAX, (int(cell[1]) << 8) | int(cell[0]))
        elif ah == 0x0F:
            self._set16(X.UC_X86_REG_EAX, (COLUMNS << 8) | int(self.ram[0x449]))
            self._w(X.UC_X86_REG_EBX, (ebx & ~0xFF00) | (scr.page << 8))
        elif ah == 0x11 and al == 0x30:
            self._set16(X.UC_X86_REG_ECX, 16)
            self._w(X.UC_X86_REG_EDX, (edx & ~0xFF) | (ROWS - 1))
        elif ah == 0x12 and bl == 0x10:
            self._set16(X.UC_X86_REG_EBX, 0x0003)
            self._set16(X.UC_X86_REG_ECX, 0x0009)
        elif ah == 0x13:
            self._write_string(al, bh, bl, cx, dh, dl)
        elif ah == 0x1A and al == 0x00:
            self._set16(X.UC_X86_REG_EAX, 0x001A)
            self._set16(X.UC_X86_REG_EBX, 0x0008)
        elif ah == 0x4F:
            self._set16(X.UC_X86_REG_EAX, 0x014F)  # VBE: call failed, stay in text mode
        # Anything else (palette, fonts, ...) is accepted and ignored, as on a text VGA.

    def _write_string(self, mode: int, page: int, attr: int, count: int, row: int, col: int
                      ) -> None:
        """INT 10h AH=13h: ES:BP string; mode bit 1 = (char, attr) pairs, bit 0 = move cursor."""
        src = self._seg_off(X.UC_X86_REG_ES, X.UC_X86_REG_EBP)
        saved = self.screen.cursor(page)
        self.screen.set_cursor(row, col, page)
        step = 2 if mode & 2 else 1
        for i in range(count):
            ch = int(self.ram[src + i * step])
            a = int(self.ram[src + i * step + 1]) if step == 2 else attr
            if ch in (0x07, 0x08, 0x0A, 0x0D):
                self.screen.teletype(ch, None, page)
            else:
                r, c = self.screen.cursor(page)
                self.screen.put(r, c, ch, a, page)
                c += 1
                if c >= COLUMNS:
                    r, c = r + 1, 0
                if r >= ROWS:
                    self.screen.scroll(1, 0x07, 0, 0, ROWS - 1, COLUMNS - 1, page=page)
                    r = ROWS - 1
                self.screen.set_cursor(r, c, page)
        if not mode & 1:
            self.screen.set_cursor(*saved, page)

    # -- INT 11h / 12h ---------------------------------------------------------------
    def int11_equipment(self) -> None:
        self._set16(X.UC_X86_REG_EAX, struct.unpack_from("<H", self.ram, 0x410)[0])

    def int12_memory(self) -> None:
        self._set16(X.UC_X86_REG_EAX, struct.unpack_from("<H", self.ram, 0x413)[0])

    # -- INT 13h: disks --------------------------------------------------------------
    def int13_disk(self) -> None:
        eax, edx = self._r(X.UC_X86_REG_EAX), self._r(X.UC_X86_REG_EDX)
        ah, dl = (eax >> 8) & 0xFF, edx & 0xFF
        if ah == 0x4B:
            self._eltorito_status(eax & 0xFF, dl)
            return
        if dl == CDROM_DRIVE and self.cdrom is not None:
            status = self._cd_function(ah)
        elif self.emulated is not None and dl == self.emulated.number:
            status = self._emulated_function(ah, self.emulated)
        else:
            status = DISK_BAD_COMMAND  # no such drive
        if status is None:
            return
        self.ram[self._status_byte(dl)] = status
        self._set_ah(status)
        self._flags(cf=status != DISK_OK)

    @staticmethod
    def _status_byte(drive: int) -> int:
        """BDA byte with the last status: 40:74h for hard disks (DL bit 7), else 40:41h."""
        return 0x474 if drive & 0x80 else 0x441

    def _eltorito_status(self, al: int, dl: int) -> None:
        """AX=4B00h (terminate emulation) / 4B01h (status): the specification packet (§5.3)."""
        image = self.image
        known = {0x7F, CDROM_DRIVE} | ({self.emulated.number} if self.emulated else set())
        if image is None or al not in (0, 1) or dl not in known:
            self._fail(DISK_BAD_COMMAND)
            return
        entry = image.entry
        emu = self.emulated
        cyl, heads, spt = (emu.cylinders, emu.heads, emu.spt) if emu else (0, 0, 0)
        packet = struct.pack(
            "<BBBBIHHHHBBB",
            0x13,
            entry.media_type,
            self.boot_drive,
            image.device.bus,  # controller index
            entry.load_rba,
            image.device.device,  # ATAPI: bit 0 = slave
            0,
            entry.segment if entry.media_type == 0 else 0x07C0,
            entry.sector_count,
            (cyl - 1) & 0xFF if emu else 0,
            (spt & 0x3F) | ((((cyl - 1) >> 8) & 3) << 6) if emu else 0,
            heads - 1 if emu else 0,
        )
        self.uc.mem_write(self._seg_off(X.UC_X86_REG_DS, X.UC_X86_REG_ESI), packet)
        if al == 0 and emu is not None and dl in (0x7F, emu.number):
            self.emulated = None  # 7Fh terminates every emulated drive (§5.3)
        self._set_ah(0)
        self._flags(cf=False)

    def _dap(self) -> tuple[int, int, int, int]:
        """An EDD disk address packet at DS:SI: (address, count, buffer, lba)."""
        dap = self._seg_off(X.UC_X86_REG_DS, X.UC_X86_REG_ESI)
        size, _, count, off, seg, lba = struct.unpack_from("<BBHHHQ", self.ram, dap)
        buffer = (seg << 4) + off
        if size >= 0x18 and (seg, off) == (0xFFFF, 0xFFFF):
            buffer = struct.unpack_from("<Q", self.ram, dap + 0x10)[0]
        return dap, count, buffer, lba

    def _edd_check(self) -> None:
        ebx = self._r(X.UC_X86_REG_EBX)
        if ebx & 0xFFFF != 0x55AA:
            self._fail(DISK_BAD_COMMAND)
            return
        self._set16(X.UC_X86_REG_EBX, 0xAA55)
        self._set16(X.UC_X86_REG_ECX, 0x0005)  # fixed-disk access + EDD subsets
        self._set_ah(0x30)  # EDD 3.0
        self._flags(cf=False)

    def _edd_params(self, sectors: int, sector_size: int, removable: bool,
                    chs: tuple[int, int, int] | None) -> int:
        addr = self._seg_off(X.UC_X86_REG_DS, X.UC_X86_REG_ESI)
        size = struct.unpack_from("<H", self.ram, addr)[0]
        if size < 0x1A:
            return DISK_BAD_COMMAND
        flags = 0x74 if removable else 0x00
        cyl, heads, spt = chs if chs else (0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF)
        if chs:
            flags |= 0x02
        data = struct.pack("<HHIIIQH", min(size, 0x1E), flags, cyl, heads, spt, sectors,
                           sector_size)
        if size >= 0x1E:
            data += struct.pack("<I", 0xFFFF_FFFF)
        self.uc.mem_write(addr, data)
        return DISK_OK

    def _cd_function(self, ah: int) -> int | None:
        if ah in (0x00, 0x10, 0x0D, 0x44, 0x47):
            return DISK_OK
        if ah == 0x01:
            return int(self.ram[self._status_byte(CDROM_DRIVE)])
        if ah == 0x41:
            self._edd_check()
            return None
        if ah == 0x42:
            dap, count, buffer, lba = self._dap()
            if lba + count > self.cd_capacity:
                struct.pack_into("<H", self.ram, dap + 2, 0)
                return DISK_NOT_FOUND
            status = self.read_cd(lba, count, buffer)
            if status != DISK_OK:
                struct.pack_into("<H", self.ram, dap + 2, 0)
            return status
        if ah == 0x43:
            return DISK_WRITE_PROTECTED
        if ah == 0x48:
            return self._edd_params(self.cd_capacity, SECTOR, True, None)
        if ah == 0x15:
            self._set_ah(0x02)  # removable, change line supported
            self._flags(cf=False)
            return None
        return DISK_BAD_COMMAND

    def _emulated_function(self, ah: int, disk: EmulatedDisk) -> int | None:
        floppy = disk.number < 0x80
        if ah in (0x00, 0x0C, 0x0D, 0x10, 0x11, 0x14):
            return DISK_OK
        if ah == 0x01:
            return int(self.ram[self._status_byte(disk.number)])
        if ah in (0x02, 0x04):
            ecx, edx = self._r(X.UC_X86_REG_ECX), self._r(X.UC_X86_REG_EDX)
            count = self._r(X.UC_X86_REG_EAX) & 0xFF
            cyl = ((ecx >> 8) & 0xFF) | ((ecx & 0xC0) << 2)
            sector = ecx & 0x3F
            head = (edx >> 8) & 0xFF
            if sector == 0 or sector > disk.spt or head >= disk.heads or cyl >= disk.cylinders:
                self._set_al(0)
                return DISK_NOT_FOUND
            lba = (cyl * disk.heads + head) * disk.spt + sector - 1
            if lba + count > disk.sectors:
                count = max(0, disk.sectors - lba)
            if ah == 0x02:
                dest = self._seg_off(X.UC_X86_REG_ES, X.UC_X86_REG_EBX)
                status = self.read_emulated(disk, lba, count, dest)
                if status != DISK_OK:
                    count = 0
            else:
                status = DISK_OK
            self._set_al(count)
            return status
        if ah == 0x03:
            return DISK_WRITE_PROTECTED
        if ah == 0x08:
            cyl = disk.cylinders - 1
            self._set16(X.UC_X86_REG_ECX, ((cyl & 0xFF) << 8) | ((cyl >> 2) & 0xC0) | disk.spt)
            self._set16(X.UC_X86_REG_EDX, ((disk.heads - 1) << 8) | 1)
            if floppy:
                self._set16(X.UC_X86_REG_EBX, FLOPPY_DRIVE_TYPE.get(disk.media_type, 4))
                self._w(X.UC_X86_REG_ES, BIOS_SEGMENT)
                self._set16(X.UC_X86_REG_EDI, DISKETTE_TABLE_OFFSET)
            self._set_al(0)
            return DISK_OK
        if ah == 0x15:
            if floppy:
                self._set_ah(0x02)
            else:
                self._set_ah(0x03)
                self._set16(X.UC_X86_REG_ECX, disk.sectors >> 16)
                self._set16(X.UC_X86_REG_EDX, disk.sectors & 0xFFFF)
            self._flags(cf=False)
            return None
        if ah == 0x16 and floppy:
            return DISK_OK  # no disk change
        if not floppy and ah == 0x41:
            self._edd_check()
            return None
        if not floppy and ah == 0x42:
            dap, count, buffer, lba = self._dap()
            if lba + count > disk.sectors:
                struct.pack_into("<H", self.ram, dap + 2, 0)
                return DISK_NOT_FOUND
            return self.read_emulated(disk, lba, count, buffer)
        if not floppy and ah == 0x48:
            return self._edd_params(disk.sectors, 512, False,
                                    (disk.cylinders, disk.heads, disk.spt))
        return DISK_BAD_COMMAND

    # -- reading through the drive -----------------------------------------------------
    def read_cd(self, lba: int, count: int, dest: int) -> int:
        """READ(10) ``count`` CD sectors into guest RAM at ``dest``; an INT 13h status."""
        if count == 0:
            return DISK_OK
        if dest < 0 or dest + count * SECTOR > self.bounce:
            return DISK_BAD_COMMAND
        assert self.cdrom is not None
        status = self._drive_read(lba, count, dest)
        if status == DISK_OK:
            self.sectors_read += count
        return status

    def read_emulated(self, disk: EmulatedDisk, lba: int, count: int, dest: int) -> int:
        """512-byte sectors of an emulated disk: whole CD sectors via the bounce buffer."""
        if dest < 0 or dest + count * 512 > self.bounce:
            return DISK_BAD_COMMAND
        done = 0
        chunk_cd = BOUNCE_SIZE // SECTOR
        while done < count:
            first = lba + done
            cd_lba = disk.image_lba + first // 4
            skip = (first % 4) * 512
            n512 = min(count - done, chunk_cd * 4 - first % 4)
            n_cd = (skip + n512 * 512 + SECTOR - 1) // SECTOR
            status = self._drive_read(cd_lba, n_cd, self.bounce)
            if status != DISK_OK:
                return status
            data = self.memory.view(self.bounce + skip, n512 * 512).copy()
            self.memory.write(dest + done * 512, data)
            done += n512
            self.sectors_read += n_cd
        return DISK_OK

    def _transfer(self, lba: int, count: int, dest: int) -> None:
        """One READ(10) run, by bus-master DMA when the driver may use it, else PIO.

        The driver's PRD table sits at a fixed low address (``PRD_TABLE``),
        which is guest memory once the guest runs: the BIOS keeps the guest's
        bytes there, and uses PIO for a destination that overlaps the table
        or is not word aligned.
        """
        assert self.cdrom is not None
        driver = self.driver
        length = count * SECTOR
        prd_end = PRD_TABLE + PRD_AREA
        dma = driver.use_dma and not dest & 1 and (dest >= prd_end or dest + length <= PRD_TABLE)
        if not dma:
            saved_mode, driver.use_dma = driver.use_dma, False
            try:
                driver.read_sectors(self.cdrom, lba, count, dest)
            finally:
                driver.use_dma = saved_mode
            return
        saved = self.memory.read(PRD_TABLE, PRD_AREA)
        try:
            driver.read_sectors(self.cdrom, lba, count, dest)
            self.dma_reads += 1
        finally:
            self.memory.write(PRD_TABLE, saved)

    def _drive_read(self, lba: int, count: int, dest: int) -> int:
        assert self.cdrom is not None
        for attempt in range(2):
            try:
                self._transfer(lba, count, dest)
                return DISK_OK
            except FirmwareError:
                # The driver's REQUEST SENSE uses its scratch page, which is
                # guest memory now: keep the guest's bytes.
                saved = self.memory.read(SCRATCH, SECTOR)
                try:
                    key, asc, _ = self.driver.request_sense(self.cdrom)
                except FirmwareError:
                    key, asc = 0, 0
                finally:
                    self.memory.write(SCRATCH, saved)
                if asc == 0x3A:
                    return DISK_NO_MEDIA
                if key == 0x06 and attempt == 0:
                    continue  # unit attention (medium changed): retry once
                return DISK_CHANGED if key == 0x06 else DISK_CONTROLLER
        return DISK_CONTROLLER

    # -- INT 14h: COM1 ---------------------------------------------------------------
    def int14_serial(self) -> None:
        ah, dx = self._ah(), self._r(X.UC_X86_REG_EDX) & 0xFFFF
        if dx != 0 or self.serial is None:
            self._set_ah(0x80)  # timeout: no such port
            return
        if ah == 0x01:
            self.serial.transmit(self._r(X.UC_X86_REG_EAX) & 0xFF)
            self._set_ah(0x60)
        elif ah == 0x02:
            self._set_ah(0x80)  # nothing received: timeout
        else:
            self._set16(X.UC_X86_REG_EAX, 0x60B0)

    def int17_printer(self) -> None:
        self._set_ah(0x30)  # no printer: selected, out of paper is not reported

    # -- INT 15h: system services ------------------------------------------------------
    def e820_map(self) -> list[tuple[int, int, int]]:
        """(base, length, type) — 1 usable RAM, 2 reserved (ACPI §15.1)."""
        ebda = EBDA_SEGMENT << 4
        entries = [
            (0, ebda, 1),
            (ebda, 0xA0000 - ebda, 2),
            (0xE0000, 0x20000, 2),
            (0x100000, self.bounce - 0x100000, 1),
            (self.bounce, self.ram_top - self.bounce, 2),
        ]
        if self.high_ram:
            entries.append((1 << 32, self.high_ram, 1))
        return entries

    def int15_system(self) -> None:
        eax = self._r(X.UC_X86_REG_EAX)
        ah, ax = (eax >> 8) & 0xFF, eax & 0xFFFF
        if eax == 0xE820 and self._r(X.UC_X86_REG_EDX) == 0x534D4150:
            entries = self.e820_map()
            index = self._r(X.UC_X86_REG_EBX)
            if index >= len(entries):
                self._fail()
                return
            base, length, kind = entries[index]
            dest = self._seg_off(X.UC_X86_REG_ES, X.UC_X86_REG_EDI)
            ecx = self._r(X.UC_X86_REG_ECX)
            record = struct.pack("<QQI", base, length, kind)
            if ecx >= 24:
                record += struct.pack("<I", 1)  # ACPI 3.0 extended attributes: enabled
            self.uc.mem_write(dest, record)
            self._w(X.UC_X86_REG_EAX, 0x534D4150)
            self._w(X.UC_X86_REG_ECX, len(record))
            self._w(X.UC_X86_REG_EBX, 0 if index + 1 >= len(entries) else index + 1)
            self._ok()
        elif ax == 0xE801:
            above1m = (self.bounce - 0x100000) // 1024
            low = min(above1m, 15 * 1024)
            high = max(0, self.bounce - (16 << 20)) >> 16
            for reg, value in ((X.UC_X86_REG_EAX, low), (X.UC_X86_REG_ECX, low),
                               (X.UC_X86_REG_EBX, high), (X.UC_X86_REG_EDX, high)):
                self._set16(reg, value)
            self._ok()
        elif ah == 0x88:
            self._set16(X.UC_X86_REG_EAX, min(0xFFFF, (self.bounce - 0x100000) // 1024))
            self._ok()
        elif ah == 0xC0:
            self._w(X.UC_X86_REG_ES, BIOS_SEGMENT)
            self._set16(X.UC_X86_REG_EBX, CONFIG_TABLE_OFFSET)
            self._set_ah(0)
            self._ok()
        elif ah == 0x24 and (eax & 0xFF) <= 3:
            al = eax & 0xFF
            if al == 2:
                self._set_al(1)  # A20 is enabled
            elif al == 3:
                self._set16(X.UC_X86_REG_EBX, 0x0003)  # KBC and port 92h methods
            self._set_ah(0)
            self._ok()
        elif ah == 0x86:
            # Wait CX:DX microseconds.  Timer ticks falling inside the wait
            # are served as on a PC (the BIOS sleeps to each one and retries).
            clock = self.cpu.clock
            if self._wait_until is None:
                micros = ((self._r(X.UC_X86_REG_ECX) & 0xFFFF) << 16) | (
                    self._r(X.UC_X86_REG_EDX) & 0xFFFF)
                self._wait_until = clock.instructions + micros * clock.ips // 1_000_000
            deadline = clock.next_deadline()
            if deadline is not None and deadline < self._wait_until:
                self._wait()
                return
            clock.nudge(self._wait_until - clock.instructions)
            self._wait_until = None
            self._set_ah(0)
            self._ok()
        elif ah in (0x90, 0x91):
            self._set_ah(0)
            self._ok()
        else:
            self._fail(0x86)  # function not supported

    # -- INT 16h: keyboard --------------------------------------------------------------
    def int16_keyboard(self) -> None:
        ah = self._ah()
        kbd = self.keyboard
        if ah in (0x00, 0x10):
            key = kbd.read()
            if key is None:
                if not kbd.script and kbd.live is None:
                    self._stop("input", "the guest waits for a key")
                self._wait()
                return
            self._set16(X.UC_X86_REG_EAX, key)
        elif ah in (0x01, 0x11):
            key = kbd.peek()
            if key is None:
                if self.on_input_poll is not None:
                    self.on_input_poll()
                self._flags(zf=True)
            else:
                self._set16(X.UC_X86_REG_EAX, key)
                self._flags(zf=False)
        elif ah in (0x02, 0x12):
            self._set16(X.UC_X86_REG_EAX, 0) if ah == 0x12 else self._set_al(0)
        elif ah == 0x05:
            ok = kbd.store(self._r(X.UC_X86_REG_ECX) & 0xFFFF)
            self._set_al(0 if ok else 1)
        elif ah == 0x03:
            pass

    # -- INT 18h / 19h: the end of the boot ------------------------------------------------
    def int18_boot_failure(self) -> None:
        self._stop("int18", "the guest gave up: INT 18h (no bootable device)")

    def int19_bootstrap(self) -> None:
        self._stop("int19", "the guest asked to reboot: INT 19h (bootstrap)")

    # -- INT 1Ah: clock --------------------------------------------------------------------
    def int1a_clock(self) -> None:
        ah = self._ah()
        if ah == 0x00:
            ticks = struct.unpack_from("<I", self.ram, 0x46C)[0]
            self._set16(X.UC_X86_REG_ECX, ticks >> 16)
            self._set16(X.UC_X86_REG_EDX, ticks & 0xFFFF)
            self._set_al(int(self.ram[0x470]))
            self.ram[0x470] = 0
            self._ok()
        elif ah == 0x01:
            ticks = ((self._r(X.UC_X86_REG_ECX) & 0xFFFF) << 16) | (
                self._r(X.UC_X86_REG_EDX) & 0xFFFF)
            struct.pack_into("<I", self.ram, 0x46C, ticks)
            self._ok()
        elif ah in (0x02, 0x04) and self.cmos is not None:
            reg = self.cmos.read_register
            if ah == 0x02:
                self._set16(X.UC_X86_REG_ECX, (reg(0x04) << 8) | reg(0x02))
                self._set16(X.UC_X86_REG_EDX, reg(0x00) << 8)
            else:
                self._set16(X.UC_X86_REG_ECX, (reg(0x32) << 8) | reg(0x09))
                self._set16(X.UC_X86_REG_EDX, (reg(0x08) << 8) | reg(0x07))
            self._ok()
        elif ah in (0x03, 0x05):
            self._ok()
        else:
            self._fail(0x86)
