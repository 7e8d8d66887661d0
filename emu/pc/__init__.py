"""The PC board: RAM, the port bus, IRQ routing, the chipset, IDE, the CPU glue, the
virtual clock and the run session.  Firmware plugs into it (:mod:`emu.firmware`); the
tools (:mod:`emu.tools`) and the management API (:mod:`emu.api`) drive it.

Nothing here imports :mod:`emu.firmware`, :mod:`emu.api` or :mod:`emu.tools`.
"""
