"""An ATAPI DVD-ROM drive: the PACKET transport over the ATA taskfile.

ATA/ATAPI-7 vol 1 §6.18 (PACKET), §6.17 (IDENTIFY PACKET DEVICE), §6.9
(DEVICE RESET), §6.10 (EXECUTE DEVICE DIAGNOSTIC), §6.47 (SET FEATURES);
vol 2 §11.8 (the packet protocols, host states HP0-HP4).

The drive is transport + command set + medium.  This module moves bytes:
the CDB phase, PIO data-in blocks sized by the byte-count limit, completion
status and interrupt reason.  What a command means is decided by
:class:`devices.scsi.target.MmcTarget`; sense becomes register state in
exactly one function here, :meth:`AtapiDrive._complete`.

Commands complete synchronously, so the host never sees BSY after a command
(as with QEMU).  Byte-count-limit rules (vol 2 §11.8.3): the limit is read
from LBA Mid/High at the start of each DRQ block; FFFFh counts as FFFEh; a
block shorter than the remaining transfer is rounded down to even; one block
may span several 2048-byte sectors; the block size is written back to LBA
Mid/High; INTRQ is asserted at the start of each DRQ block and at completion.
"""

from __future__ import annotations

from enum import Enum

import numpy as np

from devices.atapi.identify import TransferModes, identify_packet_data
from devices.ide.device import IdeDevice
from devices.ide.registers import (
    DIAG_PASSED,
    SIGNATURE_PACKET,
    AtaCommand,
    Error,
    Reason,
    Status,
    ata_command_name,
)
from devices.media.base import Medium
from devices.personality import DEFAULT_PERSONALITY, Personality
from devices.scsi.commands import command_name
from devices.scsi.sense import Sense, SenseKey
from devices.scsi.target import MmcTarget
from devices.scsi.target import Status as CmdStatus
from devices.state import StateError, apply, as_bytes, capture, part

_BUF_SIZE = 0x10000 + 8  # the largest DRQ block (FFFEh) plus padding slack
# Plain ints on the hot path (IntFlag arithmetic costs a microsecond an operation).
_BSY, _DRDY, _DSC, _DRQ, _ERR = (int(f) for f in (Status.BSY, Status.DRDY, Status.DSC,
                                                   Status.DRQ, Status.ERR))
_COD, _IO, _ABRT = int(Reason.COD), int(Reason.IO), int(Error.ABRT)
_READY = _DRDY | _DSC
_EMPTY = np.zeros(0, dtype=np.uint8)
_SENSE_DMA_FAULT = Sense(SenseKey.ABORTED_COMMAND, 0x4B, 0x00)  # data phase error (bus master)

# Disk commands a packet device refuses with its signature in the taskfile, so
# that a host probing with IDENTIFY DEVICE learns it is ATAPI (vol 1 §6.16, §9.12).
_SIGNATURE_ABORTS = frozenset(
    {
        AtaCommand.IDENTIFY_DEVICE,
        AtaCommand.READ_SECTORS,
        AtaCommand.READ_SECTORS_EXT,
        AtaCommand.READ_DMA,
        AtaCommand.READ_DMA_EXT,
        AtaCommand.WRITE_SECTORS,
    }
)
# SET FEATURES subcommands accepted without effect on a read-only drive (vol 1 table 44).
_ACCEPTED_FEATURES = frozenset({0x02, 0x82, 0x55, 0xAA, 0x66, 0xCC, 0x05, 0x85, 0x31, 0x95})


class Stage(Enum):
    """Where the drive is in a command: the device side of host states HP0-HP4."""

    IDLE = "idle"
    """HP0/HP1 done: no command in progress."""
    PACKET = "packet"
    """HP1: DRQ=1 CoD=1 IO=0, waiting for the 12 CDB bytes."""
    PIO_IN = "pio in"
    """HP4: a DRQ block of data for the host."""
    PIO_OUT = "pio out"
    """HP4: a DRQ block of parameter data from the host (IO=0, CoD=0)."""
    DMA = "dma"
    """HP3: data waits for the bus-master engine."""
    DMA_OUT = "dma out"
    """HP3: the drive waits for the bus-master engine to bring the parameter list."""


class AtapiDrive(IdeDevice):
    """A DVD-ROM drive on an IDE cable.

    State fields (besides the taskfile): ``stage``, the CDB bytes and count,
    the transfer source and offsets, ``from_packet``, ``dma_requested``,
    ``modes``; the MMC state lives in ``target``.
    """

    kind = "dvd"

    def __init__(self, personality: Personality = DEFAULT_PERSONALITY) -> None:
        super().__init__()
        self.personality = personality
        self.target = MmcTarget(personality)
        self.modes = TransferModes()
        self.dma_capable = False
        """True once a bus-master engine is wired to the channel."""
        self._buf = bytearray(_BUF_SIZE)
        self._np = np.frombuffer(self._buf, dtype=np.uint8)
        self._u16 = memoryview(self._buf).cast("H")
        self._cdb = bytearray(12)
        self.power_on()

    # -- state ----------------------------------------------------------------------
    def power_on(self) -> None:
        self.target.reset(power_on=True)
        self._reset_transport()
        self.device = 0
        self.set_signature()
        self.status = 0
        self.error = DIAG_PASSED

    def _reset_transport(self) -> None:
        self.stage = Stage.IDLE
        self._cdb_len = 0
        self._src = _EMPTY
        self._src_pos = 0
        self._src_fresh = False
        """True while the data phase that just read ``_src`` from the medium is still in
        its first port access (no need to ask the medium again)."""
        self._pos = 0
        self._end = 0
        self._limit_override = 0
        self.from_packet = False
        self.dma_requested = False
        self.intrq = False
        self._out = bytearray()
        """Data-out bytes collected so far (the parameter list of MODE SELECT etc.)."""
        self._out_len = 0
        self.target.pending_out = None

    STATE_FIELDS = ("features", "error", "sector_count", "lba_low", "lba_mid", "lba_high",
                    "device", "status", "intrq", "dma_capable", "stage", "_cdb", "_cdb_len",
                    "_pos", "_end", "_limit_override", "from_packet", "dma_requested", "_out",
                    "_out_len")
    """The taskfile (``notify`` and ``dma_request`` are wiring) and the transport fields
    :meth:`_reset_transport` sets.  :meth:`state` adds the current DRQ block, the bytes
    still to come from the source, the transfer modes and the target's state."""

    def state(self) -> dict[str, object]:
        """The drive's saved state (plain data; see devices/state.py).

        The transfer source is saved as the bytes still to be moved (``src``, with
        ``src_pos`` 0) — at most one command's data, and independent of where it came
        from (a view of the medium or a built reply); a data-out command waiting for
        the bus master keeps its whole buffer (the part already moved is the
        parameter list so far).  The DRQ block (``block``) is the transfer buffer up to
        the block's end plus the padding a dword read may touch.
        """
        state = capture(self, self.STATE_FIELDS)
        if self.stage is Stage.DMA_OUT:
            state["src"], state["src_pos"] = self._src.copy(), self._src_pos
        else:
            state["src"], state["src_pos"] = self._src[self._src_pos:].copy(), 0
        in_block = self.stage is Stage.PIO_IN or self.stage is Stage.PIO_OUT
        state["block"] = self._np[: min(self._end + 4, _BUF_SIZE)].copy() if in_block \
            else self._np[:0].copy()
        state["modes"] = {"pio": self.modes.pio, "mwdma": self.modes.mwdma,
                          "udma": self.modes.udma}
        state["target"] = self.target.state()
        return state

    def load_state(self, state: dict[str, object]) -> None:
        """Set the drive from :meth:`state`'s dict (the medium is the caller's: the
        target's medium is left as it is)."""
        src = part(state, "src")
        block = as_bytes(part(state, "block"), "block")
        modes = part(state, "modes")
        src_pos = part(state, "src_pos")
        if not isinstance(src, np.ndarray) or src.dtype != np.uint8 or src.ndim != 1:
            raise StateError("drive: field 'src' is not a byte array")
        if not isinstance(src_pos, int) or not 0 <= src_pos <= src.size:
            raise StateError("drive: field 'src_pos' out of range")
        if len(block) > _BUF_SIZE or not isinstance(modes, dict):
            raise StateError("drive: field 'block' or 'modes' is not valid")
        end, pos = state.get("_end"), state.get("_pos")
        if not isinstance(end, int) or not isinstance(pos, int) or not (
                0 <= pos <= _BUF_SIZE and 0 <= end <= _BUF_SIZE - 4):
            raise StateError("drive: DRQ block offsets out of range")
        self.target.load_state(part(state, "target"))
        apply(self, state, self.STATE_FIELDS)
        self._src = src.copy() if src.size else _EMPTY
        self._src_pos = src_pos
        self._np[: len(block)] = np.frombuffer(block, dtype=np.uint8)
        self.modes.pio = modes.get("pio", 4)
        self.modes.mwdma = modes.get("mwdma")
        self.modes.udma = modes.get("udma")

    def set_signature(self) -> None:
        """Load the packet signature into Sector Count and LBA Low/Mid/High (vol 1 §9.12).

        The Device register keeps DEV (and the obsolete bits 7 and 5): only the host
        selects a device (vol 1 §7, Device register), and a signature left by IDENTIFY
        DEVICE or DEVICE RESET must not move the selection (vol 1 §6.16: "DEV shall
        indicate the selected device").  The head/LBA nibble is cleared.  SRST and
        EXECUTE DEVICE DIAGNOSTIC, after which device 0 answers, also clear DEV.
        """
        self.sector_count, self.lba_low, self.lba_mid, self.lba_high = SIGNATURE_PACKET
        self.device &= 0xF0

    @property
    def medium(self) -> Medium:
        return self.target.medium

    @property
    def byte_count_limit(self) -> int:
        """The host's byte-count limit from LBA Mid/High; FFFFh counts as FFFEh."""
        limit = (self.lba_high << 8) | self.lba_mid
        return 0xFFFE if limit == 0xFFFF else limit

    # -- host-side medium changes (the management API calls these) ----------------
    def insert_medium(self, medium: Medium) -> None:
        """Load ``medium`` and close the tray; the guest is told by sense, GESN and INTRQ."""
        self.target.insert(medium)
        self._media_event("insert", medium.path)

    def remove_medium(self) -> Medium:
        """Forced eject: the tray opens and the medium is returned to the caller."""
        old = self.target.remove()
        self._media_event("remove", old.path)
        return old

    def _media_event(self, what: str, path: str) -> None:
        if self.trace is not None:
            self.trace.emit("media", self.name, event=what, path=path)
        if self.stage is Stage.IDLE and not self.status & _BSY:
            self.set_irq()  # a change is signalled with INTRQ (as QEMU's change callback)

    # -- resets ---------------------------------------------------------------------
    def soft_reset(self, asserted: bool) -> None:
        """SRST: BSY while asserted; on release the signature, Status 00h, Error 01h."""
        self._reset_transport()
        if asserted:
            self.status = _BSY
            return
        self.set_signature()
        self.device &= 0xE0  # SRST selects device 0 (vol 2 §9.2): DEV reads 0 afterwards
        self.status = 0  # a packet device leaves DRDY clear after reset (vol 2 §9.2)
        self.error = DIAG_PASSED

    def execute_diagnostic(self) -> None:
        """EXECUTE DEVICE DIAGNOSTIC: reset, signature, Error 01h, INTRQ (vol 2 §9.7).

        Device 0 reports the result, so DEV is cleared as after SRST (the channel
        selects device 0); the obsolete bits 7 and 5 keep what the host wrote."""
        self._reset_transport()
        self.set_signature()
        self.device &= 0xE0
        self.status = 0
        self.error = DIAG_PASSED
        self.set_irq()

    # -- ATA commands ---------------------------------------------------------------
    def command(self, code: int) -> None:
        self.from_packet = False
        self.error = 0  # the diagnostic code of a reset is gone once a command starts
        if code == AtaCommand.PACKET:
            self._cmd_packet()
        elif code == AtaCommand.IDENTIFY_PACKET_DEVICE:
            data = identify_packet_data(self.personality, self.modes, self.dma_capable)
            self._start_data_in(np.frombuffer(data, dtype=np.uint8), limit=512)
        elif code == AtaCommand.DEVICE_RESET:
            self._reset_transport()
            self.set_signature()
            self.status = 0
            self.error = DIAG_PASSED  # no INTRQ (vol 1 §6.9)
        elif code in _SIGNATURE_ABORTS:
            self.set_signature()
            self._abort()
        elif code == AtaCommand.SET_FEATURES:
            sub = self.features
            if (sub == 0x03 and self.modes.set_mode(self.sector_count)) or (
                sub in _ACCEPTED_FEATURES
            ):
                self._ata_done()
            else:
                self._abort()
        elif code in (AtaCommand.CHECK_POWER_MODE, AtaCommand.CHECK_POWER_MODE_OLD):
            # Sector Count FFh: active or idle; 00h: standby (vol 1 §6.4).
            self.sector_count = 0xFF if self.target.power_condition else 0x00
            self._ata_done()
        elif code in (AtaCommand.IDLE_IMMEDIATE, AtaCommand.IDLE_IMMEDIATE_OLD):
            self.target.set_power_condition(True)
            self._ata_done()
        elif code in (AtaCommand.STANDBY_IMMEDIATE, AtaCommand.STANDBY_IMMEDIATE_OLD):
            self.target.set_power_condition(False)
            self._ata_done()
        elif code == AtaCommand.FLUSH_CACHE:
            self._ata_done()  # nothing cached to write, with or without a medium
        else:
            # Everything else, NOP included: NOP's defined outcome is ABRT (vol 1 §6.21).
            self._abort()

    def _ata_done(self) -> None:
        """Completion of a non-data ATA command: DRDY, INTRQ."""
        self.error = 0
        self.status = _READY
        self.set_irq()

    def _abort(self) -> None:
        """ATA command aborted: Error ABRT, Status DRDY|ERR, INTRQ (vol 1 §6.2)."""
        was_packet = self.from_packet
        self._reset_transport()
        self.error = _ABRT
        self.status = _DRDY | _ERR
        if was_packet:
            self.sector_count = _IO | _COD
        self.set_irq()

    # -- PACKET ---------------------------------------------------------------------
    def _cmd_packet(self) -> None:
        """PACKET: wait for the CDB (HP1).  Overlap (feature bit 1) is not supported."""
        self.from_packet = True
        self.dma_requested = bool(self.features & 0x01)
        if self.features & 0x02 or (self.dma_requested and not self.dma_capable):
            self._abort()
            return
        self.stage = Stage.PACKET
        self._cdb_len = 0
        self.sector_count = _COD  # CoD=1, IO=0: "send the packet"
        self.status = _READY | _DRQ
        if self.trace is not None:
            self.trace.emit("phase", self.name, phase="HP1", drq=1, cod=1, io=0)

    def _execute_packet(self) -> None:
        cdb = bytes(self._cdb)
        self.stage = Stage.IDLE
        self.status = _READY | _BSY  # HP2: executing (never seen: we are synchronous)
        if self.trace is not None:
            self.trace.emit("cdb", self.name, cdb=cdb.hex(" "), name=command_name(cdb[0]))
        data_phase_ok = self.dma_requested or self.byte_count_limit != 0
        outcome = self.target.execute(cdb, data_phase_ok)
        if outcome.status is CmdStatus.ABORTED:
            self._abort()
        elif outcome.status is CmdStatus.CHECK_CONDITION:
            self._complete(outcome.sense)
        elif outcome.status is CmdStatus.DATA_OUT:
            self._out = bytearray()
            self._out_len = outcome.data_out_length
            if self.dma_requested:
                # HP3 for data-out: DRQ set, the engine fills ``_src`` from guest memory.
                self._src, self._src_pos = np.zeros(self._out_len, dtype=np.uint8), 0
                self.stage = Stage.DMA_OUT
                self.status = _READY | _DRQ
                self.dma_request()
            else:
                self._next_out_block()
        elif outcome.data.size == 0:
            self._complete(None)
        elif self.dma_requested:
            self._src, self._src_pos = outcome.data, 0
            self.stage = Stage.DMA
            self.status = _READY | _DRQ
            self._src_fresh = True  # read from the medium in this very port access
            try:
                self.dma_request()  # the engine may already be started (SFF-8038i §3)
            finally:
                self._src_fresh = False
        else:
            self._start_data_in(outcome.data, self.byte_count_limit)

    def _complete(self, sense: Sense | None) -> None:
        """End a packet command (HP0): the one place sense becomes registers.

        GOOD: Status DRDY|DSC, Error 0.  CHECK CONDITION: Status DRDY|ERR (CHK),
        Error = sense key << 4 (vol 1 §6.18.5).  Interrupt reason IO=1 CoD=1; INTRQ.
        """
        self._src = _EMPTY
        self.stage = Stage.IDLE
        self.sector_count = _IO | _COD
        if sense is None:
            self.error = 0
            self.status = _READY
        else:
            self.error = (sense.key & 0x0F) << 4
            self.status = _DRDY | _ERR
            if self.trace is not None:
                self.trace.emit("sense", self.name, key=sense.key, asc=sense.asc,
                                ascq=sense.ascq, text=sense.text)
        if self.trace is not None:
            self.trace.emit("phase", self.name, phase="complete", status=int(self.status),
                            error=self.error)
        self.set_irq()

    # -- PIO data-in ----------------------------------------------------------------
    def _start_data_in(self, data: np.ndarray, limit: int) -> None:
        self._src = data
        self._src_pos = 0
        self._limit_override = limit if not self.from_packet else 0
        self._next_block()

    def _packet_block(self, remaining: int, reason: int) -> int:
        """Size the next packet DRQ block (vol 2 §11.8.3): the whole remainder if it fits
        the byte-count limit, else the limit rounded down to even (a limit of 1 acts as
        2).  The size is written back to LBA Mid/High with the interrupt reason."""
        limit = self.byte_count_limit
        size = remaining if remaining <= limit else ((limit & ~1) or 2)
        self.lba_mid, self.lba_high = size & 0xFF, size >> 8
        self.sector_count = reason
        return size

    def _source_still_backed(self) -> bool:
        """A view of the medium held since an earlier port access is about to be copied
        from: ask the medium again (a file cut short meanwhile would fault the memory
        map).  If it is gone, the command ends here with CHECK CONDITION."""
        if self._src.flags.owndata:
            return True
        sense = self.target.recheck_medium(self._src[self._src_pos :])
        if sense is None:
            return True
        self._complete(sense)
        return False

    def _next_block(self) -> None:
        """Set up the next DRQ block (HP4) and assert INTRQ."""
        if self._src_pos and not self._source_still_backed():
            return
        remaining = self._src.size - self._src_pos
        if self.from_packet:
            size = self._packet_block(remaining, _IO)
        else:
            size = min(remaining, self._limit_override)
        start = self._src_pos
        np.copyto(self._np[:size], self._src[start : start + size])
        end = size + (size & 1)  # an odd final byte is padded so DRQ always clears
        self._np[size : end + 4] = 0
        self._src_pos = start + size
        self._pos = 0
        self._end = end
        self.stage = Stage.PIO_IN
        self.error = 0
        self.status = _READY | _DRQ
        if self.trace is not None:
            self.trace.emit("drq", self.name, bytes=size, dir="in")
        self.set_irq()

    # -- PIO data-out (parameter lists: MODE SELECT, SET STREAMING) -----------------
    def _next_out_block(self) -> None:
        """Open the next data-out DRQ block (HP4 with IO=0, CoD=0) and assert INTRQ.

        Sized like data-in blocks (vol 2 §11.8.3): the whole remainder if it fits
        the byte-count limit, else the limit rounded down to even.
        """
        size = self._packet_block(self._out_len - len(self._out), 0)  # IO=0 CoD=0: to device
        self._pos = 0
        self._end = size + (size & 1)  # an odd final byte arrives in a whole word
        self.stage = Stage.PIO_OUT
        self.error = 0
        self.status = _READY | _DRQ
        if self.trace is not None:
            self.trace.emit("drq", self.name, bytes=size, dir="out")
        self.set_irq()

    def _out_block_done(self) -> None:
        """A data-out block is in: open the next one or hand the list to the target."""
        got = self._np[: self._end]
        self._out += got[: min(self._end, self._out_len - len(self._out))].tobytes()
        if len(self._out) < self._out_len:
            self._next_out_block()
            return
        self._finish_out(bytes(self._out))

    def _finish_out(self, data: bytes) -> None:
        """The whole parameter list is in (by PIO or DMA): run the command, complete it."""
        self.stage = Stage.IDLE
        self.status = _READY | _BSY
        outcome = self.target.finish_data_out(data)
        self._out = bytearray()
        if outcome.status is CmdStatus.CHECK_CONDITION:
            self._complete(outcome.sense)
        else:
            self._complete(None)

    def _block_done(self) -> None:
        if self._src_pos < self._src.size:
            self._next_block()
        elif self.from_packet:
            self._complete(None)
        else:
            # PIO data-in ATA command (IDENTIFY PACKET): no interrupt after the last block.
            self._src = _EMPTY
            self.stage = Stage.IDLE
            self.status = _READY

    # -- data port (hot path) -------------------------------------------------------
    def data_read(self, width: int) -> int:
        """One data-port read.  Outside a data-in DRQ block it reads 0 and changes
        nothing (data-port access outside DRQ is ignored, on purpose)."""
        if self.stage is not Stage.PIO_IN:
            return 0
        pos = self._pos
        word = pos >> 1
        if width == 4:
            value = self._u16[word] | (self._u16[word + 1] << 16)
            pos += 4
        else:
            value = self._u16[word] if width == 2 else self._u16[word] & 0xFF
            pos += 2  # the data bus is 16 bits wide: a byte access still moves a word
        self._pos = pos
        if pos >= self._end:
            self._block_done()
        return value

    def data_read_string(self, width: int, out: np.ndarray) -> None:
        """``rep ins``: whole DRQ blocks in one numpy copy each."""
        n = out.size
        if self.trace is not None:  # one event per string transfer, never per word
            self._trace_string("in", width, n, self._np[self._pos : self._pos + 16])
        i = 0
        while i < n and self.stage is Stage.PIO_IN:
            pos = self._pos
            take = min((self._end - pos + width - 1) // width, n - i)
            nbytes = take * width
            out[i : i + take] = self._np[pos : pos + nbytes].view(out.dtype)
            self._pos = pos + nbytes
            i += take
            if self._pos >= self._end:
                self._block_done()
        if i < n:
            out[i:] = 0

    def data_write(self, width: int, value: int) -> None:
        """One data-port write: CDB bytes in the packet phase, parameter bytes in a
        data-out block, ignored otherwise."""
        if self.stage is Stage.PIO_OUT:
            pos = self._pos
            nbytes = 4 if width == 4 else 2  # a byte access still moves a 16-bit word
            self._np[pos : pos + nbytes] = np.frombuffer(
                (value & ((1 << (8 * nbytes)) - 1)).to_bytes(nbytes, "little"), dtype=np.uint8
            )
            self._pos = pos + nbytes
            if self._pos >= self._end:
                self._out_block_done()
            return
        if self.stage is not Stage.PACKET:
            return
        n = self._cdb_len
        for k in range(2 if width != 4 else 4):
            if n < 12:
                self._cdb[n] = (value >> (8 * k)) & 0xFF
                n += 1
        self._cdb_len = n
        if n >= 12:
            self._execute_packet()

    def data_write_string(self, width: int, data: np.ndarray) -> None:
        """``rep outs``: the CDB in one slice, data-out blocks one numpy copy each."""
        raw = (data if data.flags.c_contiguous else np.ascontiguousarray(data)).view(np.uint8)
        if self.trace is not None and self.stage is Stage.PIO_OUT:  # CDBs have their own event
            self._trace_string("out", width, data.size, raw[:16])
        i = 0
        if self.stage is Stage.PACKET and self._cdb_len == 0 and raw.size >= 12:
            # The usual case: the whole packet in one rep outsw (12 bytes: 6 words, 3 dwords).
            self._cdb[:] = raw[:12].tobytes()
            self._cdb_len = i = 12
            self._execute_packet()
        while i < raw.size:
            if self.stage is Stage.PIO_OUT:
                pos = self._pos
                take = min(self._end - pos, raw.size - i)
                take -= take % width  # whole port accesses only
                if take <= 0:
                    break
                self._np[pos : pos + take] = raw[i : i + take]
                self._pos = pos + take
                i += take
                if self._pos >= self._end:
                    self._out_block_done()
            elif self.stage is Stage.PACKET:
                n = self._cdb_len
                # Whole port accesses up to the end of the 12-byte packet, in one slice.
                take = min(-(-(12 - n) // width) * width, raw.size - i)
                got = min(take, 12 - n)
                self._cdb[n : n + got] = raw[i : i + got].tobytes()
                self._cdb_len = n + got
                i += take
                if self._cdb_len >= 12:
                    self._execute_packet()
            else:
                break

    def _trace_string(self, direction: str, width: int, count: int, head: np.ndarray) -> None:
        """Trace a ``rep ins``/``rep outs`` on the data port (only called when tracing)."""
        if self.stage is Stage.PIO_IN or self.stage is Stage.PIO_OUT:
            available = self._end - self._pos
            nbytes = count * width
            head = head[: min(16, nbytes, available)]
        else:
            available, nbytes, head = 0, count * width, head[:0]  # ignored: no DRQ block
        assert self.trace is not None
        self.trace.emit("data", self.name, dir=direction, width=width, count=count,
                        bytes=nbytes, drq_bytes=available, head=head.tobytes().hex(" "))

    # -- bus-master DMA (the engine pulls from here) ---------------------------------
    def dma_source(self) -> np.ndarray:
        """The bytes still waiting for the bus-master engine (Stage.DMA), asked for by the
        engine in the port access that copies them.  A view of the medium is checked
        again first (:meth:`_source_still_backed`): if the file was cut short since the
        command began, the command ends with CHECK CONDITION and nothing is returned."""
        if self.stage is not Stage.DMA or not (self._src_fresh or self._source_still_backed()):
            return _EMPTY
        return self._src[self._src_pos :]

    def dma_sink(self) -> np.ndarray:
        """The part of the parameter list still expected from memory (Stage.DMA_OUT)."""
        return self._src[self._src_pos :] if self.stage is Stage.DMA_OUT else _EMPTY

    def dma_advance(self, nbytes: int) -> None:
        """The engine moved ``nbytes``; at the end the command completes (a data-out
        command first gets its parameter list through ``target.finish_data_out``)."""
        self._src_pos += nbytes
        if self._src_pos >= self._src.size:
            if self.stage is Stage.DMA_OUT:
                self._finish_out(self._src.tobytes())
            else:
                self._complete(None)

    def dma_fault(self) -> None:
        """The engine could not move the data (memory fault, wrong direction bit): CHECK
        CONDITION, ABORTED COMMAND / DATA PHASE ERROR (SPC-3 §4.5.6: 0Bh, the command
        may be retried; ASC 4Bh)."""
        if self.stage is Stage.DMA or self.stage is Stage.DMA_OUT:
            self.target.pending_out = None  # a data-out command is dropped unfinished
            self.target.sense = _SENSE_DMA_FAULT
            self._complete(_SENSE_DMA_FAULT)


__all__ = ["AtapiDrive", "Stage", "ata_command_name"]
