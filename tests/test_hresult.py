"""HRESULT constants, signed/unsigned conversion and the VMError hierarchy (emu.api.hresult).

Expected values come from the SDK header as summarised in vpc-api.md §1 and §7:
``VM_E_xxx = 0xA0040000 | code``; the Win32 E_INVALIDARG is 0x80070057.
"""

from __future__ import annotations

import pytest

from emu.api import hresult as H


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("S_OK", 0x00000000),
        ("E_INVALIDARG", 0x80070057),
        ("E_POINTER", 0x80004003),
        ("E_FAIL", 0x80004005),
        ("DISP_E_EXCEPTION", 0x80020009),
        ("DISP_E_BADINDEX", 0x8002000B),
        ("VM_E_VM_UNKNOWN", 0xA0040207),
        ("VM_E_VM_RUNNING_OR_SAVED", 0xA004020B),
        ("VM_E_DRIVE_INVALID", 0xA0040502),
        ("VM_E_DRIVE_BUS_LOC_IN_USE", 0xA0040503),
        ("VM_E_IMAGE_CAPTURE_FAIL", 0xA0040650),
        ("VM_E_NO_MEDIA_CAPTURED", 0xA0040652),
        ("VM_E_DRIVE_IN_USE", 0xA0040727),
        ("VM_E_MEDIA_WRONG_TYPE", 0xA0040728),
        ("VM_E_UNSUPPORTED_HD_DISK_TYPE", 0xA0040686),
    ],
)
def test_constant_has_the_header_value(name: str, value: int) -> None:
    assert H.VALUES[name] == value
    assert H.hresult_name(value) == name
    if hasattr(H, name):
        assert getattr(H, name) == value


def test_media_wrong_type_is_the_32_bit_value_not_the_misprint() -> None:
    assert H.VM_E_MEDIA_WRONG_TYPE == 0xA0040728
    assert H.VM_E_MEDIA_WRONG_TYPE <= 0xFFFFFFFF
    assert 0xA00400728 not in H.NAMES


def test_every_vm_error_is_severity_customer_facility_itf() -> None:
    for value, name in H.NAMES.items():
        if name.startswith("VM_E_"):
            assert value & 0xFFFF0000 == 0xA0040000, name
            assert H.failed(value)


@pytest.mark.parametrize(
    ("unsigned", "signed"),
    [
        (0x00000000, 0),
        (0x80070057, -2147024809),
        (0x80004003, -2147467261),
        (0x80004005, -2147467259),
        (0x80020009, -2147352567),
        (0x8002000B, -2147352565),
        (0xA0040207, -1610350073),
        (0xA004020B, -1610350069),
        (0xA0040502, -1610349310),
        (0xA0040503, -1610349309),
        (0xA0040727, -1610348761),
        (0xA0040728, -1610348760),
        (0xA0040652, -1610348974),
    ],
)
def test_signed_forms_match_what_com_layers_print(unsigned: int, signed: int) -> None:
    assert H.to_signed(unsigned) == signed
    assert H.from_signed(signed) == unsigned
    assert H.hresult_name(signed) == H.hresult_name(unsigned)


def test_from_signed_rejects_values_wider_than_32_bits() -> None:
    with pytest.raises(ValueError):
        H.from_signed(1 << 32)
    with pytest.raises(ValueError):
        H.from_signed(-(1 << 31) - 1)


def test_unknown_code_is_named_by_its_hex_value() -> None:
    assert H.hresult_name(0x80001234) == "0x80001234"


def test_succeeded_and_failed_follow_the_severity_bit() -> None:
    assert H.succeeded(H.S_OK) and H.succeeded(H.S_FALSE)
    assert H.failed(H.E_FAIL) and H.failed(H.to_signed(H.VM_E_DRIVE_INVALID))


@pytest.mark.parametrize(
    ("cls", "value"),
    [
        (H.InvalidArgError, 0x80070057),
        (H.NullPointerError, 0x80004003),
        (H.FailError, 0x80004005),
        (H.DispExceptionError, 0x80020009),
        (H.BadIndexError, 0x8002000B),
        (H.VMUnknownError, 0xA0040207),
        (H.VMRunningOrSavedError, 0xA004020B),
        (H.DriveInvalidError, 0xA0040502),
        (H.DriveBusLocInUseError, 0xA0040503),
        (H.ImageCaptureFailError, 0xA0040650),
        (H.DriveInUseError, 0xA0040727),
        (H.MediaWrongTypeError, 0xA0040728),
    ],
)
def test_each_error_class_carries_its_hresult_name_and_message(cls: type[H.VMError],
                                                               value: int) -> None:
    err = cls("something happened")
    assert isinstance(err, H.VMError)
    assert err.hresult == value
    assert err.name == H.NAMES[value]
    assert err.signed == H.to_signed(value)
    assert "something happened" in str(err)
    assert f"0x{value:08X}" in str(err)
    assert H.error_class(value) is cls
    assert type(H.error_for(value, "x")) is cls


def test_error_class_is_made_for_codes_without_a_written_class() -> None:
    cls = H.error_class(H.VALUES["VM_E_TIMED_OUT"])
    assert issubclass(cls, H.VMError)
    assert cls.__name__ == "VmETimedOutError"
    assert H.error_class(0xA0040202) is cls  # made once
    assert H.error_for(0xA0040202, "slow").hresult == 0xA0040202


def test_success_codes_have_no_error_class() -> None:
    with pytest.raises(ValueError):
        H.error_class(H.S_OK)


def test_bad_index_is_also_an_index_error() -> None:
    assert issubclass(H.BadIndexError, IndexError)
    assert issubclass(H.InvalidArgError, ValueError)
