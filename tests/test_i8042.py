"""The 8042 keyboard controller (platform/i8042.py): self-test, command byte, IRQ 1, typed keys."""

from __future__ import annotations

from collections import deque

from devices.bus import IrqLine
from devices.platform.i8042 import ACK, BAT_OK, I8042, key_bytes
from emu.pc.cpu import VirtualClock
from emu.pc.keyboard import parse_keys


def _kbc(keys: str = "", allowed: bool = True) -> tuple[I8042, IrqLine, VirtualClock]:
    clock = VirtualClock(1_000_000)
    script = deque(parse_keys(keys))
    irq1 = IrqLine(1)
    kbc = I8042(irq1, IrqLine(12), keys=lambda: script.popleft() if script else None,
                typing_allowed=lambda: allowed, clock=clock)
    return kbc, irq1, clock


def _drain(kbc: I8042) -> list[int]:
    out = []
    while kbc.read(0x64, 1) & 0x01:
        out.append(kbc.read(0x60, 1))
    return out


def test_self_test_and_interface_test() -> None:
    kbc, _, _ = _kbc()
    kbc.write(0x64, 1, 0xAA)
    assert kbc.read(0x64, 1) & 0x09 == 0x09  # OBF, last write was a command
    assert _drain(kbc) == [0x55]
    kbc.write(0x64, 1, 0xAB)
    assert _drain(kbc) == [0x00]


def test_command_byte_read_write_and_system_flag() -> None:
    kbc, _, _ = _kbc()
    kbc.write(0x64, 1, 0x60)
    kbc.write(0x60, 1, 0x65)
    assert not kbc.read(0x64, 1) & 0x08
    assert kbc.read(0x64, 1) & 0x04  # system flag from command byte bit 2
    kbc.write(0x64, 1, 0x20)
    assert _drain(kbc) == [0x65]


def test_keyboard_reset_identify_and_param_commands() -> None:
    kbc, _, _ = _kbc()
    kbc.write(0x60, 1, 0xFF)
    assert _drain(kbc) == [ACK, BAT_OK]
    kbc.write(0x60, 1, 0xF2)
    assert _drain(kbc) == [ACK, 0xAB, 0x41]
    kbc.write(0x60, 1, 0xED)
    kbc.write(0x60, 1, 0x02)
    assert _drain(kbc) == [ACK, ACK]
    kbc.write(0x60, 1, 0xF5)
    assert _drain(kbc) == [ACK] and not kbc.scanning


def test_irq1_follows_the_output_buffer_when_enabled() -> None:
    kbc, irq1, _ = _kbc()
    kbc.write(0x64, 1, 0xAA)
    assert not irq1.level  # command byte bit 0 clear at power-on
    _drain(kbc)
    kbc.write(0x64, 1, 0x60)
    kbc.write(0x60, 1, 0x41)  # translate + keyboard interrupt
    kbc.write(0x60, 1, 0xF4)
    assert irq1.level
    assert kbc.read(0x60, 1) == ACK
    assert not irq1.level


def test_keys_typed_when_allowed_as_set1_make_and_break() -> None:
    kbc, irq1, clock = _kbc("aB\\e")
    kbc.write(0x64, 1, 0x60)
    kbc.write(0x60, 1, 0x41)
    clock.instructions += clock.ips  # a second of waiting
    clock.fire_due()
    codes = []
    for _ in range(3):
        codes += _drain(kbc)
        clock.instructions += clock.ips // 100
        clock.fire_due()
    assert codes == [0x1E, 0x9E, 0x2A, 0x30, 0xB0, 0xAA, 0x01, 0x81]
    assert key_bytes(0x1C0D) == [0x1C, 0x9C]


def test_no_typing_while_the_guest_is_busy_or_the_keyboard_disabled() -> None:
    kbc, _, clock = _kbc("x", allowed=False)
    clock.instructions += clock.ips
    clock.fire_due()
    assert not kbc.queue
    kbc.write(0x64, 1, 0x60)
    kbc.write(0x60, 1, 0x41)  # keyboard interrupt on: the BIOS finished its set-up
    kbc.write(0x64, 1, 0xAD)  # disable keyboard
    assert not kbc.type_next()
    kbc.write(0x64, 1, 0xAE)
    assert kbc.type_next() and kbc.queue


def test_reset_pulse_and_output_port() -> None:
    kbc, _, _ = _kbc()
    kbc.write(0x64, 1, 0xD0)
    assert _drain(kbc) == [0x03]
    kbc.write(0x64, 1, 0xFE)
    assert kbc.resets == 1


def test_empty_read_returns_the_last_byte() -> None:
    kbc, _, _ = _kbc()
    kbc.write(0x64, 1, 0xAA)
    assert kbc.read(0x60, 1) == 0x55
    assert kbc.read(0x60, 1) == 0x55
