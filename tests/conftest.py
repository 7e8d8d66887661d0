"""Shared fixtures: patterned images and machines with a drive on a chosen channel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from devices.atapi.drive import AtapiDrive
from devices.media.iso import IsoImage
from emu.pc.machine import Machine
from images.builders import build_patterned_iso, pattern_bytes, pattern_extent
from tests.guest import Guest


@pytest.fixture(params=["native", "count"])
def both_clocks(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test once with each virtual clock (emu/pc/clock.py): the native block
    clock and the ``count=`` slicing fallback.  Modules that boot guests use it with
    ``pytestmark = pytest.mark.usefixtures("both_clocks")``; the environment variable
    reaches CPUs built in the test and ``emu`` subprocesses alike."""
    from emu.pc.clock import CLOCK_ENV, native_available

    if request.param == "native":
        # Built at install time with the machine's C compiler: its absence is a failure.
        assert native_available(), "the native block clock (emu/pc/_blockclock.c) is not built"
    monkeypatch.setenv(CLOCK_ENV, request.param)
    return str(request.param)


@pytest.fixture(scope="session")
def patterned_iso(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bootable ISO with a 64-sector patterned file, padded to 200 sectors."""
    path = tmp_path_factory.mktemp("iso") / "pattern.iso"
    return build_patterned_iso(path, data_sectors=64, total_sectors=200)


@pytest.fixture(scope="session")
def pattern_lba(patterned_iso: Path) -> int:
    """First LBA of the patterned file on ``patterned_iso``."""
    return pattern_extent(patterned_iso)[0]


def expected(lba: int, count: int) -> bytes:
    """What ``count`` sectors at ``lba`` of a patterned region hold."""
    return pattern_bytes(lba * 2048, count * 2048).tobytes()


@pytest.fixture
def iso_medium(patterned_iso: Path) -> Iterator[IsoImage]:
    image = IsoImage(patterned_iso)
    yield image
    image.close()


@pytest.fixture
def machine() -> Machine:
    return Machine()


@pytest.fixture
def rig(machine: Machine, iso_medium: IsoImage) -> tuple[Machine, AtapiDrive, Guest]:
    """A machine with the patterned disc in a drive at bus 0, device 0."""
    drive = machine.add_dvd_drive(0, 0, iso_medium)
    return machine, drive, Guest(machine, 0)


def read10(lba: int, count: int) -> bytes:
    return bytes([0x28, 0, *lba.to_bytes(4, "big"), 0, *count.to_bytes(2, "big"), 0, 0, 0])


def as_array(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint8)
