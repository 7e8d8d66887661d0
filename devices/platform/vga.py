"""The VGA's I/O registers as a register file: enough for a VGA BIOS to set text mode 3.

IBM VGA Technical Reference (the register groups and their ports): the
miscellaneous output register (write 3C2h, read 3CCh), the sequencer
(index 3C4h, data 3C5h), the graphics controller (3CEh/3CFh), the attribute
controller (3C0h: an index/data flip-flop that a read of input status 1
resets; data read at 3C1h), the CRT controller (3D4h/3D5h in colour mode,
3B4h/3B5h in mono), the DAC (3C6h mask, 3C7h read index, 3C8h write index,
3C9h data, three 6-bit values per entry), input status 0 (3C2h read) and 1
(3DAh/3BAh: bit 0 display disabled, bit 3 vertical retrace, toggled on each
read so polling loops finish), and the video subsystem enable at 3C3h.

There is no rendering: the text frame buffer is guest RAM at B8000h, which
the screen model reads.  What the registers hold is kept (the CRTC's start
address 0Ch/0Dh and cursor location 0Eh/0Fh are read by the screen model),
so SeaVGABIOS's mode set, font load and cursor updates work unchanged.
"""

from __future__ import annotations

from devices.bus import PortRange
from devices.state import apply, capture

CRTC_START_HIGH, CRTC_START_LOW, CRTC_CURSOR_HIGH, CRTC_CURSOR_LOW = 0x0C, 0x0D, 0x0E, 0x0F


class VgaRegisters:
    """The register file of a VGA (no memory decode: the frame buffer is RAM)."""

    def __init__(self) -> None:
        self.misc = 0x67  # colour, RAM enabled, 28 MHz clock
        self.seq_index = 0
        self.seq = bytearray(8)
        self.gc_index = 0
        self.gc = bytearray(16)
        self.attr_index = 0
        self.attr_flip = False
        self.attr = bytearray(32)
        self.crtc_index = 0
        self.crtc = bytearray(32)
        self.dac_mask = 0xFF
        self.dac_read_index = 0
        self.dac_write_index = 0
        self.dac_component = 0
        self.dac = bytearray(256 * 3)
        self.subsystem = 1
        self._retrace = 0

    STATE_FIELDS = ("misc", "seq_index", "seq", "gc_index", "gc", "attr_index", "attr_flip",
                    "attr", "crtc_index", "crtc", "dac_mask", "dac_read_index",
                    "dac_write_index", "dac_component", "dac", "subsystem", "_retrace")
    """Everything ``__init__`` sets: the register file (the text frame is RAM)."""

    def state(self) -> dict[str, object]:
        """The saved state: :attr:`STATE_FIELDS` as plain data (devices/state.py)."""
        return capture(self, self.STATE_FIELDS)

    def load_state(self, state: dict[str, object]) -> None:
        apply(self, state, self.STATE_FIELDS)

    def cursor_offset(self) -> int:
        """The cursor location (character cells from the start of video memory)."""
        return (self.crtc[CRTC_CURSOR_HIGH] << 8) | self.crtc[CRTC_CURSOR_LOW]

    def start_offset(self) -> int:
        """The display start address (character cells)."""
        return (self.crtc[CRTC_START_HIGH] << 8) | self.crtc[CRTC_START_LOW]

    def _crtc_port(self, port: int) -> bool:
        colour = bool(self.misc & 1)
        return port in ((0x3D4, 0x3D5) if colour else (0x3B4, 0x3B5))

    def read(self, port: int, width: int) -> int:
        if width > 1:
            return self.read(port, 1) | (self.read(port + 1, 1) << 8)
        if port in (0x3DA, 0x3BA):
            self.attr_flip = False
            self._retrace ^= 0x09
            return self._retrace
        if self._crtc_port(port):
            return self.crtc_index if port & 1 == 0 else self.crtc[self.crtc_index & 0x1F]
        value = 0xFF
        if port == 0x3C0:
            value = self.attr_index
        elif port == 0x3C1:
            value = self.attr[self.attr_index & 0x1F]
        elif port == 0x3C2:
            value = 0x10  # input status 0: switch sense
        elif port == 0x3C3:
            value = self.subsystem
        elif port == 0x3C4:
            value = self.seq_index
        elif port == 0x3C5:
            value = self.seq[self.seq_index & 7]
        elif port == 0x3C6:
            value = self.dac_mask
        elif port == 0x3C7:
            value = 0x00  # DAC state: read mode
        elif port == 0x3C8:
            value = self.dac_write_index
        elif port == 0x3C9:
            value = self.dac[self.dac_read_index * 3 + self.dac_component]
            self._dac_step("read")
        elif port == 0x3CC:
            value = self.misc
        elif port == 0x3CE:
            value = self.gc_index
        elif port == 0x3CF:
            value = self.gc[self.gc_index & 0x0F]
        return value

    def _dac_step(self, which: str) -> None:
        self.dac_component += 1
        if self.dac_component == 3:
            self.dac_component = 0
            if which == "read":
                self.dac_read_index = (self.dac_read_index + 1) & 0xFF
            else:
                self.dac_write_index = (self.dac_write_index + 1) & 0xFF

    def write(self, port: int, width: int, value: int) -> None:
        if width > 1:
            self.write(port, 1, value & 0xFF)
            self.write(port + 1, 1, (value >> 8) & 0xFF)
            return
        value &= 0xFF
        if self._crtc_port(port):
            if port & 1 == 0:
                self.crtc_index = value
            else:
                self.crtc[self.crtc_index & 0x1F] = value
            return
        if port == 0x3C0:
            if not self.attr_flip:
                self.attr_index = value
            else:
                self.attr[self.attr_index & 0x1F] = value
            self.attr_flip = not self.attr_flip
        elif port == 0x3C2:
            self.misc = value
        elif port == 0x3C3:
            self.subsystem = value
        elif port == 0x3C4:
            self.seq_index = value
        elif port == 0x3C5:
            self.seq[self.seq_index & 7] = value
        elif port == 0x3C6:
            self.dac_mask = value
        elif port == 0x3C7:
            self.dac_read_index = value
            self.dac_component = 0
        elif port == 0x3C8:
            self.dac_write_index = value
            self.dac_component = 0
        elif port == 0x3C9:
            self.dac[self.dac_write_index * 3 + self.dac_component] = value & 0x3F
            self._dac_step("write")
        elif port == 0x3CE:
            self.gc_index = value
        elif port == 0x3CF:
            self.gc[self.gc_index & 0x0F] = value

    def port_ranges(self) -> list[PortRange]:
        """3B4h-3BAh (mono CRTC, status) and 3C0h-3DAh."""
        return [PortRange(0x3B4, 7, self.read, self.write, name="vga-mono"),
                PortRange(0x3C0, 0x1B, self.read, self.write, name="vga")]
