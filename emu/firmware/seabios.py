"""Booting with real firmware: Debian's SeaBIOS on the emulated PC platform.

``emu boot --firmware seabios`` runs the unmodified ``bios.bin`` from the
reset vector.  SeaBIOS does its own POST — PCI enumeration, memory map,
interrupt controllers, timer calibration, keyboard, its own ATA/ATAPI driver
probing the four IDE locations through the ports — prints its banner, lists
the boot devices and boots the disc by El Torito, all by itself.  Nothing
here calls into the drive: every byte SeaBIOS and the loader get crosses the
emulated controller (tests count the commands in the drive's trace).

The platform (each device a model in ``devices/``):

==============================  ==========================================
8259A pair (20h/A0h)            :mod:`devices.platform.pic`; IDE IRQ 14/15 wired in
8254 (40h-43h, 61h)             :mod:`devices.platform.pit`; IRQ 0 on the virtual clock
8042 (60h/64h)                  :mod:`devices.platform.i8042`; keys from ``--keys``
MC146818 (70h/71h)              :mod:`devices.platform.cmos`; memory size, one CPU
PCI mechanism #1 (CF8h/CFCh)    :mod:`devices.platform.pci`; i440FX, PIIX3, PIIX3 IDE
local APIC / I/O APIC pages     :mod:`devices.platform.apic`; Unicorn ``mmio_map``
fw_cfg (510h/511h)              :mod:`devices.platform.fw_cfg`; e820, menu, VGA ROM
VGA registers (3B4h-3DAh)       :mod:`devices.platform.vga`; SeaVGABIOS runs on them
port 402h                       SeaBIOS's debug console, captured
port 92h, 80h, E9h, COM1        fast A20/reset, POST codes, debug console, serial
==============================  ==========================================

Memory: ``bios.bin`` (128 KiB) sits at the top of the 4 GiB space
(FFFE0000h, a read-only alias as the chipset decodes it) and in RAM at
E0000h-FFFFFh, where the CPU starts at F000:FFF0 (the shadow copy; SeaBIOS
re-copies itself from the high alias when it opens the PAM registers,
which here are plain storage).

Text output (the documented path): SeaBIOS finds SeaVGABIOS
(``vgabios-stdvga.bin``) as the fw_cfg file ``vgaroms/vgabios-stdvga.bin``,
copies it to C0000h and runs its POST; the VGA BIOS programs the register
file and writes characters into the text frame buffer at B8000h (RAM).  A
:class:`TextScraper` polls that frame on the virtual clock and turns changes
into the text stream (so anything written straight into B8000h shows too).
There is no Bochs VBE interface, so SeaVGABIOS falls back to plain VGA.

fw_cfg makes POST shorter and simpler: the memory map comes from
``etc/e820`` instead of CMOS probing.  The boot menu (fw_cfg item 0Eh) is
offered only when ``--keys`` starts with ESC (or keys come from a terminal):
then SeaBIOS prints "Press ESC for boot menu.", waits ``etc/boot-menu-wait``
ms (idle time, skipped while the CPU halts), and the ESC opens its list,
which names each drive as SeaBIOS sees it (``DVD/CD [ata1-0: <model>
ATAPI-<n> DVD/CD]``); the next key picks the entry.  Otherwise SeaBIOS boots
straight away and the first scripted key reaches the loader.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from unicorn import UC_HOOK_CODE

from devices.platform.fw_cfg import BOOT_MENU
from emu.pc.session import BootResult, ExitStatus, FirmwareFailure, Session

SEABIOS_BIN = Path("/usr/share/seabios/bios.bin")
VGABIOS_BIN = Path("/usr/share/seabios/vgabios-stdvga.bin")
DEFAULT_MENU_WAIT_MS = 300
"""``etc/boot-menu-wait``: long enough for a scripted ESC, idle time otherwise."""
NO_BOOT_DEVICE = "No bootable device."
TRANSFERS = ("pio",)
"""How SeaBIOS moves CD sectors (``emu boot --transfer``): by PIO only.  Measured: no
SeaBIOS boot here ever starts a bus-master transfer (docs/matrix.md)."""
INT16_ENTRY = 0xFE82E
"""F000:E82E, the IBM-compatible fixed entry point of INT 16h, where SeaBIOS keeps it."""
POLLS_BEFORE_TYPING = 4
"""A scripted key is typed when the CPU halts waiting for an interrupt, or after the
guest called INT 16h this many times with SeaBIOS's key buffer empty (a loader polling
AH=01h does not halt) — the same rule as the built-in BIOS's typist."""
BDA_KBD_HEAD, BDA_KBD_TAIL = 0x41A, 0x41C
ESC_KEY = 0x011B
ROM_SIZE_LIMIT = 0x20000


class SeaBiosError(FirmwareFailure):
    """The SeaBIOS image cannot be used (missing, or not a 128 KiB-or-smaller ROM)."""


class SeaBios:
    """Debian's SeaBIOS as a firmware plug: the ROM at the reset vector, its fw_cfg files."""

    name = "seabios"

    def __init__(self, bios_path: Path = SEABIOS_BIN, vgabios_path: Path | None = VGABIOS_BIN,
                 menu_wait_ms: int = DEFAULT_MENU_WAIT_MS, boot_menu: bool | None = None
                 ) -> None:
        self.bios_path = Path(bios_path)
        self.vgabios_path = vgabios_path
        self.menu_wait_ms = menu_wait_ms
        self.boot_menu = boot_menu
        self.session: Session | None = None
        self._empty_polls = 0

    def install(self, session: Session) -> None:
        self.session = session
        board = session.board
        rom = self._read_rom()
        boot_menu = self.boot_menu
        if boot_menu is None:
            script = session.keyboard.script
            boot_menu = session.options.live_keys is not None or (
                bool(script) and script[0] == ESC_KEY)
        self.boot_menu = boot_menu
        self._plug(session, rom)
        # The shadow copy below 1 MiB, where the CPU starts at F000:FFF0.
        board.memory.write(0x100000 - len(rom), rom)
        board.cpu.reset_real_mode(0xF000, 0xFFF0, ss=0, sp=0)

    def _read_rom(self) -> bytes:
        try:
            rom = self.bios_path.read_bytes()
        except OSError as exc:
            raise SeaBiosError(f"{self.bios_path}: {exc.strerror or exc}") from None
        if len(rom) % 4096 or not 0 < len(rom) <= ROM_SIZE_LIMIT:
            raise SeaBiosError(f"{self.bios_path}: expected a 128 KiB (or smaller, 4 KiB "
                               "aligned) BIOS image")
        return rom

    def _plug(self, session: Session, rom: bytes) -> None:
        """What power-on and a restored state share: fw_cfg files, the ROM's high alias,
        the IRQ window, the INT 16h and key hooks."""
        board = session.board
        cfg = board.fw_cfg
        boot_menu = bool(self.boot_menu)
        cfg.set_int(BOOT_MENU, int(boot_menu), 2)
        cfg.add_file("etc/boot-menu-wait", self.menu_wait_ms.to_bytes(2, "little"))
        if self.vgabios_path is not None and Path(self.vgabios_path).exists():
            cfg.add_file("vgaroms/vgabios-stdvga.bin", Path(self.vgabios_path).read_bytes())
        # The flash ROM's high alias (read-only) and the shadow copy below 1 MiB, where the
        # CPU starts at F000:FFF0; SeaBIOS re-copies itself from the alias when it opens
        # the PAM registers (plain storage here).
        board.map_rom((1 << 32) - len(rom), rom)
        cpu = board.cpu
        cpu.irq_window = (0xF0000, 0x100000)  # SeaBIOS's 16-bit code: sti; nop; cli windows
        cpu.uc.hook_add(UC_HOOK_CODE, self._int16_called, None, INT16_ENTRY, INT16_ENTRY)
        board.kbc.keys = self._next_key
        board.kbc.typing_allowed = self._typing_allowed
        session.on_screen_text.append(self._screen_text)

    # -- saved state (emu/pc/state.py) ----------------------------------------------------
    def _rom_digests(self) -> dict[str, str | None]:
        vga = self.vgabios_path
        return {"bios_sha256": hashlib.sha256(self._read_rom()).hexdigest(),
                "vgabios_sha256": hashlib.sha256(Path(vga).read_bytes()).hexdigest()
                if vga is not None and Path(vga).exists() else None}

    def state(self) -> dict[str, Any]:
        """The plug's own state; everything else SeaBIOS knows is in RAM and the devices.
        The ROM images are not saved: their sha256 must match on restore."""
        return {"boot_menu": self.boot_menu, "menu_wait_ms": self.menu_wait_ms,
                "empty_polls": self._empty_polls, **self._rom_digests()}

    def attach(self, session: Session, state: dict[str, Any]) -> None:
        """Plug in for a restored state: fw_cfg files, ROM alias and hooks, no reset."""
        digests = self._rom_digests()
        for key, value in digests.items():
            if state.get(key) != value:
                image = self.bios_path if key == "bios_sha256" else self.vgabios_path
                raise SeaBiosError(f"{image}: not the image the state was saved with")
        self.session = session
        self.boot_menu = bool(state["boot_menu"])
        self.menu_wait_ms = int(state["menu_wait_ms"])
        self._plug(session, self._read_rom())
        self.load_state(state)

    def load_state(self, state: dict[str, Any]) -> None:
        value = state.get("empty_polls")
        if not isinstance(value, int):
            raise ValueError("firmware: field 'empty_polls' is not a count")
        self._empty_polls = value

    # -- keys ------------------------------------------------------------------------
    def _typing_allowed(self) -> bool:
        assert self.session is not None
        return self.session.cpu.halted or self._empty_polls >= POLLS_BEFORE_TYPING

    def _int16_called(self, uc: object, address: int, size: int, _user: object) -> None:
        assert self.session is not None
        ram = self.session.board.memory.data
        if ram[BDA_KBD_HEAD:BDA_KBD_HEAD + 2].tobytes() == ram[BDA_KBD_TAIL:BDA_KBD_TAIL + 2
                                                              ].tobytes():
            self._empty_polls += 1
            self.session.input_polled()

    def _next_key(self) -> int | None:
        assert self.session is not None
        kb = self.session.keyboard
        if kb.script:
            key = kb.script.popleft()
        elif kb.live is not None:
            key = kb.live()
        else:
            return None
        if key is not None:
            kb.typed.append(key)
            self._empty_polls = 0
        return key

    # -- stops -------------------------------------------------------------------------
    def _screen_text(self, text: str) -> None:
        assert self.session is not None
        if NO_BOOT_DEVICE in text:
            self.session.request_stop(ExitStatus.BOOT_FAILED, f"SeaBIOS: {NO_BOOT_DEVICE}")

    def finish(self, result: BootResult) -> None:
        pass
