"""The COM-style facade (emu.api.com): the same return-code rows as test_vpc.py, as HRESULT ints.

Each row of vpc-api.md's tables runs through the IVMDVDDrive /
IVMVirtualMachine / IVMDVDDriveCollection names; property getters return
``(hresult, value)`` and take ``out=None`` to model a NULL out pointer.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from emu.api import hresult as H
from emu.api.com import (
    VMDVDDrive,
    VMDVDDriveCollection,
    VMVirtualMachine,
    VMVirtualPC,
    wrap,
)
from tests.test_vpc import ROWS, Env, Row, build_images, close_env, make_env, resolve_args


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_images(tmp_path_factory.mktemp("com"))


@pytest.fixture
def env(images: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    e = make_env(images, monkeypatch)
    yield e
    close_env(e)


def _drive(e: Env) -> VMDVDDrive:
    return wrap(e.dvd, VMDVDDrive)


def _vm(e: Env) -> VMVirtualMachine:
    return wrap(e.vm, VMVirtualMachine)


def _coll(e: Env) -> VMDVDDriveCollection:
    return VMDVDDriveCollection(e.coll)


def _image_arg(e: Env, p: object) -> Any:
    return str(e.images[p]) if isinstance(p, str) and p in e.images else p


NULL: Any = None

# member -> (call with the normal out, call with a NULL out pointer)
COM: dict[str, Callable[..., Any]] = {
    "SetBusLocation": lambda e, *a: _drive(e).SetBusLocation(*a),
    "BusNumber": lambda e, *a, out=...: _drive(e).get_BusNumber(*_out(out)),
    "DeviceNumber": lambda e, *a, out=...: _drive(e).get_DeviceNumber(*_out(out)),
    "AttachImage": lambda e, p: _drive(e).AttachImage(_image_arg(e, p)),
    "ReleaseImage": lambda e: _drive(e).ReleaseImage(),
    "ImageFile": lambda e, out=...: _drive(e).get_ImageFile(*_out(out)),
    "AttachHostDrive": lambda e, d: _drive(e).AttachHostDrive(d),
    "ReleaseHostDrive": lambda e: _drive(e).ReleaseHostDrive(),
    "HostDriveLetter": lambda e, out=...: _drive(e).get_HostDriveLetter(*_out(out)),
    "Attachment": lambda e, out=...: _drive(e).get_Attachment(*_out(out)),
    "AddDVDROMDrive": lambda e, b, d, out=...: _vm(e).AddDVDROMDrive(b, d, *_out(out)),
    "RemoveDVDROMDrive": lambda e, which: _vm(e).RemoveDVDROMDrive(
        {"dvd": wrap(e.dvd, VMDVDDrive), "dvd2": wrap(e.dvd2, VMDVDDrive), None: None}[which]
    ),
    "DVDROMDrives": lambda e, out=...: _vm(e).get_DVDROMDrives(*_out(out)),
    "AttachedDriveTypes": lambda e, out=...: _vm(e).get_AttachedDriveTypes(*_out(out)),
    "Count": lambda e, out=...: _coll(e).get_Count(*_out(out)),
    "Item": lambda e, i, out=...: _coll(e).get_Item(i, *_out(out)),
    "NewEnum": lambda e, out=...: _coll(e).get__NewEnum(*_out(out)),
}


def _out(out: object) -> tuple[Any, ...]:
    """No argument for the normal call; ``None`` for a NULL out pointer."""
    return () if out is ... else (out,)


def hresult_of(result: object) -> int:
    return result[0] if isinstance(result, tuple) else result  # type: ignore[return-value]


@pytest.mark.parametrize("row", [pytest.param(r, id=r.id) for r in ROWS])
def test_return_code_row_com(env: Env, row: Row) -> None:
    row.arrange(env)
    args = resolve_args(env, row)
    if row.com_only:  # E_POINTER: a NULL [out, retval] pointer
        result = COM[row.member](env, *args, out=NULL)
    else:
        result = COM[row.member](env, *args)
    hr = hresult_of(result)
    assert hr == H.VALUES[row.code], H.describe(hr)
    if isinstance(result, tuple) and hr != H.S_OK:
        assert result[1] is None


def test_release_image_returns_s_ok_and_the_path_property_follows(env: Env) -> None:
    drive = _drive(env)
    iso = str(env.images["iso"])
    assert drive.get_Attachment() == (H.S_OK, 0)
    assert drive.AttachImage(iso) == H.S_OK
    assert drive.get_Attachment() == (H.S_OK, 1)
    assert drive.get_ImageFile() == (H.S_OK, os.path.abspath(iso))
    assert drive.ReleaseImage() == H.S_OK
    assert drive.get_ImageFile() == (H.VM_E_MEDIA_WRONG_TYPE, None)
    assert drive.ReleaseImage() == 0xA0040728
    assert H.to_signed(drive.ReleaseImage()) == -1610348760


def test_host_drive_through_com(env: Env) -> None:
    drive = _drive(env)
    assert drive.AttachHostDrive("D:") == H.S_OK
    assert drive.get_HostDriveLetter() == (H.S_OK, "D")
    assert drive.get_Attachment() == (H.S_OK, 2)
    assert drive.ReleaseImage() == H.VM_E_MEDIA_WRONG_TYPE
    assert drive.ReleaseHostDrive() == H.S_OK


def test_bus_location_properties(env: Env) -> None:
    drive = _drive(env)
    assert drive.get_BusNumber() == (H.S_OK, 1)
    assert drive.get_DeviceNumber() == (H.S_OK, 0)
    assert drive.SetBusLocation(0, 1) == H.S_OK
    assert (drive.get_BusNumber(), drive.get_DeviceNumber()) == ((H.S_OK, 0), (H.S_OK, 1))


def test_wrappers_keep_com_identity(env: Env) -> None:
    vm = _vm(env)
    hr, coll = vm.get_DVDROMDrives()
    assert hr == H.S_OK and coll is not None
    assert coll.get_Item(1) == (H.S_OK, _drive(env))
    assert list(coll) == [_drive(env)]
    assert coll.get_Count() == (H.S_OK, 1)


def test_virtual_pc_create_find_delete(images: dict[str, Path]) -> None:
    vpc = VMVirtualPC()
    hr, vm = vpc.CreateVirtualMachine("lab")
    assert hr == H.S_OK and vm is not None
    assert vpc.CreateVirtualMachine("lab")[0] == H.VM_E_CONFIG_DUPLICATE_NAME
    assert vpc.CreateVirtualMachine("")[0] == H.VALUES["VM_E_CONFIG_NO_NAME"]
    assert vpc.CreateVirtualMachine("x", out=None) == (H.E_POINTER, None)
    assert vpc.FindVirtualMachine("LAB") == (H.S_OK, vm)
    assert vpc.FindVirtualMachine("none") == (H.S_OK, None)
    assert vpc.get_VirtualMachines() == (H.S_OK, [vm])
    assert vm.get_Name() == (H.S_OK, "lab")
    assert vm.get_State() == (H.S_OK, 1)
    assert vm.Startup() == H.S_OK
    assert vm.get_State() == (H.S_OK, 5)
    assert vpc.DeleteVirtualMachine(vm) == H.VM_E_VM_RUNNING_OR_SAVED
    assert vm.Pause() == H.S_OK and vm.get_State() == (H.S_OK, 6)
    assert vm.Resume() == H.S_OK
    assert vm.Save() == H.S_OK and vm.get_State() == (H.S_OK, 2)
    assert vm.TurnOff() == H.S_OK
    assert vm.TurnOff() == H.VM_E_VM_NOT_RUNNING
    assert vpc.DeleteVirtualMachine(vm) == H.S_OK
    assert vpc.DeleteVirtualMachine(vm) == H.VM_E_VM_UNKNOWN
    assert vpc.DeleteVirtualMachine(None) == H.E_POINTER
    assert vm.get_Name() == (H.VM_E_VM_UNKNOWN, None)


def test_advise_delivers_events_to_a_sink(env: Env) -> None:
    class Sink:
        def __init__(self) -> None:
            self.calls: list[tuple[str, str]] = []

        def OnMediaInsert(self, mediaPath: str) -> None:  # noqa: N802, N803
            self.calls.append(("insert", mediaPath))

        def OnMediaEject(self, mediaPath: str) -> None:  # noqa: N802, N803
            self.calls.append(("eject", mediaPath))

    drive = _drive(env)
    sink = Sink()
    hr, cookie = drive.Advise(sink)
    assert hr == H.S_OK and cookie is not None
    iso = str(env.images["iso"])
    drive.AttachImage(iso)
    drive.ReleaseImage()
    assert sink.calls == [("insert", os.path.abspath(iso)), ("eject", os.path.abspath(iso))]
    assert drive.Unadvise(cookie) == H.S_OK
    assert drive.Unadvise(cookie) == H.E_INVALIDARG
    drive.AttachImage(iso)
    assert len(sink.calls) == 2
    assert drive.Advise(None)[0] == H.E_POINTER


def test_last_error_keeps_the_exception_behind_a_failed_call(env: Env) -> None:
    import emu.api.com

    assert _drive(env).ReleaseImage() == H.VM_E_MEDIA_WRONG_TYPE
    assert isinstance(emu.api.com.last_error, H.MediaWrongTypeError)


def test_unexpected_exception_in_the_pythonic_layer_becomes_disp_e_exception(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> None:
        raise KeyError("not a VMError")

    monkeypatch.setattr(env.dvd, "release_image", broken)
    assert _drive(env).ReleaseImage() == H.DISP_E_EXCEPTION
