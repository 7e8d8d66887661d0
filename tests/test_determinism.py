"""Guest time is a pure function of guest execution (emu/pc/clock.py): the same boot gives
the same instruction count and the same screen, run after run, with either clock.

Three boots each of ISOLINUX (built-in firmware), GRUB rescue (built-in) and ISOLINUX
under SeaBIOS, each to its prompt or menu text, once per clock (``both_clocks``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from emu.boot import BootOptions, ExitStatus, run_boot
from emu.firmware.seabios import SEABIOS_BIN
from tests.test_boot import grub_iso, isolinux_iso  # noqa: F401 - module fixtures

pytestmark = pytest.mark.usefixtures("both_clocks")

BOOTS = {
    "isolinux": ("isolinux_iso", "builtin", "Hello from the ISOLINUX test disc"),
    "grub": ("grub_iso", "builtin", "keys to select"),
    "seabios-isolinux": ("isolinux_iso", "seabios", "Hello from the ISOLINUX test disc"),
}


@pytest.mark.parametrize("name", list(BOOTS))
def test_three_boots_give_the_same_instruction_count_and_screen(name, request):
    fixture, firmware, until = BOOTS[name]
    if firmware == "seabios" and not SEABIOS_BIN.exists():
        pytest.skip("seabios is not installed")
    iso: Path = request.getfixturevalue(fixture)
    runs = [run_boot(BootOptions(iso=iso, firmware=firmware, until=until, timeout=120))
            for _ in range(3)]
    for result in runs:
        assert result.status is ExitStatus.OK, result.message
    assert len({r.instructions for r in runs}) == 1, [r.instructions for r in runs]
    assert len({r.screen for r in runs}) == 1
    assert until in runs[0].screen
