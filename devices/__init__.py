"""Device models: IDE controller, ATAPI drive, SCSI/MMC command set, media.

Data flows down, events flow up: nothing here imports ``emu``.  A device is
handed what it needs (an :class:`~devices.bus.IrqLine`, a DMA memory view, a
medium) and declares its port ranges with :class:`~devices.bus.PortRange`.
"""
