"""Boot times: the sample, ISOLINUX to ``boot:``, GRUB rescue to its menu (pytest-benchmark).

Each round is a whole power-on: firmware probe, El Torito, BIOS, CPU until the
stop condition.  ``extra_info`` keeps the guest instruction count, the INT 13h
reads and the effective guest MIPS, so a slowdown can be told apart from a
guest that took another path.  Run:
``.venv/bin/python -m pytest bench/test_boot_bench.py -p no:randomly``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from emu.boot import BootOptions, ExitStatus, run_boot

GRUB_RESCUE_ISO = Path("/usr/lib/grub-rescue/grub-rescue-cdrom.iso")



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
