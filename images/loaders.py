"""Discs with real boot loaders, made from Debian's packages, and a disc that never ends.

* :func:`build_isolinux_iso`: ISOLINUX (package ``isolinux``) with ``ldlinux.c32``,
  ``ls.c32`` and its libraries (``syslinux-common``), a config that says a line and
  shows the ``boot:`` prompt, a README and ``hello.bs``, a 512-byte boot sector
  (assembled by nasm) that ISOLINUX can chain-load.  Built by xorriso as an El
  Torito no-emulation image with a boot info table (El Torito §2.2; the table is
  ISOLINUX's own convention, filled by ``-boot-info-table``).
* :data:`GRUB_RESCUE_ISO`: the GRUB rescue CD that ``grub-rescue-pc`` ships (it
  is used as it is: an image file is never written).
* :func:`build_spin_iso`: a no-emulation boot image that clears IF and jumps to
  itself forever (``cli; jmp $``): a guest that neither halts nor idles, so only a
  time limit ends its run (the matrix's deliberately hanging case).

A builder raises :class:`LoaderUnavailable` (a one-line reason) when a tool or
package it needs is not installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from images.builders import SECTOR_SIZE, VIRTUAL_SECTOR, _add_file, _new_iso, _write, fixed_clock

ISOLINUX_BIN = Path("/usr/lib/ISOLINUX/isolinux.bin")
SYSLINUX_MODULES = Path("/usr/lib/syslinux/modules/bios")
ISOLINUX_MODULES = ("ldlinux.c32", "ls.c32", "libcom32.c32", "libutil.c32")
GRUB_RESCUE_ISO = Path("/usr/lib/grub-rescue/grub-rescue-cdrom.iso")

CHAIN_MESSAGE = "CHAINLOADED BOOT SECTOR SAYS HELLO"
"""What ``hello.bs`` prints through INT 10h before it halts."""
ISOLINUX_SAY = "Hello from the ISOLINUX test disc"
"""The line ``isolinux.cfg`` makes ISOLINUX print before its ``boot:`` prompt."""

SPIN_CODE = b"\xfa\xeb\xfe"
"""``cli`` (FA), ``jmp $`` (EB FE): spin forever with interrupts off."""


class LoaderUnavailable(RuntimeError):
    """A tool or package a loader disc needs is not installed."""


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise LoaderUnavailable(f"{name} is not installed")
    return path


def _hello_asm() -> str:
    """A boot sector that prints :data:`CHAIN_MESSAGE` by INT 10h teletype, then halts."""
    return f"""bits 16
org 0x7C00
    xor ax, ax
    mov ds, ax
    mov si, msg
.l: lodsb
    test al, al
    jz .h
    mov ah, 0x0E
    mov bx, 7
    int 0x10
    jmp .l
.h: cli
    hlt
    jmp .h
msg: db "{CHAIN_MESSAGE}", 13, 10, 0
    times 510-($-$$) db 0
    db 0x55, 0xAA
"""


def build_isolinux_iso(path: str | os.PathLike[str]) -> Path:
    """The ISOLINUX test disc at ``path`` (its build tree goes beside it, in ``<stem>-root``)."""
    xorriso, nasm = _tool("xorriso"), _tool("nasm")
    missing = [p for p in (ISOLINUX_BIN, *(SYSLINUX_MODULES / m for m in ISOLINUX_MODULES))
               if not p.exists()]
    if missing:
        raise LoaderUnavailable(f"{missing[0]} is missing (isolinux / syslinux-common)")
    out = Path(path)
    root = out.parent / f"{out.stem}-root"
    shutil.rmtree(root, ignore_errors=True)
    boot_dir = root / "isolinux"
    boot_dir.mkdir(parents=True)
    shutil.copy(ISOLINUX_BIN, boot_dir)
    for module in ISOLINUX_MODULES:
        shutil.copy(SYSLINUX_MODULES / module, boot_dir)
    (boot_dir / "isolinux.cfg").write_text(f"SAY {ISOLINUX_SAY}\nPROMPT 1\n")
    (root / "README.TXT").write_text("A file for ls.c32 to list.\n")
    src = out.parent / f"{out.stem}-hello.asm"
    src.write_text(_hello_asm())
    subprocess.run([nasm, "-f", "bin", "-o", str(root / "hello.bs"), str(src)], check=True)
    subprocess.run([xorriso, "-as", "mkisofs", "-quiet", "-o", str(out),
                    "-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat",
                    "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table", str(root)],
                   check=True, capture_output=True)
    return out


def grub_rescue_iso() -> Path:
    """Debian's GRUB rescue CD (``grub-rescue-pc``)."""
    if not GRUB_RESCUE_ISO.exists():
        raise LoaderUnavailable(f"{GRUB_RESCUE_ISO} is missing (grub-rescue-pc)")
    return GRUB_RESCUE_ISO


def build_spin_iso(path: str | os.PathLike[str]) -> Path:
    """A disc whose no-emulation boot image is :data:`SPIN_CODE` (55 AA at offset 510)."""
    image = bytearray(SECTOR_SIZE)
    image[: len(SPIN_CODE)] = SPIN_CODE
    image[510:512] = b"\x55\xaa"
    out = Path(path)
    with fixed_clock():
        iso = _new_iso("SPIN")
        _add_file(iso, "SPIN.IMG", bytes(image), joliet=False, rock_ridge=False)
        iso.add_eltorito("/SPIN.IMG;1", boot_load_size=SECTOR_SIZE // VIRTUAL_SECTOR)
        _write(iso, out)
    return out
