"""An image cut short while attached: the guest gets MEDIUM ERROR, the process lives.

``IsoImage`` serves sectors from a memory map sized when the image was attached;
touching a mapped page past the new end of a truncated file raises SIGBUS, which
would kill the emulator.  The drive asks the file's size before handing out a
view, so a READ past the new end fails CHECK CONDITION, MEDIUM ERROR /
UNRECOVERED READ ERROR (03/11/00, SPC-3 §4.5.6), by PIO and by bus-master DMA,
and the next TEST UNIT READY answers GOOD (the disc is still in the drive).  A file cut
while a transfer is under way ends that transfer the same way: the drive asks the
medium again before it copies from a view it has held since an earlier port access.

Each scenario runs in a child process, so a regression shows up as a failed test
(exit status -7, SIGBUS) instead of killing the test run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from images.builders import build_patterned_iso

ROOT = Path(__file__).resolve().parent.parent
SECTOR = 2048
BM = 0xC000
PRDT, BUF = 0x1000, 0x10000


def _read10(lba: int, count: int) -> bytes:
    return bytes([0x28, 0, *lba.to_bytes(4, "big"), 0, *count.to_bytes(2, "big"), 0, 0, 0])


def _half(path: Path) -> int:
    """Truncate ``path`` to half its sectors (in place, as a host tool would); return them."""
    sectors = path.stat().st_size // SECTOR // 2
    os.truncate(path, sectors * SECTOR)
    return sectors


def scenario(kind: str, image: str) -> dict[str, object]:
    """Attach ``image``, cut it to half, read past the new end; report what the guest saw."""
    from devices.media.iso import IsoImage
    from emu import VirtualPC
    from emu.machine import Machine
    from tests.guest import Guest

    out: dict[str, object] = {}
    vpc = None
    if kind == "vpc":
        vpc = VirtualPC()
        vm = vpc.create_virtual_machine("shrink")
        dvd = vm.add_dvd_drive(0, 0)
        vm.power_on()
        dvd.attach_image(image)
        machine = vm.machine
    else:
        machine = Machine()
        medium = IsoImage(image)
        machine.add_dvd_drive(0, 0, medium)
    g = Guest(machine, 0)
    for _ in range(3):  # power-on UA, then (API attach) NOT READY and UA
        g.packet(b"\0", 0)
        if not g.status() & 1:
            break
    out["capacity_before"] = machine.ide.unit(0, 0).medium.sector_count
    new_end = _half(Path(image))
    out["new_end"] = new_end
    cdb = _read10(new_end, 2)
    if kind == "dma":
        m = machine
        raw = BUF.to_bytes(4, "little") + (2 * SECTOR).to_bytes(2, "little") + b"\x00\x80"
        m.memory.write(PRDT, raw)
        m.outb(BM, 0)
        m.outb(BM + 2, 0x06)
        m.outl(BM + 4, PRDT)
        m.outb(BM, 0x09)  # start, to memory
        g.packet(cdb, 0, dma=True)
        out["bm_status"] = m.inb(BM + 2)
        m.outb(BM, 0)
    else:
        g.packet(cdb, 0xFFFE)
    out["drq"] = bool(g.alt_status() & 0x08)
    out["status"] = g.status()
    out["error"] = g.error()
    out["reason"] = g.reason()
    out["sense"] = list(g.sense())
    verify = bytes([0x2F, 0, *new_end.to_bytes(4, "big"), 0, 0, 1, 0, 0, 0])
    g.packet(verify, 0)  # VERIFY(10) of a sector that is gone: the same medium error
    out["verify_status"] = g.status()
    out["verify_sense"] = list(g.sense())
    data, status = g.command_reply(_read10(new_end - 1, 1))  # still inside: still served
    out["inside_ok"] = status == 0x50 and len(data) == SECTOR
    g.packet(b"\0", 0)
    out["tur"] = g.status()
    if vpc is not None:
        dvd.release_image()
        vpc.close()
    return out


def midway(kind: str, image: str) -> dict[str, object]:
    """Start a READ of the last 8 sectors, cut the file to half while the transfer is
    under way (between two PIO DRQ blocks; between the command and the start of the
    bus-master engine), then go on as the host would; report what it saw."""
    from devices.media.iso import IsoImage
    from emu.machine import Machine
    from tests.guest import Guest

    machine = Machine()
    machine.add_dvd_drive(0, 0, IsoImage(image))
    g = Guest(machine, 0)
    g.clear_power_on_ua()
    last = Path(image).stat().st_size // SECTOR - 8
    out: dict[str, object] = {}
    if kind == "pio":
        g.packet(_read10(last, 8), SECTOR)  # one sector per DRQ block
        first = g.read_words(SECTOR // 2)  # its last word makes the drive ready block 2
        _half(Path(image))
        second = g.read_words(SECTOR // 2)  # copied into the drive's buffer before the cut
        out["first_ok"] = len(first) == len(second) == SECTOR
        out["drq"] = bool(g.alt_status() & 0x08)  # block 3 would come from the cut pages
    else:
        m = machine
        raw = BUF.to_bytes(4, "little") + (8 * SECTOR).to_bytes(2, "little") + b"\x00\x80"
        m.memory.write(PRDT, raw)
        m.memory.write(BUF, b"\xAA" * 8 * SECTOR)
        m.outb(BM, 0)
        m.outb(BM + 2, 0x06)
        m.outl(BM + 4, PRDT)
        g.packet(_read10(last, 8), 0, dma=True)  # as Linux does: the engine starts later
        _half(Path(image))
        m.outb(BM, 0x09)  # start, to memory: the drive checks its view again now
        out["bm_status"] = m.inb(BM + 2)
        m.outb(BM, 0)
        out["untouched"] = m.memory.read(BUF, 8 * SECTOR) == b"\xAA" * 8 * SECTOR
    out["status"] = g.status()
    out["sense"] = list(g.sense())
    g.packet(b"\0", 0)
    out["tur"] = g.status()
    return out


def _run(kind: str, image: Path, function: str = "scenario") -> dict[str, object]:
    code = (
        f"import json, sys; from tests.test_shrinking_image import {function}; "
        f"print(json.dumps({function}(sys.argv[1], sys.argv[2])))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, kind, str(image)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, f"child died ({proc.returncode}): {proc.stderr[-2000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("kind", ["pio", "dma", "vpc"])
def test_image_truncated_to_half_while_attached_gives_medium_error(tmp_path: Path,
                                                                  kind: str) -> None:
    image = build_patterned_iso(tmp_path / "shrink.iso", data_sectors=64, boot=False)
    got = _run(kind, image)
    assert got["new_end"] < got["capacity_before"]
    assert got["drq"] is False  # no data phase: nothing was moved
    assert got["status"] == 0x41  # DRDY | ERR (CHECK CONDITION)
    assert got["error"] == 0x30  # sense key 3 in bits 7-4
    assert got["reason"] == 0x03  # IO | CoD: completion
    assert got["sense"] == [0x03, 0x11, 0x00]  # MEDIUM ERROR, UNRECOVERED READ ERROR
    assert got["inside_ok"] is True
    assert got["verify_status"] == 0x41 and got["verify_sense"] == [0x03, 0x11, 0x00]
    assert got["tur"] == 0x50  # the next TEST UNIT READY answers GOOD
    if kind == "dma":
        assert got["bm_status"] & 0x04  # the engine saw the drive's interrupt


@pytest.mark.parametrize("kind", ["pio", "dma"])
def test_image_cut_short_during_a_transfer_ends_it_with_medium_error(tmp_path: Path,
                                                                    kind: str) -> None:
    """The view of the memory map a transfer holds across port accesses is checked again
    before each later copy: without it, the next DRQ block (or the engine's start) would
    touch unmapped file pages and the child would die of SIGBUS (exit status -7)."""
    image = build_patterned_iso(tmp_path / "shrink.iso", data_sectors=64, boot=False)
    got = _run(kind, image, "midway")
    if kind == "pio":
        assert got["first_ok"] is True  # the blocks buffered before the cut arrived whole
        assert got["drq"] is False
    else:
        assert got["bm_status"] & 0x04  # INTERRUPT: the drive ended the command
        assert got["untouched"] is True  # nothing was copied from the vanished pages
    assert got["status"] == 0x41  # CHECK CONDITION
    assert got["sense"] == [0x03, 0x11, 0x00]
    assert got["tur"] == 0x50
