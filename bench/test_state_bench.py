"""Saved state: restoring at the loader prompt vs booting to it (issue 15, docs/state.md).

Each pair, in the same run: the baseline (``kind="raw"``) powers on and boots the ISOLINUX
disc until ``boot:`` appears; the measured side (``kind="emu"``) builds a board from a
state file saved there, ready to go on (the ratio column is boot time / restore time;
the goal is at least 5×).  The ``...+keys`` pairs add the same experiment on both sides
(type ``ls.c32 /`` and chain-load ``hello.bs``), so they compare whole experiments.
Run: ``.venv/bin/python -m pytest bench/test_state_bench.py -p no:randomly``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from emu.boot import BootOptions, ExitStatus, boot_session, restore_session
from emu.firmware.seabios import SEABIOS_BIN

KEYS = "ls.c32 /\r/hello.bs\r"
CHAIN = "CHAINLOADED"
FIRMWARES = ["builtin", pytest.param("seabios", marks=pytest.mark.skipif(
    not SEABIOS_BIN.exists(), reason="Debian's seabios package is not installed"))]



def _boot(iso: Path, firmware: str, keys: str) -> None:
    session = boot_session(BootOptions(iso=iso, firmware=firmware, timeout=None))
    try:
        result = session.resume(until="boot:", timeout=None)
        assert result.status is ExitStatus.OK, result.message
        if keys:
            assert CHAIN in session.resume(until=CHAIN, keys=keys, timeout=None).screen
    finally:
        session.close()


def _restore(path: Path, keys: str) -> None:
    session = restore_session(path, options=BootOptions(timeout=None))
    try:
        if keys:
            assert CHAIN in session.resume(until=CHAIN, keys=keys, timeout=None).screen
        else:
            assert "boot:" in session.scraper.text()
    finally:
        session.close()


@pytest.fixture(scope="module")
def states(isolinux_iso: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for firmware in ("builtin", "seabios"):
        if firmware == "seabios" and not SEABIOS_BIN.exists():
            continue
        session = boot_session(BootOptions(iso=isolinux_iso, firmware=firmware, timeout=None))
        try:
            session.resume(until="boot:", timeout=None)
            out[firmware] = tmp_path_factory.mktemp("states") / f"{firmware}.emustate"
            session.save_state(out[firmware])
        finally:
            session.close()
    return out


@pytest.mark.parametrize("firmware", FIRMWARES)
@pytest.mark.parametrize("keys", ["", KEYS], ids=["prompt", "prompt+keys"])
@pytest.mark.parametrize("kind", ["raw", "emu"])
def test_restore_at_the_prompt_vs_boot_to_it(record, isolinux_iso, states, firmware, keys,
                                             kind):
    group = f"state {firmware} {'prompt+keys' if keys else 'prompt'}"
    if kind == "raw":
        record(group, "raw", lambda: _boot(isolinux_iso, firmware, keys))
    else:
        record(group, "emu", lambda: _restore(states[firmware], keys),
               target="≥ 5× (issue 15)" if not keys else "")
