"""A COM-style facade over :mod:`emu.api.vpc`, for scripts ported from Windows Virtual PC.

Names follow the IDL of ``vpccominterfaces.h`` (vpc-api.md §2, §4):

* methods return an HRESULT (an unsigned 32-bit ``int``: ``drive.ReleaseImage()``);
* methods with an ``[out, retval]`` parameter and property getters
  (``get_ImageFile``) return ``(hresult, value)``, the value None on failure.

COM's NULL out pointer has no Python spelling, so every ``[out, retval]``
member takes an optional last argument ``out``: pass ``None`` explicitly to
model a NULL pointer (E_POINTER); leave it out for the normal call.
``to_signed`` in :mod:`emu.api.hresult` gives the signed form pywin32 prints.

Every :class:`~emu.api.hresult.VMError` becomes its HRESULT; any other exception
(none should reach here: :mod:`emu.api.vpc` already wraps them) becomes
DISP_E_EXCEPTION.  ``last_error`` keeps the exception of the latest failed
call, like ``IErrorInfo``.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

from emu.api.hresult import (
    DISP_E_EXCEPTION,
    E_INVALIDARG,
    E_POINTER,
    S_OK,
    DispExceptionError,
    VMError,
)
from emu.api.vpc import DVDDrive, DVDDriveCollection, VirtualMachine, VirtualPC, VMState

log = logging.getLogger(__name__)

T = TypeVar("T")

RETVAL: Any = object()
"""Default of every ``out`` argument: the value is returned.  ``out=None`` is a NULL pointer."""

VM_STATE_VALUES = {
    VMState.OFF: 1,
    VMState.SAVED: 2,
    VMState.RUNNING: 5,
    VMState.PAUSED: 6,
}
"""VMVMState values (vmVMState_TurnedOff 1, _Saved 2, _Running 5, _Paused 6; the
Virtual Server numbering, inferred: the reference read does not list them)."""

last_error: VMError | None = None
"""The exception behind the most recent failed call (any thread), like GetErrorInfo."""


def _hresult_of(exc: BaseException) -> int:
    global last_error
    if isinstance(exc, VMError):
        last_error = exc
        return exc.hresult
    wrapped = DispExceptionError(f"unexpected {type(exc).__name__}: {exc}")
    wrapped.__cause__ = exc
    last_error = wrapped
    log.error("unexpected error behind a COM call", exc_info=exc)
    return DISP_E_EXCEPTION


def _call(fn: Callable[[], object]) -> int:
    try:
        fn()
    except Exception as exc:
        return _hresult_of(exc)
    return S_OK


def _get(fn: Callable[[], T], out: object = RETVAL) -> tuple[int, T | None]:
    if out is None:
        return E_POINTER, None
    try:
        return S_OK, fn()
    except Exception as exc:
        return _hresult_of(exc), None


_wrappers: weakref.WeakKeyDictionary[object, object] = weakref.WeakKeyDictionary()


def wrap(obj: Any, cls: type[T]) -> T:
    """The one facade object of ``obj`` (the same wrapper every time, as COM identity)."""
    found = _wrappers.get(obj)
    if found is None:
        found = cls(obj)  # type: ignore[call-arg]
        _wrappers[obj] = found
    return found  # type: ignore[return-value]


class VMDVDDriveEvents(Protocol):
    """An IVMDVDDriveEvents sink (vpc-api.md §4.5)."""

    def OnMediaInsert(self, mediaPath: str) -> object: ...  # noqa: N802, N803

    def OnMediaEject(self, mediaPath: str) -> object: ...  # noqa: N802, N803


class VMDVDDrive:
    """IVMDVDDrive (vtable order, vpc-api.md §2.1) plus ``Advise``/``Unadvise`` for events."""

    def __init__(self, drive: DVDDrive) -> None:
        self.drive = drive
        self._sinks: dict[int, tuple[Callable[[str], object], Callable[[str], object]]] = {}
        self._next_cookie = 1

    # slot 7..16
    def SetBusLocation(self, busNumber: int, deviceNumber: int) -> int:  # noqa: N802, N803
        return _call(lambda: self.drive.set_bus_location(busNumber, deviceNumber))

    def get_BusNumber(self, out: object = RETVAL) -> tuple[int, int | None]:  # noqa: N802
        return _get(lambda: self.drive.bus_number, out)

    def get_DeviceNumber(self, out: object = RETVAL) -> tuple[int, int | None]:  # noqa: N802
        return _get(lambda: self.drive.device_number, out)

    def AttachImage(self, imagePath: str | None) -> int:  # noqa: N802, N803
        return _call(lambda: self.drive.attach_image(imagePath))  # type: ignore[arg-type]

    def ReleaseImage(self) -> int:  # noqa: N802
        return _call(self.drive.release_image)

    def get_ImageFile(self, out: object = RETVAL) -> tuple[int, str | None]:  # noqa: N802
        return _get(lambda: self.drive.image_file, out)

    def AttachHostDrive(self, driveLetter: str | None) -> int:  # noqa: N802, N803
        return _call(lambda: self.drive.attach_host_drive(driveLetter))  # type: ignore[arg-type]

    def ReleaseHostDrive(self) -> int:  # noqa: N802
        return _call(self.drive.release_host_drive)

    def get_HostDriveLetter(self, out: object = RETVAL) -> tuple[int, str | None]:  # noqa: N802
        return _get(lambda: self.drive.host_drive_letter, out)

    def get_Attachment(self, out: object = RETVAL) -> tuple[int, int | None]:  # noqa: N802
        def value() -> int:
            return int(self.drive.attachment)

        return _get(value, out)

    # connection point (IConnectionPoint::Advise / Unadvise, simplified)
    def Advise(self, sink: VMDVDDriveEvents | None, out: object = RETVAL) -> tuple[int, int | None]:  # noqa: N802
        """Connect an IVMDVDDriveEvents sink; returns ``(hr, cookie)``."""
        if sink is None or out is None:
            return E_POINTER, None
        insert, eject = sink.OnMediaInsert, sink.OnMediaEject
        self.drive.on_media_insert.connect(insert)
        self.drive.on_media_eject.connect(eject)
        cookie = self._next_cookie
        self._next_cookie += 1
        self._sinks[cookie] = (insert, eject)
        return S_OK, cookie

    def Unadvise(self, cookie: int) -> int:  # noqa: N802
        pair = self._sinks.pop(cookie, None)
        if pair is None:
            return E_INVALIDARG
        self.drive.on_media_insert.disconnect(pair[0])
        self.drive.on_media_eject.disconnect(pair[1])
        return S_OK


class VMDVDDriveCollection:
    """IVMDVDDriveCollection: ``get_Count``, ``get_Item`` (1-based), ``get__NewEnum``."""

    def __init__(self, collection: DVDDriveCollection) -> None:
        self.collection = collection

    def get_Count(self, out: object = RETVAL) -> tuple[int, int | None]:  # noqa: N802
        return _get(lambda: self.collection.count, out)

    def get_Item(  # noqa: N802
        self, index: int, out: object = RETVAL
    ) -> tuple[int, VMDVDDrive | None]:
        return _get(lambda: wrap(self.collection.item(index), VMDVDDrive), out)

    def get__NewEnum(  # noqa: N802
        self, out: object = RETVAL
    ) -> tuple[int, Iterator[VMDVDDrive] | None]:
        def enum() -> Iterator[VMDVDDrive]:
            return iter([wrap(d, VMDVDDrive) for d in self.collection])

        return _get(enum, out)

    def __iter__(self) -> Iterator[VMDVDDrive]:
        """``For Each``: the drives, through ``_NewEnum``."""
        hr, it = self.get__NewEnum()
        return it if it is not None else iter(())


class VMVirtualMachine:
    """The IVMVirtualMachine members that reach DVD drives, plus power control."""

    def __init__(self, vm: VirtualMachine) -> None:
        self.vm = vm

    def get_Name(self, out: object = RETVAL) -> tuple[int, str | None]:  # noqa: N802
        def value() -> str:
            self.vm._check()
            return self.vm.name

        return _get(value, out)

    def get_State(self, out: object = RETVAL) -> tuple[int, int | None]:  # noqa: N802
        return _get(lambda: VM_STATE_VALUES[self.vm.state], out)

    def Startup(self) -> int:  # noqa: N802
        return _call(self.vm.power_on)

    def TurnOff(self) -> int:  # noqa: N802
        return _call(self.vm.power_off)

    def Save(self) -> int:  # noqa: N802
        return _call(self.vm.save)

    def Pause(self) -> int:  # noqa: N802
        return _call(self.vm.pause)

    def Resume(self) -> int:  # noqa: N802
        return _call(self.vm.resume)

    def AddDVDROMDrive(  # noqa: N802
        self, busNumber: int, deviceNumber: int, out: object = RETVAL  # noqa: N803
    ) -> tuple[int, VMDVDDrive | None]:
        if out is None:
            return E_POINTER, None
        return _get(lambda: wrap(self.vm.add_dvd_drive(busNumber, deviceNumber), VMDVDDrive))

    def RemoveDVDROMDrive(self, dvdDrive: VMDVDDrive | None) -> int:  # noqa: N802, N803
        inner = dvdDrive.drive if isinstance(dvdDrive, VMDVDDrive) else dvdDrive
        return _call(lambda: self.vm.remove_dvd_drive(inner))  # type: ignore[arg-type]

    def get_DVDROMDrives(  # noqa: N802
        self, out: object = RETVAL
    ) -> tuple[int, VMDVDDriveCollection | None]:
        def value() -> VMDVDDriveCollection:
            self.vm._check()
            return VMDVDDriveCollection(self.vm.dvd_drives)

        return _get(value, out)

    def get_AttachedDriveTypes(  # noqa: N802
        self, out: object = RETVAL
    ) -> tuple[int, list[list[int]] | None]:
        """A SAFEARRAY of VT_UI1 ``[busNumber][deviceNumber]`` as nested lists of ints."""
        return _get(lambda: [[int(t) for t in row] for row in self.vm.attached_drive_types], out)


class VMVirtualPC:
    """The IVMVirtualPC members that create, find, list and delete virtual machines."""

    def __init__(self, vpc: VirtualPC | None = None) -> None:
        self.vpc = vpc if vpc is not None else VirtualPC()

    def CreateVirtualMachine(  # noqa: N802
        self, configurationName: str, configurationPath: str = "", out: object = RETVAL  # noqa: N803
    ) -> tuple[int, VMVirtualMachine | None]:
        """``configurationPath`` (where the .vmc would go) is accepted and ignored."""
        if out is None:
            return E_POINTER, None
        return _get(lambda: wrap(self.vpc.create_virtual_machine(configurationName),
                                 VMVirtualMachine))

    def FindVirtualMachine(  # noqa: N802
        self, configurationName: str, out: object = RETVAL  # noqa: N803
    ) -> tuple[int, VMVirtualMachine | None]:
        """``(S_OK, None)`` when there is no such machine (a script tests ``Is Nothing``)."""
        def value() -> VMVirtualMachine | None:
            vm = self.vpc.find_virtual_machine(configurationName)
            return wrap(vm, VMVirtualMachine) if vm is not None else None

        return _get(value, out)

    def DeleteVirtualMachine(self, vm: VMVirtualMachine | None) -> int:  # noqa: N802
        inner = vm.vm if isinstance(vm, VMVirtualMachine) else vm
        return _call(lambda: self.vpc.delete_virtual_machine(inner))  # type: ignore[arg-type]

    def get_VirtualMachines(  # noqa: N802
        self, out: object = RETVAL
    ) -> tuple[int, list[VMVirtualMachine] | None]:
        return _get(lambda: [wrap(vm, VMVirtualMachine) for vm in self.vpc.virtual_machines], out)


__all__ = [
    "RETVAL",
    "VMDVDDrive",
    "VMDVDDriveCollection",
    "VMVirtualMachine",
    "VMVirtualPC",
    "wrap",
]
