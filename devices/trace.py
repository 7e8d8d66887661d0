"""Structured trace events, emitted by every layer and free when tracing is off.

A device holds ``self.trace: Tracer | None``; every trace point is guarded by
``if self.trace is not None`` so nothing is built when tracing is off.  The
event kinds are named (``port``, ``ata``, ``cdb``, ``phase``, ``drq``,
``sense``, ``irq``, ``dma``, ``media``, ``api``); a renderer in ``emu`` turns
them into the teaching trace, tests compare them as transcripts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One named event: ``kind`` plus its fields (JSON-friendly values only)."""

    kind: str
    source: str
    fields: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "source": self.source, **self.fields}


@dataclass(eq=False)
class Tracer:
    """Collects events in order and hands them to optional sinks."""

    events: list[TraceEvent] = field(default_factory=list)
    sinks: list[Callable[[TraceEvent], None]] = field(default_factory=list)
    keep: bool = True

    def emit(self, kind: str, source: str, **fields: Any) -> None:
        event = TraceEvent(kind, source, fields)
        if self.keep:
            self.events.append(event)
        for sink in self.sinks:
            sink(event)

    def clear(self) -> None:
        self.events.clear()
