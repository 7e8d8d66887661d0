"""An IDE controller with two channels at the legacy PC ports.

ATA/ATAPI-7 vol 1 §7 (registers) and vol 2 §9 (protocols); the PC port
assignment is the ISA compatibility one (bus 0: 1F0h-1F7h + 3F6h, IRQ 14;
bus 1: 170h-177h + 376h, IRQ 15).

Channel behaviour that real hardware has and drivers rely on:

* taskfile writes reach **both** units; Device bit 4 (DEV) selects who answers;
* reading Status clears the selected unit's pending interrupt; reading
  Alternate Status does not;
* INTRQ is driven only by the selected unit, and only while nIEN is clear;
* SRST in Device Control resets both units (BSY while asserted);
* an absent unit is an :class:`EmptySlot`: when it is selected the present
  unit answers with Status 00h, and a channel with no unit floats (FFh).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from devices.bus import IrqLine, PortRange
from devices.ide.device import TASKFILE_ATTRS, EmptySlot, IdeDevice
from devices.ide.registers import AtaCommand, Control, ReadReg, Status, WriteReg, ata_command_name
from devices.state import apply, capture
from devices.trace import Tracer

if TYPE_CHECKING:
    from devices.ide.bmdma import BusMasterDma

_ERROR, _STATUS, _DEVICE = int(ReadReg.ERROR), int(ReadReg.STATUS), int(ReadReg.DEVICE)
_COMMAND, _DEVICE_CONTROL = int(WriteReg.COMMAND), int(WriteReg.DEVICE_CONTROL)
_NIEN, _SRST = int(Control.NIEN), int(Control.SRST)
_BSY_DRQ = int(Status.BSY | Status.DRQ)
_READ_ATTRS = {**TASKFILE_ATTRS, int(ReadReg.ERROR): "error"}

LEGACY_CHANNELS = ((0x1F0, 0x3F6, 14), (0x170, 0x376, 15))
"""(command block base, control block port, IRQ) for bus 0 and bus 1."""


class IdeChannel:
    """One IDE cable: two unit slots, the Device Control register, one INTRQ line."""

    def __init__(self, number: int, base: int, ctrl: int, irq: IrqLine) -> None:
        self.number = number
        self.base = base
        self.ctrl = ctrl
        self.irq = irq
        self.units: list[IdeDevice] = [EmptySlot(), EmptySlot()]
        self.selected = 0
        self.control = 0
        self.trace: Tracer | None = None
        self.bus_master: BusMasterDma | None = None
        """The bus-master DMA engine of this channel, if the controller has one."""
        self.commands = 0
        """Command register writes so far (a board watches it as disk activity)."""

    # -- units ----------------------------------------------------------------------
    STATE_FIELDS = ("selected", "control", "commands")
    """The channel's own state; each unit and the bus master save theirs."""

    def state(self) -> dict[str, object]:
        """The saved state: :attr:`STATE_FIELDS` as plain data (devices/state.py)."""
        return capture(self, self.STATE_FIELDS)

    def load_state(self, state: dict[str, object]) -> None:
        apply(self, state, self.STATE_FIELDS)

    def attach(self, slot: int, unit: IdeDevice) -> None:
        """Put ``unit`` at device position ``slot`` (0 or 1) on this cable."""
        if slot not in (0, 1):
            raise ValueError(f"device number must be 0 or 1, not {slot}")
        if self.units[slot].present:
            raise ValueError(f"bus {self.number} device {slot} is already occupied")
        unit.notify = self.update_irq
        unit.dma_request = self.dma_request
        unit.dma_capable = self.bus_master is not None
        unit.trace = self.trace
        unit.name = f"ide{self.number}-{slot}"
        self.units[slot] = unit
        unit.power_on()
        self.update_irq()

    def detach(self, slot: int) -> IdeDevice:
        """Take the unit out of ``slot``, leaving an :class:`EmptySlot`."""
        unit = self.units[slot]
        self.units[slot] = EmptySlot()
        unit.notify = _ignore
        unit.dma_request = _ignore
        self.update_irq()
        return unit

    def dma_request(self) -> None:
        """A unit has data for the bus-master engine: let the engine run if started."""
        if self.bus_master is not None:
            self.bus_master.service()

    def set_trace(self, trace: Tracer | None) -> None:
        self.trace = trace
        for unit in self.units:
            unit.trace = trace

    @property
    def any_present(self) -> bool:
        return self.units[0].present or self.units[1].present

    def update_irq(self) -> None:
        """INTRQ = the selected unit's pending interrupt, unless nIEN is set."""
        unit = self.units[self.selected]
        level = unit.present and unit.intrq and not self.control & _NIEN
        if level != self.irq.level:
            if self.trace is not None:
                self.trace.emit("irq", f"ide{self.number}", line=self.irq.number, level=level)
            self.irq.set_level(level)

    # -- port ranges ----------------------------------------------------------------
    def port_ranges(self) -> list[PortRange]:
        return [
            PortRange(
                self.base,
                8,
                self.read,
                self.write,
                name=f"ide{self.number}",
                string_read=self.read_string,
                string_write=self.write_string,
            ),
            PortRange(self.ctrl, 1, self.read, self.write, name=f"ide{self.number}-ctrl"),
        ]

    def read(self, port: int, width: int) -> int:
        """A guest read of a command- or control-block register."""
        unit = self.units[self.selected]
        if port == self.base:  # data port: the hot path
            return unit.data_read(width)
        reg = port - self.base if port != self.ctrl else ReadReg.ALT_STATUS
        value = self._read_register(unit, reg)
        if self.trace is not None:
            self.trace.emit("port", f"ide{self.number}", dir="in", port=port,
                            reg=ReadReg(reg).name, value=value)
        return value

    def _read_register(self, unit: IdeDevice, reg: int) -> int:
        if not self.any_present:
            return 0xFF  # nothing drives the bus: it floats high
        if reg >= _STATUS:  # STATUS or ALT_STATUS
            if not unit.present:
                return 0x00  # device 0 answers for an absent device 1 (vol 1 §9.16.1)
            if reg == _STATUS and unit.intrq:
                unit.intrq = False
                self.update_irq()
            return unit.status
        if not unit.present and reg == _ERROR:
            return 0x00
        # An absent unit's EmptySlot latched every taskfile write, so the present unit
        # answering for it echoes what the host wrote last (vol 1 §9.16.1: shadow
        # registers), never the present unit's own live values.
        return getattr(unit, _READ_ATTRS[reg])

    def write(self, port: int, width: int, value: int) -> None:
        """A guest write of a command- or control-block register."""
        if port == self.base:
            self.units[self.selected].data_write(width, value)
            return
        reg = port - self.base if port != self.ctrl else WriteReg.DEVICE_CONTROL
        value &= 0xFF
        if self.trace is not None:
            self.trace.emit("port", f"ide{self.number}", dir="out", port=port,
                            reg=WriteReg(reg).name, value=value)
        if reg == _COMMAND:
            self.commands += 1
            self._write_command(value)
        elif reg == _DEVICE_CONTROL:
            self._write_control(value)
        else:
            # Both units take taskfile writes, except a unit that is BSY or has DRQ
            # set: the host must not write then (ATA/ATAPI-7 vol 1 §7.1).
            attr = TASKFILE_ATTRS[reg]
            for unit in self.units:
                if not unit.status & _BSY_DRQ:
                    setattr(unit, attr, value)
            if reg == _DEVICE:
                self.selected = (value >> 4) & 1
                self.update_irq()

    def _write_command(self, code: int) -> None:
        unit = self.units[self.selected]
        if self.trace is not None:
            self.trace.emit("ata", unit.name, command=code, name=ata_command_name(code))
        if unit.status & _BSY_DRQ and code != AtaCommand.DEVICE_RESET:
            return  # a command while BSY or DRQ is ignored; DEVICE RESET is the way out
        if code == AtaCommand.EXECUTE_DEVICE_DIAGNOSTIC:
            # Both units run the diagnostic whatever DEV says (vol 1 §6.10); device 0
            # reports the combined result, so it is selected afterwards (vol 2 §9.7),
            # as after SRST: each unit clears DEV in its Device register.
            for unit in self.units:
                unit.intrq = False
            self.selected = 0
            for unit in self.units:
                unit.execute_diagnostic()
            self.update_irq()
            return
        if not unit.present:
            return  # nobody is there to execute it
        unit.intrq = False  # writing Command clears a pending interrupt (vol 1 §5.2.9)
        self.update_irq()
        unit.command(code)

    def _write_control(self, value: int) -> None:
        old, self.control = self.control, value
        srst_was, srst_now = old & _SRST, value & _SRST
        if srst_now != srst_was:
            for unit in self.units:
                unit.soft_reset(bool(srst_now))
            if not srst_now:
                self.selected = 0  # the reset clears DEV (vol 1 §9.12 signature)
        self.update_irq()

    # -- string data transfers ------------------------------------------------------
    def read_string(self, port: int, width: int, out: np.ndarray) -> None:
        if port == self.base:
            self.units[self.selected].data_read_string(width, out)
        else:
            for i in range(out.size):
                out[i] = self.read(port, width)

    def write_string(self, port: int, width: int, data: np.ndarray) -> None:
        if port == self.base:
            self.units[self.selected].data_write_string(width, data)
        else:
            for value in data.tolist():
                self.write(port, width, value)


def _ignore() -> None:
    pass


class IdeController:
    """Two IDE channels at the legacy ports (a PIIX-style controller, ISA compatibility mode)."""

    def __init__(self, irq14: IrqLine, irq15: IrqLine) -> None:
        (b0, c0, _), (b1, c1, _) = LEGACY_CHANNELS
        self.channels = (IdeChannel(0, b0, c0, irq14), IdeChannel(1, b1, c1, irq15))

    def attach(self, bus: int, device: int, unit: IdeDevice) -> None:
        self.channel(bus).attach(device, unit)

    def detach(self, bus: int, device: int) -> IdeDevice:
        return self.channel(bus).detach(device)

    def unit(self, bus: int, device: int) -> IdeDevice:
        return self.channel(bus).units[device]

    def channel(self, bus: int) -> IdeChannel:
        if bus not in (0, 1):
            raise ValueError(f"bus number must be 0 or 1, not {bus}")
        return self.channels[bus]

    def port_ranges(self) -> list[PortRange]:
        return [r for ch in self.channels for r in ch.port_ranges()]

    def set_trace(self, trace: Tracer | None) -> None:
        for ch in self.channels:
            ch.set_trace(trace)
