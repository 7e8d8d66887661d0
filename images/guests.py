"""Real guest images from Debian packages: memtest86+, iPXE, GRUB rescue and a Linux 6.1 guest.

These are the reference guests of issues 10 (one board, both firmwares) and 12 (a real
operating system reads the DVD with its own drivers).  Every image comes from Debian's own
binaries; nothing here is a hand-made stand-in.

Where the inputs come from
    ``.ci/run`` fetches the packages with ``apt-get download`` into :func:`debs_dir`
    (``memtest86+``, ``ipxe``, ``busybox-static`` and the ``linux-image-6.1.0-N-amd64`` that
    ``linux-image-amd64`` depends on).  Each ``.deb`` is unpacked with ``dpkg-deb -x`` into
    :func:`cache_dir` on first use; nothing is installed into the system.  ISOLINUX
    (``isolinux``, ``syslinux-common``) and ``grub-rescue-pc`` are installed by ``.ci/run``
    and read from their system paths.

What is built, and how
    * :func:`memtest_iso`, :func:`ipxe_iso`, :func:`grub_rescue_iso`: the packages' ISOs as
      shipped (paths into the cache or the system; never copied, never written).
    * :func:`isolinux_memtest_iso`: ISOLINUX chain-loading ``memtest86+ia32.bin`` through the
      Linux boot protocol (the ``linux`` keyword: syslinux would take a ``.bin`` named by
      ``kernel`` for a boot sector).
    * :func:`linux_iso`: ISOLINUX + Debian's ``vmlinuz`` + an initramfs built here
      (:func:`initramfs`): busybox-static with its applet links, the kernel modules that reach
      the CD (the ``depends=`` closure read from each module's ``.modinfo`` section, because
      the package ships no ``modules.dep``), and an ``/init`` script that prints one
      ``INIT: ...`` line per milestone (:data:`MILESTONES`) and powers off.  The disc holds
      :data:`DATA_NAME`, 3 MiB of deterministic pseudo-random bytes (:func:`data_bytes`);
      :func:`second_disc_iso` holds different bytes under the same name plus
      :data:`DISC2_MARKER`, for the media-change step.

    The ISO 9660 images are made by ``xorriso -as mkisofs`` with an El Torito no-emulation
    boot entry and a boot-info table (El Torito §2.2; the table is ISOLINUX's convention,
    written at offset 8 of the boot file), ``SOURCE_DATE_EPOCH`` and fixed file times, so the
    same inputs give the same bytes.

Caching
    Each builder hashes its inputs (file contents, parameters and :data:`RECIPE_VERSION`) and
    keeps its output under ``<cache>/guests/`` named by that hash; an existing output is
    returned as is.  Outputs are written to a temporary name and renamed, so concurrent
    builders never see a half-written file.  Nothing is ever written inside the repository.

A missing package or tool raises :class:`GuestUnavailable` with a one-line message saying
what to run (``.ci/run``).  ``python -m images.guests`` builds everything and prints the paths.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import re
import shlex
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

RECIPE_VERSION = "1"
"""Bumped whenever a builder's recipe changes, so cached outputs are rebuilt."""

BUILD_TIME = 1_704_067_200
"""Fixed time stamp for reproducible images and archives: 2024-01-01 00:00:00 UTC."""

ISOLINUX_BIN = Path("/usr/lib/ISOLINUX/isolinux.bin")
"""ISOLINUX's El Torito boot file (package ``isolinux``)."""
LDLINUX_C32 = Path("/usr/lib/syslinux/modules/bios/ldlinux.c32")
"""ISOLINUX's second stage, required beside isolinux.bin (package ``syslinux-common``)."""
GRUB_RESCUE_ISO = Path("/usr/lib/grub-rescue/grub-rescue-cdrom.iso")
"""GRUB's rescue CD (package ``grub-rescue-pc``)."""

MemtestKind = Literal["ia32", "x64"]
MEMTEST_KINDS: tuple[MemtestKind, ...] = ("ia32", "x64")

DATA_NAME = "data.bin"
"""The 3 MiB file on both Linux-guest discs (Rock Ridge name; ISO 9660 name ``DATA.BIN``)."""
DATA_SIZE = 3 * 1024 * 1024
DATA_MD5 = {1: "5649cef5b2f93b165e78f7cfe4821514", 2: "0ff0e5b9a3e960d64f90124a8ecac754"}
"""The recorded md5 of :data:`DATA_NAME` on disc 1 and disc 2 (:func:`data_md5` computes
them; a test checks the two agree, so the data can never change unnoticed)."""
DISC2_MARKER = "disc2.txt"
"""Present only on the second disc: the guest waits for it after a media change."""

KERNEL_APPEND = "console=tty0 console=ttyS0,115200 panic=-1 nokaslr mitigations=off"
"""Default kernel command line.  The last ``console=`` becomes ``/dev/console``, so ttyS0
comes last: ``/init``'s marker lines then reach COM1 (and ``/init`` copies them to tty0);
the kernel's own messages go to both.  ``panic=-1`` reboots at once on a panic (QEMU's
``-no-reboot`` then exits); ``nokaslr`` keeps addresses equal to System.map for debugging;
``mitigations=off`` skips work a test guest does not need."""

EARLY_SERIAL_APPEND = KERNEL_APPEND + " earlyprintk=serial,ttyS0,115200"
""":data:`KERNEL_APPEND` plus the early serial console: the real-mode setup code ("Probing
EDD ... ok"), the decompressor ("KASLR disabled: 'nokaslr' on cmdline.") and the kernel's
first messages then reach COM1 by polled writes, before the 8250 driver and its interrupt
are up: for finding where a kernel stops (``linux_iso(append=EARLY_SERIAL_APPEND)``)."""

CD_MODULES = ("ata_piix", "sr_mod", "isofs")
"""The modules that reach an ISO 9660 disc on a PIIX IDE channel; their ``depends=``
closure (libata, scsi_mod, scsi_common, cdrom) is added by :func:`module_closure`."""

MILESTONES = {
    "init": "INIT: started",
    "modules": "INIT: modules loaded",
    "sr0": "INIT: /dev/sr0 present",
    "mount": "INIT: mounted /dev/sr0",
    "md5": "INIT: md5 ok",
    "waiting": "INIT: media change: disc 1 unmounted",
    "change": "INIT: media change seen",
    "md5_2": "INIT: disc 2 md5 ok",
    "poweroff": "INIT: poweroff",
}
"""The marker lines ``/init`` prints (one per milestone), as a guest run should see them."""

FIRST_SCREENS = {
    "memtest86+ia32.iso": "Memtest86+ v6",
    "memtest86+x64.iso": "Memtest86+ v6",
    "isolinux-memtest.iso": "Memtest86+ v6",
    "ipxe.iso": "Press Ctrl-B",
    "grub-rescue-cdrom.iso": "Press enter to boot",
    "linux.iso": MILESTONES["md5"],
}
"""Image name (a key of :func:`all_images`) → the text its first screen (or, for Linux, the
last milestone before power-off) shows.  Memtest's own El Torito loader prints "Loading
Memtest86+..." long before memtest's screen, so the version banner is what is waited for."""

MEDIA_WAIT_SECONDS = 300
"""How long ``/init`` waits for the kernel's media-change event (guest seconds)."""
REMOUNT_SECONDS = 30
"""After the event (or without it), how long ``/init`` keeps trying to mount the second
disc before it says the change was not seen (guest seconds)."""


class GuestUnavailable(RuntimeError):
    """A package or tool the guest images need is missing (run ``.ci/run``)."""


# -- where things live -------------------------------------------------------------------------


def cache_dir() -> Path:
    """The project's cache: ``$EMU_ATAPI_CACHE``, else ``$XDG_CACHE_HOME/emu-atapi``, else
    ``~/.cache/emu-atapi``."""
    explicit = os.environ.get("EMU_ATAPI_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "emu-atapi"


def debs_dir() -> Path:
    """Where ``.ci/run`` leaves the downloaded ``.deb`` files."""
    return cache_dir() / "debs"


def _outputs_dir() -> Path:
    path = cache_dir() / "guests"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _need_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise GuestUnavailable(f"{name} is not installed (.ci/run installs it)")
    return found


def _need_file(path: Path, package: str) -> Path:
    if not path.is_file():
        raise GuestUnavailable(f"{path} is missing (package {package}; .ci/run installs it)")
    return path


def _abi_key(deb: Path) -> tuple[int, str]:
    match = re.match(r"linux-image-6\.1\.0-(\d+)-amd64_", deb.name)
    return (int(match.group(1)) if match else -1, deb.name)


def deb_path(pattern: str) -> Path:
    """The cached ``.deb`` whose file name matches ``pattern`` (a glob on ``name_*.deb``);
    for several kernels, the one with the highest ABI number."""
    found = sorted(debs_dir().glob(pattern), key=_abi_key)
    if not found:
        raise GuestUnavailable(
            f"no {pattern} in {debs_dir()} (.ci/run downloads it with apt-get download)")
    return found[-1]


def package_root(pattern: str) -> Path:
    """The unpacked tree (``dpkg-deb -x``) of the cached ``.deb`` matching ``pattern``."""
    deb = deb_path(pattern)
    root = cache_dir() / "pkg" / deb.stem
    if root.is_dir():
        return root
    dpkg_deb = _need_tool("dpkg-deb")
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root.parent, prefix=".unpack-") as tmp:
        subprocess.run([dpkg_deb, "-x", str(deb), tmp], check=True)
        try:
            os.rename(tmp, root)
        except OSError:
            if not root.is_dir():  # another builder won the race: theirs is the same tree
                raise
        else:
            os.mkdir(tmp)  # so TemporaryDirectory's clean-up finds what it made
    return root


MEMTEST_DEB = "memtest86+_*.deb"
IPXE_DEB = "ipxe_*.deb"
BUSYBOX_DEB = "busybox-static_*.deb"
KERNEL_DEB = "linux-image-6.1.0-*-amd64_*.deb"


# -- the cache ---------------------------------------------------------------------------------


def _digest(parts: Iterable[bytes | str | Path]) -> str:
    h = hashlib.sha256(RECIPE_VERSION.encode())
    for part in parts:
        if isinstance(part, Path):
            h.update(b"file:" + part.name.encode() + b"\0")
            with part.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        else:
            h.update(b"val:" + (part.encode() if isinstance(part, str) else part) + b"\0")
    return h.hexdigest()[:16]


def _cached(name: str, parts: Iterable[bytes | str | Path], make: Callable[[Path], None]) -> Path:
    """Return ``<cache>/guests/<stem>-<hash><suffix>``, calling ``make(tmp)`` if absent."""
    out_dir = _outputs_dir()
    stem, dot, suffix = name.partition(".")
    out = out_dir / f"{stem}-{_digest(parts)}{dot}{suffix}"
    if out.is_file():
        return out
    fd, tmp_name = tempfile.mkstemp(dir=out_dir, prefix=f".{stem}-")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        make(tmp)
        tmp.chmod(0o644)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


# -- images as shipped -------------------------------------------------------------------------


def memtest_iso(kind: MemtestKind) -> Path:
    """``memtest86+ia32.iso`` or ``memtest86+x64.iso`` as package ``memtest86+`` ships it."""
    if kind not in MEMTEST_KINDS:
        raise ValueError(f"memtest kind must be one of {MEMTEST_KINDS}, not {kind!r}")
    return _need_file(package_root(MEMTEST_DEB) / f"usr/lib/memtest86+/memtest86+{kind}.iso",
                      "memtest86+")


def memtest_bin(kind: MemtestKind = "ia32") -> Path:
    """``/boot/memtest86+<kind>.bin``: memtest86+ as a Linux-boot-protocol image."""
    if kind not in MEMTEST_KINDS:
        raise ValueError(f"memtest kind must be one of {MEMTEST_KINDS}, not {kind!r}")
    return _need_file(package_root(MEMTEST_DEB) / f"boot/memtest86+{kind}.bin", "memtest86+")


def ipxe_iso() -> Path:
    """``ipxe.iso`` as package ``ipxe`` ships it (ISOLINUX loading ``ipxe.krn``)."""
    return _need_file(package_root(IPXE_DEB) / "usr/lib/ipxe/ipxe.iso", "ipxe")


def grub_rescue_iso() -> Path:
    """GRUB's rescue CD from the installed ``grub-rescue-pc``."""
    return _need_file(GRUB_RESCUE_ISO, "grub-rescue-pc")


# -- ISOLINUX discs ----------------------------------------------------------------------------


def _isolinux_inputs() -> tuple[Path, Path]:
    return _need_file(ISOLINUX_BIN, "isolinux"), _need_file(LDLINUX_C32, "syslinux-common")


def _stage(root: Path, files: dict[str, bytes | Path]) -> None:
    """Lay ``files`` (ISO path → content or source file) out under ``root``, times fixed."""
    for rel, content in sorted(files.items()):
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copyfile(content, target)
        else:
            target.write_bytes(content)
    for path in sorted(root.rglob("*"), reverse=True):
        os.utime(path, (BUILD_TIME, BUILD_TIME))
    os.utime(root, (BUILD_TIME, BUILD_TIME))


def _xorriso(out: Path, files: dict[str, bytes | Path], volume_id: str, *,
             boot: bool) -> None:
    """Make an ISO 9660 image (Rock Ridge + Joliet) of ``files`` with ``xorriso -as mkisofs``;
    with ``boot``, ISOLINUX is its El Torito no-emulation boot image (4 virtual sectors
    loaded, boot-info table patched in)."""
    xorriso = _need_tool("xorriso")
    with tempfile.TemporaryDirectory(prefix="emu-guest-") as tmp:
        root = Path(tmp) / "root"
        _stage(root, files)
        args = [xorriso, "-as", "mkisofs", "-quiet", "-r", "-J", "-V", volume_id,
                "-o", str(out)]
        if boot:
            args += ["-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat",
                     "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table"]
        env = dict(os.environ, SOURCE_DATE_EPOCH=str(BUILD_TIME), TZ="UTC")
        result = subprocess.run([*args, str(root)], env=env, capture_output=True, text=True)
        if result.returncode != 0:
            tail = (result.stderr.strip().splitlines() or ["no message"])[-1]
            raise GuestUnavailable(f"xorriso failed: {tail}")


def _isolinux_cfg(label: str, kind: str, kernel: str, initrd: str = "", append: str = "") -> str:
    lines = [f"DEFAULT {label}", "PROMPT 0", "TIMEOUT 0", f"LABEL {label}",
             f"  {kind} {kernel}"]
    if initrd:
        lines.append(f"  INITRD {initrd}")
    if append:
        lines.append(f"  APPEND {append}")
    return "\n".join(lines) + "\n"


def isolinux_memtest_iso() -> Path:
    """ISOLINUX chain-loading ``memtest86+ia32.bin`` (``LINUX /memtest.bin``)."""
    isolinux, ldlinux = _isolinux_inputs()
    binary = memtest_bin("ia32")
    cfg = _isolinux_cfg("memtest", "LINUX", "/memtest.bin")

    def make(out: Path) -> None:
        _xorriso(out, {"isolinux/isolinux.bin": isolinux, "isolinux/ldlinux.c32": ldlinux,
                       "isolinux/isolinux.cfg": cfg.encode(), "memtest.bin": binary},
                 "EMU_MEMTEST", boot=True)

    return _cached("isolinux-memtest.iso", [isolinux, ldlinux, binary, cfg], make)


# -- the Linux guest ---------------------------------------------------------------------------


def kernel_root() -> Path:
    """The unpacked ``linux-image-6.1.0-N-amd64`` package."""
    return package_root(KERNEL_DEB)


def kernel_version(root: Path | None = None) -> str:
    """The kernel release, e.g. ``6.1.0-56-amd64`` (the one directory under lib/modules)."""
    versions = sorted(p.name for p in ((root or kernel_root()) / "lib/modules").iterdir())
    if len(versions) != 1:
        raise GuestUnavailable(f"expected one kernel in the package, found {versions}")
    return versions[0]


def vmlinuz() -> Path:
    """Debian's compressed kernel (bzImage) from the package."""
    root = kernel_root()
    return _need_file(root / f"boot/vmlinuz-{kernel_version(root)}", "linux-image")


def modinfo(module: Path) -> dict[str, list[str]]:
    """The ``key=value`` strings of an ELF64 module's ``.modinfo`` section (the data
    ``modinfo`` prints); a key may repeat (``alias``), so values are lists."""
    data = module.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError(f"{module} is not a little-endian ELF64 object")
    # ELF64 header: e_shoff at 0x28; e_shentsize, e_shnum, e_shstrndx at 0x3a.
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def section(index: int) -> tuple[int, int, int]:
        # Section header: sh_name (u32), sh_type, sh_flags, sh_addr, sh_offset, sh_size.
        name, _type, _flags, _addr, offset, size = struct.unpack_from(
            "<IIQQQQ", data, shoff + index * shentsize)
        return name, offset, size

    _, str_off, _ = section(shstrndx)
    info: dict[str, list[str]] = {}
    for index in range(shnum):
        name_off, offset, size = section(index)
        end = data.index(b"\0", str_off + name_off)
        if data[str_off + name_off:end] != b".modinfo":
            continue
        for entry in data[offset:offset + size].split(b"\0"):
            key, eq, value = entry.decode("utf-8", "replace").partition("=")
            if eq:
                info.setdefault(key, []).append(value)
    return info


@dataclass(frozen=True)
class ModulePlan:
    """Which of the wanted modules are built in, and the rest in load order."""

    builtin: tuple[str, ...]
    load_order: tuple[tuple[str, Path], ...]
    """(name, path of the .ko) with every module after the ones it depends on."""


def _module_name(path_or_name: str) -> str:
    return Path(path_or_name).name.removesuffix(".ko").replace("-", "_")


def module_closure(wanted: Iterable[str] = CD_MODULES, root: Path | None = None) -> ModulePlan:
    """The ``depends=`` closure of ``wanted`` in the kernel package, in dependency order.

    Debian's package has no ``modules.dep`` (``depmod`` makes it when the package is
    installed), so each module's own ``.modinfo`` is read; ``modules.builtin`` says which
    names need no file."""
    root = root or kernel_root()
    moddir = root / "lib/modules" / kernel_version(root)
    builtin = {_module_name(line) for line in
               (moddir / "modules.builtin").read_text().split()}
    index = {_module_name(p.name): p for p in (moddir / "kernel").rglob("*.ko")}
    order: list[tuple[str, Path]] = []
    built_in: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            raise GuestUnavailable(f"module dependency cycle through {name}")
        if name in builtin:
            state[name] = "done"
            built_in.append(name)
            return
        if name not in index:
            raise GuestUnavailable(f"module {name} is neither built in nor in the package")
        state[name] = "visiting"
        for dep in sorted(d for v in modinfo(index[name]).get("depends", []) for d in
                          v.split(",") if d):
            visit(_module_name(dep))
        state[name] = "done"
        order.append((name, index[name]))

    for name in wanted:
        visit(_module_name(name))
    return ModulePlan(tuple(built_in), tuple(order))


def data_bytes(disc: int = 1) -> bytes:
    """The 3 MiB on disc ``disc`` (1 or 2): SHAKE-256 of a fixed seed, the same forever."""
    return hashlib.shake_256(f"emu-atapi guest data disc {disc}".encode()).digest(DATA_SIZE)


def data_md5(disc: int = 1) -> str:
    """The md5 the guest must print for ``/mnt/data.bin`` on disc ``disc``."""
    return hashlib.md5(data_bytes(disc)).hexdigest()


def init_script(modules: Iterable[str], *, media_change: bool) -> str:
    """The initramfs ``/init``: one ``INIT:`` line per milestone on /dev/console (COM1 with
    :data:`KERNEL_APPEND`) and tty0, then ``poweroff -f``.  ``modules`` are file names under
    ``/modules`` in load order."""
    insmods = "\n".join(
        f"insmod /modules/{m} && mark 'insmod {m}' || mark 'insmod {m} FAILED'"
        for m in modules)
    change = f"""
umount /mnt
echo 2000 > /sys/module/block/parameters/events_dfl_poll_msecs
uevent /bin/media-event &
sleep 1  # the listener's netlink socket is bound before the host is told to swap
mark 'media change: disc 1 unmounted, polling every 2000 ms, waiting for disc 2'
end=$(($(date +%s) + {MEDIA_WAIT_SECONDS}))
while [ ! -e /tmp/media-event ] && [ "$(date +%s)" -lt $end ]; do sleep 0.2; done
end=$(($(date +%s) + {REMOUNT_SECONDS}))
while [ "$(date +%s)" -lt $end ]; do
  if mount -t iso9660 -o ro /dev/sr0 /mnt 2>/dev/null; then
    if [ -e /mnt/{DISC2_MARKER} ]; then break; fi
    umount /mnt
  fi
  sleep 0.5
done
if [ -e /mnt/{DISC2_MARKER} ]; then
  mark 'media change seen'
  check {data_md5(2)} 'disc 2 md5'
else
  mark 'media change NOT seen'
fi
""" if media_change else ""
    return f"""#!/bin/sh
# emu-atapi reference guest (images/guests.py): reach the DVD with Linux's own drivers.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t devtmpfs devtmpfs /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mark() {{ echo "INIT: $*" > /dev/console; echo "INIT: $*" > /dev/tty0; }} 2>/dev/null
check() {{
  sum=$(md5sum /mnt/{DATA_NAME} | cut -d' ' -f1)
  mark "$2 $sum"
  if [ "$sum" = "$1" ]; then mark "$2 ok"; else mark "$2 MISMATCH (want $1)"; fi
}}
mark started
mark "kernel $(uname -r)"
{insmods}
mark 'modules loaded'
n=0
while [ ! -b /dev/sr0 ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
dmesg | grep -i -E 'EMU|DVD|CD-ROM|sr0' | while read -r line; do mark "dmesg: $line"; done
if [ -b /dev/sr0 ]; then mark '/dev/sr0 present'; else mark '/dev/sr0 missing'; fi
if mount -t iso9660 -o ro /dev/sr0 /mnt; then
  mark 'mounted /dev/sr0'
  check {data_md5(1)} md5
else
  mark 'mount FAILED'
fi
{change}
mark poweroff
poweroff -f
"""


MEDIA_EVENT = """#!/bin/sh
# Run by busybox uevent for each kernel uevent: note the block layer's media-change events.
if [ "$DISK_MEDIA_CHANGE" = 1 ]; then
  echo "INIT: media change event $DEVNAME" > /dev/console
  touch /tmp/media-event
elif [ "$DISK_EJECT_REQUEST" = 1 ]; then
  echo "INIT: eject request event $DEVNAME" > /dev/console
fi
"""


def _newc(entries: list[tuple[str, int, bytes, int]]) -> bytes:
    """A newc (SVR4, "070701") cpio archive of (name, mode, data, rdev) entries, the
    format the kernel unpacks into its initramfs (Documentation/driver-api/early-userspace
    describes it: a 110-byte ASCII-hex header, the name, both padded to 4 bytes)."""
    out = bytearray()

    def record(ino: int, name: str, mode: int, data: bytes, rdev: int) -> None:
        encoded = name.encode() + b"\0"
        fields = (ino, mode, 0, 0, 2 if stat.S_ISDIR(mode) else 1, BUILD_TIME, len(data),
                  0, 0, os.major(rdev), os.minor(rdev), len(encoded), 0)
        out.extend(b"070701" + b"".join(b"%08X" % f for f in fields) + encoded)
        out.extend(b"\0" * (-len(out) % 4))
        out.extend(data)
        out.extend(b"\0" * (-len(out) % 4))

    for ino, (name, mode, data, rdev) in enumerate(entries, start=1):
        record(ino, name, mode, data, rdev)
    record(0, "TRAILER!!!", 0, b"", 0)
    return bytes(out)


def busybox() -> Path:
    """busybox-static's static binary from the package."""
    return _need_file(package_root(BUSYBOX_DEB) / "bin/busybox", "busybox-static")


def busybox_applets(binary: Path | None = None) -> list[str]:
    """Paths of busybox's applet links (``busybox --list-full``, e.g. ``sbin/insmod``)."""
    result = subprocess.run([str(binary or busybox()), "--list-full"], capture_output=True,
                            text=True, check=True)
    return sorted(line.strip() for line in result.stdout.splitlines() if line.strip())


def _initramfs_entries(*, media_change: bool) -> tuple[list[tuple[str, int, bytes, int]],
                                                       list[Path]]:
    bb = busybox()
    plan = module_closure()
    modules = [path for _, path in plan.load_order]
    entries: list[tuple[str, int, bytes, int]] = []
    dirs = {"bin", "dev", "etc", "mnt", "modules", "proc", "sbin", "sys", "tmp", "usr",
            "usr/bin", "usr/sbin", "root"}
    for d in sorted(dirs):
        entries.append((d, stat.S_IFDIR | 0o755, b"", 0))
    # The kernel opens /dev/console before /init runs (devtmpfs is mounted later).
    entries.append(("dev/console", stat.S_IFCHR | 0o600, b"", os.makedev(5, 1)))
    entries.append(("bin/busybox", stat.S_IFREG | 0o755, bb.read_bytes(), 0))
    for applet in busybox_applets(bb):
        if applet == "bin/busybox":
            continue
        entries.append((applet, stat.S_IFLNK | 0o777, b"/bin/busybox", 0))
    entries.append(("bin/media-event", stat.S_IFREG | 0o755, MEDIA_EVENT.encode(), 0))
    for path in modules:
        entries.append((f"modules/{path.name}", stat.S_IFREG | 0o644, path.read_bytes(), 0))
    script = init_script([p.name for p in modules], media_change=media_change)
    entries.append(("init", stat.S_IFREG | 0o755, script.encode(), 0))
    return entries, [bb, *modules]


def initramfs(media_change: bool = False) -> Path:
    """The gzip-compressed newc initramfs for :func:`linux_iso` (see the module docstring)."""
    entries, inputs = _initramfs_entries(media_change=media_change)
    listing = "\n".join(f"{n} {m:o} {hashlib.sha256(d).hexdigest()} {r}"
                        for n, m, d, r in entries)

    def make(out: Path) -> None:
        out.write_bytes(gzip.compress(_newc(entries), compresslevel=9, mtime=0))

    return _cached("initramfs.cpio.gz", [listing, *[p.name for p in inputs]], make)


def read_newc(archive: bytes) -> dict[str, tuple[int, bytes]]:
    """Entries of a newc archive (``gzip`` or plain) as name → (mode, data): for tests."""
    if archive[:2] == b"\x1f\x8b":
        archive = gzip.decompress(archive)
    entries: dict[str, tuple[int, bytes]] = {}
    pos = 0
    while True:
        if archive[pos:pos + 6] != b"070701":
            raise ValueError(f"no newc header at offset {pos}")
        fields = [int(archive[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        name = archive[pos + 110:pos + 110 + namesize - 1].decode()
        pos += 110 + namesize
        pos += -pos % 4
        data = archive[pos:pos + size]
        pos += size
        pos += -pos % 4
        if name == "TRAILER!!!":
            return entries
        entries[name] = (mode, data)


def linux_iso(media_change: bool = False, append: str = KERNEL_APPEND) -> Path:
    """ISOLINUX + Debian's 6.1 amd64 ``vmlinuz`` + :func:`initramfs`, with :data:`DATA_NAME`
    (md5 :func:`data_md5` ``(1)``).  With ``media_change``, ``/init`` then waits for
    :func:`second_disc_iso` in the same drive, reads it and powers off."""
    isolinux, ldlinux = _isolinux_inputs()
    kernel = vmlinuz()
    initrd = initramfs(media_change)
    cfg = _isolinux_cfg("linux", "LINUX", "/vmlinuz", "/initrd.gz", append)

    def make(out: Path) -> None:
        _xorriso(out, {"isolinux/isolinux.bin": isolinux, "isolinux/ldlinux.c32": ldlinux,
                       "isolinux/isolinux.cfg": cfg.encode(), "vmlinuz": kernel,
                       "initrd.gz": initrd, DATA_NAME: data_bytes(1)},
                 "EMU_LINUX", boot=True)

    name = "linux-media-change.iso" if media_change else "linux.iso"
    return _cached(name, [isolinux, ldlinux, kernel, initrd, cfg, data_md5(1)], make)


def second_disc_iso() -> Path:
    """The disc swapped in for the media-change step: :data:`DATA_NAME` with other bytes
    (md5 :func:`data_md5` ``(2)``) and :data:`DISC2_MARKER`."""
    marker = b"emu-atapi second disc\n"

    def make(out: Path) -> None:
        _xorriso(out, {DATA_NAME: data_bytes(2), DISC2_MARKER: marker}, "EMU_DISC2",
                 boot=False)

    return _cached("disc2.iso", [marker, data_md5(2)], make)


# -- command line ------------------------------------------------------------------------------


def all_images() -> dict[str, Path]:
    """Build (or find in the cache) every guest image: name → path."""
    images: dict[str, Path] = {f"memtest86+{k}.iso": memtest_iso(k) for k in MEMTEST_KINDS}
    images["isolinux-memtest.iso"] = isolinux_memtest_iso()
    images["ipxe.iso"] = ipxe_iso()
    images["grub-rescue-cdrom.iso"] = grub_rescue_iso()
    images["linux.iso"] = linux_iso()
    images["linux-media-change.iso"] = linux_iso(media_change=True)
    images["disc2.iso"] = second_disc_iso()
    return images


def main(argv: list[str] | None = None) -> int:
    """``python -m images.guests [--shell]``: build every image and print name and path."""
    parser = argparse.ArgumentParser(prog="python -m images.guests", description=main.__doc__)
    parser.add_argument("--shell", action="store_true", help="print NAME=PATH lines")
    args = parser.parse_args(argv)
    try:
        images = all_images()
    except GuestUnavailable as exc:
        print(f"images.guests: {exc}", file=sys.stderr)
        return 1
    for name, path in images.items():
        if args.shell:
            key = re.sub(r"\W", "_", name.removesuffix(".iso")).upper()
            print(f"{key}={shlex.quote(str(path))}")
        else:
            print(f"{name:24} {path}")
    for disc in (1, 2):
        if args.shell:
            print(f"DATA_MD5_{disc}={data_md5(disc)}")
        else:
            print(f"{f'data.bin md5, disc {disc}':24} {data_md5(disc)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
