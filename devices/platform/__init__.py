"""The PC platform devices around the drive: 8259A pair, 8254, 8042, MC146818, PCI
configuration space, VGA registers, local APIC / I/O APIC and the interrupt source that
combines them with the 8259 pair (``intc``), fw_cfg, the 16550A UART, the debug and
system ports.  Like every device, nothing here imports ``emu``."""
