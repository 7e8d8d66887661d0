"""Virtual PC automation ported line for line: the IDispatch view of ``emu.api.com``.

A VBScript or PowerShell script for Windows Virtual PC sees properties as
attributes, methods that return their ``[out, retval]`` value, and failures as
exceptions carrying the HRESULT (pywin32: ``pywintypes.com_error``; PowerShell:
``$_.Exception.HResult``).  ``emu.api.com.Dispatch`` gives the same shapes, so
porting a script changes its first line and the syntax, not the calls.
"""

from __future__ import annotations

import pytest

from emu.api import hresult as H
from emu.api.com import CreateObject, Dispatch, VMDVDDrive, com_error
from images import SAMPLE_ISO

POWERSHELL = r"""
$vpc = New-Object -ComObject "VirtualPC.Application"
$vm = $vpc.CreateVirtualMachine("lab", "")
$dvd = $vm.AddDVDROMDrive(1, 0)
$dvd.AttachImage("C:\images\sample.iso")
"{0}:{1} holds {2}" -f $dvd.BusNumber, $dvd.DeviceNumber, $dvd.ImageFile
"{0} drive(s)" -f $vm.DVDROMDrives.Count
foreach ($d in $vm.DVDROMDrives) { $d.Attachment }
$vm.DVDROMDrives.Item(1).ReleaseImage()
try { $vm.DVDROMDrives.Item(1).ReleaseImage() } catch { "{0:X8}" -f $_.Exception.HResult }
"""


def test_a_powershell_script_ports_line_for_line():
    out: list[str] = []
    # --- the port: one line per line of POWERSHELL above ---------------------------
    vpc = Dispatch("VirtualPC.Application")
    vm = vpc.CreateVirtualMachine("lab", "")
    dvd = vm.AddDVDROMDrive(1, 0)
    dvd.AttachImage(str(SAMPLE_ISO))
    out.append(f"{dvd.BusNumber}:{dvd.DeviceNumber} holds {dvd.ImageFile}")
    out.append(f"{vm.DVDROMDrives.Count} drive(s)")
    for d in vm.DVDROMDrives: out.append(str(d.Attachment))  # noqa: E701
    vm.DVDROMDrives.Item(1).ReleaseImage()
    try: vm.DVDROMDrives.Item(1).ReleaseImage()  # noqa: E701
    except com_error as e: out.append(f"{e.hresult & 0xFFFFFFFF:08X}")  # noqa: E701
    # ---------------------------------------------------------------------------------
    vpc.close()
    assert out == [f"1:0 holds {SAMPLE_ISO}", "1 drive(s)", "1", "A0040728"]


VBSCRIPT = r"""
Set vpc = CreateObject("VirtualPC.Application")
Set vm = vpc.CreateVirtualMachine("lab", "")
Set dvd = vm.AddDVDROMDrive(1, 0)
On Error Resume Next
dvd.ReleaseImage
WScript.Echo Hex(Err.Number) & " " & Err.Description
On Error GoTo 0
dvd.AttachImage "C:\images\sample.iso"
For Each d In vm.DVDROMDrives
  WScript.Echo d.ImageFile
Next
"""


def test_a_vbscript_script_ports_line_for_line():
    out: list[str] = []
    vpc = CreateObject("VirtualPC.Application")
    vm = vpc.CreateVirtualMachine("lab", "")
    dvd = vm.AddDVDROMDrive(1, 0)
    try:
        dvd.ReleaseImage()
    except com_error as err:
        out.append(f"{err.scode:X} {err.description}")
    dvd.AttachImage(str(SAMPLE_ISO))
    for d in vm.DVDROMDrives:
        out.append(d.ImageFile)
    vpc.close()
    assert out[0].startswith("A0040728 ")  # VM_E_MEDIA_WRONG_TYPE: nothing attached
    assert out[1:] == [str(SAMPLE_ISO)]


def test_com_error_is_shaped_like_pywintypes_com_error():
    vpc = Dispatch()
    vm = vpc.CreateVirtualMachine("lab")
    with pytest.raises(com_error) as info:
        vm.AddDVDROMDrive(2, 0)
    err = info.value
    assert err.scode == H.E_INVALIDARG and err.hresult == H.to_signed(H.E_INVALIDARG) < 0
    hresult, strerror, excepinfo, argerror = err.args
    assert hresult == err.hresult and "E_INVALIDARG" in strerror and argerror is None
    assert excepinfo[1] == "VirtualPC.Application" and excepinfo[5] == err.hresult
    assert "bus 2" in excepinfo[2]
    with pytest.raises(com_error) as info:
        Dispatch("Word.Application")
    assert info.value.scode == 0x800401F3
    vpc.close()


def test_collection_item_count_iteration_and_the_default_member():
    vpc = Dispatch()
    vm = vpc.CreateVirtualMachine("lab")
    first, second = vm.AddDVDROMDrive(1, 0), vm.AddDVDROMDrive(0, 1)
    drives = vm.DVDROMDrives
    assert drives.Count == len(drives) == 2
    assert drives.Item(1) is first and drives(2) is second  # one object per drive
    assert [d.BusNumber for d in drives] == [1, 0]
    with pytest.raises(com_error) as info:
        drives.Item(3)
    assert info.value.scode == H.DISP_E_BADINDEX
    assert vpc.FindVirtualMachine("LAB") is vm and vpc.FindVirtualMachine("x") is None
    assert [m.Name for m in vpc.VirtualMachines] == ["lab"]
    vpc.close()


def test_the_vtable_form_stays_beside_the_dispatch_form():
    vpc = Dispatch()
    dvd = vpc.CreateVirtualMachine("lab").AddDVDROMDrive(1, 0)
    assert isinstance(dvd.vtable, VMDVDDrive)
    assert dvd.vtable.AttachImage(str(SAMPLE_ISO)) == H.S_OK
    assert dvd.vtable.get_ImageFile() == (H.S_OK, str(SAMPLE_ISO)) and dvd.ImageFile == str(
        SAMPLE_ISO)
    assert dvd.vtable.ReleaseImage() == H.S_OK
    assert dvd.vtable.ReleaseImage() == H.VM_E_MEDIA_WRONG_TYPE
    with pytest.raises(com_error):
        dvd.ImageFile  # noqa: B018 - the property raises on an empty drive
    vpc.close()
