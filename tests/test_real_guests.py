"""Real images from Debian packages reach their first screen under BOTH firmwares.

One board for every firmware (docs/architecture.md): whatever boots under the built-in
BIOS boots under SeaBIOS and the other way round.  The images are Debian's own
(images/guests.py; ``.ci/run`` downloads the packages): memtest86+'s two ISOs, ISOLINUX
chain-loading ``memtest86+ia32.bin``, iPXE's ISO, GRUB's rescue CD and ISOLINUX loading
Debian's 6.1 amd64 kernel with an initramfs.  Each run waits for the text the guest's
first screen shows and is bounded by a wall-clock ``timeout``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from emu.boot import BootOptions, ExitStatus, run_boot
from emu.firmware.seabios import SEABIOS_BIN
from images import guests

FIRMWARES = ["builtin", pytest.param("seabios", marks=pytest.mark.skipif(
    not SEABIOS_BIN.exists(), reason="seabios is not installed (.ci/run installs it)"))]


def image(build: Callable[[], Path]) -> Path:
    try:
        return build()
    except guests.GuestUnavailable as exc:
        pytest.skip(f"{exc} (.ci/run fetches the packages)")


CASES = {
    # name: (image builder, text of the first screen, memory, wall-clock budget)
    "memtest-ia32-iso": (lambda: guests.memtest_iso("ia32"), "Memtest86+ v6", 256, 120),
    "memtest-x64-iso": (lambda: guests.memtest_iso("x64"), "Memtest86+ v6", 256, 120),
    "isolinux-memtest-bin": (guests.isolinux_memtest_iso, "Memtest86+ v6", 256, 240),
    "ipxe": (guests.ipxe_iso, "Press Ctrl-B", 256, 120),
    "grub-rescue": (guests.grub_rescue_iso, "Press enter to boot", 256, 120),
    # The kernel's real-mode setup prints "Probing EDD"; its decompressor then says why
    # KASLR is off: both halves of the kernel's start ran on this board.
    "linux-6.1": (guests.linux_iso, "KASLR disabled", 512, 120),
}


@pytest.mark.parametrize("firmware", FIRMWARES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_real_image_reaches_its_first_screen(case: str, firmware: str) -> None:
    build, text, megabytes, budget = CASES[case]
    iso = image(build)
    result = run_boot(BootOptions(iso=iso, firmware=firmware, until=text,
                                  memory_size=megabytes << 20, timeout=budget))
    assert result.status is ExitStatus.OK, (result.message, result.screen)
    assert text in result.screen or text in result.serial
    assert result.drive_commands > 0  # every byte came through the emulated drive


@pytest.mark.parametrize("firmware", FIRMWARES)
def test_the_wall_clock_timeout_holds_on_memtest(firmware: str) -> None:
    # memtest86+ computes for seconds on end without a keyboard poll: only the wall-clock
    # limit can end the run, and it must hold within a second.
    iso = image(lambda: guests.memtest_iso("x64"))
    started = time.monotonic()
    result = run_boot(BootOptions(iso=iso, firmware=firmware, timeout=2))
    assert time.monotonic() - started < 3.0
    assert result.status in (ExitStatus.LIMIT, ExitStatus.OK), result.message
