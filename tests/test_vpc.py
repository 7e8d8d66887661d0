"""The Pythonic management API (emu.api.vpc): one test per row of every return-code table.

Tables: vpc-api.md §2.2-2.3 (IVMDVDDrive), §4.1-4.4 (IVMVirtualMachine DVD
members, IVMDVDDriveCollection), and docs/management-api.md for the decisions
where the Virtual PC docs are silent.  ``ROWS`` is shared with test_com.py,
which runs the same rows through the COM-style facade.

Rows whose only cause is a NULL *out* pointer (E_POINTER on a property) have no
Python spelling and run on the COM surface only (``com_only``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from devices.media.iso import IsoImage
from emu import VirtualPC
from emu.api import hresult as H
from emu.api.vpc import (
    DriveType,
    DVDAttachment,
    DVDDrive,
    DVDDriveCollection,
    VirtualMachine,
    VMState,
)
from images.builders import build_patterned_iso

SECTOR = 2048


# -- environment -------------------------------------------------------------------------


def build_images(root: Path) -> dict[str, Path]:
    """Two ISOs, raw host-drive files, an empty file, a non-ISO file and a directory."""
    root.mkdir(parents=True, exist_ok=True)
    images = {
        "iso": build_patterned_iso(root / "a.iso", data_sectors=16, boot=False, volume_id="A"),
        "iso2": build_patterned_iso(root / "b.iso", data_sectors=16, boot=False, volume_id="B"),
    }
    raw = root / "raw_d.bin"
    raw.write_bytes(raw_sector_bytes(0, 32))
    images["raw"] = raw
    raw2 = root / "raw_e.bin"
    raw2.write_bytes(raw_sector_bytes(0, 8))
    images["raw2"] = raw2
    empty = root / "empty.iso"
    empty.write_bytes(b"")
    images["empty"] = empty
    junk = root / "junk.iso"
    junk.write_bytes(b"this is not a disc image\n" * 4000)
    images["junk"] = junk
    folder = root / "folder.iso"
    folder.mkdir(exist_ok=True)
    images["folder"] = folder
    return images


def raw_sector_bytes(first: int, count: int) -> bytes:
    """Raw host-drive content: sector n is filled with the byte n and starts with b"SECT" + n."""
    out = bytearray()
    for n in range(first, first + count):
        sector = bytearray([n & 0xFF]) * SECTOR
        sector[0:8] = b"SECT" + n.to_bytes(4, "big")
        out += sector
    return bytes(out)


@dataclass
class Env:
    images: dict[str, Path]
    mp: pytest.MonkeyPatch
    vpc: VirtualPC
    vm: VirtualMachine
    dvd: DVDDrive
    vm2: VirtualMachine
    dvd2: DVDDrive
    coll: DVDDriveCollection
    scratch: dict[str, Any] = field(default_factory=dict)


def make_env(images: dict[str, Path], mp: pytest.MonkeyPatch) -> Env:
    vpc = VirtualPC(
        host_drives={"D": str(images["raw"]), "E:": str(images["raw2"]),
                     "F": str(images["empty"]), "G": str(images["raw"].with_name("gone.bin"))}
    )
    vm = vpc.create_virtual_machine("lab")
    dvd = vm.add_dvd_drive(1, 0)
    vm2 = vpc.create_virtual_machine("other")
    dvd2 = vm2.add_dvd_drive(1, 0)
    return Env(images, mp, vpc, vm, dvd, vm2, dvd2, vm.dvd_drives)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_images(tmp_path_factory.mktemp("vpc"))


def close_env(e: Env) -> None:
    """Undo fault injections, then close every medium (filterwarnings=error catches leaks)."""
    e.mp.undo()
    e.vpc.close()
    for medium in e.scratch.get("leaked", []):
        medium.close()


@pytest.fixture
def env(images: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    e = make_env(images, monkeypatch)
    yield e
    close_env(e)


# -- arrangements (faults and states) ------------------------------------------------


def boom(exc: BaseException) -> Callable[..., Any]:
    def raiser(*args: object, **kwargs: object) -> Any:
        raise exc

    return raiser


def nothing(e: Env) -> None:
    pass


def attach_iso(e: Env) -> None:
    e.dvd.attach_image(e.images["iso"])


def attach_host(e: Env) -> None:
    e.dvd.attach_host_drive("D")


def delete_vm(e: Env) -> None:
    e.vpc.delete_virtual_machine(e.vm)


def attach_iso_then_delete_vm(e: Env) -> None:
    attach_iso(e)
    delete_vm(e)


def remove_drive(e: Env) -> None:
    e.vm.remove_dvd_drive(e.dvd)


def location_out_of_range(e: Env) -> None:
    e.dvd._bus = 2  # fault injection: the recorded location is outside 0..1


def location_taken_over(e: Env) -> None:
    """The cable position no longer holds this drive (something else was put there)."""
    e.vm.machine.remove_drive(1, 0)
    e.vm.machine.add_dvd_drive(1, 0)


def check_raises(exc: BaseException) -> Callable[[Env], None]:
    def arrange(e: Env) -> None:
        e.mp.setattr(e.dvd, "_check", boom(exc))

    return arrange


def then(*steps: Callable[[Env], None]) -> Callable[[Env], None]:
    def arrange(e: Env) -> None:
        for step in steps:
            step(e)

    return arrange


def power(state: VMState) -> Callable[[Env], None]:
    def arrange(e: Env) -> None:
        e.vm.power_on()
        if state is VMState.SAVED:
            e.vm.save()
        elif state is VMState.PAUSED:
            e.vm.pause()

    return arrange


def close_raises(exc: BaseException) -> Callable[[Env], None]:
    def arrange(e: Env) -> None:
        assert e.dvd.medium is not None
        e.scratch.setdefault("leaked", []).append(e.dvd.medium)
        e.mp.setattr(e.dvd.medium, "close", boom(exc))

    return arrange


def placeholder_at(bus: int, device: int) -> Callable[[Env], None]:
    def arrange(e: Env) -> None:
        e.vm.add_hard_disk_placeholder(bus, device)

    return arrange


def vm_check_raises(exc: BaseException) -> Callable[[Env], None]:
    def arrange(e: Env) -> None:
        e.mp.setattr(e.vm, "_check", boom(exc))

    return arrange


# -- the two surfaces ------------------------------------------------------------------


def _py_item(e: Env, i: object) -> Any:
    return e.coll.item(i)  # type: ignore[arg-type]


PY: dict[str, Callable[..., Any]] = {
    "SetBusLocation": lambda e, *a: e.dvd.set_bus_location(*a),
    "BusNumber": lambda e: e.dvd.bus_number,
    "DeviceNumber": lambda e: e.dvd.device_number,
    "AttachImage": lambda e, p: e.dvd.attach_image(e.images.get(p, p) if isinstance(p, str) else p),
    "ReleaseImage": lambda e: e.dvd.release_image(),
    "ImageFile": lambda e: e.dvd.image_file,
    "AttachHostDrive": lambda e, d: e.dvd.attach_host_drive(d),
    "ReleaseHostDrive": lambda e: e.dvd.release_host_drive(),
    "HostDriveLetter": lambda e: e.dvd.host_drive_letter,
    "Attachment": lambda e: e.dvd.attachment,
    "AddDVDROMDrive": lambda e, b, d: e.vm.add_dvd_drive(b, d),
    "RemoveDVDROMDrive": lambda e, which: e.vm.remove_dvd_drive(
        {"dvd": e.dvd, "dvd2": e.dvd2, None: None}[which]
    ),
    "DVDROMDrives": lambda e: e.vm.dvd_drives,
    "AttachedDriveTypes": lambda e: e.vm.attached_drive_types,
    "Count": lambda e: e.coll.count,
    "Item": _py_item,
    "NewEnum": lambda e: list(e.coll),
}


@dataclass(frozen=True)
class Row:
    member: str
    code: str
    why: str
    arrange: Callable[[Env], None] = nothing
    args: tuple[Any, ...] = ()
    com_only: bool = False
    """E_POINTER for a NULL out pointer: the COM surface has it, Python has no out pointers."""

    @property
    def id(self) -> str:
        return f"{self.member}-{self.code}-{self.why}".replace(" ", "_")


RUNNING, SAVED, PAUSED = VMState.RUNNING, VMState.SAVED, VMState.PAUSED
ENOMEM = OSError(5, "Input/output error")

ROWS: list[Row] = [
    # IVMDVDDrive::SetBusLocation
    Row("SetBusLocation", "S_OK", "move to primary slave", args=(0, 1)),
    Row("SetBusLocation", "S_OK", "same location", args=(1, 0)),
    Row("SetBusLocation", "E_INVALIDARG", "bus 2", args=(2, 0)),
    Row("SetBusLocation", "E_INVALIDARG", "device -1", args=(0, -1)),
    Row("SetBusLocation", "E_INVALIDARG", "not an int", args=("1", 0)),
    Row("SetBusLocation", "E_FAIL", "host io error", check_raises(ENOMEM), (0, 1)),
    Row("SetBusLocation", "VM_E_VM_RUNNING_OR_SAVED", "running", power(RUNNING), (0, 1)),
    Row("SetBusLocation", "VM_E_VM_RUNNING_OR_SAVED", "saved", power(SAVED), (0, 1)),
    Row("SetBusLocation", "VM_E_VM_RUNNING_OR_SAVED", "paused", power(PAUSED), (0, 1)),
    Row("SetBusLocation", "VM_E_DRIVE_BUS_LOC_IN_USE", "hard disk", placeholder_at(0, 0), (0, 0)),
    Row("SetBusLocation", "VM_E_DRIVE_BUS_LOC_IN_USE", "dvd",
        lambda e: e.vm.add_dvd_drive(0, 1), (0, 1)),
    Row("SetBusLocation", "VM_E_DRIVE_INVALID", "removed", remove_drive, (0, 1)),
    Row("SetBusLocation", "VM_E_DRIVE_INVALID", "out of range", location_out_of_range, (0, 1)),
    Row("SetBusLocation", "VM_E_DRIVE_INVALID", "taken over", location_taken_over, (0, 1)),
    Row("SetBusLocation", "VM_E_VM_UNKNOWN", "vm deleted", delete_vm, (0, 1)),
    Row("SetBusLocation", "DISP_E_EXCEPTION", "unexpected",
        lambda e: e.mp.setattr(e.vm.machine.ide, "attach", boom(RuntimeError("bug"))), (0, 1)),
    # BusNumber / DeviceNumber
    *[
        row
        for member in ("BusNumber", "DeviceNumber")
        for row in (
            Row(member, "S_OK", "value"),
            Row(member, "E_POINTER", "null out", com_only=True),
            Row(member, "VM_E_DRIVE_INVALID", "removed", remove_drive),
            Row(member, "VM_E_DRIVE_INVALID", "out of range", location_out_of_range),
            Row(member, "VM_E_DRIVE_INVALID", "taken over", location_taken_over),
            Row(member, "VM_E_DRIVE_INVALID", "vm deleted", delete_vm),
            Row(member, "DISP_E_EXCEPTION", "unexpected", check_raises(RuntimeError("bug"))),
        )
    ],
    # AttachImage
    Row("AttachImage", "S_OK", "iso", args=("iso",)),
    Row("AttachImage", "E_INVALIDARG", "directory", args=("folder",)),
    Row("AttachImage", "E_INVALIDARG", "empty path", args=("",)),
    Row("AttachImage", "E_INVALIDARG", "not a path", args=(42,)),
    Row("AttachImage", "E_POINTER", "null path", args=(None,)),
    Row("AttachImage", "VM_E_VM_UNKNOWN", "vm deleted", delete_vm, ("iso",)),
    Row("AttachImage", "VM_E_DRIVE_IN_USE", "iso attached", attach_iso, ("iso2",)),
    Row("AttachImage", "VM_E_DRIVE_IN_USE", "host drive attached", attach_host, ("iso2",)),
    Row("AttachImage", "VM_E_DRIVE_INVALID", "removed", remove_drive, ("iso",)),
    Row("AttachImage", "VM_E_DRIVE_INVALID", "out of range", location_out_of_range, ("iso",)),
    Row("AttachImage", "VM_E_DRIVE_INVALID", "taken over", location_taken_over, ("iso",)),
    Row("AttachImage", "VM_E_IMAGE_CAPTURE_FAIL", "missing", args=("/nonexistent/x.iso",)),
    Row("AttachImage", "VM_E_IMAGE_CAPTURE_FAIL", "not an iso", args=("junk",)),
    Row("AttachImage", "VM_E_IMAGE_CAPTURE_FAIL", "empty file", args=("empty",)),
    Row("AttachImage", "DISP_E_EXCEPTION", "unexpected",
        lambda e: e.mp.setattr("emu.api.vpc.IsoImage", boom(RuntimeError("bug"))), ("iso",)),
    # ReleaseImage (the seed page)
    Row("ReleaseImage", "S_OK", "iso attached", attach_iso),
    Row("ReleaseImage", "VM_E_VM_UNKNOWN", "vm deleted", attach_iso_then_delete_vm),
    Row("ReleaseImage", "VM_E_MEDIA_WRONG_TYPE", "nothing attached"),
    Row("ReleaseImage", "VM_E_MEDIA_WRONG_TYPE", "host drive attached", attach_host),
    Row("ReleaseImage", "VM_E_DRIVE_INVALID", "removed", then(attach_iso, remove_drive)),
    Row("ReleaseImage", "VM_E_DRIVE_INVALID", "out of range",
        then(attach_iso, location_out_of_range)),
    Row("ReleaseImage", "VM_E_DRIVE_INVALID", "taken over", then(attach_iso, location_taken_over)),
    Row("ReleaseImage", "DISP_E_EXCEPTION", "close fails",
        then(attach_iso, close_raises(OSError(5, "Input/output error")))),
    # ImageFile
    Row("ImageFile", "S_OK", "iso attached", attach_iso),
    Row("ImageFile", "E_POINTER", "null out", attach_iso, com_only=True),
    Row("ImageFile", "E_FAIL", "host io error", then(attach_iso, check_raises(ENOMEM))),
    Row("ImageFile", "VM_E_VM_UNKNOWN", "vm deleted", attach_iso_then_delete_vm),
    Row("ImageFile", "VM_E_DRIVE_INVALID", "removed", remove_drive),
    Row("ImageFile", "VM_E_DRIVE_INVALID", "out of range", location_out_of_range),
    Row("ImageFile", "VM_E_MEDIA_WRONG_TYPE", "nothing attached"),
    Row("ImageFile", "VM_E_MEDIA_WRONG_TYPE", "host drive attached", attach_host),
    Row("ImageFile", "DISP_E_EXCEPTION", "unexpected", check_raises(RuntimeError("bug"))),
    # AttachHostDrive
    Row("AttachHostDrive", "S_OK", "letter", args=("D",)),
    Row("AttachHostDrive", "S_OK", "letter with colon", args=("e:",)),
    Row("AttachHostDrive", "S_OK", "device path", args=(None,),
        arrange=lambda e: e.scratch.update(path=str(e.images["raw2"]))),
    Row("AttachHostDrive", "E_INVALIDARG", "unknown letter", args=("Q",)),
    Row("AttachHostDrive", "E_INVALIDARG", "relative path", args=("raw_d.bin",)),
    Row("AttachHostDrive", "E_INVALIDARG", "device missing", args=("G",)),
    Row("AttachHostDrive", "E_INVALIDARG", "not a string", args=(4,)),
    Row("AttachHostDrive", "E_POINTER", "null letter", args=(None,)),
    Row("AttachHostDrive", "E_FAIL", "device unusable (empty)", args=("F",)),
    Row("AttachHostDrive", "VM_E_VM_UNKNOWN", "vm deleted", delete_vm, ("D",)),
    Row("AttachHostDrive", "VM_E_DRIVE_IN_USE", "iso attached", attach_iso, ("D",)),
    Row("AttachHostDrive", "VM_E_DRIVE_IN_USE", "captured by another vm",
        lambda e: e.dvd2.attach_host_drive("D"), ("D",)),
    Row("AttachHostDrive", "VM_E_DRIVE_INVALID", "removed", remove_drive, ("D",)),
    Row("AttachHostDrive", "VM_E_DRIVE_INVALID", "out of range", location_out_of_range, ("D",)),
    Row("AttachHostDrive", "DISP_E_EXCEPTION", "unexpected",
        lambda e: e.mp.setattr("emu.api.vpc.HostDrive", boom(RuntimeError("bug"))), ("D",)),
    # ReleaseHostDrive
    Row("ReleaseHostDrive", "S_OK", "host drive attached", attach_host),
    Row("ReleaseHostDrive", "E_FAIL", "close io error",
        then(attach_host, close_raises(OSError(5, "Input/output error")))),
    Row("ReleaseHostDrive", "VM_E_VM_UNKNOWN", "vm deleted", then(attach_host, delete_vm)),
    Row("ReleaseHostDrive", "VM_E_MEDIA_WRONG_TYPE", "nothing attached"),
    Row("ReleaseHostDrive", "VM_E_MEDIA_WRONG_TYPE", "iso attached", attach_iso),
    Row("ReleaseHostDrive", "VM_E_DRIVE_INVALID", "removed", then(attach_host, remove_drive)),
    Row("ReleaseHostDrive", "VM_E_DRIVE_INVALID", "taken over",
        then(attach_host, location_taken_over)),
    Row("ReleaseHostDrive", "DISP_E_EXCEPTION", "close bug",
        then(attach_host, close_raises(RuntimeError("bug")))),
    # HostDriveLetter
    Row("HostDriveLetter", "S_OK", "host drive attached", attach_host),
    Row("HostDriveLetter", "E_POINTER", "null out", attach_host, com_only=True),
    Row("HostDriveLetter", "E_FAIL", "host io error", then(attach_host, check_raises(ENOMEM))),
    Row("HostDriveLetter", "VM_E_VM_UNKNOWN", "vm deleted", then(attach_host, delete_vm)),
    Row("HostDriveLetter", "VM_E_MEDIA_WRONG_TYPE", "nothing attached"),
    Row("HostDriveLetter", "VM_E_MEDIA_WRONG_TYPE", "iso attached", attach_iso),
    Row("HostDriveLetter", "VM_E_DRIVE_INVALID", "removed (decision)", remove_drive),
    Row("HostDriveLetter", "DISP_E_EXCEPTION", "unexpected", check_raises(RuntimeError("bug"))),
    # Attachment
    Row("Attachment", "S_OK", "empty"),
    Row("Attachment", "S_OK", "image", attach_iso),
    Row("Attachment", "S_OK", "host drive", attach_host),
    Row("Attachment", "E_POINTER", "null out", com_only=True),
    Row("Attachment", "E_FAIL", "host io error", check_raises(ENOMEM)),
    Row("Attachment", "VM_E_VM_UNKNOWN", "vm deleted", delete_vm),
    Row("Attachment", "VM_E_DRIVE_INVALID", "removed", remove_drive),
    Row("Attachment", "VM_E_DRIVE_INVALID", "out of range", location_out_of_range),
    Row("Attachment", "VM_E_DRIVE_INVALID", "taken over", location_taken_over),
    Row("Attachment", "DISP_E_EXCEPTION", "unexpected", check_raises(RuntimeError("bug"))),
    # IVMVirtualMachine::AddDVDROMDrive
    Row("AddDVDROMDrive", "S_OK", "free slot", args=(0, 0)),
    Row("AddDVDROMDrive", "E_POINTER", "null out", args=(0, 0), com_only=True),
    Row("AddDVDROMDrive", "E_INVALIDARG", "bus 2", args=(2, 0)),
    Row("AddDVDROMDrive", "E_INVALIDARG", "device 5", args=(0, 5)),
    Row("AddDVDROMDrive", "VM_E_VM_UNKNOWN", "vm deleted", delete_vm, (0, 0)),
    Row("AddDVDROMDrive", "VM_E_VM_RUNNING_OR_SAVED", "running", power(RUNNING), (0, 0)),
    Row("AddDVDROMDrive", "VM_E_VM_RUNNING_OR_SAVED", "saved", power(SAVED), (0, 0)),
    Row("AddDVDROMDrive", "VM_E_DRIVE_BUS_LOC_IN_USE", "dvd there", args=(1, 0)),
    Row("AddDVDROMDrive", "VM_E_DRIVE_BUS_LOC_IN_USE", "hard disk there",
        placeholder_at(0, 0), (0, 0)),
    Row("AddDVDROMDrive", "VM_E_DRIVE_INVALID", "unmanaged device on the cable",
        lambda e: e.vm.machine.add_dvd_drive(0, 1), (0, 1)),
    Row("AddDVDROMDrive", "DISP_E_EXCEPTION", "unexpected",
        lambda e: e.mp.setattr(e.vm.machine, "add_dvd_drive", boom(RuntimeError("bug"))), (0, 0)),
    # IVMVirtualMachine::RemoveDVDROMDrive
    Row("RemoveDVDROMDrive", "S_OK", "its drive", args=("dvd",)),
    Row("RemoveDVDROMDrive", "S_OK", "with an iso in it", attach_iso, ("dvd",)),
    Row("RemoveDVDROMDrive", "E_POINTER", "null drive", args=(None,)),
    Row("RemoveDVDROMDrive", "VM_E_VM_UNKNOWN", "vm deleted", delete_vm, ("dvd",)),
    Row("RemoveDVDROMDrive", "VM_E_VM_RUNNING_OR_SAVED", "running", power(RUNNING), ("dvd",)),
    Row("RemoveDVDROMDrive", "VM_E_VM_RUNNING_OR_SAVED", "saved", power(SAVED), ("dvd",)),
    Row("RemoveDVDROMDrive", "VM_E_DRIVE_INVALID", "another vm's drive", args=("dvd2",)),
    Row("RemoveDVDROMDrive", "VM_E_DRIVE_INVALID", "removed twice", remove_drive, ("dvd",)),
    Row("RemoveDVDROMDrive", "DISP_E_EXCEPTION", "unexpected",
        lambda e: e.mp.setattr(e.dvd, "_detach_for_removal", boom(RuntimeError("bug"))),
        ("dvd",)),
    # IVMVirtualMachine::DVDROMDrives and AttachedDriveTypes
    Row("DVDROMDrives", "S_OK", "collection"),
    Row("DVDROMDrives", "E_POINTER", "null out", com_only=True),
    Row("DVDROMDrives", "VM_E_VM_UNKNOWN", "vm deleted", delete_vm),
    Row("DVDROMDrives", "DISP_E_EXCEPTION", "unexpected", vm_check_raises(RuntimeError("bug"))),
    Row("AttachedDriveTypes", "S_OK", "map"),
    Row("AttachedDriveTypes", "E_POINTER", "null out", com_only=True),
    Row("AttachedDriveTypes", "VM_E_VM_UNKNOWN", "vm deleted", delete_vm),
    Row("AttachedDriveTypes", "DISP_E_EXCEPTION", "unexpected",
        vm_check_raises(RuntimeError("bug"))),
    # IVMDVDDriveCollection
    Row("Count", "S_OK", "one drive"),
    Row("Count", "E_POINTER", "null out", com_only=True),
    Row("Count", "E_FAIL", "host io error", vm_check_raises(ENOMEM)),
    Row("Count", "VM_E_VM_UNKNOWN", "vm deleted", delete_vm),
    Row("Count", "DISP_E_EXCEPTION", "unexpected", vm_check_raises(RuntimeError("bug"))),
    Row("Item", "S_OK", "index 1", args=(1,)),
    Row("Item", "E_POINTER", "null out", args=(1,), com_only=True),
    Row("Item", "E_FAIL", "host io error", vm_check_raises(ENOMEM), (1,)),
    Row("Item", "DISP_E_BADINDEX", "index 0", args=(0,)),
    Row("Item", "DISP_E_BADINDEX", "index 2", args=(2,)),
    Row("Item", "DISP_E_BADINDEX", "not an int", args=("1",)),
    Row("Item", "VM_E_VM_UNKNOWN", "vm deleted", delete_vm, (1,)),
    Row("Item", "DISP_E_EXCEPTION", "unexpected", vm_check_raises(RuntimeError("bug")), (1,)),
    Row("NewEnum", "S_OK", "iterate"),
    Row("NewEnum", "E_POINTER", "null out", com_only=True),
    Row("NewEnum", "E_FAIL", "host io error", vm_check_raises(ENOMEM)),
    Row("NewEnum", "DISP_E_EXCEPTION", "unexpected", vm_check_raises(RuntimeError("bug"))),
]


def resolve_args(e: Env, row: Row) -> tuple[Any, ...]:
    """Row arguments, with the device-path placeholder filled in."""
    if row.member == "AttachHostDrive" and row.why == "device path":
        return (e.scratch["path"],)
    return row.args


PY_ROWS = [pytest.param(r, id=r.id) for r in ROWS if not r.com_only]


@pytest.mark.parametrize("row", PY_ROWS)
def test_return_code_row_pythonic(env: Env, row: Row) -> None:
    row.arrange(env)
    args = resolve_args(env, row)
    if row.code == "S_OK":
        PY[row.member](env, *args)
        return
    with pytest.raises(H.VMError) as info:
        PY[row.member](env, *args)
    err = info.value
    assert err.hresult == H.VALUES[row.code], str(err)
    assert err.name == row.code
    assert isinstance(err, H.error_class(H.VALUES[row.code]))
    if row.code == "DISP_E_EXCEPTION":
        assert err.__cause__ is not None  # the cause is chained


def test_every_documented_row_has_a_test() -> None:
    """Each (member, code) pair of the tables in vpc-api.md appears in ROWS."""
    documented = {
        "SetBusLocation": {"S_OK", "E_INVALIDARG", "E_FAIL", "VM_E_VM_RUNNING_OR_SAVED",
                           "VM_E_DRIVE_BUS_LOC_IN_USE", "VM_E_DRIVE_INVALID",
                           "VM_E_VM_UNKNOWN", "DISP_E_EXCEPTION"},
        "AttachImage": {"S_OK", "E_INVALIDARG", "E_POINTER", "VM_E_VM_UNKNOWN",
                        "VM_E_DRIVE_IN_USE", "VM_E_DRIVE_INVALID", "DISP_E_EXCEPTION"},
        "ReleaseImage": {"S_OK", "VM_E_VM_UNKNOWN", "VM_E_MEDIA_WRONG_TYPE",
                         "VM_E_DRIVE_INVALID", "DISP_E_EXCEPTION"},
        "AttachHostDrive": {"S_OK", "E_INVALIDARG", "E_FAIL", "VM_E_VM_UNKNOWN",
                            "VM_E_DRIVE_IN_USE", "VM_E_DRIVE_INVALID", "DISP_E_EXCEPTION"},
        "ReleaseHostDrive": {"S_OK", "E_FAIL", "VM_E_VM_UNKNOWN", "VM_E_MEDIA_WRONG_TYPE",
                             "VM_E_DRIVE_INVALID", "DISP_E_EXCEPTION"},
        "Attachment": {"S_OK", "E_POINTER", "E_FAIL", "VM_E_VM_UNKNOWN", "VM_E_DRIVE_INVALID",
                       "DISP_E_EXCEPTION"},
        "BusNumber": {"S_OK", "E_POINTER", "VM_E_DRIVE_INVALID", "DISP_E_EXCEPTION"},
        "DeviceNumber": {"S_OK", "E_POINTER", "VM_E_DRIVE_INVALID", "DISP_E_EXCEPTION"},
        "HostDriveLetter": {"S_OK", "E_POINTER", "E_FAIL", "VM_E_VM_UNKNOWN",
                            "VM_E_MEDIA_WRONG_TYPE", "DISP_E_EXCEPTION"},
        "ImageFile": {"S_OK", "E_POINTER", "E_FAIL", "VM_E_VM_UNKNOWN", "VM_E_DRIVE_INVALID",
                      "VM_E_MEDIA_WRONG_TYPE", "DISP_E_EXCEPTION"},
        "AddDVDROMDrive": {"S_OK", "E_POINTER", "E_INVALIDARG", "VM_E_VM_UNKNOWN",
                           "VM_E_VM_RUNNING_OR_SAVED", "VM_E_DRIVE_BUS_LOC_IN_USE",
                           "VM_E_DRIVE_INVALID", "DISP_E_EXCEPTION"},
        "RemoveDVDROMDrive": {"S_OK", "E_POINTER", "VM_E_VM_UNKNOWN", "VM_E_VM_RUNNING_OR_SAVED",
                              "VM_E_DRIVE_INVALID", "DISP_E_EXCEPTION"},
        "DVDROMDrives": {"S_OK", "E_POINTER", "VM_E_VM_UNKNOWN", "DISP_E_EXCEPTION"},
        "AttachedDriveTypes": {"S_OK", "E_POINTER", "VM_E_VM_UNKNOWN", "DISP_E_EXCEPTION"},
        "Count": {"S_OK", "E_POINTER", "E_FAIL", "VM_E_VM_UNKNOWN", "DISP_E_EXCEPTION"},
        "Item": {"S_OK", "E_POINTER", "E_FAIL", "DISP_E_BADINDEX", "VM_E_VM_UNKNOWN",
                 "DISP_E_EXCEPTION"},
        "NewEnum": {"S_OK", "E_POINTER", "E_FAIL", "DISP_E_EXCEPTION"},
    }
    covered: dict[str, set[str]] = {}
    for row in ROWS:
        covered.setdefault(row.member, set()).add(row.code)
    for member, codes in documented.items():
        assert codes <= covered.get(member, set()), (member, codes - covered.get(member, set()))


# -- behaviour behind the rows ------------------------------------------------------------


def test_attach_then_release_updates_every_property(env: Env) -> None:
    iso = env.images["iso"]
    assert env.dvd.attachment is DVDAttachment.NONE
    env.dvd.attach_image(iso)
    assert env.dvd.attachment is DVDAttachment.IMAGE
    assert env.dvd.attachment == 1
    assert env.dvd.image_file == os.path.abspath(iso)
    assert isinstance(env.dvd.medium, IsoImage)
    env.dvd.release_image()
    assert env.dvd.attachment is DVDAttachment.NONE
    assert env.dvd.medium is None
    with pytest.raises(H.MediaWrongTypeError):
        _ = env.dvd.image_file


def test_attach_image_accepts_a_relative_path_and_reports_the_full_path(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    iso = env.images["iso"]
    monkeypatch.chdir(iso.parent)
    env.dvd.attach_image(iso.name)
    assert env.dvd.image_file == str(iso)


def test_attach_image_does_not_swap_implicitly(env: Env) -> None:
    env.dvd.attach_image(env.images["iso"])
    with pytest.raises(H.DriveInUseError):
        env.dvd.attach_image(env.images["iso2"])
    assert env.dvd.image_file == os.path.abspath(env.images["iso"])


def test_image_capture_fail_names_the_reason(env: Env) -> None:
    with pytest.raises(H.ImageCaptureFailError, match="no such file"):
        env.dvd.attach_image("/nonexistent/x.iso")
    with pytest.raises(H.InvalidArgError, match="directory"):
        env.dvd.attach_image(env.images["folder"])


def test_release_image_when_close_fails_still_empties_the_drive_and_fires(env: Env) -> None:
    seen: list[str] = []
    env.dvd.on_media_eject += seen.append
    env.dvd.attach_image(env.images["iso"])
    close_raises(OSError(5, "Input/output error"))(env)
    with pytest.raises(H.DispExceptionError) as info:
        env.dvd.release_image()
    assert isinstance(info.value.__cause__, OSError)
    assert env.dvd.attachment is DVDAttachment.NONE
    assert seen == [os.path.abspath(env.images["iso"])]


def test_images_are_opened_read_only(env: Env) -> None:
    before = env.images["iso"].read_bytes()
    env.dvd.attach_image(env.images["iso"])
    env.dvd.release_image()
    assert env.images["iso"].read_bytes() == before


def test_events_fire_with_the_iso_path_and_the_drive_letter(env: Env) -> None:
    inserted: list[str] = []
    ejected: list[str] = []
    env.dvd.on_media_insert += inserted.append
    env.dvd.on_media_eject.connect(ejected.append)
    env.dvd.attach_image(env.images["iso"])
    env.dvd.release_image()
    env.dvd.attach_host_drive("d:")
    env.dvd.release_host_drive()
    full = os.path.abspath(env.images["iso"])
    assert inserted == [full, "D"]
    assert ejected == [full, "D"]
    env.dvd.on_media_insert -= inserted.append
    env.dvd.attach_image(env.images["iso"])
    assert inserted == [full, "D"]


def test_a_failing_event_handler_does_not_fail_the_call(env: Env) -> None:
    def bad(path: str) -> None:
        raise RuntimeError("sink bug")

    seen: list[str] = []
    env.dvd.on_media_insert += bad
    env.dvd.on_media_insert += seen.append
    env.dvd.attach_image(env.images["iso"])
    assert seen == [os.path.abspath(env.images["iso"])]


def test_host_drive_letter_forms_and_device_path(env: Env) -> None:
    for given in ("D", "d", "D:", "d:\\"):
        env.dvd.attach_host_drive(given)
        assert env.dvd.host_drive_letter == "D"
        assert env.dvd.host_drive == "D"
        assert env.dvd.attachment is DVDAttachment.HOST_DRIVE
        env.dvd.release_host_drive()
    env.dvd.attach_host_drive(str(env.images["raw2"]))
    assert env.dvd.host_drive_letter == str(env.images["raw2"])


def test_one_host_drive_cannot_be_captured_twice(env: Env) -> None:
    env.dvd2.attach_host_drive("D")
    with pytest.raises(H.DriveInUseError, match="captured"):
        env.dvd.attach_host_drive("D")
    # the same device by path is the same host drive
    with pytest.raises(H.DriveInUseError):
        env.dvd.attach_host_drive(str(env.images["raw"]))
    # a second drive of the same VM cannot take it either
    third = env.vm2.add_dvd_drive(0, 0)
    with pytest.raises(H.DriveInUseError):
        third.attach_host_drive("D")
    env.dvd2.release_host_drive()
    env.dvd.attach_host_drive("D")
    assert env.dvd.host_drive_letter == "D"


def test_deleting_a_vm_frees_its_host_drive(env: Env) -> None:
    env.dvd2.attach_host_drive("D")
    env.vpc.delete_virtual_machine(env.vm2)
    env.dvd.attach_host_drive("D")
    assert env.dvd.attachment is DVDAttachment.HOST_DRIVE


def test_failed_host_capture_does_not_keep_the_claim(env: Env) -> None:
    with pytest.raises(H.FailError):
        env.dvd2.attach_host_drive("F")
    env.vpc.host_drives["F"] = str(env.images["raw2"])
    env.dvd.attach_host_drive("F")


def test_set_bus_location_moves_the_drive_on_the_cable(env: Env) -> None:
    env.dvd.attach_image(env.images["iso"])
    env.dvd.set_bus_location(0, 1)
    assert (env.dvd.bus_number, env.dvd.device_number) == (0, 1)
    assert env.vm.machine.ide.unit(0, 1) is env.dvd.unit
    assert not env.vm.machine.ide.unit(1, 0).present
    assert env.vm.attached_drive_types == (
        (DriveType.NULL, DriveType.DVD),
        (DriveType.NULL, DriveType.NULL),
    )
    assert env.dvd.attachment is DVDAttachment.IMAGE  # the medium moves with the drive


def test_attached_drive_types_is_the_2x2_map(env: Env) -> None:
    env.vm.add_hard_disk_placeholder(0, 0)
    env.vm.add_dvd_drive(0, 1)
    assert env.vm.attached_drive_types == ((1, 2), (2, 0))
    assert env.vm.attached_drive_types[0][0] is DriveType.HARD_DISK


def test_collection_count_item_iteration_and_python_indexing(env: Env) -> None:
    second = env.vm.add_dvd_drive(0, 0)
    coll = env.vm.dvd_drives
    assert coll.count == 2 == len(coll)
    assert coll.item(1) is env.dvd and coll.item(2) is second
    assert list(coll) == [env.dvd, second]
    assert coll[0] is env.dvd and coll[-1] is second
    with pytest.raises(IndexError):
        coll[2]
    with pytest.raises(H.BadIndexError):
        coll.item(3)
    env.vm.remove_dvd_drive(env.dvd)
    assert coll.count == 1 and coll.item(1) is second  # a live view


def test_removed_drive_is_gone_from_the_cable_and_its_medium_released(env: Env) -> None:
    seen: list[str] = []
    env.dvd.on_media_eject += seen.append
    env.dvd.attach_image(env.images["iso"])
    env.vm.remove_dvd_drive(env.dvd)
    assert not env.vm.machine.ide.unit(1, 0).present
    assert seen and env.vm.dvd_drives.count == 0
    env.vm.add_dvd_drive(1, 0)  # the location is free again


def test_media_calls_are_allowed_while_running(env: Env) -> None:
    env.vm.power_on()
    env.dvd.attach_image(env.images["iso"])
    env.dvd.release_image()
    env.vm.pause()
    env.dvd.attach_host_drive("D")
    env.vm.save()
    env.dvd.release_host_drive()


# -- virtual machines ------------------------------------------------------------------------


def test_create_find_list_delete(env: Env) -> None:
    assert env.vpc.find_virtual_machine("LAB") is env.vm
    assert env.vpc.find_virtual_machine("nope") is None
    assert env.vpc.virtual_machines == [env.vm, env.vm2]
    env.vpc.delete_virtual_machine(env.vm)
    assert env.vm.deleted
    assert env.vpc.find_virtual_machine("lab") is None
    with pytest.raises(H.VMUnknownError):
        env.vpc.delete_virtual_machine(env.vm)
    with pytest.raises(H.VMUnknownError):
        _ = env.vm.state
    with pytest.raises(H.NullPointerError):
        env.vpc.delete_virtual_machine(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("", H.ConfigNoNameError),
        ("x" * 81, H.ConfigNameTooLongError),
        ("a/b", H.ConfigNameInvalidCharError),
        ("Lab", H.ConfigDuplicateNameError),
        (None, H.NullPointerError),
        (5, H.InvalidArgError),
    ],
)
def test_create_rejects_bad_names(env: Env, name: object, error: type[H.VMError]) -> None:
    with pytest.raises(error):
        env.vpc.create_virtual_machine(name)  # type: ignore[arg-type]


def test_a_running_vm_cannot_be_deleted(env: Env) -> None:
    env.vm.power_on()
    with pytest.raises(H.VMRunningOrSavedError):
        env.vpc.delete_virtual_machine(env.vm)


def test_power_state_machine(env: Env) -> None:
    vm = env.vm
    assert vm.state is VMState.OFF
    with pytest.raises(H.VMNotRunningError):
        vm.save()
    with pytest.raises(H.VMNotRunningError):
        vm.power_off()
    vm.power_on()
    assert vm.state is VMState.RUNNING
    with pytest.raises(H.VMRunningError):
        vm.power_on()
    vm.pause()
    assert vm.state is VMState.PAUSED
    with pytest.raises(H.VMPausedError):
        vm.pause()
    vm.resume()
    vm.save()
    assert vm.state is VMState.SAVED
    vm.power_on()  # restore
    assert vm.state is VMState.RUNNING
    vm.power_off()
    assert vm.state is VMState.OFF


def test_virtual_pc_rejects_a_bad_host_drive_letter() -> None:
    with pytest.raises(H.InvalidArgError):
        VirtualPC(host_drives={"DD": "/dev/null"})


def test_raw_host_drive_content_is_what_the_guest_reads_back(env: Env) -> None:
    from tests.guest import Guest

    env.vm.power_on()
    env.dvd.attach_host_drive("D")
    guest = Guest(env.vm.machine, 1)
    for _ in range(3):  # power-on / medium-change conditions
        guest.packet([0x00], 0)
        guest.status()
    data, status = guest.command_reply([0x28, 0, 0, 0, 0, 3, 0, 0, 2, 0], 0xFFFE)
    assert status & 0x01 == 0
    assert data == raw_sector_bytes(3, 2)
    assert np.frombuffer(data, dtype=np.uint8)[8] == 3
