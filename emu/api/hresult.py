"""HRESULT values of the Windows Virtual PC COM API, and the exceptions that carry them.

Values are the real 32-bit ones from the SDK header ``vpccominterfaces.h``
(see /work/shared/reference/vpc-api.md §1 and §7), not the misprints of the
documentation pages:

* every Virtual PC error is ``0xA0040000 | code``: severity error (bit 31),
  customer bit (bit 29), facility 4 (FACILITY_ITF);
* ``VM_E_MEDIA_WRONG_TYPE`` is 0xA0040728 (pages print 0xA00400728, nine digits),
  ``VM_E_DRIVE_BUS_LOC_IN_USE`` 0xA0040503 (printed 0xA00400503);
* ``E_INVALIDARG`` is the Win32 value 0x80070057 (pages print the legacy
  16-bit/Mac value 0x80000003, kept here as ``E_INVALIDARG_LEGACY``).

Values are stored unsigned.  COM layers such as pywin32 and comtypes print
them as signed 32-bit integers (0xA0040728 is -1610348760): convert at the
boundary with :func:`to_signed` / :func:`from_signed`.

Errors are exceptions: :class:`VMError` carries ``.hresult`` (unsigned),
``.name`` (the constant's name) and a message; there is one subclass per
code, and :func:`error_for` finds (or makes) the subclass of any code.
"""

from __future__ import annotations

from typing import ClassVar

S_OK = 0x00000000
S_FALSE = 0x00000001

E_INVALIDARG = 0x80070057
"""Win32 E_INVALIDARG (HRESULT_FROM_WIN32(ERROR_INVALID_PARAMETER))."""
E_INVALIDARG_LEGACY = 0x80000003
"""The non-Win32 E_INVALIDARG that the Virtual PC pages print; never returned."""
E_POINTER = 0x80004003
E_FAIL = 0x80004005
E_NOTIMPL = 0x80004001
DISP_E_EXCEPTION = 0x80020009
DISP_E_BADINDEX = 0x8002000B

_VM_BASE = 0xA0040000

_VM_CODES: tuple[tuple[str, int], ...] = (
    ("VM_E_TIMED_OUT", 0x202),
    ("VM_E_OUT_OF_RESOURCE", 0x203),
    ("VM_E_TOO_MANY_VMS", 0x204),
    ("VM_E_VM_NOT_RUNNING", 0x206),
    ("VM_E_VM_UNKNOWN", 0x207),
    ("VM_E_OUT_OF_RESERVE", 0x208),
    ("VM_E_APP_SHUTTING_DOWN", 0x209),
    ("VM_E_SCRIPT_ALREADY_EXISTS", 0x20A),
    ("VM_E_VM_RUNNING_OR_SAVED", 0x20B),
    ("VM_E_PREF_NOT_FOUND", 0x300),
    ("VM_E_PREF_ILLEGAL_VALUE", 0x301),
    ("VM_E_PREF_VM_ACTIVE", 0x302),
    ("VM_E_PREF_CONFIG_UPDATED_VM_ACTIVE", 0x303),
    ("VM_E_PREF_UNLOADABLE_ACTIVATION", 0x306),
    ("VM_E_PREF_SAVED_STATE_BAD_VERSION", 0x307),
    ("VM_E_PREF_SAVED_STATE_ACCESS_DENIED", 0x308),
    ("VM_E_CONFIG_NO_NAME", 0x400),
    ("VM_E_CONFIG_NAME_TOO_LONG", 0x401),
    ("VM_E_CONFIG_NAME_INVALID_CHAR", 0x402),
    ("VM_E_CONFIG_DUPLICATE_NAME", 0x403),
    ("VM_E_VM_RUNNING", 0x500),
    ("VM_E_VM_NO_SAVED_STATE", 0x501),
    ("VM_E_DRIVE_INVALID", 0x502),
    ("VM_E_DRIVE_BUS_LOC_IN_USE", 0x503),
    ("VM_E_ADDITIONS_NOT_AVAIL", 0x504),
    ("VM_E_ADDITIONS_FEATURE_NOT_AVAIL", 0x505),
    ("VM_E_FOLDER_NOT_SHARED", 0x506),
    ("VM_E_VM_PAUSED", 0x507),
    ("VM_E_MEDIA_UNMOUNT_FAIL", 0x508),
    ("VM_E_IMAGE_CAPTURE_FAIL", 0x650),
    ("VM_E_HOST_FLOPPY_CAPTURE_FAIL", 0x651),
    ("VM_E_NO_MEDIA_CAPTURED", 0x652),
    ("VM_E_PARENT_PATH_NOT_FOUND", 0x677),
    ("VM_E_FILE_TOO_LARGE_FOR_VOLUME", 0x679),
    ("VM_E_FILE_READ_ONLY", 0x67A),
    ("VM_E_WRONG_HD_IMAGE_TYPE", 0x67B),
    ("VM_E_HD_IMAGE_OPEN_FAIL", 0x67C),
    ("VM_E_HOST_DRIVE_NOT_FOUND", 0x67E),
    ("VM_E_HD_IMAGE_ACCESS", 0x681),
    ("VM_E_INVALID_HD_FILE", 0x682),
    ("VM_E_IMAGE_SIZE_TOO_LARGE", 0x683),
    ("VM_E_IMAGE_SIZE_TOO_SMALL", 0x684),
    ("VM_E_PARENT_CHILD_ID_MISMATCH", 0x685),
    ("VM_E_UNSUPPORTED_HD_DISK_TYPE", 0x686),
    ("VM_E_PARENT_MODIFIED", 0x687),
    ("VM_E_ADAPTER_NOT_FOUND", 0x700),
    ("VM_E_VIRTUAL_NETWORK_NAME_ALREADY_EXISTS", 0x701),
    ("VM_E_INVALID_VIRTUAL_NETWORK_ID", 0x702),
    ("VM_E_CANT_SET_ETHERNET_ADDRESS", 0x703),
    ("VM_E_INVALID_IP_ADDRESS", 0x704),
    ("VM_E_INVALID_NETWORK_ADDRESS", 0x705),
    ("VM_E_INVALID_NETWORK_MASK", 0x706),
    ("VM_E_INVALID_STARTING_ADDRESS", 0x707),
    ("VM_E_INVALID_ENDING_ADDRESS", 0x708),
    ("VM_E_INVALID_ADDRESS_RANGE", 0x709),
    ("VM_E_CANT_SET_DYNAMIC_MAC_ADDRESS", 0x70A),
    ("VM_E_DRIVE_IN_USE", 0x727),
    ("VM_E_MEDIA_WRONG_TYPE", 0x728),
    ("VM_E_NO_LICENSE", 0x750),
    ("VM_E_INVALID_LICENSE", 0x751),
    ("VM_E_INVALID_LICENSE_KEY", 0x752),
    ("VM_E_INVALID_LICENSE_VALUE", 0x753),
    ("VM_E_LICENSE_ACTIVE_VM_LIMIT", 0x754),
    ("VM_E_LICENSE_HOST_MEMORY_LIMIT", 0x755),
    ("VM_E_LICENSE_VM_MEMORY_LIMIT", 0x756),
    ("VM_E_NOT_A_TRIAL_VERSION", 0x757),
    ("VM_E_NON_ACTIVE_TRIAL", 0x758),
    ("VM_E_MOUSE_NOT_ACTIVE", 0x800),
    ("VM_E_USING_ABSOLUTE_COORDINATES", 0x801),
    ("VM_E_USING_RELATIVE_COORDINATES", 0x802),
    ("VM_E_SET_EXCLUSIVE_MODE_FAIL", 0x825),
    ("VM_E_NO_DISPLAY", 0x850),
    ("VM_E_SECURITY_DUPLICATE_USER", 0x900),
    ("VM_E_USB_CONNECTOR_DRIVER_ERROR", 0x925),
    ("VM_E_USB_ATTACH_FAILED", 0x926),
    ("VM_E_USB_DETACH_FAILED", 0x927),
    ("VM_E_USB_ENUMERATION_FAILED", 0x928),
    ("VM_E_USB_EXTERNAL_VM", 0x929),
    ("VM_E_USB_ENUMERATION_FAILED_MORE_DEVICES", 0x930),
    ("VM_E_USB_ATTACH_FAILED_MORE_DEVICES", 0x931),
    ("VM_E_USB_ATTACH_FAILED_GP_ERROR", 0x932),
    ("VM_E_USB_ATTACH_FAILED_ALREADY_ASSIGNED", 0x933),
    ("VM_E_UNSUPPORTED_HARDWARE", 0x950),
    ("VM_E_HARDWARE_VIRTUALIZATION_DISABLED", 0x951),
    ("VM_E_VMVIRTUALPC_OLDER_VERSION", 0x952),
    ("VM_E_OTHER_VIRTUALIZATION_SOFTWARE", 0x953),
)

# The constants the DVD surface uses, spelled out (they are also in NAMES below).
VM_E_VM_NOT_RUNNING = 0xA0040206
VM_E_VM_UNKNOWN = 0xA0040207
VM_E_VM_RUNNING_OR_SAVED = 0xA004020B
VM_E_CONFIG_NO_NAME = 0xA0040400
VM_E_CONFIG_NAME_TOO_LONG = 0xA0040401
VM_E_CONFIG_NAME_INVALID_CHAR = 0xA0040402
VM_E_CONFIG_DUPLICATE_NAME = 0xA0040403
VM_E_VM_RUNNING = 0xA0040500
VM_E_VM_NO_SAVED_STATE = 0xA0040501
VM_E_DRIVE_INVALID = 0xA0040502
VM_E_DRIVE_BUS_LOC_IN_USE = 0xA0040503
VM_E_VM_PAUSED = 0xA0040507
VM_E_MEDIA_UNMOUNT_FAIL = 0xA0040508
VM_E_IMAGE_CAPTURE_FAIL = 0xA0040650
VM_E_NO_MEDIA_CAPTURED = 0xA0040652
VM_E_HOST_DRIVE_NOT_FOUND = 0xA004067E
VM_E_DRIVE_IN_USE = 0xA0040727
VM_E_MEDIA_WRONG_TYPE = 0xA0040728

NAMES: dict[int, str] = {
    S_OK: "S_OK",
    S_FALSE: "S_FALSE",
    E_INVALIDARG: "E_INVALIDARG",
    E_INVALIDARG_LEGACY: "E_INVALIDARG_LEGACY",
    E_POINTER: "E_POINTER",
    E_FAIL: "E_FAIL",
    E_NOTIMPL: "E_NOTIMPL",
    DISP_E_EXCEPTION: "DISP_E_EXCEPTION",
    DISP_E_BADINDEX: "DISP_E_BADINDEX",
    **{_VM_BASE | code: name for name, code in _VM_CODES},
}
"""Unsigned HRESULT → constant name, for every constant this module knows."""

VALUES: dict[str, int] = {name: value for value, name in NAMES.items()}
"""Constant name → unsigned HRESULT."""


def to_unsigned(hresult: int) -> int:
    """The unsigned 32-bit form of an HRESULT given signed or unsigned."""
    return hresult & 0xFFFFFFFF


def to_signed(hresult: int) -> int:
    """The signed 32-bit form (what pywin32/comtypes print): 0xA0040728 → -1610348760."""
    value = hresult & 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def from_signed(hresult: int) -> int:
    """The unsigned form of a signed 32-bit HRESULT: -1610348760 → 0xA0040728."""
    if not -(1 << 31) <= hresult < (1 << 32):
        raise ValueError(f"{hresult} does not fit in 32 bits")
    return hresult & 0xFFFFFFFF


def succeeded(hresult: int) -> bool:
    """SUCCEEDED(): the severity bit (31) is clear."""
    return not to_unsigned(hresult) & 0x80000000


def failed(hresult: int) -> bool:
    """FAILED(): the severity bit (31) is set."""
    return bool(to_unsigned(hresult) & 0x80000000)


def hresult_name(hresult: int) -> str:
    """The constant's name (``"VM_E_MEDIA_WRONG_TYPE"``), or ``"0x........"`` if unknown.

    Accepts the signed or the unsigned form.
    """
    value = to_unsigned(hresult)
    return NAMES.get(value, f"0x{value:08X}")


def describe(hresult: int) -> str:
    """``"VM_E_MEDIA_WRONG_TYPE (0xA0040728)"``."""
    value = to_unsigned(hresult)
    return f"{hresult_name(value)} (0x{value:08X})"


# -- exceptions ------------------------------------------------------------------------


class VMError(Exception):
    """A failed management-API call: ``.hresult`` (unsigned 32-bit), ``.name``, message.

    Subclasses fix ``hresult``; :func:`error_for` maps any code to its subclass.
    """

    hresult: ClassVar[int] = E_FAIL

    def __init__(self, message: str = "") -> None:
        self.message = message or hresult_name(self.hresult)
        super().__init__(f"{describe(self.hresult)}: {self.message}")

    @property
    def name(self) -> str:
        return hresult_name(self.hresult)

    @property
    def signed(self) -> int:
        """The signed 32-bit HRESULT, as COM layers print it."""
        return to_signed(self.hresult)


class InvalidArgError(VMError, ValueError):
    """E_INVALIDARG 0x80070057: an argument is invalid (the docs print 0x80000003)."""

    hresult = E_INVALIDARG


class NullPointerError(VMError, ValueError):
    """E_POINTER 0x80004003: a required argument or out pointer is NULL (None)."""

    hresult = E_POINTER


class FailError(VMError):
    """E_FAIL 0x80004005: an unspecified failure (a host I/O error, in this emulator)."""

    hresult = E_FAIL


class DispExceptionError(VMError):
    """DISP_E_EXCEPTION 0x80020009: an unexpected error; the cause is chained."""

    hresult = DISP_E_EXCEPTION


class BadIndexError(VMError, IndexError):
    """DISP_E_BADINDEX 0x8002000B: no item at that index of a collection."""

    hresult = DISP_E_BADINDEX


class VMNotRunningError(VMError):
    """VM_E_VM_NOT_RUNNING 0xA0040206: the virtual machine must be running."""

    hresult = VM_E_VM_NOT_RUNNING


class VMUnknownError(VMError):
    """VM_E_VM_UNKNOWN 0xA0040207: the virtual machine was not found (deleted)."""

    hresult = VM_E_VM_UNKNOWN


class VMRunningOrSavedError(VMError):
    """VM_E_VM_RUNNING_OR_SAVED 0xA004020B: not allowed while running, paused or saved."""

    hresult = VM_E_VM_RUNNING_OR_SAVED


class ConfigNoNameError(VMError, ValueError):
    """VM_E_CONFIG_NO_NAME 0xA0040400: the name is empty."""

    hresult = VM_E_CONFIG_NO_NAME


class ConfigNameTooLongError(VMError, ValueError):
    """VM_E_CONFIG_NAME_TOO_LONG 0xA0040401: the name is longer than 80 characters."""

    hresult = VM_E_CONFIG_NAME_TOO_LONG


class ConfigNameInvalidCharError(VMError, ValueError):
    """VM_E_CONFIG_NAME_INVALID_CHAR 0xA0040402: the name has a character a file name cannot."""

    hresult = VM_E_CONFIG_NAME_INVALID_CHAR


class ConfigDuplicateNameError(VMError, ValueError):
    """VM_E_CONFIG_DUPLICATE_NAME 0xA0040403: a virtual machine has that name already."""

    hresult = VM_E_CONFIG_DUPLICATE_NAME


class VMRunningError(VMError):
    """VM_E_VM_RUNNING 0xA0040500: the virtual machine is running already."""

    hresult = VM_E_VM_RUNNING


class VMNoSavedStateError(VMError):
    """VM_E_VM_NO_SAVED_STATE 0xA0040501: there is no saved state."""

    hresult = VM_E_VM_NO_SAVED_STATE


class DriveInvalidError(VMError):
    """VM_E_DRIVE_INVALID 0xA0040502: the drive's bus location is invalid or not this drive's."""

    hresult = VM_E_DRIVE_INVALID


class DriveBusLocInUseError(VMError):
    """VM_E_DRIVE_BUS_LOC_IN_USE 0xA0040503: another device sits at that bus location."""

    hresult = VM_E_DRIVE_BUS_LOC_IN_USE


class VMPausedError(VMError):
    """VM_E_VM_PAUSED 0xA0040507: the virtual machine is paused."""

    hresult = VM_E_VM_PAUSED


class MediaUnmountFailError(VMError):
    """VM_E_MEDIA_UNMOUNT_FAIL 0xA0040508: unmounting the medium failed."""

    hresult = VM_E_MEDIA_UNMOUNT_FAIL


class ImageCaptureFailError(VMError):
    """VM_E_IMAGE_CAPTURE_FAIL 0xA0040650: the image file could not be captured."""

    hresult = VM_E_IMAGE_CAPTURE_FAIL


class NoMediaCapturedError(VMError):
    """VM_E_NO_MEDIA_CAPTURED 0xA0040652: no medium is attached to the drive."""

    hresult = VM_E_NO_MEDIA_CAPTURED


class HostDriveNotFoundError(VMError):
    """VM_E_HOST_DRIVE_NOT_FOUND 0xA004067E: the host drive was not found."""

    hresult = VM_E_HOST_DRIVE_NOT_FOUND


class DriveInUseError(VMError):
    """VM_E_DRIVE_IN_USE 0xA0040727: the drive holds a medium, or the host drive is captured."""

    hresult = VM_E_DRIVE_IN_USE


class MediaWrongTypeError(VMError):
    """VM_E_MEDIA_WRONG_TYPE 0xA0040728: the captured medium is not of the kind asked for."""

    hresult = VM_E_MEDIA_WRONG_TYPE


_CLASSES: dict[int, type[VMError]] = {
    cls.hresult: cls
    for cls in (
        InvalidArgError,
        NullPointerError,
        FailError,
        DispExceptionError,
        BadIndexError,
        VMNotRunningError,
        VMUnknownError,
        VMRunningOrSavedError,
        ConfigNoNameError,
        ConfigNameTooLongError,
        ConfigNameInvalidCharError,
        ConfigDuplicateNameError,
        VMRunningError,
        VMNoSavedStateError,
        DriveInvalidError,
        DriveBusLocInUseError,
        VMPausedError,
        MediaUnmountFailError,
        ImageCaptureFailError,
        NoMediaCapturedError,
        HostDriveNotFoundError,
        DriveInUseError,
        MediaWrongTypeError,
    )
}


def error_class(hresult: int) -> type[VMError]:
    """The :class:`VMError` subclass for ``hresult`` (made on first use for other codes)."""
    value = to_unsigned(hresult)
    if value == S_OK or succeeded(value):
        raise ValueError(f"{describe(value)} is not an error")
    cls = _CLASSES.get(value)
    if cls is None:
        name = "".join(part.title() for part in hresult_name(value).split("_")) + "Error"
        if name.startswith("0X"):
            name = f"HResult{value:08X}Error"
        cls = type(name, (VMError,), {"hresult": value, "__module__": __name__})
        _CLASSES[value] = cls
    return cls


def error_for(hresult: int, message: str = "") -> VMError:
    """An exception instance of the right subclass for ``hresult``."""
    return error_class(hresult)(message)
