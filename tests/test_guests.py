"""The real guest images (images/guests.py): built from Debian packages, structure checked.

El Torito (boot catalog, initial entry, boot-info table), the initramfs (newc archive with
busybox, the CD modules in dependency order and /init), the data files' md5, caching and
reproducibility.  The packages come from ``.ci/run`` (``apt-get download`` into the cache);
without them these tests skip and say so.  A few tests boot the images in QEMU as a
reference; they run only where QEMU is installed (it is never a project dependency).
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import subprocess
import sys
from pathlib import Path

import pycdlib
import pytest

from bench.qemu_reference import boot, qemu_available
from images import guests

PACKAGES = (guests.MEMTEST_DEB, guests.IPXE_DEB, guests.BUSYBOX_DEB, guests.KERNEL_DEB)


def _missing() -> str:
    """Why the guest images cannot be built here ("" if they can)."""
    absent = [p for p in PACKAGES if not any(guests.debs_dir().glob(p))]
    if absent:
        return f"{', '.join(absent)} not in {guests.debs_dir()} (.ci/run downloads them)"
    for path in (guests.ISOLINUX_BIN, guests.LDLINUX_C32, guests.GRUB_RESCUE_ISO):
        if not path.is_file():
            return f"{path} is not installed (.ci/run installs it)"
    for tool in ("xorriso", "dpkg-deb"):
        if subprocess.run(["which", tool], capture_output=True).returncode:
            return f"{tool} is not installed (.ci/run installs it)"
    return ""


MISSING = _missing()
needs_packages = pytest.mark.skipif(bool(MISSING), reason=MISSING)
needs_qemu = pytest.mark.skipif(not qemu_available(), reason="QEMU is not installed (optional)")


def open_iso(path: Path) -> pycdlib.PyCdlib:
    iso = pycdlib.PyCdlib()
    iso.open(str(path))
    return iso


def read_file(iso: pycdlib.PyCdlib, rr_path: str) -> bytes:
    import io

    out = io.BytesIO()
    iso.get_file_from_iso_fp(out, rr_path=rr_path)
    return out.getvalue()


def initial_entry(path: Path) -> tuple[int, object]:
    iso = open_iso(path)
    try:
        catalog = iso.eltorito_boot_catalog
        assert catalog is not None, f"{path.name} has no El Torito boot catalog"
        return catalog.validation_entry.platform_id, catalog.initial_entry
    finally:
        iso.close()


# -- images as shipped -------------------------------------------------------------------------


@needs_packages
@pytest.mark.parametrize("kind", guests.MEMTEST_KINDS)
def test_memtest_isos_are_the_package_files_booting_as_a_144m_floppy(kind):
    path = guests.memtest_iso(kind)
    assert path.name == f"memtest86+{kind}.iso"
    assert path.is_relative_to(guests.cache_dir())
    platform, entry = initial_entry(path)
    # El Torito §2.2: boot indicator 88h (bootable), media type 2 = 1.44M floppy emulation.
    assert (platform, entry.boot_indicator, entry.boot_media_type) == (0, 0x88, 2)


@needs_packages
def test_ipxe_and_grub_rescue_isos_boot_without_emulation():
    for path in (guests.ipxe_iso(), guests.grub_rescue_iso()):
        platform, entry = initial_entry(path)
        assert (platform, entry.boot_indicator, entry.boot_media_type) == (0, 0x88, 0)
        assert entry.sector_count == 4
    assert guests.grub_rescue_iso() == guests.GRUB_RESCUE_ISO


def test_memtest_rejects_an_unknown_kind():
    with pytest.raises(ValueError, match="memtest kind"):
        guests.memtest_iso("arm64")  # type: ignore[arg-type]


# -- ISOLINUX discs ----------------------------------------------------------------------------


def check_isolinux_boot(path: Path) -> None:
    """No-emulation initial entry loading 4 virtual sectors of isolinux.bin, with the
    boot-info table (PVD LBA, file LBA, length, checksum at offset 8) patched in."""
    platform, entry = initial_entry(path)
    assert (platform, entry.boot_indicator, entry.boot_media_type) == (0, 0x88, 0)
    assert entry.sector_count == 4
    iso = open_iso(path)
    try:
        boot = read_file(iso, "/isolinux/isolinux.bin")
    finally:
        iso.close()
    original = guests.ISOLINUX_BIN.read_bytes()
    assert len(boot) == len(original) and boot[64:] == original[64:]
    pvd, lba, length, checksum = struct.unpack_from("<4I", boot, 8)
    assert (pvd, lba, length) == (16, entry.load_rba, len(boot))
    words = struct.unpack_from(f"<{(len(boot) - 64) // 4}I", boot, 64)
    assert checksum == sum(words) & 0xFFFFFFFF


@needs_packages
def test_isolinux_memtest_iso_chain_loads_the_package_bin_as_a_linux_kernel():
    path = guests.isolinux_memtest_iso()
    check_isolinux_boot(path)
    iso = open_iso(path)
    try:
        cfg = read_file(iso, "/isolinux/isolinux.cfg").decode()
        binary = read_file(iso, "/memtest.bin")
        assert read_file(iso, "/isolinux/ldlinux.c32") == guests.LDLINUX_C32.read_bytes()
    finally:
        iso.close()
    assert "LINUX /memtest.bin" in cfg and "PROMPT 0" in cfg
    assert binary == guests.memtest_bin("ia32").read_bytes()
    # Linux boot protocol: "HdrS" at 0x202 is what makes LINUX (not KERNEL) the right keyword.
    assert binary[0x202:0x206] == b"HdrS"


@needs_packages
def test_linux_iso_holds_the_package_kernel_our_initramfs_and_the_3mb_file():
    path = guests.linux_iso()
    check_isolinux_boot(path)
    iso = open_iso(path)
    try:
        cfg = read_file(iso, "/isolinux/isolinux.cfg").decode()
        kernel = read_file(iso, "/vmlinuz")
        initrd = read_file(iso, "/initrd.gz")
        data = read_file(iso, f"/{guests.DATA_NAME}")
    finally:
        iso.close()
    assert "LINUX /vmlinuz" in cfg and "INITRD /initrd.gz" in cfg
    assert f"APPEND {guests.KERNEL_APPEND}" in cfg
    assert "console=ttyS0,115200" in cfg.split("console=tty0")[-1]  # ttyS0 is /dev/console
    assert kernel == guests.vmlinuz().read_bytes() and kernel[0x202:0x206] == b"HdrS"
    assert initrd == guests.initramfs().read_bytes()
    assert len(data) == guests.DATA_SIZE == 3 * 1024 * 1024
    assert hashlib.md5(data).hexdigest() == guests.data_md5(1) == guests.DATA_MD5[1]


@needs_packages
def test_second_disc_has_other_bytes_under_the_same_name_and_the_marker():
    iso = open_iso(guests.second_disc_iso())
    try:
        data = read_file(iso, f"/{guests.DATA_NAME}")
        marker = read_file(iso, f"/{guests.DISC2_MARKER}")
        assert iso.eltorito_boot_catalog is None
    finally:
        iso.close()
    assert hashlib.md5(data).hexdigest() == guests.data_md5(2) == guests.DATA_MD5[2]
    assert guests.DATA_MD5[1] != guests.DATA_MD5[2] and marker


# -- the initramfs -----------------------------------------------------------------------------


@needs_packages
def test_module_closure_puts_each_module_after_its_dependencies():
    plan = guests.module_closure()
    names = [name for name, _ in plan.load_order]
    assert set(guests.CD_MODULES) <= set(names) | set(plan.builtin)
    # Debian 6.1 builds the whole path to the CD as modules (none is built in).
    assert set(names) == {"scsi_common", "scsi_mod", "libata", "ata_piix", "cdrom", "sr_mod",
                          "isofs"}
    for position, (_, path) in enumerate(plan.load_order):
        depends = guests.modinfo(path)["depends"][0]
        for dep in filter(None, depends.split(",")):
            assert dep in plan.builtin or names.index(dep) < position, (path.name, dep)


@needs_packages
def test_modinfo_reads_the_module_metadata():
    plan = dict(guests.module_closure().load_order)
    info = guests.modinfo(plan["ata_piix"])
    assert info["depends"] == ["libata"]
    assert info["vermagic"][0].startswith(guests.kernel_version())
    assert any(alias.startswith("pci:v00008086d00007010") for alias in info["alias"])


@needs_packages
def test_initramfs_has_busybox_its_applets_the_modules_and_init():
    entries = guests.read_newc(guests.initramfs().read_bytes())
    mode, busybox = entries["bin/busybox"]
    assert stat.S_ISREG(mode) and mode & 0o111
    assert busybox == guests.busybox().read_bytes()
    for applet in ("bin/sh", "sbin/insmod", "bin/mount", "usr/bin/md5sum", "sbin/poweroff"):
        mode, target = entries[applet]
        assert stat.S_ISLNK(mode) and target == b"/bin/busybox", applet
    mode, _ = entries["dev/console"]
    assert stat.S_ISCHR(mode)
    plan = guests.module_closure()
    for name, path in plan.load_order:
        assert entries[f"modules/{path.name}"][1] == path.read_bytes(), name
    mode, init = entries["init"]
    assert stat.S_ISREG(mode) and mode & 0o111 and init.startswith(b"#!/bin/sh\n")
    script = init.decode()
    order = [script.index(f"insmod /modules/{path.name}") for _, path in plan.load_order]
    assert order == sorted(order)
    assert guests.data_md5(1) in script and guests.data_md5(2) not in script
    assert "poweroff -f" in script


def test_media_change_init_waits_for_disc_two_with_polling_on():
    plain = guests.init_script(["a.ko"], media_change=False)
    change = guests.init_script(["a.ko"], media_change=True)
    assert "events_dfl_poll_msecs" not in plain
    assert "echo 2000 > /sys/module/block/parameters/events_dfl_poll_msecs" in change
    assert guests.data_md5(2) in change and guests.DISC2_MARKER in change
    assert change.index("umount /mnt") < change.index(guests.MILESTONES["waiting"][6:])


def test_data_is_deterministic_and_the_recorded_md5s_match():
    assert len(guests.data_bytes(1)) == guests.DATA_SIZE
    assert guests.data_bytes(1) == guests.data_bytes(1) != guests.data_bytes(2)
    assert {d: guests.data_md5(d) for d in (1, 2)} == guests.DATA_MD5


def test_newc_round_trip_keeps_names_modes_and_data():
    entries = [("d", stat.S_IFDIR | 0o755, b"", 0), ("d/f", stat.S_IFREG | 0o644, b"abc", 0),
               ("c", stat.S_IFCHR | 0o600, b"", os.makedev(5, 1))]
    archive = guests._newc(entries)
    assert archive.startswith(b"070701") and len(archive) % 4 == 0
    assert guests.read_newc(archive) == {n: (m, d) for n, m, d, _ in entries}


# -- caching and reproducibility ---------------------------------------------------------------


@needs_packages
def test_builders_reuse_their_output_and_rebuild_the_same_bytes(tmp_path, monkeypatch):
    first = guests.isolinux_memtest_iso()
    stamp = first.stat().st_mtime_ns
    assert guests.isolinux_memtest_iso() == first and first.stat().st_mtime_ns == stamp
    assert not first.is_relative_to(Path(guests.__file__).parents[1])  # never in the repo
    monkeypatch.setattr(guests, "_outputs_dir", lambda: tmp_path)
    for build in (guests.isolinux_memtest_iso, guests.second_disc_iso, guests.initramfs):
        cached = build()
        monkeypatch.undo()
        again = build()
        monkeypatch.setattr(guests, "_outputs_dir", lambda: tmp_path)
        assert cached.parent == tmp_path and again.parent != tmp_path
        assert cached.read_bytes() == again.read_bytes(), build.__name__


def test_missing_packages_give_one_line_saying_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("EMU_ATAPI_CACHE", str(tmp_path))
    with pytest.raises(guests.GuestUnavailable, match=r"\.ci/run downloads it"):
        guests.memtest_iso("ia32")
    result = subprocess.run([sys.executable, "-m", "images.guests"], capture_output=True,
                            text=True, env=dict(os.environ, EMU_ATAPI_CACHE=str(tmp_path)))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


# -- QEMU as the reference (only where QEMU is installed) ---------------------------------------


@needs_packages
@needs_qemu
def test_qemu_shows_grub_rescue_first_screen():
    run = boot(guests.grub_rescue_iso(), guests.FIRST_SCREENS["grub-rescue-cdrom.iso"],
               timeout=30)
    assert run.found, run.screen


@needs_packages
@needs_qemu
def test_qemu_linux_guest_reads_both_discs_through_ata_piix_and_sr_mod():
    m = guests.MILESTONES
    run = boot(guests.linux_iso(media_change=True), m["poweroff"], timeout=120,
               wait_exit=True, screen_poll=None, swap=(m["waiting"], guests.second_disc_iso()),
               watch=[m["init"], m["modules"], m["sr0"], m["mount"], m["md5"], m["change"],
                      m["md5_2"]])
    assert run.found, run.serial[-2000:]
    assert "Linux version 6.1" in run.serial
    assert f"INIT: md5 {guests.data_md5(1)}" in run.serial
    assert f"INIT: disc 2 md5 {guests.data_md5(2)}" in run.serial
    order = [run.seen[m[k]] for k in ("init", "modules", "sr0", "mount", "md5", "change",
                                      "md5_2")]
    assert order == sorted(order)
    assert "MISMATCH" not in run.serial and "FAILED" not in run.serial
