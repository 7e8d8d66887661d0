"""Boot times: the sample, ISOLINUX to ``boot:``, GRUB rescue to its menu (pytest-benchmark).

Each round is a whole power-on: firmware probe, El Torito, BIOS, CPU until the
stop condition.  ``extra_info`` keeps the guest instruction count, the INT 13h
reads and the effective guest MIPS, so a slowdown can be told apart from a
guest that took another path.  Run:
``.venv/bin/python -m pytest bench/test_boot_bench.py -p no:randomly``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from emu.boot import BootOptions, ExitStatus, run_boot

ISOLINUX_BIN = Path("/usr/lib/ISOLINUX/isolinux.bin")
LDLINUX = Path("/usr/lib/syslinux/modules/bios/ldlinux.c32")
GRUB_RESCUE_ISO = Path("/usr/lib/grub-rescue/grub-rescue-cdrom.iso")


@pytest.fixture(scope="module")
def isolinux_iso(tmp_path_factory):
    xorriso = shutil.which("xorriso")
    if xorriso is None or not ISOLINUX_BIN.exists() or not LDLINUX.exists():
        pytest.skip("xorriso, isolinux and syslinux-common are needed")
    root = tmp_path_factory.mktemp("isolinux-bench")
    (root / "isolinux").mkdir()
    shutil.copy(ISOLINUX_BIN, root / "isolinux")
    shutil.copy(LDLINUX, root / "isolinux")
    (root / "isolinux" / "isolinux.cfg").write_text("SAY benchmark\nPROMPT 1\n")
    iso = root.parent / "isolinux-bench.iso"
    subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", "-o", str(iso),
                    "-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat", "-no-emul-boot",
                    "-boot-load-size", "4", "-boot-info-table", str(root)],
                   check=True, capture_output=True)
    return iso


def _bench_boot(benchmark, options: BootOptions, rounds: int) -> None:
    results = []

    def one() -> None:
        results.append(run_boot(options))

    benchmark.pedantic(one, rounds=rounds, iterations=1, warmup_rounds=0)
    last = results[-1]
    assert last.status is ExitStatus.OK, last.message
    benchmark.extra_info.update(
        instructions=last.instructions,
        int13_42h=last.bios_calls.get((0x13, 0x42), 0),
        cd_sectors=last.sectors_read,
        guest_mips=round(last.instructions / last.wall_seconds / 1e6, 1),
    )


def test_boot_sample(benchmark):
    benchmark.group = "boot"
    _bench_boot(benchmark, BootOptions(), rounds=5)


def test_boot_isolinux_to_prompt(benchmark, isolinux_iso):
    benchmark.group = "boot"
    _bench_boot(benchmark, BootOptions(iso=isolinux_iso, until="boot:"), rounds=5)


def test_boot_grub_rescue_to_menu(benchmark):
    if not GRUB_RESCUE_ISO.exists():
        pytest.skip("grub-rescue-pc is not installed")
    benchmark.group = "boot"
    _bench_boot(benchmark, BootOptions(iso=GRUB_RESCUE_ISO, until="keys to select"), rounds=3)
