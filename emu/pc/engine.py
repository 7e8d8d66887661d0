"""Unicorn 2.1.4's x86 engine, made into a CPU the glue can drive in every mode.

What is modelled: the parts of the processor state that Unicorn's Python API
cannot reach correctly, reached through the engine's saved context instead.
Every fact below was measured on unicorn 2.1.4 and has a regression test in
``tests/test_engine.py``; docs/booting.md lists them as pitfalls.

* **The engine is created in ``UC_MODE_64``.**  Only then do RIP, RSP and
  R8–R15 read and write as 64-bit registers from Python (in ``UC_MODE_32`` they
  read as 0, and ``emu_start`` truncates a 64-bit resume address).  The mode
  only chooses the register API: the TCG core is the same x86-64 CPU, and
  after :func:`new_engine` leaves long mode (CR0.PG set then cleared, which
  clears EFER.LMA; EFER and CR4 zeroed) it is in real mode, CR0.PE clear, as
  after RESET (Intel SDM vol 3 §9.1.1).  ``UC_MODE_16`` stays unused (pitfall
  1: it drops EIP's top bits on resumption).
* **Segment registers are loaded through the context.**  In ``UC_MODE_64`` a
  register write of CS, DS, ES or SS stores the selector only: the hidden base,
  limit and attributes (SDM vol 3 §3.4.3) keep their old values.  In
  ``UC_MODE_32`` the write runs the engine's MOV-to-segment checks against the
  current CPL, so a privilege change (ring 3 → ring 0 through an IDT gate)
  cannot be loaded at all.  :meth:`Engine.load_segments` therefore writes the
  descriptor caches into a saved context and restores it, recomputing the
  engine's derived mode bits the way a segment load does on the CPU: CPL =
  SS.DPL (SDM vol 3 §5.5), 16/32/64-bit code from CS.D and CS.L with EFER.LMA
  (§5.2.1), 16/32-bit stack from SS.B.
* **``emu_start``'s ``until`` is a guest fault in disguise.**  Unicorn looks
  the ``until`` address up through the guest's page tables before it runs;
  with paging on and nothing mapped there, the ``#PF`` (``#GP`` for a
  non-canonical address) is raised inside the engine, seen by no hook, and
  remembered (next point).  :func:`new_engine` turns Unicorn's "exits" on with
  an empty list, which makes ``until`` inert.
* **The engine remembers the last exception** (QEMU's double-fault
  bookkeeping, which only its own interrupt delivery clears, and Unicorn never
  runs it).  Without help, a second ``#PF`` arrives as ``#DF`` and a third stops
  the engine.  :meth:`Engine.exception` reads the pending exception's error
  code (Unicorn passes only the vector to the interrupt hook) and whether it
  came from ``INT n``; :meth:`Engine.load_segments` with ``forget_exception``
  clears the remembered vector, so consecutive faults arrive as themselves.
  The double/triple-fault rules are then the glue's (``emu/pc/delivery.py``).
* **``ctl_remove_cache`` takes a linear address and can fault.**  It looks its
  start up as an instruction fetch through the guest's page tables; with paging
  on, a physical range the host just wrote (a bus-master DMA into a page cache)
  is the wrong address, and where nothing is mapped the lookup raises a ``#PF``
  that no hook sees and that is remembered as above.  Found by Linux 6.1: its
  first DMA reads left the remembered vector at ``#DF``, after which every page
  fault (a user process's copy-on-write) stopped the engine without a word.
  :class:`CodeCache` therefore drops code for host writes by the RAM's own
  address (the engine's ``ram_addr``, from the host pointer), page by page,
  through two functions libunicorn exports (``qemu_ram_addr_from_host`` and
  ``tb_invalidate_phys_page_range``, ``_x86_64`` builds) — what QEMU's own DMA
  writes do (and ``Cpu.retranslate``, for a code hook's linear range, looks the
  pages up in the guest's tables itself first).  Putting the remembered vector
  back is not enough: the lookup's fault also stays pending in the engine (outside
  the saved context) and the next run delivers it to the guest, with the looked-up
  address in CR2.

No offset inside the context is a constant: :func:`probe_layout` finds each
field once per process with probe runs in a scratch engine (a segment load, a
CR0 write, three page faults and an ``INT n``) and refuses to go on if any
answer is ambiguous.
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

from unicorn import UC_ARCH_X86, UC_HOOK_INTR, UC_MODE_64, Uc, UcError
from unicorn import x86_const as X
from unicorn.unicorn_py3.unicorn import uclib

ES, CS, SS, DS, FS, GS = range(6)
"""Segment register numbers: the instruction encoding's order (SDM vol 2 §3.1.1.3)."""
SEGMENT_REGS = {"es": ES, "cs": CS, "ss": SS, "ds": DS, "fs": FS, "gs": GS}
UC_SEGMENT = {X.UC_X86_REG_ES: ES, X.UC_X86_REG_CS: CS, X.UC_X86_REG_SS: SS,
              X.UC_X86_REG_DS: DS, X.UC_X86_REG_FS: FS, X.UC_X86_REG_GS: GS}

MSR_EFER = 0xC000_0080
EFER_LME, EFER_LMA, EFER_NXE = 0x100, 0x400, 0x800

# Descriptor attribute bits as the engine caches them: the descriptor's high dword
# (SDM vol 3 §3.4.5, figure 3-8).
DESC_DPL_SHIFT = 13
DESC_L = 1 << 21
DESC_B = 1 << 22

# The engine's derived mode bits (QEMU's "hflags" word; positions found by probe).
_HF_CPL = 0x3
_HF_CS32 = 1 << 4
_HF_SS32 = 1 << 5
_HF_ADDSEG = 1 << 6
_HF_PE = 1 << 7
_HF_LMA = 1 << 14
_HF_CS64 = 1 << 15
_HF_VM = 1 << 17


@dataclass(frozen=True)
class Segment:
    """A segment register with its hidden part (SDM vol 3 §3.4.3)."""

    selector: int
    base: int
    limit: int
    flags: int
    """The descriptor's high dword: type, S, DPL, P, AVL, L, D/B, G."""

    @property
    def dpl(self) -> int:
        return (self.flags >> DESC_DPL_SHIFT) & 3


@dataclass(frozen=True)
class Layout:
    """Where the engine keeps what the Python API does not show (context offsets)."""

    segments: int
    """Offset of the ES cache; CS, SS, DS, FS, GS follow every ``stride`` bytes."""
    stride: int
    hflags: int
    error_code: int
    """The pending exception's error code (``#PF`` P/W/U/I bits, ``#GP`` selector)."""
    is_int: int
    """Nonzero when the pending event is an ``INT n`` (a software interrupt)."""
    old_exception: int
    """The remembered exception vector; -1 when none is in flight."""


class EngineError(RuntimeError):
    """This Unicorn build does not behave as the glue was measured to expect."""


def new_engine() -> Uc:
    """A ``UC_MODE_64`` engine in real mode: CR0 = 10h, EFER = 0, CR4 = 0."""
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    # UC_MODE_64 starts with EFER.LME|LMA and CR0.PE set; LMA is read-only to WRMSR
    # and clears only when paging is turned off while it is set.
    uc.reg_write(X.UC_X86_REG_CR0, 0x8000_0011)
    uc.reg_write(X.UC_X86_REG_CR0, 0x10)
    uc.msr_write(MSR_EFER, 0)
    uc.reg_write(X.UC_X86_REG_CR4, 0)
    if uc.msr_read(MSR_EFER) & EFER_LMA:
        raise EngineError("the engine stays in long mode with paging off")
    # emu_start's ``until`` address is translated through the guest's page tables
    # before anything runs: unmapped (or non-canonical) it raises a #PF (#GP) inside
    # the engine that no hook sees but that is remembered, so the guest's next real
    # fault arrives as #DF or stops the engine.  With "exits" enabled and none set,
    # ``until`` is ignored; slices end by count or by our own stops.
    uc.ctl_exits_enabled(True)
    return uc


@cache
def engine_cpuid(leaf: int, subleaf: int = 0) -> tuple[int, int, int, int]:
    """What the engine's CPU model answers to CPUID ``leaf``/``subleaf`` in a fresh engine
    (real mode, CR4 = 0): EAX, EBX, ECX, EDX."""
    uc = new_engine()
    uc.mem_map(0, 0x1000)
    uc.mem_write(0, bytes.fromhex("0fa2f4"))  # cpuid; hlt
    uc.reg_write(X.UC_X86_REG_EAX, leaf)
    uc.reg_write(X.UC_X86_REG_ECX, subleaf)
    uc.emu_start(0, 2)
    regs = (X.UC_X86_REG_EAX, X.UC_X86_REG_EBX, X.UC_X86_REG_ECX, X.UC_X86_REG_EDX)
    eax, ebx, ecx, edx = (uc.reg_read(r) & 0xFFFF_FFFF for r in regs)
    return eax, ebx, ecx, edx


def _ints(blob: bytes) -> tuple[int, ...]:
    return struct.unpack(f"<{len(blob) // 4}i", blob[: len(blob) // 4 * 4])


def _only(candidates: list[int], what: str) -> int:
    if len(candidates) != 1:
        raise EngineError(f"probe for the engine's {what} found {len(candidates)} candidates")
    return candidates[0]


@cache
def probe_layout() -> Layout:
    """Find the context offsets with probe runs in a scratch engine (once per process)."""
    uc = new_engine()

    def snap() -> bytes:
        return bytes(uc.context_save())

    # Segment caches: FS and GS loads work from Python in real mode; the caches
    # are {selector, base, limit, flags}, ES first.
    uc.reg_write(X.UC_X86_REG_FS, 0x1234)
    one = snap()
    uc.reg_write(X.UC_X86_REG_FS, 0x2345)
    uc.reg_write(X.UC_X86_REG_GS, 0x3456)
    two = snap()
    span = len(one) - 16
    fs = _only([o for o in range(0, span, 4)
                if struct.unpack_from("<IIQ", one, o)[::2] == (0x1234, 0x12340)
                and struct.unpack_from("<IIQ", two, o)[::2] == (0x2345, 0x23450)], "FS cache")
    gs = _only([o for o in range(0, span, 4)
                if struct.unpack_from("<IIQ", two, o)[::2] == (0x3456, 0x34560)], "GS cache")
    stride = gs - fs
    # Derived mode bits: CR0.MP and CR0.TS are copied to two bits of one word.
    base = _ints(snap())
    uc.reg_write(X.UC_X86_REG_CR0, 0x12)
    mp = _ints(snap())
    uc.reg_write(X.UC_X86_REG_CR0, 0x18)
    ts = _ints(snap())
    uc.reg_write(X.UC_X86_REG_CR0, 0x10)
    hflags = 4 * _only([k for k in range(len(base))
                        if base[k] ^ mp[k] == 1 << 9 and mp[k] ^ ts[k] == (1 << 9 | 1 << 11)],
                       "mode bits")
    old, code, is_int = _probe_exceptions()
    return Layout(segments=fs - 4 * stride, stride=stride, hflags=hflags, error_code=code,
                  is_int=is_int, old_exception=old)


def _probe_exceptions() -> tuple[int, int, int]:
    """Three page faults and an ``INT n`` in 32-bit paged protected mode.

    Returns the offsets of the remembered exception, the error code and the
    software-interrupt flag.  The second and third faults only arrive as ``#PF``
    if the remembered exception was found and cleared: the probe proves the fix.
    """
    uc = new_engine()
    uc.mem_map(0, 0x10000)
    # Page directory at 1000h, one page table at 2000h mapping 0–FFFFh, except:
    # 3000h read-only, 4000h not present.
    uc.mem_write(0x1000, struct.pack("<I", 0x2000 | 3))
    table = bytearray(4096)
    for page in range(16):
        struct.pack_into("<I", table, page * 4, page << 12 | 3)
    struct.pack_into("<I", table, 3 * 4, 3 << 12 | 1)
    struct.pack_into("<I", table, 4 * 4, 0)
    uc.mem_write(0x2000, bytes(table))
    programs = [
        (0x5000, "c7050040000001000000"),  # mov dword [4000h], 1: write, not present → 2
        (0x5100, "c7050030000001000000"),  # mov dword [3000h], 1: write, read-only → 3
        (0x5200, "a100400000"),            # mov eax, [4000h]: read, not present → 0
        (0x5300, "cd21"),                  # int 21h
    ]
    for address, code in programs:
        uc.mem_write(address, bytes.fromhex(code))
    uc.reg_write(X.UC_X86_REG_CR3, 0x1000)
    uc.reg_write(X.UC_X86_REG_CR0, 0x8001_0011)  # PG, WP, ET, PE
    ctx = uc.context_save()
    address_of = ctypes.cast(ctx.context, ctypes.c_void_p).value or 0
    seen: list[tuple[int, tuple[int, ...]]] = []
    clear: list[int] = []

    def hook(engine: Uc, intno: int, _user: object) -> None:
        engine.context_update(ctx)
        seen.append((intno, _ints(bytes(ctx))))
        if clear:
            ctypes.c_int32.from_address(address_of + clear[0]).value = -1
            engine.context_restore(ctx)
        engine.emu_stop()

    uc.hook_add(UC_HOOK_INTR, hook)
    before = _ints(bytes(uc.context_save()))
    try:
        for n, (address, _) in enumerate(programs):
            uc.emu_start(address, address + 0x100, 0, 1)
            if n == 0:
                first = seen[0][1]
                clear.append(4 * _only([k for k in range(len(before))
                                        if before[k] == -1 and first[k] == 14],
                                       "remembered exception"))
                uc.context_update(ctx)
                ctypes.c_int32.from_address(address_of + clear[0]).value = -1
                uc.context_restore(ctx)
    except UcError as exc:
        raise EngineError(f"exception probe stopped: {exc}") from exc
    vectors = [intno for intno, _ in seen]
    if vectors != [14, 14, 14, 0x21]:
        raise EngineError(f"exception probe saw vectors {vectors}, not 14, 14, 14, 21h")
    a, b, c, d = (ints for _, ints in seen)
    code = _only([k for k in range(len(a)) if a[k] == 2 and b[k] == 3 and c[k] == 0],
                 "error code")
    is_int = _only([k for k in range(len(a)) if d[k] == 1 and a[k] == b[k] == c[k] == 0
                    and 4 * k != 4 * code], "software-interrupt flag")
    return clear[0], 4 * code, 4 * is_int


class Registers:
    """One integer register at a time, read or written with one call into the C library.

    The binding's ``reg_read``/``reg_write`` pick a value type per call in Python (about
    3.5 µs); a register of up to 64 bits (general, flags, instruction pointer, control
    registers, a segment register's selector) fits one preallocated 64-bit slot, zeroed
    before a read so a narrower register's value is exact.  Not for descriptor-table
    registers, segment caches or FPU/SSE state (the binding's tuples)."""

    def __init__(self, uc: Uc) -> None:
        self._handle = uc._uch  # noqa: SLF001 - the engine the binding opened
        self._value = ctypes.c_uint64()
        self._ref = ctypes.byref(self._value)

    def read(self, register: int) -> int:
        self._value.value = 0
        status = uclib.uc_reg_read(self._handle, register, self._ref)
        if status:
            raise UcError(status)
        return self._value.value

    def write(self, register: int, value: int) -> None:
        self._value.value = value & 0xFFFF_FFFF_FFFF_FFFF
        status = uclib.uc_reg_write(self._handle, register, self._ref)
        if status:
            raise UcError(status)


class RegisterBatch:
    """A fixed list of registers read or written in one call to the C library.

    The binding's ``reg_read_batch`` picks a value type per register in Python
    (about 3.5 µs a register here); this keeps one 64-bit slot per register,
    preallocated, and calls ``uc_reg_read_batch``/``uc_reg_write_batch``
    directly (about 2 µs for six).  x86 is little-endian, so a 16- or 32-bit
    register reads into and writes from the low bytes of its slot; each slot
    only ever holds its own register, so the bytes above stay zero.
    """

    def __init__(self, uc: Uc, registers: Sequence[int]) -> None:
        self._handle = uc._uch  # noqa: SLF001 - the engine the binding opened
        self._count = len(registers)
        self._ids = (ctypes.c_int * self._count)(*registers)
        self._values = (ctypes.c_uint64 * self._count)()
        base = ctypes.addressof(self._values)
        self._slots = (ctypes.c_void_p * self._count)(*[base + 8 * n
                                                         for n in range(self._count)])

    def read(self) -> list[int]:
        status = uclib.uc_reg_read_batch(self._handle, self._ids, self._slots, self._count)
        if status:
            raise UcError(status)
        return list(self._values)

    def write(self, *values: int) -> None:
        for n, value in enumerate(values):
            self._values[n] = value & 0xFFFF_FFFF_FFFF_FFFF
        status = uclib.uc_reg_write_batch(self._handle, self._ids, self._slots, self._count)
        if status:
            raise UcError(status)


class CodeCache:
    """Translated code dropped for guest memory that changed behind the engine's back.

    Guest stores are tracked by the engine itself; a write from the host (a device's
    DMA, the built-in BIOS, a restored snapshot) is not (booting-on-unicorn.md, pitfall
    4), so the writer must say which bytes changed.  :meth:`drop_host` does it by where
    the bytes are, the way QEMU's own DMA path invalidates a physical range, so it is
    right with paging on or off.  Without the two exported functions (another Unicorn
    build) it falls back to ``ctl_remove_cache`` with paging off and to flushing every
    translated block with paging on (correct, slower).
    """

    PAGE = 0x1000

    def __init__(self, uc: Uc) -> None:
        self.uc = uc
        self._handle = uc._uch  # type: ignore[attr-defined]
        try:
            from_host = uclib.qemu_ram_addr_from_host_x86_64
            drop_page = uclib.tb_invalidate_phys_page_range_x86_64
        except AttributeError:
            self.native = False
            return
        from_host.argtypes = (ctypes.c_void_p, ctypes.c_void_p)
        from_host.restype = ctypes.c_uint64
        drop_page.argtypes = (ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64)
        drop_page.restype = None
        self._from_host = from_host
        self._drop_page = drop_page
        self.native = True
        """Dropping by RAM address is available (the pinned Unicorn build exports it)."""

    def drop_host(self, host: int, length: int, physical: int) -> None:
        """The host wrote ``length`` bytes at host address ``host`` (guest physical
        ``physical``): drop every translated block that overlaps them."""
        if length <= 0:
            return
        if not self.native:
            if self.uc.reg_read(X.UC_X86_REG_CR0) & 0x8000_0000:  # CR0.PG
                self.uc.ctl_flush_tb()
            else:  # linear = physical: nothing to look up in page tables
                self.uc.ctl_remove_cache(physical, physical + length)
            return
        page = self.PAGE
        while length > 0:
            ram = self._from_host(self._handle, host)
            if ram == (1 << 64) - 1:
                return  # not the engine's RAM: nothing can be translated from it
            step = min(length, page - (ram & (page - 1)))
            self._drop_page(self._handle, ram, ram + step)
            host += step
            length -= step


class Engine:
    """The state access :class:`~emu.pc.cpu.Cpu` needs beyond Unicorn's register API."""

    def __init__(self, uc: Uc, layout: Layout | None = None) -> None:
        self.uc = uc
        self.layout = layout or probe_layout()
        self._ctx = uc.context_save()
        self._address = ctypes.cast(self._ctx.context, ctypes.c_void_p).value or 0

    def _field(self, ctype: type[ctypes._SimpleCData], offset: int) -> ctypes._SimpleCData:
        return ctype.from_address(self._address + offset)

    def _segment_at(self, index: int) -> tuple[int, int, int, int]:
        at = self._address + self.layout.segments + index * self.layout.stride
        return (ctypes.c_uint32.from_address(at).value, ctypes.c_uint64.from_address(at + 8).value,
                ctypes.c_uint32.from_address(at + 16).value,
                ctypes.c_uint32.from_address(at + 20).value)

    def segment(self, index: int) -> Segment:
        """The segment register ``index`` (:data:`CS`...) with its hidden part."""
        self.uc.context_update(self._ctx)
        return Segment(*self._segment_at(index))

    def exception(self) -> tuple[int, bool]:
        """``(error code, from INT n)`` of the event the interrupt hook is handling."""
        self.uc.context_update(self._ctx)
        code = self._field(ctypes.c_int32, self.layout.error_code).value
        return code & 0xFFFF_FFFF, bool(self._field(ctypes.c_int32, self.layout.is_int).value)

    def load_segments(self, segments: Mapping[int, Segment | int],
                      forget_exception: bool = False) -> None:
        """Load segment registers (caches included) as the CPU does, without its checks.

        A :class:`Segment` replaces the whole register; a bare selector is a
        real-mode load (selector and base = selector × 16; limit and attributes
        stay, SDM vol 3 §20.1.1).  ``forget_exception`` also clears the engine's
        remembered exception (call it once an exception has been delivered).
        """
        uc = self.uc
        uc.context_update(self._ctx)
        layout = self.layout
        for index, seg in segments.items():
            at = self._address + layout.segments + index * layout.stride
            if isinstance(seg, int):
                ctypes.c_uint32.from_address(at).value = seg & 0xFFFF
                ctypes.c_uint64.from_address(at + 8).value = (seg & 0xFFFF) << 4
                continue
            ctypes.c_uint32.from_address(at).value = seg.selector & 0xFFFF
            ctypes.c_uint64.from_address(at + 8).value = seg.base & 0xFFFF_FFFF_FFFF_FFFF
            ctypes.c_uint32.from_address(at + 16).value = seg.limit & 0xFFFF_FFFF
            ctypes.c_uint32.from_address(at + 20).value = seg.flags & 0xFFFF_FFFF
        hflags = self._field(ctypes.c_uint32, layout.hflags)
        hflags.value = self._mode_bits(hflags.value, SS in segments)
        if forget_exception:
            self._field(ctypes.c_int32, layout.old_exception).value = -1
        uc.context_restore(self._ctx)

    def remembered_exception(self) -> int:
        """The exception vector the engine remembers (-1: none)."""
        self.uc.context_update(self._ctx)
        return int(self._field(ctypes.c_int32, self.layout.old_exception).value)

    def forget_exception(self, value: int = -1) -> None:
        """Clear the remembered exception only (or put ``value`` back)."""
        self.uc.context_update(self._ctx)
        self._field(ctypes.c_int32, self.layout.old_exception).value = value
        self.uc.context_restore(self._ctx)

    def _mode_bits(self, hflags: int, ss_loaded: bool) -> int:
        """The derived bits a segment load recomputes (SDM vol 3 §5.2.1, §5.5)."""
        cs_flags = self._segment_at(CS)[3]
        ss_flags = self._segment_at(SS)[3]
        protected = bool(hflags & _HF_PE)
        vm86 = bool(hflags & _HF_VM)
        if ss_loaded:
            cpl = ((ss_flags >> DESC_DPL_SHIFT) & 3) if protected and not vm86 else (
                3 if vm86 else 0)
            hflags = (hflags & ~_HF_CPL) | cpl
        cs64 = bool(hflags & _HF_LMA) and bool(cs_flags & DESC_L)
        cs32 = cs64 or bool(cs_flags & DESC_B)
        hflags &= ~(_HF_CS32 | _HF_CS64 | _HF_SS32 | _HF_ADDSEG)
        if cs64:
            hflags |= _HF_CS64
        if cs32:
            hflags |= _HF_CS32
        if ss_flags & DESC_B:
            hflags |= _HF_SS32
        if not cs64:
            if not protected or vm86 or not cs32:
                hflags |= _HF_ADDSEG
            elif self._segment_at(DS)[1] | self._segment_at(ES)[1] | self._segment_at(SS)[1]:
                hflags |= _HF_ADDSEG
        return hflags
