"""SeaBIOS beside the built-in firmware: time from process start to ISOLINUX's ``boot:``.

Each round runs ``emu boot --firmware {builtin,seabios} ISO --until boot:`` as a
fresh process (interpreter start, imports, power-on, firmware, ISOLINUX), so
the figure is what a user waits for.  A second pair times the boot alone
in-process (``run_boot``) and keeps the guest instruction counts.  Run:
``.venv/bin/python -m pytest bench/test_seabios_bench.py -p no:randomly``.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from emu.boot import BootOptions, ExitStatus, run_boot
from emu.firmware.seabios import SEABIOS_BIN

pytestmark = pytest.mark.skipif(not SEABIOS_BIN.exists(), reason="seabios is not installed")


@pytest.mark.parametrize("firmware", ["builtin", "seabios"])
def test_process_start_to_isolinux_prompt(benchmark, isolinux_iso, firmware):
    benchmark.group = "process start to ISOLINUX boot:"

    def one() -> None:
        out = subprocess.run([sys.executable, "-m", "emu.tools.cli", "boot", "--firmware", firmware,
                              "--until", "boot:", "--no-interactive", str(isolinux_iso)],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr

    benchmark.pedantic(one, rounds=5, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("firmware", ["builtin", "seabios"])
def test_boot_to_isolinux_prompt_in_process(benchmark, isolinux_iso, firmware):
    benchmark.group = "power-on to ISOLINUX boot: (in process)"
    results = []

    def one() -> None:
        results.append(run_boot(BootOptions(iso=isolinux_iso, until="boot:", firmware=firmware)))

    benchmark.pedantic(one, rounds=5, iterations=1, warmup_rounds=0)
    last = results[-1]
    assert last.status is ExitStatus.OK, last.message
    benchmark.extra_info.update(
        instructions=last.instructions,
        guest_mips=round(last.instructions / last.wall_seconds / 1e6, 1),
    )
