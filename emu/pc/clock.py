"""The virtual clock: guest time measured in guest instructions, and how it is counted.

Guest time is a pure function of the guest's execution (booting-on-unicorn.md, pitfall 2:
never a wall-clock stop, never ``emu_start(timeout=...)``), so every run of the same
guest sees the same timer interrupts, the same counter reads and the same screens.
Two ways of counting, chosen per CPU (``EMU_CLOCK=native|count`` in the environment,
``native`` by default when the helper is built):

``native``  — the block clock (``_blockclock.c``, built at install time as a plain
    shared library and loaded with ctypes; no Python API, no Unicorn headers).  A
    ``UC_HOOK_BLOCK`` callback in C, registered with libunicorn's own ``uc_hook_add``
    on the binding's engine handle, charges each block's exact instruction count
    (``uc_tb.icount`` from ``UC_CTL_TB_REQUEST_CACHE``) when the block is entered and
    calls ``uc_emu_stop`` at the first block entry at or past the budget.  Blocks stay
    chained; the counter is live, so a device read inside a hook sees time that has
    passed within the run.  The rule where a count cannot be exact:

    * block counts come from a direct-mapped cache holding the count of the last block
      *translated* (or asked about) with the same linear start and byte size, with or
      without paging: the engine reports every block it translates while running
      (``UC_HOOK_EDGE_GENERATED``, called right after the translation, before the block
      is entered — all but the first block an engine ever translates), so rewritten
      code, a flushed translation cache or another address space's code at the same
      address replaces the entry.  The count is inexact only when two translations
      with the same start and size but different instruction counts are both alive and
      alternate without being translated again (the same linear address holding
      different code in two address spaces, or in two CPU modes such as 16- and 32-bit
      code at one address); it is still a pure function of the guest's execution.  On
      a miss, while paging is off, a second cache is trusted only for a block with the
      same start, byte size and first and last 8 bytes (its bytes are in RAM at the
      linear address then); otherwise the engine is asked (``UC_CTL_TB_REQUEST_CACHE``).
      Counting from the translation-time cache without paging too doubled a real-mode
      compute loop (783 → 1,627 M instr/s) and took 13-18 % off ISOLINUX, SeaBIOS and
      GRUB boots;
    * a run stops at a block boundary, so it overshoots its budget by less than one
      block (timers fire up to one block late, always the same block); the run
      loop's own limit (``Cpu.run(max_instructions)``, hence ``--max-instructions``
      and ``--guest-timeout``) is exact: the block that would cross it is stepped
      with a code hook over that one block;
    * a block is charged when entered: a device that reads the clock from inside a
      block sees the whole block as done; a block left early by an exception (a
      fault, a triple fault report) stays charged whole;
    * a stop requested from a Python hook takes effect at the end of the current
      block for port and interrupt hooks (the block finishes), at the next
      instruction for code hooks; a run resumed in the middle of a charged block
      does not charge its tail again when the tail ends where the block ended.

``count`` — the pure-Python fallback: ``emu_start(count=N)`` slices, which Unicorn
    implements with a code hook on every instruction (exact, 8-12 times slower, no
    block chaining).  The clock moves by whole slices; reads inside a slice see its
    start (plus any nudge).

Both are deterministic; they do not give the same counts as each other.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import os
from pathlib import Path
from typing import Protocol

DEFAULT_IPS = 100_000_000
"""Virtual instructions per second: the clock's exchange rate."""
CLOCK_ENV = "EMU_CLOCK"
"""Environment variable choosing the clock: ``native`` or ``count``."""
CLOCK_MODES = ("native", "count")


class ClockUnavailable(RuntimeError):
    """``EMU_CLOCK=native`` was asked for and the helper library is not built."""


CACHE_SIZE = 8192
"""Entries of the block-count cache (``BC_CACHE_SIZE`` in ``_blockclock.c``)."""


class CacheEntry(ctypes.Structure):
    """``struct bc_cache_entry``: a counted block, known by its start, size and end bytes."""

    _fields_ = (
        ("pc", ctypes.c_uint64),
        ("head", ctypes.c_uint64),
        ("tail", ctypes.c_uint64),
        ("size", ctypes.c_uint32),
        ("icount", ctypes.c_uint32),
    )


class BlockClockState(ctypes.Structure):
    """``struct bc_state`` of ``_blockclock.c``, field for field."""

    _fields_ = (
        ("executed", ctypes.c_uint64),
        ("budget", ctypes.c_uint64),
        ("blocks", ctypes.c_uint64),
        ("resume_pc", ctypes.c_uint64),
        ("resume_end", ctypes.c_uint64),
        ("last_pc", ctypes.c_uint64),
        ("last_end", ctypes.c_uint64),
        ("last_icount", ctypes.c_uint32),
        ("budget_stop", ctypes.c_uint32),
        ("estimated", ctypes.c_uint32),
        ("exact", ctypes.c_uint32),
        ("exact_stop", ctypes.c_uint32),
        ("partial_left", ctypes.c_uint32),
        ("partial_pc", ctypes.c_uint64),
        ("partial_end", ctypes.c_uint64),
        ("emu_stop", ctypes.c_void_p),
        ("ctl", ctypes.c_void_p),
        ("ram", ctypes.c_void_p),
        ("ram_size", ctypes.c_uint64),
        ("paging", ctypes.c_void_p),
        ("cache_hits", ctypes.c_uint64),
        ("cache", ctypes.c_void_p),
        ("gen_cache", ctypes.c_void_p),
        ("gen_hits", ctypes.c_uint64),
    )


class GenEntry(ctypes.Structure):
    """``struct bc_gen_entry``: the count of the last block translated at a start, by size."""

    _fields_ = (("pc", ctypes.c_uint64), ("size", ctypes.c_uint32),
                ("icount", ctypes.c_uint32))


_UNLIMITED = (1 << 64) - 1
_helper: ctypes.CDLL | None | bool = False  # False: not looked for yet


def helper_path() -> Path | None:
    """Where the built helper library is, if it was built."""
    here = Path(__file__).parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = here / f"_blockclock{suffix}"
        if candidate.exists():
            return candidate
    return None


def _load_helper() -> ctypes.CDLL | None:
    global _helper
    if _helper is False:
        path = helper_path()
        try:
            _helper = ctypes.CDLL(str(path)) if path is not None else None
        except OSError:
            _helper = None
    return _helper or None


def native_available() -> bool:
    """Is the native block clock built and loadable?"""
    return _load_helper() is not None


def default_mode() -> str:
    """The clock ``EMU_CLOCK`` asks for, else ``native`` when built, else ``count``."""
    asked = os.environ.get(CLOCK_ENV, "").strip().lower()
    if asked in CLOCK_MODES:
        return asked
    return "native" if native_available() else "count"


def add_native_hook(uc: object, kind: int, function: object, user_data: ctypes.Structure,
                    what: str) -> ctypes.c_size_t:
    """Register ``function`` (a C function of the helper library) as a Unicorn hook of
    ``kind`` over all addresses, with ``user_data`` (a ctypes structure the caller keeps
    alive), through libunicorn's own ``uc_hook_add`` on the binding's engine handle.
    Returns the hook handle; raises :class:`ClockUnavailable` naming ``what``."""
    from unicorn.unicorn_py3.unicorn import uclib

    handle = ctypes.c_size_t()
    status = uclib.uc_hook_add(
        uc._uch, ctypes.byref(handle), kind,  # type: ignore[attr-defined]
        ctypes.cast(function, ctypes.c_void_p),
        ctypes.cast(ctypes.byref(user_data), ctypes.c_void_p), 1, 0)
    if status != 0:
        raise ClockUnavailable(f"uc_hook_add for {what} failed ({status})")
    return handle


class Timer(Protocol):
    """A periodic event source on the :class:`VirtualClock`."""

    deadline: int | None

    def fire(self) -> None:
        """Called once per expired deadline; sets the next ``deadline`` (or None)."""
        ...


class VirtualClock:
    """Time measured in guest instructions: deterministic, independent of the host.

    ``instructions`` counts executed instructions and skipped idle time; ``nudge``
    moves time forward without instructions (a BIOS wait, a polled timer).  Timers
    register with :meth:`add_timer` and are fired by the run loop.  The count lives
    in a :class:`BlockClockState`, which the native block hook updates while the CPU
    runs, so reads from inside hooks are current.
    """

    def __init__(self, ips: int = DEFAULT_IPS) -> None:
        self.ips = ips
        self.state = BlockClockState()
        self.state.budget = _UNLIMITED
        self._timers: list[Timer] = []

    @property
    def instructions(self) -> int:
        return self.state.executed

    @instructions.setter
    def instructions(self, value: int) -> None:
        self.state.executed = value

    @property
    def seconds(self) -> float:
        return self.state.executed / self.ips

    def ns(self) -> int:
        return self.state.executed * 1_000_000_000 // self.ips

    def to_instructions(self, seconds: float) -> int:
        return max(1, int(seconds * self.ips))

    def nudge(self, instructions: int) -> None:
        if instructions > 0:
            self.state.executed += instructions

    def advance_to(self, instructions: int) -> None:
        """Move time forward to ``instructions`` (never backwards)."""
        if instructions > self.state.executed:
            self.state.executed = instructions

    SAVED_FIELDS = ("executed", "last_pc", "last_end", "last_icount", "resume_pc",
                    "resume_end", "partial_left", "partial_pc", "partial_end")
    """What a saved state keeps of :class:`BlockClockState` (emu/pc/state.py): the count
    and what the native block hook carries from one run to the next (a block charged but
    cut short, a partly counted block).  Budgets are set per run; the pointers and the
    block-count cache are this process's."""

    def saved_state(self) -> dict[str, int]:
        """The clock's saved state (``ips`` is the board's; each timer saves its own
        ``deadline``, and the timer list is wiring rebuilt in the same order)."""
        return {name: int(getattr(self.state, name)) for name in self.SAVED_FIELDS}

    def load_saved_state(self, saved: dict[str, int]) -> None:
        for name in self.SAVED_FIELDS:
            value = saved.get(name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"clock: field {name!r} is not a count")
        for name in self.SAVED_FIELDS:
            setattr(self.state, name, saved[name])

    def add_timer(self, timer: Timer) -> None:
        self._timers.append(timer)

    def next_deadline(self) -> int | None:
        """The instruction count at which the next timer fires, if any."""
        due = [t.deadline for t in self._timers if t.deadline is not None]
        return min(due) if due else None

    def fire_due(self) -> None:
        for timer in self._timers:
            while timer.deadline is not None and timer.deadline <= self.state.executed:
                timer.fire()


class BlockClock:
    """The native block hook installed on one engine, counting into a clock's state."""

    def __init__(self, uc: object, clock: VirtualClock) -> None:
        lib = _load_helper()
        if lib is None:
            raise ClockUnavailable(
                f"{CLOCK_ENV}=native: the block-clock helper is not built "
                "(reinstall with a C compiler, or use EMU_CLOCK=count)")
        from unicorn import UC_HOOK_BLOCK
        from unicorn.unicorn_py3.unicorn import uclib

        self.state = state = clock.state
        state.exact = 1
        self._cache = (CacheEntry * CACHE_SIZE)()
        state.cache = ctypes.addressof(self._cache)
        self.paging = ctypes.c_uint32(1)
        """Set by the CPU before each run from CR0.PG when no fast-store TLB tracks it
        (the cache is used only while it is 0; paging turned on inside a run is seen at
        the next run)."""
        state.emu_stop = ctypes.cast(uclib.uc_emu_stop, ctypes.c_void_p).value
        state.ctl = ctypes.cast(uclib.uc_ctl, ctypes.c_void_p).value
        self._uc = uc
        self._handle = add_native_hook(uc, UC_HOOK_BLOCK, lib.bc_block_hook, state,
                                       "the block clock")
        from unicorn import UC_HOOK_EDGE_GENERATED

        self._gen_cache = (GenEntry * CACHE_SIZE)()
        self._gen_handle = add_native_hook(uc, UC_HOOK_EDGE_GENERATED, lib.bc_tb_generated,
                                           state, "the translation hook")
        state.gen_cache = ctypes.addressof(self._gen_cache)

    def use_count_cache(self, ram: int, ram_size: int, paging_flag: int | None = None) -> None:
        """Count blocks from the cache while ``*paging_flag`` is 0 (no paging: linear =
        physical), reading code bytes at ``ram``; the flag is the fast-store TLB's
        ``paging``, or else :attr:`paging`."""
        self.state.ram = ram
        self.state.ram_size = ram_size
        self.state.paging = (paging_flag if paging_flag is not None
                             else ctypes.addressof(self.paging))

    def arm(self, budget: int, exact: bool = False) -> None:
        """Stop at the first block entry with the count at or past ``budget``; with
        ``exact``, before a block that would cross it (see :meth:`Cpu._run_native`)."""
        self.state.budget = budget
        self.state.budget_stop = 0
        self.state.exact_stop = int(exact)

    def disarm(self) -> int:
        """After a run: 0 if the budget did not end it, 1 if it stopped at a block entry
        at or past the budget, 2 if it stopped before a block that would cross it."""
        self.state.budget = _UNLIMITED
        self.state.exact_stop = 0
        return int(self.state.budget_stop)

    def stopped_at(self, linear_ip: int, inclusive: bool = False) -> None:
        """A run ended off a budget boundary at ``linear_ip``: if that is inside the
        last charged block, its tail is not charged again on resumption.  ``inclusive``:
        the run ended inside that block even at its first instruction (an access the
        block made was restarted), so the whole block is not charged again either."""
        state = self.state
        if state.last_pc < linear_ip < state.last_end or (
                inclusive and linear_ip == state.last_pc < state.last_end):
            state.resume_pc = linear_ip
            state.resume_end = state.last_end
        else:
            state.resume_end = 0

    def skip_first_block(self, start: int, end: int) -> None:
        """The next run's first block ``[start, end)`` is counted by the caller."""
        self.state.resume_pc = start
        self.state.resume_end = end
        self.state.last_end = 0
