"""The management API, after Windows Virtual PC's IVMVirtualPC / IVMVirtualMachine / IVMDVDDrive.

Pythonic surface (the COM-style facade in :mod:`emu.api.com` sits on top)::

    vpc = VirtualPC(host_drives={"D": "/dev/sr0"})
    vm = vpc.create_virtual_machine("lab")
    dvd = vm.add_dvd_drive(bus=1, device=0)
    dvd.attach_image("images/sample.iso")
    dvd.release_image()

Every member of IVMDVDDrive is here (vpc-api.md §2): ``set_bus_location``,
``bus_number``, ``device_number``, ``attach_image``, ``release_image``,
``image_file``, ``attach_host_drive``, ``release_host_drive``,
``host_drive_letter``, ``attachment``, and the IVMDVDDriveEvents
``on_media_insert`` / ``on_media_eject`` (§4.5).  Beyond Virtual PC,
``DVDDrive.guest`` is a small guest driver at the drive's ports
(:class:`emu.api.guest.AtapiHost`), to see what a guest sees after a change.  Failures raise a
:class:`~emu.api.hresult.VMError` subclass carrying the documented HRESULT; the
decisions where the Virtual PC docs are silent are in docs/management-api.md.

Rules every call follows:

* it holds the machine's lock, so it is atomic with respect to the guest's
  port accesses (a guest command sees exactly one medium);
* a drive member first validates the drive: its VM deleted → VM_E_VM_UNKNOWN;
  the drive removed, its (bus, device) outside 0..1, or that location no
  longer holding this drive → VM_E_DRIVE_INVALID;
* anything unexpected becomes DISP_E_EXCEPTION with the cause chained
  (``raise ... from exc``), never a bare Python exception.

What the guest sees is the drive's business (devices/scsi/target.py,
devices/scsi/mmc_media.py): an attach is a medium change (NOT READY 3A/00
once, UNIT ATTENTION 28/00 once, GESN New Media, INTRQ); a release is a
forced eject (tray open, 3A/02, GESN Media Removal, INTRQ) even when the
guest locked the tray.  A guest eject (START STOP UNIT with LoEj) releases
the medium on the host side and fires ``on_media_eject``.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from enum import Enum, IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Concatenate, ParamSpec, Protocol, TypeVar

from devices.atapi.drive import AtapiDrive
from devices.media.base import ImageIsDirectory, ImageNotFound, Medium, MediumError
from devices.media.host import HostDrive
from devices.media.iso import IsoImage
from emu.api.hresult import (
    BadIndexError,
    ConfigDuplicateNameError,
    ConfigNameInvalidCharError,
    ConfigNameTooLongError,
    ConfigNoNameError,
    DispExceptionError,
    DriveBusLocInUseError,
    DriveInUseError,
    DriveInvalidError,
    FailError,
    ImageCaptureFailError,
    InvalidArgError,
    MediaWrongTypeError,
    NullPointerError,
    VMError,
    VMNotRunningError,
    VMPausedError,
    VMRunningError,
    VMRunningOrSavedError,
    VMUnknownError,
)
from emu.firmware import firmware_named
from emu.pc.board import DEFAULT_MEMORY, PcBoard
from emu.pc.session import BootOptions, Session

if TYPE_CHECKING:
    from emu.api.guest import AtapiHost

log = logging.getLogger(__name__)

BUSES = (0, 1)
"""IDE bus numbers: 0 primary, 1 secondary (vpc-api.md §4.1, §5)."""

DEVICES = (0, 1)
"""Device numbers on a bus: 0 master, 1 slave."""

MAX_NAME_LENGTH = 80
"""Longest virtual machine name Virtual PC accepts (VM_E_CONFIG_NAME_TOO_LONG)."""

_INVALID_NAME_CHARS = re.compile(r'[<>:"/\\|?*\x00-\x1f]')
_DRIVE_LETTER = re.compile(r"^([A-Za-z]):?\\?$")


class VMState(Enum):
    """Power state of a virtual machine (the states Virtual PC's API distinguishes)."""

    OFF = "off"
    RUNNING = "running"
    PAUSED = "paused"
    SAVED = "saved"


class DVDAttachment(IntEnum):
    """VMDVDDriveAttachmentType (vpc-api.md §3.1)."""

    NONE = 0
    """vmDVDDrive_None: the drive is empty."""
    IMAGE = 1
    """vmDVDDrive_Image: an ISO file is attached."""
    HOST_DRIVE = 2
    """vmDVDDrive_HostDrive: a host optical drive is attached."""


class DriveType(IntEnum):
    """VMDriveType: what occupies a bus location (vpc-api.md §3.3)."""

    NULL = 0
    HARD_DISK = 1
    DVD = 2


class DVDDriveEvent(IntEnum):
    """VMDVDDriveEvent (vpc-api.md §3.2)."""

    ON_INSERT = 1
    ON_EJECT = 2


MediaHandler = Callable[[str], object]
"""An event handler: called with the ISO path or the host drive letter (or device path)."""


class MediaEventSource:
    """One outgoing event (OnMediaInsert or OnMediaEject): a list of handlers.

    ``dvd.on_media_eject += handler`` (or ``.connect(handler)``) subscribes;
    ``-=`` (or ``.disconnect``) unsubscribes.  Handlers run synchronously on
    the thread that made the change, while the machine lock is held: they may
    call the API again (the lock is re-entrant) but must not wait for another
    thread that needs it.  A handler that raises is logged and skipped: a COM
    event source ignores its sinks' failures.
    """

    def __init__(self, name: str, event_id: DVDDriveEvent) -> None:
        self.name = name
        self.event_id = event_id
        self._handlers: list[MediaHandler] = []

    def connect(self, handler: MediaHandler) -> MediaHandler:
        self._handlers.append(handler)
        return handler

    def disconnect(self, handler: MediaHandler) -> None:
        self._handlers.remove(handler)

    def __iadd__(self, handler: MediaHandler) -> MediaEventSource:
        self.connect(handler)
        return self

    def __isub__(self, handler: MediaHandler) -> MediaEventSource:
        self.disconnect(handler)
        return self

    def __len__(self) -> int:
        return len(self._handlers)

    def __iter__(self) -> Iterator[MediaHandler]:
        return iter(list(self._handlers))

    def fire(self, media_path: str) -> None:
        for handler in list(self._handlers):
            try:
                handler(media_path)
            except Exception:
                log.exception("%s handler %r failed", self.name, handler)


# -- the one wrapper every API member goes through ------------------------------------


class _Locked(Protocol):
    @property
    def _lock(self) -> threading.RLock: ...


S = TypeVar("S", bound=_Locked)
P = ParamSpec("P")
R = TypeVar("R")


def api(
    io_error: type[VMError] | None = None,
) -> Callable[[Callable[Concatenate[S, P], R]], Callable[Concatenate[S, P], R]]:
    """Run a member under the object's lock; turn unexpected errors into HRESULTs.

    A :class:`VMError` passes through.  With ``io_error`` (for members whose
    table lists E_FAIL), a host ``OSError`` becomes that error; anything else
    becomes DISP_E_EXCEPTION.  The cause is always chained.
    """

    def wrap(fn: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
        @functools.wraps(fn)
        def member(self: S, *args: P.args, **kwargs: P.kwargs) -> R:
            with self._lock:
                try:
                    result = fn(self, *args, **kwargs)
                except VMError as exc:
                    _trace_call(self, fn.__name__, args, exc)
                    raise
                except OSError as exc:
                    cls = io_error or DispExceptionError
                    error = cls(f"{fn.__name__}: host I/O error: {exc}")
                    _trace_call(self, fn.__name__, args, error)
                    raise error from exc
                except Exception as exc:
                    error = DispExceptionError(
                        f"{fn.__name__}: unexpected {type(exc).__name__}: {exc}"
                    )
                    _trace_call(self, fn.__name__, args, error)
                    raise error from exc
                _trace_call(self, fn.__name__, args, None)
                return result

        return member

    return wrap


def _trace_call(obj: object, name: str, args: tuple[object, ...], error: VMError | None) -> None:
    """Emit an ``api`` trace event (call, arguments, HRESULT) if the VM is being traced."""
    vm = obj if isinstance(obj, VirtualMachine) else getattr(obj, "_vm", None)
    tracer = getattr(getattr(vm, "machine", None), "trace", None)
    if tracer is None:
        return
    hresult, hr_name = (error.hresult, error.name) if error is not None else (0, "S_OK")
    tracer.emit("api", type(obj).__name__, call=f"{type(obj).__name__}.{name}",
                args=[os.fspath(a) if isinstance(a, os.PathLike) else a for a in args],
                hresult=hresult, name=hr_name)


def _check_location(bus: object, device: object) -> tuple[int, int]:
    """(bus, device) as ints in 0..1, else E_INVALIDARG."""
    if type(bus) is not int or type(device) is not int:
        raise InvalidArgError(f"bus and device must be integers, not {bus!r}, {device!r}")
    if bus not in BUSES or device not in DEVICES:
        raise InvalidArgError(f"bus {bus} device {device} is not an IDE location (0..1, 0..1)")
    return bus, device


def _path_argument(value: object, what: str) -> str:
    """A path argument as a string: None → E_POINTER; not text or empty → E_INVALIDARG."""
    if value is None:
        raise NullPointerError(f"{what} is NULL")
    if not isinstance(value, str | os.PathLike):
        raise InvalidArgError(f"{what} must be a string, not {type(value).__name__}")
    text = os.fspath(value)
    if not isinstance(text, str):
        raise InvalidArgError(f"{what} must be text, not bytes")
    if not text.strip():
        raise InvalidArgError(f"{what} is empty")
    if "\0" in text:
        raise InvalidArgError(f"{what} contains a NUL byte: no file can have that name")
    return text


# -- VirtualPC -----------------------------------------------------------------------


class VirtualPC:
    """The host application: a set of named virtual machines and the host's optical drives.

    ``host_drives`` maps drive letters to host device paths (``{"D": "/dev/sr0"}``)
    for :meth:`DVDDrive.attach_host_drive`.  A host drive is captured by at most
    one DVD drive across all virtual machines.
    """

    def __init__(self, host_drives: Mapping[str, str] | None = None) -> None:
        self._lock = threading.RLock()
        self.host_drives: dict[str, str] = {}
        for letter, path in (host_drives or {}).items():
            match = _DRIVE_LETTER.match(letter.strip())
            if match is None:
                raise InvalidArgError(f"{letter!r} is not a drive letter")
            self.host_drives[match.group(1).upper()] = os.fspath(path)
        self._vms: dict[str, VirtualMachine] = {}
        self._captures: dict[str, DVDDrive] = {}
        self._captures_lock = threading.Lock()  # a leaf lock: taken inside machine locks

    # -- virtual machines ------------------------------------------------------------
    @api()
    def create_virtual_machine(self, name: str, memory_size: int = DEFAULT_MEMORY
                               ) -> VirtualMachine:
        """A new, turned-off virtual machine (VM_E_CONFIG_* for a bad or duplicate name)."""
        if name is None:
            raise NullPointerError("the name is NULL")
        if not isinstance(name, str):
            raise InvalidArgError(f"the name must be a string, not {type(name).__name__}")
        if not name.strip():
            raise ConfigNoNameError("the name is empty")
        if len(name) > MAX_NAME_LENGTH:
            raise ConfigNameTooLongError(f"the name has {len(name)} characters (at most 80)")
        if _INVALID_NAME_CHARS.search(name):
            raise ConfigNameInvalidCharError(f"{name!r} has a character not allowed in a name")
        key = name.casefold()
        if key in self._vms:
            raise ConfigDuplicateNameError(f"a virtual machine named {name!r} exists")
        vm = VirtualMachine(self, name, memory_size)
        self._vms[key] = vm
        return vm

    @api()
    def restore_virtual_machine(self, path: str | os.PathLike[str], name: str | None = None,
                                force: bool = False) -> VirtualMachine:
        """A new virtual machine running from a state saved by
        :meth:`VirtualMachine.save_state` (or ``emu boot --save``): its RAM size, drives,
        images and firmware come from the file; ``session.resume(...)`` goes on exactly
        where the saved run stopped.  ``name`` defaults to the saved machine's name.

        E_FAIL (a damaged, newer or foreign file, or a different image unless ``force``:
        the reason is in the message; nothing is created), VM_E_CONFIG_DUPLICATE_NAME.
        """
        from emu.pc import state

        try:
            snap = state.load(path)
        except state.StateFileError as exc:
            raise FailError(str(exc)) from None
        manifest = snap.manifest
        vm_name = name or str(manifest.get("vm_name") or Path(os.fspath(path)).stem)
        vm = self.create_virtual_machine(vm_name, int(manifest["board"]["memory_size"]))
        try:
            for d in manifest["drives"]:
                drive = vm.add_dvd_drive(int(d["bus"]), int(d["device"]))
                if d["medium"] is not None:
                    drive.attach_image(d["medium"]["path"])
            vm._start(str(manifest["firmware"]), "", manifest.get("transfer"))
            assert vm._session is not None
            vm._session.restore(snap, force=force)
        except (VMError, state.StateFileError) as exc:
            vm._state = VMState.OFF
            self.delete_virtual_machine(vm)
            raise FailError(f"{path}: {exc}") from None
        return vm

    @api()
    def find_virtual_machine(self, name: str) -> VirtualMachine | None:
        """The virtual machine called ``name`` (case-insensitive), or None."""
        if name is None:
            raise NullPointerError("the name is NULL")
        if not isinstance(name, str):
            raise InvalidArgError(f"the name must be a string, not {type(name).__name__}")
        return self._vms.get(name.casefold())

    @api()
    def delete_virtual_machine(self, vm: VirtualMachine) -> None:
        """Delete a turned-off virtual machine.  Its media are released (events fire)
        and its drives answer VM_E_VM_UNKNOWN from then on."""
        if vm is None:
            raise NullPointerError("the virtual machine is NULL")
        if not isinstance(vm, VirtualMachine) or self._vms.get(vm.name.casefold()) is not vm:
            raise VMUnknownError("not a virtual machine of this host")
        with vm._lock:
            if vm._state is not VMState.OFF:
                raise VMRunningOrSavedError(f"{vm.name!r} is {vm._state.value}")
            for drive in list(vm._drives):
                drive._detach_for_removal()
            vm._deleted = True
        del self._vms[vm.name.casefold()]

    @property
    def virtual_machines(self) -> list[VirtualMachine]:
        with self._lock:
            return list(self._vms.values())

    def close(self) -> None:
        """Release every medium of every virtual machine (no events fire), closing files.

        For the end of a session or a test; the machines stay defined.
        """
        with self._lock:
            for vm in list(self._vms.values()):
                with vm._lock:
                    for drive in list(vm._drives):
                        if drive._attachment is not DVDAttachment.NONE:
                            path, error = drive._release(fire=False)
                            if error is not None:
                                log.error("closing %s failed", path, exc_info=error)

    def __enter__(self) -> VirtualPC:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- host drive captures ---------------------------------------------------------
    def _claim_host_drive(self, key: str, drive: DVDDrive) -> None:
        with self._captures_lock:
            owner = self._captures.get(key)
            if owner is not None and owner is not drive:
                raise DriveInUseError(
                    f"host drive {key} is captured by a drive of {owner._vm.name!r}"
                )
            self._captures[key] = drive

    def _free_host_drive(self, key: str, drive: DVDDrive) -> None:
        with self._captures_lock:
            if self._captures.get(key) is drive:
                del self._captures[key]

    def __repr__(self) -> str:
        return f"VirtualPC(vms={sorted(vm.name for vm in self._vms.values())})"


# -- VirtualMachine ------------------------------------------------------------------


class HardDiskPlaceholder:
    """Something that occupies an IDE location as a hard disk would (for conflict tests).

    It is bookkeeping only: no disk is emulated on the cable.
    """

    def __init__(self, vm: VirtualMachine, bus: int, device: int) -> None:
        self._vm = vm
        self.bus_number = bus
        self.device_number = device

    def __repr__(self) -> str:
        return f"HardDiskPlaceholder(bus={self.bus_number}, device={self.device_number})"


class VirtualMachine:
    """A virtual machine: a :class:`Machine` it owns, its power state and its drives."""

    def __init__(self, vpc: VirtualPC, name: str, memory_size: int = DEFAULT_MEMORY) -> None:
        self._vpc = vpc
        self.name = name
        self.machine = PcBoard(memory_size)
        self._state = VMState.OFF
        self._deleted = False
        self._slots: dict[tuple[int, int], DVDDrive | HardDiskPlaceholder] = {}
        self._session: Session | None = None
        self._drives: list[DVDDrive] = []

    @property
    def _lock(self) -> threading.RLock:
        return self.machine.lock

    def _check(self) -> None:
        if self._deleted:
            raise VMUnknownError(f"virtual machine {self.name!r} was deleted")

    def _require_off(self) -> None:
        if self._state is not VMState.OFF:
            raise VMRunningOrSavedError(f"{self.name!r} is {self._state.value}; turn it off first")

    def _require_free(self, bus: int, device: int) -> None:
        held = self._slots.get((bus, device))
        if held is not None:
            raise DriveBusLocInUseError(f"bus {bus} device {device} holds {held!r}")

    @property
    def deleted(self) -> bool:
        return self._deleted

    # -- power -----------------------------------------------------------------------
    @property
    @api()
    def state(self) -> VMState:
        self._check()
        return self._state

    @api()
    def power_on(self) -> None:
        """Turn on (devices get their power-on reset: UNIT ATTENTION 29/00) or restore."""
        self._check()
        if self._state in (VMState.RUNNING, VMState.PAUSED):
            raise VMRunningError(f"{self.name!r} is {self._state.value}")
        if self._state is VMState.OFF:
            for drive in self._drives:
                drive.unit.power_on()
        self._state = VMState.RUNNING

    @api()
    def boot(self, firmware: str = "builtin", keys: str = "") -> Session:
        """Turn the machine on and start its guest: ``firmware`` (``builtin`` or ``seabios``)
        runs on this machine's own board, with the drives and media attached here.

        Returns the :class:`~emu.pc.session.Session`: ``session.resume(until=TEXT,
        keys=KEYS)`` runs the guest until TEXT appears (or a stop rule ends the run), and
        between runs the drives' ``release_image``/``attach_image`` change the disc while
        the guest is up; the guest sees the change at the ports as a real drive reports
        it.  A machine's board boots once (VM_E_VM_RUNNING if it is on).
        """
        self._check()
        if self._session is not None or self._state is not VMState.OFF:
            raise VMRunningError(f"{self.name!r} was started already; create a new machine")
        return self._start(firmware, keys)

    def _start(self, firmware: str, keys: str, transfer: str | None = None) -> Session:
        self.power_on()
        options = BootOptions(firmware=firmware, keys=keys, transfer=transfer,
                              memory_size=self.machine.memory_map.size, timeout=None)
        self._session = Session(options, firmware_named(firmware), board=self.machine)
        return self._session

    @property
    def session(self) -> Session | None:
        """The guest started by :meth:`boot` (or a restore), None before."""
        return self._session

    @api()
    def save_state(self, path: str | os.PathLike[str]) -> None:
        """Write the running machine's whole state to ``path`` (a ``.emustate`` file,
        docs/state.md); the machine goes on running.  Between runs of its session only.

        VM_E_VM_NOT_RUNNING (no guest started), E_FAIL (the file cannot be written).
        """
        self._check()
        if self._session is None or self._state not in (VMState.RUNNING, VMState.PAUSED):
            raise VMNotRunningError(f"{self.name!r} has no running guest to save")
        from emu.pc import state

        try:
            snap = self._session.snapshot()
            snap.manifest["vm_name"] = self.name
            state.save(snap, path)
        except state.StateFileError as exc:
            raise FailError(str(exc)) from None

    @api()
    def power_off(self) -> None:
        """Turn off (from running, paused, or saved: the saved state is discarded)."""
        self._check()
        if self._state is VMState.OFF:
            raise VMNotRunningError(f"{self.name!r} is off")
        self._state = VMState.OFF

    @api()
    def save(self) -> None:
        self._check()
        if self._state not in (VMState.RUNNING, VMState.PAUSED):
            raise VMNotRunningError(f"{self.name!r} is {self._state.value}")
        self._state = VMState.SAVED

    @api()
    def pause(self) -> None:
        self._check()
        if self._state is VMState.PAUSED:
            raise VMPausedError(f"{self.name!r} is paused already")
        if self._state is not VMState.RUNNING:
            raise VMNotRunningError(f"{self.name!r} is {self._state.value}")
        self._state = VMState.PAUSED

    @api()
    def resume(self) -> None:
        self._check()
        if self._state is not VMState.PAUSED:
            raise VMNotRunningError(f"{self.name!r} is not paused ({self._state.value})")
        self._state = VMState.RUNNING

    # -- drives ----------------------------------------------------------------------
    @api()
    def add_dvd_drive(self, bus: int = 1, device: int = 0) -> DVDDrive:
        """IVMVirtualMachine::AddDVDROMDrive: an empty DVD drive at (bus, device).

        VM_E_VM_UNKNOWN, E_INVALIDARG (outside 0..1), VM_E_VM_RUNNING_OR_SAVED,
        VM_E_DRIVE_BUS_LOC_IN_USE.
        """
        self._check()
        bus, device = _check_location(bus, device)
        self._require_off()
        self._require_free(bus, device)
        if self.machine.ide.unit(bus, device).present:
            raise DriveInvalidError(
                f"bus {bus} device {device} holds a device this virtual machine does not manage"
            )
        unit = self.machine.add_dvd_drive(bus, device)
        drive = DVDDrive(self, bus, device, unit)
        self._slots[bus, device] = drive
        self._drives.append(drive)
        return drive

    @api()
    def remove_dvd_drive(self, drive: DVDDrive) -> None:
        """IVMVirtualMachine::RemoveDVDROMDrive: take a drive off the cable (VM turned off).

        E_POINTER (None), VM_E_VM_UNKNOWN, VM_E_DRIVE_INVALID (not this VM's
        drive, or not at its location), VM_E_VM_RUNNING_OR_SAVED.  A medium in
        it is released (``on_media_eject`` fires).
        """
        self._check()
        if drive is None:
            raise NullPointerError("the drive is NULL")
        if (
            not isinstance(drive, DVDDrive)
            or drive._vm is not self
            or drive._removed
            or self._slots.get((drive._bus, drive._device)) is not drive
        ):
            raise DriveInvalidError("that drive is not connected to this virtual machine")
        self._require_off()
        drive._detach_for_removal()

    @property
    @api()
    def dvd_drives(self) -> DVDDriveCollection:
        """IVMVirtualMachine::DVDROMDrives: a live collection of this VM's DVD drives."""
        self._check()
        return DVDDriveCollection(self)

    @property
    @api()
    def attached_drive_types(self) -> tuple[tuple[DriveType, DriveType], ...]:
        """IVMVirtualMachine::AttachedDriveTypes: ``[bus][device]`` → :class:`DriveType`."""
        self._check()
        rows = []
        for bus in BUSES:
            row = []
            for device in DEVICES:
                held = self._slots.get((bus, device))
                if isinstance(held, DVDDrive):
                    row.append(DriveType.DVD)
                elif isinstance(held, HardDiskPlaceholder):
                    row.append(DriveType.HARD_DISK)
                else:
                    row.append(DriveType.NULL)
            rows.append((row[0], row[1]))
        return tuple(rows)

    @api()
    def add_hard_disk_placeholder(self, bus: int = 0, device: int = 0) -> HardDiskPlaceholder:
        """Occupy (bus, device) as a hard disk would (same errors as add_dvd_drive)."""
        self._check()
        bus, device = _check_location(bus, device)
        self._require_off()
        self._require_free(bus, device)
        disk = HardDiskPlaceholder(self, bus, device)
        self._slots[bus, device] = disk
        return disk

    @api()
    def remove_hard_disk_placeholder(self, disk: HardDiskPlaceholder) -> None:
        self._check()
        if disk is None:
            raise NullPointerError("the disk is NULL")
        where = (disk.bus_number, disk.device_number)
        if self._slots.get(where) is not disk:
            raise DriveInvalidError("that disk is not connected to this virtual machine")
        self._require_off()
        del self._slots[where]

    def __repr__(self) -> str:
        return f"VirtualMachine({self.name!r}, {self._state.value})"


class DVDDriveCollection:
    """IVMDVDDriveCollection: ``count``, ``item(index)`` (1-based, as Automation
    collections are), iteration (``_NewEnum``), and Python's ``len`` / ``[i]`` (0-based).

    An index with no drive raises :class:`~emu.api.hresult.BadIndexError`
    (DISP_E_BADINDEX), which is also an ``IndexError``.
    """

    def __init__(self, vm: VirtualMachine) -> None:
        self._vm = vm

    @property
    def _lock(self) -> threading.RLock:
        return self._vm._lock

    def _snapshot(self) -> list[DVDDrive]:
        self._vm._check()
        return list(self._vm._drives)

    @property
    @api(io_error=FailError)
    def count(self) -> int:
        return len(self._snapshot())

    @api(io_error=FailError)
    def item(self, index: int) -> DVDDrive:
        """The drive at 1-based ``index`` (DISP_E_BADINDEX if there is none)."""
        drives = self._snapshot()
        if type(index) is not int or not 1 <= index <= len(drives):
            raise BadIndexError(f"no DVD drive at index {index!r} (1..{len(drives)})")
        return drives[index - 1]

    @api()
    def __getitem__(self, index: int) -> DVDDrive:
        drives = self._snapshot()
        if type(index) is not int or not -len(drives) <= index < len(drives):
            raise BadIndexError(f"no DVD drive at index {index!r}")
        return drives[index]

    def __len__(self) -> int:
        return self.count

    @api(io_error=FailError)
    def __iter__(self) -> Iterator[DVDDrive]:
        return iter(self._snapshot())


# -- DVDDrive -------------------------------------------------------------------------


class DVDDrive:
    """IVMDVDDrive: one DVD drive of a virtual machine, and what is attached to it.

    ``unit`` is the emulated :class:`AtapiDrive` on the IDE cable.
    """

    def __init__(self, vm: VirtualMachine, bus: int, device: int, unit: AtapiDrive) -> None:
        self._vm = vm
        self._bus = bus
        self._device = device
        self.unit = unit
        self._removed = False
        self._attachment = DVDAttachment.NONE
        self._medium: Medium | None = None
        self._image_path = ""
        self._host_drive = ""
        self._host_key = ""
        self.on_media_insert = MediaEventSource("OnMediaInsert", DVDDriveEvent.ON_INSERT)
        self.on_media_eject = MediaEventSource("OnMediaEject", DVDDriveEvent.ON_EJECT)
        unit.target.on_guest_eject = self._guest_ejected

    @property
    def _lock(self) -> threading.RLock:
        return self._vm.machine.lock

    @property
    def virtual_machine(self) -> VirtualMachine:
        return self._vm

    @property
    @api()
    def guest(self) -> AtapiHost:
        """The guest's view of this drive: an :class:`~emu.api.guest.AtapiHost` at its ports.

        Send packet commands as a guest driver would and see what the guest
        sees after a media change (``dvd.guest.test_unit_ready().outcome``).
        A new helper each time, bound to the drive's current bus location.
        """
        self._check()
        from emu.api.guest import AtapiHost

        return AtapiHost(self._vm.machine, self._bus, self._device)

    def _check(self, vm_unknown: bool = True) -> None:
        """The bus-location validation every member runs first."""
        if self._vm._deleted:
            if vm_unknown:
                raise VMUnknownError(f"the virtual machine {self._vm.name!r} was deleted")
            raise DriveInvalidError("the drive's virtual machine was deleted")
        if self._removed:
            raise DriveInvalidError("the drive was removed from its virtual machine")
        bus, device = self._bus, self._device
        if type(bus) is not int or type(device) is not int or bus not in BUSES or (
            device not in DEVICES
        ):
            raise DriveInvalidError(f"bus location ({bus!r}, {device!r}) is not valid")
        if (
            self._vm._slots.get((bus, device)) is not self
            or self._vm.machine.ide.unit(bus, device) is not self.unit
        ):
            raise DriveInvalidError(f"bus {bus} device {device} no longer holds this drive")

    # -- bus location ------------------------------------------------------------------
    @api(io_error=FailError)
    def set_bus_location(self, bus: int, device: int) -> None:
        """IVMDVDDrive::SetBusLocation: move the drive (VM turned off).

        E_INVALIDARG (outside 0..1), VM_E_VM_RUNNING_OR_SAVED,
        VM_E_DRIVE_BUS_LOC_IN_USE, VM_E_DRIVE_INVALID, VM_E_VM_UNKNOWN.
        """
        self._check()
        bus, device = _check_location(bus, device)
        vm = self._vm
        vm._require_off()
        old = (self._bus, self._device)
        if (bus, device) == old:
            return
        vm._require_free(bus, device)
        vm.machine.remove_drive(*old)
        vm.machine.ide.attach(bus, device, self.unit)
        del vm._slots[old]
        vm._slots[bus, device] = self
        self._bus, self._device = bus, device

    @property
    @api()
    def bus_number(self) -> int:
        """IVMDVDDrive::BusNumber (0 primary, 1 secondary).  VM_E_DRIVE_INVALID only."""
        self._check(vm_unknown=False)
        return self._bus

    @property
    @api()
    def device_number(self) -> int:
        """IVMDVDDrive::DeviceNumber (0 master, 1 slave).  VM_E_DRIVE_INVALID only."""
        self._check(vm_unknown=False)
        return self._device

    # -- what is attached ----------------------------------------------------------------
    @property
    @api(io_error=FailError)
    def attachment(self) -> DVDAttachment:
        """IVMDVDDrive::Attachment: None, Image or HostDrive."""
        self._check()
        return self._attachment

    @property
    @api(io_error=FailError)
    def image_file(self) -> str:
        """IVMDVDDrive::ImageFile: the full path of the attached ISO.

        VM_E_MEDIA_WRONG_TYPE when the drive holds a host drive or nothing.
        """
        self._check()
        if self._attachment is not DVDAttachment.IMAGE:
            raise MediaWrongTypeError(f"the drive holds {self._describe_attachment()}, not an ISO")
        return self._image_path

    @property
    @api(io_error=FailError)
    def host_drive_letter(self) -> str:
        """IVMDVDDrive::HostDriveLetter: the captured host drive's letter (``"D"``),
        or its device path when it was captured by path.

        VM_E_MEDIA_WRONG_TYPE when the drive holds an ISO or nothing.
        """
        self._check()
        if self._attachment is not DVDAttachment.HOST_DRIVE:
            raise MediaWrongTypeError(
                f"the drive holds {self._describe_attachment()}, not a host drive"
            )
        return self._host_drive

    @property
    def host_drive(self) -> str:
        """Alias of :attr:`host_drive_letter` (the architecture's name)."""
        return self.host_drive_letter

    @property
    def medium(self) -> Medium | None:
        """The attached medium object (None when empty), for inspection."""
        return self._medium

    # -- attach and release ----------------------------------------------------------------
    @api()
    def attach_image(self, path: str | os.PathLike[str]) -> None:
        """IVMDVDDrive::AttachImage: insert an ISO image, opened read-only.

        E_POINTER (None), E_INVALIDARG (a directory, or not a path),
        VM_E_DRIVE_IN_USE (something is attached: release it first),
        VM_E_IMAGE_CAPTURE_FAIL (missing, unreadable, empty, truncated or not
        a disc image; the reason is in the message), VM_E_VM_UNKNOWN,
        VM_E_DRIVE_INVALID.
        """
        self._check()
        text = _path_argument(path, "the image path")
        if self._attachment is not DVDAttachment.NONE:
            raise DriveInUseError(
                f"the drive holds {self._describe_attachment()}; release it first"
            )
        full = os.path.abspath(text)
        try:
            medium = IsoImage(full)
        except ImageIsDirectory as exc:
            raise InvalidArgError(str(exc)) from exc
        except MediumError as exc:
            raise ImageCaptureFailError(str(exc)) from exc
        self._insert(medium, DVDAttachment.IMAGE)
        self._image_path = full
        self.on_media_insert.fire(full)

    @api()
    def release_image(self) -> None:
        """IVMDVDDrive::ReleaseImage: a forced eject of the attached ISO.

        The guest sees the tray open and the medium gone even if it locked the
        tray.  VM_E_MEDIA_WRONG_TYPE when a host drive or nothing is attached;
        DISP_E_EXCEPTION when closing the image fails (the drive is empty
        regardless); VM_E_VM_UNKNOWN; VM_E_DRIVE_INVALID.
        """
        self._check()
        if self._attachment is not DVDAttachment.IMAGE:
            raise MediaWrongTypeError(f"the drive holds {self._describe_attachment()}, not an ISO")
        path, error = self._release()
        if error is not None:
            raise DispExceptionError(f"closing {path} failed: {error}") from error

    @api(io_error=FailError)
    def attach_host_drive(self, drive: str | os.PathLike[str]) -> None:
        """IVMDVDDrive::AttachHostDrive: pass a host optical drive (or raw image file) through.

        ``drive`` is a letter mapped by ``VirtualPC(host_drives=...)`` (``"D"``,
        ``"d:"``, ``"D:\\"``) or an absolute device path.  Read-only; nothing is
        validated (a host drive may hold any disc).  E_POINTER (None),
        E_INVALIDARG (unknown letter, relative path, no such device),
        VM_E_DRIVE_IN_USE (this drive holds something, or the host drive is
        captured by another drive), E_FAIL (the device cannot be opened),
        VM_E_VM_UNKNOWN, VM_E_DRIVE_INVALID.
        """
        self._check()
        text = _path_argument(drive, "the host drive").strip()
        match = _DRIVE_LETTER.match(text)
        if match is not None:
            label = match.group(1).upper()
            path = self._vm._vpc.host_drives.get(label)
            if path is None:
                raise InvalidArgError(f"there is no host drive {label}:")
        elif os.path.isabs(text):
            label = path = text
        else:
            raise InvalidArgError(f"{text!r} is neither a drive letter nor an absolute path")
        if self._attachment is not DVDAttachment.NONE:
            raise DriveInUseError(
                f"the drive holds {self._describe_attachment()}; release it first"
            )
        key = os.path.realpath(path)
        vpc = self._vm._vpc
        vpc._claim_host_drive(key, self)
        try:
            medium = HostDrive(path)
        except (ImageNotFound, ImageIsDirectory) as exc:
            vpc._free_host_drive(key, self)
            raise InvalidArgError(str(exc)) from exc
        except MediumError as exc:
            vpc._free_host_drive(key, self)
            raise FailError(str(exc)) from exc
        except BaseException:
            vpc._free_host_drive(key, self)
            raise
        self._insert(medium, DVDAttachment.HOST_DRIVE)
        self._host_drive = label
        self._host_key = key
        self.on_media_insert.fire(label)

    @api(io_error=FailError)
    def release_host_drive(self) -> None:
        """IVMDVDDrive::ReleaseHostDrive: a forced eject of the captured host drive.

        VM_E_MEDIA_WRONG_TYPE when an ISO or nothing is attached; E_FAIL when
        closing the device fails with an I/O error (the drive is empty
        regardless); VM_E_VM_UNKNOWN; VM_E_DRIVE_INVALID.
        """
        self._check()
        if self._attachment is not DVDAttachment.HOST_DRIVE:
            raise MediaWrongTypeError(
                f"the drive holds {self._describe_attachment()}, not a host drive"
            )
        label, error = self._release()
        if isinstance(error, OSError):
            raise FailError(f"closing host drive {label} failed: {error}") from error
        if error is not None:
            raise DispExceptionError(f"closing host drive {label} failed: {error}") from error

    # -- internals (called with the lock held) ----------------------------------------------
    def _describe_attachment(self) -> str:
        if self._attachment is DVDAttachment.IMAGE:
            return f"the image {self._image_path}"
        if self._attachment is DVDAttachment.HOST_DRIVE:
            return f"the host drive {self._host_drive}"
        return "nothing"

    def _insert(self, medium: Medium, kind: DVDAttachment) -> None:
        self.unit.insert_medium(medium)  # the guest sees a media change (target.insert)
        self._medium = medium
        self._attachment = kind

    def _release(self, fire: bool = True) -> tuple[str, Exception | None]:
        """Take the medium out (forced eject), close it, fire on_media_eject.

        Returns the event path and the exception closing raised, if any: the
        drive is empty either way.
        """
        medium = self._medium
        if self._attachment is DVDAttachment.IMAGE:
            path = self._image_path
        else:
            path = self._host_drive
        self.unit.remove_medium()  # tray opens, lock overridden, GESN Media Removal, INTRQ
        if self._host_key:
            self._vm._vpc._free_host_drive(self._host_key, self)
        self._medium = None
        self._attachment = DVDAttachment.NONE
        self._image_path = self._host_drive = self._host_key = ""
        error: Exception | None = None
        if medium is not None:
            try:
                medium.close()
            except Exception as exc:
                error = exc
        if fire:
            self.on_media_eject.fire(path)
        return path, error

    def _guest_ejected(self) -> None:
        """The guest opened the tray (START STOP UNIT, LoEj): release on the host side.

        Runs inside a guest port access (the lock is held); never raises.
        """
        if self._attachment is DVDAttachment.NONE:
            return
        path, error = self._release()
        if error is not None:
            log.error("closing %s after a guest eject failed", path, exc_info=error)

    def _detach_for_removal(self) -> None:
        """Release any medium and take the drive off its VM's cable (VM turned off)."""
        vm = self._vm
        if self._attachment is not DVDAttachment.NONE:
            path, error = self._release()
            if error is not None:
                log.error("closing %s while removing the drive failed", path, exc_info=error)
        where = (self._bus, self._device)
        if vm._slots.get(where) is self:
            del vm._slots[where]
            if vm.machine.ide.unit(*where) is self.unit:
                vm.machine.remove_drive(*where)
        if self in vm._drives:
            vm._drives.remove(self)
        self.unit.target.on_guest_eject = None
        self._removed = True

    def __repr__(self) -> str:
        return (
            f"DVDDrive(vm={self._vm.name!r}, bus={self._bus}, device={self._device}, "
            f"{self._describe_attachment()})"
        )
