"""The 8042 keyboard controller and the keyboard behind it, at ports 60h/64h.

After the IBM PC/AT Technical Reference (keyboard controller section) and the
Intel 8042/8742 UPI datasheet as the PC uses it:

* Port 64h read is the status register: bit 0 OBF (a byte waits at 60h),
  bit 1 IBF (never set here: commands complete at once), bit 2 the system
  flag (command byte bit 2), bit 3 A2 (the last write went to 64h), bit 4 the
  keyboard-inhibit switch (1 = not inhibited), bit 5 AUX OBF.
* Port 64h write is a controller command: 20h read / 60h write the command
  byte (bit 0 keyboard IRQ 1 enable, bit 1 aux IRQ 12 enable, bit 2 system
  flag, bit 4 keyboard clock disabled, bit 5 aux clock disabled, bit 6
  scan-code translation), AAh self-test (answers 55h), ABh keyboard interface
  test (00h), A9h aux interface test, ADh/AEh disable/enable the keyboard,
  A7h/A8h disable/enable aux, C0h input port, D0h/D1h read/write the output
  port (bit 1 = A20 gate, bit 0 = 0 resets the CPU), D2h/D3h echo a byte as
  from the keyboard/aux, D4h send the next byte to aux (no mouse here: the
  controller answers FEh), FEh pulse the reset line.
* Port 60h write with no controller command pending goes to the keyboard:
  FFh reset (FAh then AAh, the BAT result), F5h/F4h disable/enable scanning,
  F2h identify (FAh ABh 41h, translated), EDh LEDs / F3h typematic / F0h
  scan-code set (FAh, then FAh for the parameter), EEh echo, anything else FAh.

Every byte the controller presents at 60h raises IRQ 1 (aux bytes IRQ 12) when
the command byte enables it; reading 60h takes the byte and drops the line.

Keys come from the same source as ``emu boot --keys``: a callable returning
the next INT 16h key word (scan code << 8 | ASCII) or None.  A key is typed
as its set-1 make code then break code (what the controller delivers with
translation on), wrapped in left-Shift make/break for shifted characters;
the next key is typed only when the output buffer is empty, scanning is
enabled and the host's ``typing_allowed`` says the guest waits.  The
controller runs as a timer on the virtual clock (every
:data:`TYPING_PERIOD_US` microseconds) to look for that moment.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from devices.bus import Clock, IrqLine, PortRange
from devices.state import apply, capture

STATUS_OBF, STATUS_IBF, STATUS_SYS, STATUS_A2 = 0x01, 0x02, 0x04, 0x08
STATUS_UNLOCKED, STATUS_AUX_OBF = 0x10, 0x20
CMD_KBD_INT, CMD_AUX_INT, CMD_SYS, CMD_KBD_DISABLE, CMD_AUX_DISABLE, CMD_XLATE = (
    0x01, 0x02, 0x04, 0x10, 0x20, 0x40)
ACK, BAT_OK, RESEND = 0xFA, 0xAA, 0xFE
LEFT_SHIFT = 0x2A
TYPING_PERIOD_US = 5_000
_SHIFTED_ASCII = frozenset(b'~!@#$%^&*()_+{}|:"<>?' + bytes(range(ord("A"), ord("Z") + 1)))
_PARAM_COMMANDS = frozenset({0xED, 0xF3, 0xF0})


def key_bytes(key: int) -> list[int]:
    """Set-1 make and break codes for an INT 16h key word (Shift wrapped if needed)."""
    scan, ascii_ = (key >> 8) & 0x7F, key & 0xFF
    codes = [scan, scan | 0x80]
    if ascii_ in _SHIFTED_ASCII:
        codes = [LEFT_SHIFT, *codes, LEFT_SHIFT | 0x80]
    return codes


class I8042:
    """Controller + keyboard: command byte, output buffer queue, IRQ 1/12, typed keys."""

    def __init__(
        self,
        irq1: IrqLine,
        irq12: IrqLine | None = None,
        keys: Callable[[], int | None] | None = None,
        typing_allowed: Callable[[], bool] | None = None,
        on_reset: Callable[[], None] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.irq1 = irq1
        self.irq12 = irq12
        self.keys = keys
        self.typing_allowed = typing_allowed
        self.on_reset = on_reset
        # System flag (POST done) and translation; interrupts off until a BIOS turns
        # them on in its own command byte.
        self.command_byte = CMD_SYS | CMD_XLATE
        self.output_port = 0x03  # A20 on, no reset
        self.queue: deque[tuple[int, bool]] = deque()
        self.last_byte = 0
        self.last_was_command = False
        self.pending_command: int | None = None
        self.kbd_pending: int | None = None
        self.scanning = True
        self.typed: list[int] = []
        self.resets = 0
        self.clock = clock
        self.deadline: int | None = None
        self._period = 0
        if clock is not None:
            self._period = max(1, clock.ips * TYPING_PERIOD_US // 1_000_000)
            self.deadline = clock.instructions + self._period
            clock.add_timer(self)

    # -- output buffer and IRQs ----------------------------------------------------------
    STATE_FIELDS = ("command_byte", "output_port", "queue", "last_byte", "last_was_command",
                    "pending_command", "kbd_pending", "scanning", "typed", "resets", "deadline",
                    "_period")
    """The controller's saved state (``keys``/``typing_allowed``/``on_reset`` are wiring)."""

    def state(self) -> dict[str, object]:
        """The saved state: :attr:`STATE_FIELDS` as plain data (devices/state.py)."""
        return capture(self, self.STATE_FIELDS)

    def load_state(self, state: dict[str, object]) -> None:
        apply(self, state, self.STATE_FIELDS)

    def _update_irq(self) -> None:
        kbd = aux = False
        if self.queue:
            _, is_aux = self.queue[0]
            if is_aux:
                aux = bool(self.command_byte & CMD_AUX_INT)
            else:
                kbd = bool(self.command_byte & CMD_KBD_INT)
        self.irq1.set_level(kbd)
        if self.irq12 is not None:
            self.irq12.set_level(aux)

    def _put(self, byte: int, aux: bool = False) -> None:
        self.queue.append((byte & 0xFF, aux))
        self._update_irq()

    @property
    def status(self) -> int:
        """The status register (port 64h)."""
        value = STATUS_UNLOCKED | (self.command_byte & CMD_SYS)
        if self.last_was_command:
            value |= STATUS_A2
        if self.queue:
            value |= STATUS_OBF
            if self.queue[0][1]:
                value |= STATUS_AUX_OBF
        return value

    def read_data(self) -> int:
        """Port 60h: take the byte at the head of the output buffer."""
        if not self.queue:
            return self.last_byte  # the data register keeps the last byte
        byte, _ = self.queue.popleft()
        self.last_byte = byte
        # The line drops with the read; the next byte (if any) raises a new edge.
        self.irq1.set_level(False)
        if self.irq12 is not None:
            self.irq12.set_level(False)
        self._update_irq()
        return byte

    # -- commands --------------------------------------------------------------------------
    def write_command(self, value: int) -> None:
        """Port 64h: a controller command."""
        self.last_was_command = True
        self.pending_command = None
        if value == 0x20:
            self._put(self.command_byte)
        elif value in (0x60, 0xD1, 0xD2, 0xD3, 0xD4):
            self.pending_command = value
        elif value == 0xAA:
            self._put(0x55)
        elif value in (0xAB, 0xA9):
            self._put(0x00)
        elif value == 0xAD:
            self.command_byte |= CMD_KBD_DISABLE
        elif value == 0xAE:
            self.command_byte &= ~CMD_KBD_DISABLE
        elif value == 0xA7:
            self.command_byte |= CMD_AUX_DISABLE
        elif value == 0xA8:
            self.command_byte &= ~CMD_AUX_DISABLE
        elif value == 0xC0:
            self._put(0xBF)  # keyboard not inhibited, colour adapter
        elif value == 0xD0:
            self._put(self.output_port)
        elif value & 0xF0 == 0xF0:
            if not value & 0x01:  # pulse output port bit 0: CPU reset
                self._reset_cpu()

    def write_data(self, value: int) -> None:
        """Port 60h: a controller command's parameter, or a byte for the keyboard."""
        self.last_was_command = False
        command, self.pending_command = self.pending_command, None
        if command == 0x60:
            self.command_byte = value
            self._update_irq()
        elif command == 0xD1:
            self.output_port = value | 0x01
            if not value & 0x01:
                self._reset_cpu()
        elif command == 0xD2:
            self._put(value)
        elif command == 0xD3:
            self._put(value, aux=True)
        elif command == 0xD4:
            self._put(RESEND, aux=True)  # nothing on the aux port
        else:
            self._keyboard_command(value)

    def _keyboard_command(self, value: int) -> None:
        self.command_byte &= ~CMD_KBD_DISABLE  # sending to the keyboard enables its clock
        if self.kbd_pending is not None:
            self.kbd_pending = None
            self._put(ACK)
            return
        if value == 0xFF:
            self.queue = deque(item for item in self.queue if item[1])
            self.scanning = True
            self._put(ACK)
            self._put(BAT_OK)
        elif value == 0xF5:
            self.scanning = False
            self._put(ACK)
        elif value == 0xF4:
            self.scanning = True
            self._put(ACK)
        elif value == 0xF6:
            self.scanning = True
            self._put(ACK)
        elif value == 0xF2:
            self._put(ACK)
            self._put(0xAB)
            self._put(0x41 if self.command_byte & CMD_XLATE else 0x83)
        elif value == 0xEE:
            self._put(0xEE)
        elif value in _PARAM_COMMANDS:
            self.kbd_pending = value
            self._put(ACK)
        else:
            self._put(ACK)

    def _reset_cpu(self) -> None:
        self.resets += 1
        if self.on_reset is not None:
            self.on_reset()

    # -- typing ------------------------------------------------------------------------------
    def can_type(self) -> bool:
        """Is the keyboard able to send a key now?

        Scanning on, the output buffer empty, the keyboard clock enabled and its
        interrupt enabled in the command byte: a BIOS enables the interrupt last,
        once its keyboard set-up is done, so no key lands in the middle of it.
        """
        return (self.scanning and not self.queue and self.keys is not None
                and self.command_byte & (CMD_KBD_DISABLE | CMD_KBD_INT) == CMD_KBD_INT)

    def type_next(self) -> bool:
        """Type the next key from the source, if there is one; True if a key went out."""
        if not self.can_type():
            return False
        assert self.keys is not None
        key = self.keys()
        if key is None:
            return False
        self.typed.append(key)
        for code in key_bytes(key):
            self.queue.append((code, False))
        self._update_irq()
        return True

    def fire(self) -> None:
        """Timer callback: type a key when the guest waits for one."""
        if self.typing_allowed is None or self.typing_allowed():
            self.type_next()
        self.deadline = (self.deadline or 0) + self._period

    # -- ports -------------------------------------------------------------------------------
    def read(self, port: int, width: int) -> int:
        return self.status if port == 0x64 else self.read_data()

    def write(self, port: int, width: int, value: int) -> None:
        if port == 0x64:
            self.write_command(value & 0xFF)
        else:
            self.write_data(value & 0xFF)

    def port_ranges(self) -> list[PortRange]:
        """60h and 64h."""
        return [PortRange(0x60, 1, self.read, self.write, name="kbc-data"),
                PortRange(0x64, 1, self.read, self.write, name="kbc-status")]
