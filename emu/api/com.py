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

Those are the vtable (C++) shapes.  Scripts written for VBScript, PowerShell
or pywin32 see the same objects through IDispatch instead: properties are
attributes (``drive.ImageFile``, ``vm.DVDROMDrives.Item(1)``, ``.Count``, ``For
Each``), methods return their ``[out, retval]`` value, and a failure raises
:class:`com_error` carrying the HRESULT, as ``pywintypes.com_error`` does.
:func:`Dispatch` (alias :func:`CreateObject`) hands out that view, built on
the vtable objects above, so a ported script changes only its first line::

    vpc = Dispatch("VirtualPC.Application")   # $vpc = New-Object -ComObject ...
    vm = vpc.CreateVirtualMachine("lab", "")
    vm.AddDVDROMDrive(1, 0).AttachImage(path)
    vm.DVDROMDrives.Item(1).ImageFile
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
    describe,
    to_signed,
    to_unsigned,
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


# -- IDispatch view (VBScript, PowerShell, pywin32) ------------------------------------

CO_E_CLASSSTRING = 0x800401F3
"""Invalid class string: what CreateObject / Dispatch answer for an unknown ProgID."""
PROG_IDS = ("VirtualPC.Application",)
"""The ProgID Virtual PC registers for its VMVirtualPC class (vpc-api.md §1)."""
SOURCE = "VirtualPC.Application"


class com_error(Exception):  # noqa: N801, N818 - the name pywintypes gives it
    """A failed dispatch call, shaped like ``pywintypes.com_error``.

    ``args`` is ``(hresult, strerror, excepinfo, argerror)`` with ``hresult``
    signed, as pywin32 gives it; ``excepinfo`` is ``(wCode, source,
    description, helpfile, helpcontext, scode)``.  ``.hresult`` is the signed
    value (PowerShell's ``$_.Exception.HResult``), ``.scode`` the unsigned one
    that the constants in :mod:`emu.api.hresult` use, and ``.description`` the
    message of the error behind it.
    """

    def __init__(self, hresult: int, description: str = "") -> None:
        code = to_unsigned(hresult)
        excepinfo = (0, SOURCE, description, None, 0, to_signed(code))
        super().__init__(to_signed(code), describe(code), excepinfo, None)
        self.hresult = to_signed(code)
        self.scode = code
        self.strerror = describe(code)
        self.excepinfo = excepinfo
        self.argerror = None
        self.description = description

    def __str__(self) -> str:
        return f"{self.strerror}: {self.description}" if self.description else self.strerror


def _raise_for(hresult: int) -> None:
    """A failed HRESULT becomes :class:`com_error` with the message of ``last_error``."""
    if hresult & 0x8000_0000:
        message = last_error.message if last_error is not None and \
            last_error.hresult == hresult else ""
        raise com_error(hresult, message)


def _checked(result: tuple[int, T | None]) -> T:
    hresult, value = result
    _raise_for(hresult)
    return value  # type: ignore[return-value]


_dispatch_views: weakref.WeakKeyDictionary[object, object] = weakref.WeakKeyDictionary()


def _view(obj: Any, cls: type[T]) -> T:
    """The one dispatch view of a vtable object (the same Python object every time)."""
    found = _dispatch_views.get(obj)
    if found is None:
        found = cls(obj)  # type: ignore[call-arg]
        _dispatch_views[obj] = found
    return found  # type: ignore[return-value]


class DispDVDDrive:
    """IVMDVDDrive through IDispatch: properties and methods that raise :class:`com_error`."""

    def __init__(self, vtable: VMDVDDrive) -> None:
        self.vtable = vtable
        """The vtable object: ``(hr, value)`` calls for the same drive."""

    @property
    def BusNumber(self) -> int:  # noqa: N802
        return _checked(self.vtable.get_BusNumber())

    @property
    def DeviceNumber(self) -> int:  # noqa: N802
        return _checked(self.vtable.get_DeviceNumber())

    @property
    def ImageFile(self) -> str:  # noqa: N802
        return _checked(self.vtable.get_ImageFile())

    @property
    def HostDriveLetter(self) -> str:  # noqa: N802
        return _checked(self.vtable.get_HostDriveLetter())

    @property
    def Attachment(self) -> int:  # noqa: N802
        return _checked(self.vtable.get_Attachment())

    def SetBusLocation(self, busNumber: int, deviceNumber: int) -> None:  # noqa: N802, N803
        _raise_for(self.vtable.SetBusLocation(busNumber, deviceNumber))

    def AttachImage(self, imagePath: str) -> None:  # noqa: N802, N803
        _raise_for(self.vtable.AttachImage(imagePath))

    def ReleaseImage(self) -> None:  # noqa: N802
        _raise_for(self.vtable.ReleaseImage())

    def AttachHostDrive(self, driveLetter: str) -> None:  # noqa: N802, N803
        _raise_for(self.vtable.AttachHostDrive(driveLetter))

    def ReleaseHostDrive(self) -> None:  # noqa: N802
        _raise_for(self.vtable.ReleaseHostDrive())

    def __repr__(self) -> str:
        return f"<DVDROMDrive {self.vtable.drive!r}>"


class DispDVDDriveCollection:
    """IVMDVDDriveCollection through IDispatch: ``Count``, ``Item(i)`` (1-based), ``For Each``.

    ``coll(i)`` is ``coll.Item(i)`` (Item is the default member, DISPID_VALUE),
    and ``len(coll)`` is ``coll.Count``.
    """

    def __init__(self, vtable: VMDVDDriveCollection) -> None:
        self.vtable = vtable

    @property
    def Count(self) -> int:  # noqa: N802
        return _checked(self.vtable.get_Count())

    def Item(self, index: int) -> DispDVDDrive:  # noqa: N802
        return _view(_checked(self.vtable.get_Item(index)), DispDVDDrive)

    __call__ = Item

    def __iter__(self) -> Iterator[DispDVDDrive]:
        return iter([_view(d, DispDVDDrive) for d in _checked(self.vtable.get__NewEnum())])

    def __len__(self) -> int:
        return self.Count


class DispVirtualMachine:
    """IVMVirtualMachine (the DVD and power members) through IDispatch."""

    def __init__(self, vtable: VMVirtualMachine) -> None:
        self.vtable = vtable

    @property
    def Name(self) -> str:  # noqa: N802
        return _checked(self.vtable.get_Name())

    @property
    def State(self) -> int:  # noqa: N802
        return _checked(self.vtable.get_State())

    @property
    def DVDROMDrives(self) -> DispDVDDriveCollection:  # noqa: N802
        return DispDVDDriveCollection(_checked(self.vtable.get_DVDROMDrives()))

    @property
    def AttachedDriveTypes(self) -> list[list[int]]:  # noqa: N802
        return _checked(self.vtable.get_AttachedDriveTypes())

    def Startup(self) -> None:  # noqa: N802
        _raise_for(self.vtable.Startup())

    def TurnOff(self) -> None:  # noqa: N802
        _raise_for(self.vtable.TurnOff())

    def Save(self) -> None:  # noqa: N802
        _raise_for(self.vtable.Save())

    def Pause(self) -> None:  # noqa: N802
        _raise_for(self.vtable.Pause())

    def Resume(self) -> None:  # noqa: N802
        _raise_for(self.vtable.Resume())

    def AddDVDROMDrive(self, busNumber: int, deviceNumber: int) -> DispDVDDrive:  # noqa: N802, N803
        return _view(_checked(self.vtable.AddDVDROMDrive(busNumber, deviceNumber)), DispDVDDrive)

    def RemoveDVDROMDrive(self, dvdDrive: DispDVDDrive) -> None:  # noqa: N802, N803
        inner = dvdDrive.vtable if isinstance(dvdDrive, DispDVDDrive) else dvdDrive
        _raise_for(self.vtable.RemoveDVDROMDrive(inner))

    def __repr__(self) -> str:
        return f"<VirtualMachine {self.vtable.vm!r}>"


class DispVirtualPC:
    """IVMVirtualPC (create, find, list, delete machines) through IDispatch."""

    def __init__(self, vtable: VMVirtualPC) -> None:
        self.vtable = vtable

    def CreateVirtualMachine(  # noqa: N802
        self, configurationName: str, configurationPath: str = ""  # noqa: N803
    ) -> DispVirtualMachine:
        vm = _checked(self.vtable.CreateVirtualMachine(configurationName, configurationPath))
        return _view(vm, DispVirtualMachine)

    def FindVirtualMachine(self, configurationName: str) -> DispVirtualMachine | None:  # noqa: N802, N803
        vm = _checked(self.vtable.FindVirtualMachine(configurationName))
        return _view(vm, DispVirtualMachine) if vm is not None else None

    def DeleteVirtualMachine(self, vm: DispVirtualMachine) -> None:  # noqa: N802
        inner = vm.vtable if isinstance(vm, DispVirtualMachine) else vm
        _raise_for(self.vtable.DeleteVirtualMachine(inner))

    @property
    def VirtualMachines(self) -> list[DispVirtualMachine]:  # noqa: N802
        return [_view(vm, DispVirtualMachine) for vm in
                _checked(self.vtable.get_VirtualMachines())]

    def close(self) -> None:
        """Release every medium (not a COM member: Python has no final Release)."""
        self.vtable.vpc.close()


def Dispatch(progid: str = "VirtualPC.Application",  # noqa: N802
             vpc: VirtualPC | None = None) -> DispVirtualPC:
    """The Virtual PC application object, as ``win32com.client.Dispatch`` returns it.

    ``vpc`` wraps an existing :class:`~emu.api.vpc.VirtualPC` (by default a new
    one).  An unknown ProgID raises :class:`com_error` CO_E_CLASSSTRING.
    """
    if progid.lower() not in {p.lower() for p in PROG_IDS}:
        raise com_error(CO_E_CLASSSTRING, f"no class registered as {progid!r} "
                                          f"(known: {', '.join(PROG_IDS)})")
    return DispVirtualPC(VMVirtualPC(vpc))


CreateObject = Dispatch
"""VBScript's spelling: ``Set vpc = CreateObject("VirtualPC.Application")``."""


__all__ = [
    "RETVAL",
    "CreateObject",
    "DispDVDDrive",
    "DispDVDDriveCollection",
    "DispVirtualMachine",
    "DispVirtualPC",
    "Dispatch",
    "VMDVDDrive",
    "VMDVDDriveCollection",
    "VMVirtualMachine",
    "VMVirtualPC",
    "com_error",
    "wrap",
]
