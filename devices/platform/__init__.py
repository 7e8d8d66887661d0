"""The PC platform devices around the drive: 8259A pair, 8254, 8042, MC146818, PCI
configuration space, VGA registers, local APIC / I/O APIC, fw_cfg, the 16550 UART, the
debug and system ports.  Like every device, nothing here imports ``emu``."""
