"""Thread safety: a host thread swaps media 1,000 times while the guest reads through the ports.

Every call of the management API holds the machine lock, and a READ is
decided in one port access (the last CDB word), so each command sees exactly
one medium: every successful READ must return bytes that belong entirely to
image A or entirely to image B.  Image A's data region holds the builder's
offset pattern; image B's holds its bitwise complement, so the two can never
be confused and a mixed read is detected.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from emu import VirtualPC
from emu.api.hresult import VMError
from images.builders import build_patterned_iso, pattern_bytes, pattern_extent
from tests.guest import STATUS_ERR, Guest

SECTOR = 2048
SWAPS = 1000
READ_SECTORS = 3


@pytest.fixture(scope="module")
def two_images(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int, int]:
    root = tmp_path_factory.mktemp("stress")
    a = build_patterned_iso(root / "a.iso", data_sectors=24, boot=False, volume_id="A")
    b = build_patterned_iso(root / "b.iso", data_sectors=24, boot=False, volume_id="A")
    first, count = pattern_extent(b)
    raw = bytearray(b.read_bytes())
    region = slice(first * SECTOR, (first + count) * SECTOR)
    raw[region] = (np.frombuffer(bytes(raw[region]), dtype=np.uint8) ^ 0xFF).tobytes()
    b.write_bytes(bytes(raw))
    assert pattern_extent(a) == (first, count)
    return a, b, first, count


def test_swapping_media_while_the_guest_reads(two_images: tuple[Path, Path, int, int]) -> None:
    image_a, image_b, first, count = two_images
    with VirtualPC() as vpc:
        vm = vpc.create_virtual_machine("stress")
        dvd = vm.add_dvd_drive(1, 0)
        vm.power_on()
        guest = Guest(vm.machine, 1)
        guest.clear_power_on_ua()
        dvd.attach_image(image_a)

        stop = threading.Event()
        errors: list[BaseException] = []
        swaps = 0

        def host() -> None:
            nonlocal swaps
            try:
                for i in range(SWAPS):
                    dvd.release_image()
                    dvd.attach_image(image_b if i % 2 == 0 else image_a)
                    swaps += 1
                    # Let the guest thread run between swaps (a bare loop can finish all
                    # 1,000 swaps inside one GIL slice, and then no READ ever succeeds).
                    if i % 10 >= 8:  # pause after a B attach (even i) and an A attach
                        time.sleep(0.0003)
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)
            finally:
                stop.set()

        good = {"A": 0, "B": 0}
        failed = 0
        mixed: list[int] = []
        deadline = time.monotonic() + 45
        worker = threading.Thread(target=host, name="host-swapper")
        worker.start()
        lba = first
        try:
            while not stop.is_set() and time.monotonic() < deadline:
                cdb = bytes([0x28, 0, *lba.to_bytes(4, "big"), 0, 0, READ_SECTORS, 0, 0, 0])
                data, status = guest.command_reply(cdb, 0x2000)  # several DRQ blocks
                if status & STATUS_ERR:
                    failed += 1
                    guest.sense()
                else:
                    expect_a = pattern_bytes(lba * SECTOR, READ_SECTORS * SECTOR).tobytes()
                    expect_b = bytes(x ^ 0xFF for x in expect_a)
                    if data == expect_a:
                        good["A"] += 1
                    elif data == expect_b:
                        good["B"] += 1
                    else:
                        mixed.append(lba)
                lba = first + (lba - first + 1) % (count - READ_SECTORS)
        finally:
            stop.set()
            worker.join(30)
        assert not worker.is_alive()
        assert errors == [], errors
        assert not any(isinstance(e, VMError) for e in errors)
        assert swaps == SWAPS
        assert mixed == []
        assert good["A"] > 0 and good["B"] > 0, (good, failed)  # both images were read
        # after the last attach the drive settles on image A (1,000 swaps: last i is odd)
        for _ in range(3):
            guest.packet(b"\x00", 0)
            guest.status()
        data, status = guest.command_reply(
            bytes([0x28, 0, *first.to_bytes(4, "big"), 0, 0, 1, 0, 0, 0])
        )
        assert not status & STATUS_ERR
        assert data == pattern_bytes(first * SECTOR, SECTOR).tobytes()
