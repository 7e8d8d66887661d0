"""The 16550A UART (devices/platform/uart.py), driven at its ports as a guest would.

Expected values come from the PC16550D datasheet (register table, Table IV interrupt
priorities and reset values) and from the order in which Linux 6.1's 8250 driver probes a
port (drivers/tty/serial/8250/8250_port.c: ``autoconfig``, ``autoconfig_16550a``,
``size_fifo``, the startup THRE checks), replayed here from its facts.
"""

from __future__ import annotations

from devices.bus import IrqLine
from devices.platform.uart import Uart16550

BASE = 0x3F8
RBR, IER, IIR, LCR, MCR, LSR, MSR, SCR = range(8)
FCR = IIR


class Port:
    """``inb``/``outb`` on one UART, offsets from its base."""

    def __init__(self, uart: Uart16550) -> None:
        self.uart = uart

    def inb(self, reg: int) -> int:
        return self.uart.read(BASE + reg, 1)

    def outb(self, reg: int, value: int) -> None:
        self.uart.write(BASE + reg, 1, value)


def _uart(**kwargs: object) -> tuple[Uart16550, Port, IrqLine, list[bytes]]:
    line = IrqLine(4)
    out: list[bytes] = []
    uart = Uart16550(BASE, out.append, irq=line, **kwargs)  # type: ignore[arg-type]
    return uart, Port(uart), line, out


# -- Linux 6.1's probe, replayed ------------------------------------------------------------
def _size_fifo(p: Port) -> int:
    """Count bytes that survive a 256-byte burst through the FIFO in loopback."""
    old_lcr = p.inb(LCR)
    p.outb(LCR, 0)
    old_fcr = p.inb(FCR)  # reads IIR, written back as FCR later
    old_mcr = p.inb(MCR)
    p.outb(FCR, 0x01 | 0x02 | 0x04)
    p.outb(MCR, 0x10)
    p.outb(LCR, 0x80)
    old_dl = p.inb(0) | p.inb(1) << 8
    p.outb(0, 1)
    p.outb(1, 0)
    p.outb(LCR, 0x03)
    for n in range(256):
        p.outb(RBR, n)
    count = 0
    while p.inb(LSR) & 0x01 and count < 256:
        p.inb(RBR)
        count += 1
    p.outb(FCR, old_fcr)
    p.outb(MCR, old_mcr)
    p.outb(LCR, 0x80)
    p.outb(0, old_dl & 0xFF)
    p.outb(1, old_dl >> 8)
    p.outb(LCR, old_lcr)
    return count


def _linux_autoconfig(p: Port) -> tuple[str, int]:
    """The probe: IER existence test, loopback test, FIFO test, 16550A variant checks."""
    scratch = p.inb(IER)
    p.outb(IER, 0)
    scratch2 = p.inb(IER) & 0x0F
    p.outb(IER, 0x0F)
    scratch3 = p.inb(IER) & 0x0F
    p.outb(IER, scratch)
    if scratch2 != 0 or scratch3 != 0x0F:
        return "none: IER test", 0
    save_mcr = p.inb(MCR)
    save_lcr = p.inb(LCR)
    p.outb(MCR, 0x10 | 0x0A)  # loopback, RTS, OUT2
    status = p.inb(MSR) & 0xF0
    p.outb(MCR, save_mcr)
    if status != 0x90:
        return f"none: loop test {status:#x}", 0
    p.outb(LCR, 0xBF)
    p.outb(2, 0)  # EFR, if any
    p.outb(LCR, 0)
    p.outb(FCR, 0x01)
    kind = {0: "8250", 1: "unknown", 2: "16550", 3: "16550A"}[p.inb(IIR) >> 6]
    if kind == "8250":
        p.outb(SCR, 0xA5)
        first = p.inb(SCR)
        p.outb(SCR, 0x5A)
        if first == 0xA5 and p.inb(SCR) == 0x5A:
            kind = "16450"
    fifo = 0
    if kind == "16550A":
        p.outb(LCR, 0x80)
        if p.inb(2) == 0:  # EFR visible with DLAB: ST16C650V1
            return "16650", 32
        p.outb(LCR, 0xBF)
        if p.inb(2) == 0:  # EFR behind LCR BFh: StarTech/Exar/TI variants
            return "16650V2", 32
        p.outb(LCR, 0)
        mcr = p.inb(MCR)
        p.outb(LCR, 0xE0)
        excr1 = p.inb(2)
        if not (excr1 ^ mcr) & 0x10:
            p.outb(LCR, 0)
            p.outb(MCR, mcr ^ 0x10)
            p.outb(LCR, 0xE0)
            excr1 = p.inb(2)
            p.outb(LCR, 0)
            p.outb(MCR, mcr)
            if (excr1 ^ mcr) & 0x10:
                return "NS16550A", 16
        p.outb(LCR, 0)
        p.outb(FCR, 0x01 | 0x20)
        status1 = p.inb(IIR) >> 5
        p.outb(FCR, 0x01)
        p.outb(LCR, 0x80)
        p.outb(FCR, 0x01 | 0x20)
        status2 = p.inb(IIR) >> 5
        p.outb(FCR, 0x01)
        p.outb(LCR, 0)
        if status1 == 6 and status2 == 7:
            return "16750", 64
        ier = p.inb(IER)
        p.outb(IER, ier & ~0x40)
        if not p.inb(IER) & 0x40:
            p.outb(IER, ier | 0x40)
            if p.inb(IER) & 0x40:
                return "XScale", 32
        p.outb(IER, ier)
        fifo = _size_fifo(p)
        if fifo == 64:
            return "U6_16550A", 64
    p.outb(LCR, save_lcr)
    # reset the UART as the probe leaves it
    p.outb(MCR, save_mcr)
    p.outb(FCR, 0x01)
    p.outb(FCR, 0x01 | 0x02 | 0x04)
    p.outb(FCR, 0)
    p.inb(RBR)
    p.outb(IER, 0)
    return kind, fifo


def test_linux_8250_autoconfig_finds_a_16550a_with_a_16_byte_fifo() -> None:
    uart, p, line, out = _uart()
    assert _linux_autoconfig(p) == ("16550A", 16)
    assert out == []  # the probe's bytes stayed inside the chip (loopback)
    assert not line.level
    assert p.inb(LCR) == 0 and p.inb(MCR) == 0 and p.inb(IER) == 0
    assert p.inb(IIR) == 0x01  # FIFOs off again, nothing pending


def test_linux_startup_thre_checks_see_a_real_16550() -> None:
    """serial8250_do_startup: THRE interrupt reasserts after IER is rewritten (no BUG_THRE),
    and comes at once when ETBEI is enabled with THR empty (no BUG_TXEN)."""
    _, p, line, _ = _uart()
    p.outb(FCR, 0x01 | 0x80)  # FIFO on, trigger 8 (uart_config's 16550A setting)
    p.outb(LCR, 0x03)
    p.outb(MCR, 0x08 | 0x03)  # OUT2, DTR, RTS
    for reg in (LSR, RBR, IIR, MSR):
        p.inb(reg)
    assert p.inb(LSR) != 0xFF
    p.outb(IER, 0x02)
    assert line.level
    assert p.inb(IIR) == 0xC2  # THRE, FIFOs enabled
    assert not line.level and p.inb(IIR) == 0xC1  # reading IIR cleared it
    p.outb(IER, 0)
    p.outb(IER, 0x02)
    lsr, iir = p.inb(LSR), p.inb(IIR)
    assert lsr & 0x40 and not iir & 0x01


# -- registers and the datasheet's rules ------------------------------------------------
def test_reset_values() -> None:
    _, p, line, _ = _uart()
    assert [p.inb(r) for r in (IER, IIR, LCR, MCR, LSR)] == [0, 0x01, 0, 0, 0x60]
    assert p.inb(MSR) == 0xB0  # host end: CTS, DSR, DCD, no deltas
    assert not line.level


def test_divisor_latch_behind_dlab_and_scratch() -> None:
    uart, p, _, out = _uart()
    p.outb(LCR, 0x83)
    p.outb(0, 0x01)
    p.outb(1, 0x00)
    assert uart.divisor == 1 and p.inb(0) == 1 and p.inb(1) == 0
    assert out == []  # DLL writes are not transmitted
    p.outb(LCR, 0x03)
    p.outb(SCR, 0x5A)
    assert p.inb(SCR) == 0x5A and p.inb(IER) == 0 and p.inb(LCR) == 0x03


def test_ier_upper_bits_read_zero() -> None:
    _, p, _, _ = _uart()
    p.outb(IER, 0xFF)
    assert p.inb(IER) == 0x0F


def test_transmit_reaches_the_host_and_thr_is_empty_again() -> None:
    uart, p, _, out = _uart()
    for ch in b"Linux":
        p.outb(RBR, ch)
    assert b"".join(out) == b"Linux" and bytes(uart.output) == b"Linux"
    assert p.inb(LSR) & 0x60 == 0x60


def test_host_input_fifo_trigger_and_timeout() -> None:
    uart, p, line, _ = _uart()
    p.outb(MCR, 0x08)
    p.outb(FCR, 0x01 | 0x40)  # FIFO, trigger 4
    p.outb(IER, 0x01)
    assert not line.level
    uart.receive(b"ab")
    assert line.level and p.inb(IIR) == 0xCC  # below trigger: character timeout
    uart.receive(b"cd")
    assert p.inb(IIR) == 0xC4  # at the trigger level: received data available
    assert p.inb(LSR) & 0x01
    assert bytes(p.inb(RBR) for _ in range(4)) == b"abcd"
    assert not p.inb(LSR) & 0x01 and not line.level and p.inb(IIR) == 0xC1


def test_host_input_waits_for_room_instead_of_overrunning() -> None:
    uart, p, _, _ = _uart()
    p.outb(FCR, 0x01)
    uart.receive(bytes(range(40)))
    assert len(uart.rx) == 16 and len(uart.host_queue) == 24
    got = []
    while p.inb(LSR) & 0x01:
        got.append(p.inb(RBR))
    assert got == list(range(40)) and not p.inb(LSR) & 0x02


def test_non_fifo_mode_holds_one_byte() -> None:
    uart, p, _, _ = _uart()
    uart.receive(b"xy")
    assert p.inb(IIR) == 0x01  # IER off: nothing reported
    p.outb(IER, 0x01)
    assert p.inb(IIR) == 0x04
    assert p.inb(RBR) == ord("x") and p.inb(RBR) == ord("y")
    assert p.inb(RBR) == ord("y")  # RBR keeps its last byte
    assert not p.inb(LSR) & 0x01


def test_loopback_overrun_sets_oe_and_line_status_interrupt() -> None:
    _, p, line, out = _uart()
    p.outb(MCR, 0x10 | 0x08)
    p.outb(IER, 0x05)
    p.outb(RBR, 1)
    assert p.inb(IIR) == 0x04
    p.outb(RBR, 2)  # RBR not read: overrun, the new byte overwrites (no FIFO)
    assert p.inb(IIR) == 0x06  # line status outranks data available
    assert not line.level  # loopback forces OUT2 inactive: no IRQ on a PC
    lsr = p.inb(LSR)
    assert lsr & 0x03 == 0x03 and not p.inb(LSR) & 0x02  # OE cleared by reading LSR
    assert p.inb(RBR) == 2 and out == []


def test_fifo_overrun_keeps_the_fifo() -> None:
    _, p, _, _ = _uart()
    p.outb(FCR, 0x01)
    p.outb(MCR, 0x10)
    for n in range(20):
        p.outb(RBR, n)
    assert p.inb(LSR) & 0x02
    assert [p.inb(RBR) for _ in range(16)] == list(range(16))


def test_fcr_resets_and_fifo_bits_in_iir() -> None:
    uart, p, _, _ = _uart()
    p.outb(FCR, 0xC1)
    assert uart.trigger_level == 14 and p.inb(IIR) == 0xC1
    uart.receive(b"abc")
    p.outb(FCR, 0xC3)  # clear the receive FIFO
    assert not p.inb(LSR) & 0x01 and uart.trigger_level == 14
    p.outb(FCR, 0x20)  # FCR0 = 0: FIFOs off; bit 5 never shows in IIR
    assert p.inb(IIR) == 0x01 and uart.fcr == 0
    p.outb(FCR, 0x21)
    assert p.inb(IIR) >> 4 == 0xC


def test_msr_loopback_lines_and_deltas() -> None:
    _, p, line, _ = _uart()
    p.outb(MCR, 0x10)  # loopback, all outputs off: CTS, DSR, DCD fall
    assert p.inb(MSR) == 0x0B  # DCTS, DDSR, DDCD, inputs all off
    assert p.inb(MSR) == 0x00  # deltas cleared by reading
    p.outb(MCR, 0x10 | 0x0F)
    assert p.inb(MSR) == 0xFB  # all on; RI rose: no TERI
    p.outb(MCR, 0x10 | 0x0B)  # OUT1 off: RI trailing edge
    assert p.inb(MSR) == 0xB4


def test_modem_status_interrupt_and_out2_gate() -> None:
    uart, p, line, _ = _uart()
    p.outb(IER, 0x08)
    uart.set_modem_lines(0x30)  # DCD drops
    assert p.inb(IIR) == 0x00  # modem status
    assert not line.level  # OUT2 clear: the PC's buffer is off
    p.outb(MCR, 0x08)
    assert line.level
    assert p.inb(MSR) == 0x38 and not line.level


def test_thre_interrupt_cleared_by_thr_write_then_back() -> None:
    _, p, line, out = _uart()
    p.outb(MCR, 0x08)
    p.outb(IER, 0x02)
    assert line.level
    p.inb(IIR)
    assert not line.level
    p.outb(RBR, ord("A"))  # THR empties again at once: a new THRE interrupt
    assert line.level and p.inb(IIR) == 0x02 and out == [b"A"]
    p.outb(IER, 0)
    assert not line.level


def test_interrupt_priority_order() -> None:
    uart, p, _, _ = _uart()
    p.outb(MCR, 0x18)
    p.outb(IER, 0x0F)
    p.outb(RBR, 1)
    p.outb(RBR, 2)  # overrun
    p.outb(MCR, 0x1A)  # RTS → CTS delta
    assert p.inb(IIR) == 0x06
    p.inb(LSR)
    assert p.inb(IIR) == 0x04
    p.inb(RBR)
    assert p.inb(IIR) == 0x02  # THRE, cleared by this read
    assert p.inb(IIR) == 0x00  # modem status
    p.inb(MSR)
    assert p.inb(IIR) == 0x01


def test_no_irq_line_is_fine_and_old_constructor_works() -> None:
    seen: list[bytes] = []
    uart = Uart16550(on_output=seen.append)
    uart.write(0x3FC, 1, 0x08)
    uart.write(0x3F9, 1, 0x02)
    uart.write(0x3F8, 1, 0x41)
    uart.transmit(0x42)
    assert seen == [b"A", b"B"] and uart.intr


# -- interrupt-driven tty traffic through the 8259, as Linux's 8250 driver runs it --------
def test_interrupt_driven_transmit_and_receive_through_the_8259() -> None:
    """The tty layer's shape: the IRQ handler loops until IIR says no interrupt, drains the
    receiver while LSR.DR, refills THR (16 at a time) while LSR.THRE with ETBEI on, and
    turns ETBEI off when the buffer is empty; the 8259 is edge-triggered."""
    from collections import deque

    from devices.platform.pic import Pic8259Pair

    line = IrqLine(4)
    pic = Pic8259Pair()
    pic.connect([line])
    out: list[bytes] = []
    uart = Uart16550(BASE, out.append, irq=line)
    p = Port(uart)
    p.outb(LCR, 0x03)
    p.outb(FCR, 0x81)  # FIFO, trigger 8
    p.outb(MCR, 0x0B)  # DTR, RTS, OUT2
    ier = 0x05  # RLSI | RDI
    p.outb(IER, ier)
    tx: deque[int] = deque()
    rx = bytearray()

    def isr() -> bool:
        nonlocal ier
        handled = False
        while not p.inb(IIR) & 0x01:
            handled = True
            lsr = p.inb(LSR)
            while lsr & 0x01:
                rx.append(p.inb(RBR))
                lsr = p.inb(LSR)
            p.inb(MSR)
            if lsr & 0x20 and ier & 0x02:
                for _ in range(16):
                    if not tx:
                        break
                    p.outb(RBR, tx.popleft())
                if not tx:
                    ier &= ~0x02
                    p.outb(IER, ier)
        return handled

    def run_cpu() -> tuple[int, int]:
        handled = unhandled = 0
        while pic.pending():
            assert pic.acknowledge() == 0x08 + 4
            if isr():
                handled += 1
            else:
                unhandled += 1
            pic.eoi(4)
        return handled, unhandled

    message = bytes(range(32, 127)) * 11  # ~1 KB of console output
    tx.extend(message)
    ier |= 0x02  # start_tx: ETBEI on
    p.outb(IER, ier)
    handled, unhandled = run_cpu()
    assert b"".join(out) == message and not tx
    assert handled >= 1 and unhandled <= handled  # never an interrupt storm
    assert not line.level
    uart.receive(b"root\n")  # typed on the console: below the trigger, a timeout interrupt
    handled, _ = run_cpu()
    assert bytes(rx) == b"root\n" and handled == 1 and not line.level


def test_seabios_serial_detection_finds_com1() -> None:
    """SeaBIOS's serial_setup: IER = 02h must read back, then IIR bits 5-0 must say THRE
    at once (the interrupt an empty THR raises when ETBEI is enabled); then IER = 0."""
    _, p, line, _ = _uart()
    p.outb(IER, 0x02)
    assert p.inb(IER) == 0x02
    assert p.inb(IIR) & 0x3F == 0x02
    p.outb(IER, 0)
    assert not line.level  # OUT2 was never set: no stray IRQ 4 during POST
