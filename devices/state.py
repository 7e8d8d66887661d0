"""Saved device state: named fields as plain data (style habit 8).

Each device lists its state fields next to ``reset()`` (a tuple of attribute names,
``STATE_FIELDS``) and offers ``state() -> dict`` and ``load_state(dict)``.  A state is
plain data only — ``None``, ``bool``, ``int``, ``float``, ``str``, lists, string-keyed
dicts and numpy arrays — so it can be written as JSON plus ``.npy`` arrays
(``emu/pc/state.py`` does that, documented in ``docs/state.md``).  Nothing callable is
state: listeners, IRQ lines and port ranges are wiring, rebuilt by constructing the same
board.

:func:`capture` turns the named attributes into plain data; :func:`apply` puts them
back, converting by the type the attribute has now (a fresh device of the same kind):
an enum from its value, ``bytearray``/``bytes`` from a uint8 array (a ``bytearray`` of
the same length is filled in place, so views of it stay valid), a ``deque`` or
``tuple`` from a list.  A value of the wrong kind raises :class:`StateError` before the
attribute is touched.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any

import numpy as np


class StateError(ValueError):
    """A saved state this code cannot read (missing field, wrong type, bad value)."""


_SCALARS = (type(None), bool, int, float, str)


def encode(value: Any) -> Any:
    """A value as plain data (see the module docstring)."""
    if isinstance(value, Enum):
        return encode(value.value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)  # IntEnum/IntFlag subclasses become plain ints
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return np.frombuffer(bytes(value), dtype=np.uint8).copy()
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (list, tuple, deque)):
        return [encode(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): encode(item) for key, item in value.items()}
    raise StateError(f"{type(value).__name__} is not saveable state")


def capture(obj: object, fields: Iterable[str]) -> dict[str, Any]:
    """The named attributes of ``obj`` as plain data."""
    return {name: encode(getattr(obj, name)) for name in fields}


def as_bytes(value: Any, name: str = "value") -> bytes:
    """A saved byte field (uint8 array or list of ints) back as bytes."""
    if isinstance(value, np.ndarray):
        if value.dtype != np.uint8:
            raise StateError(f"field {name!r}: expected bytes, got {value.dtype} array")
        return value.tobytes()
    if isinstance(value, list) and all(isinstance(v, int) and 0 <= v < 256 for v in value):
        return bytes(value)
    raise StateError(f"field {name!r}: expected bytes, got {type(value).__name__}")


def decode(current: Any, value: Any, name: str = "value") -> Any:
    """``value`` converted to the kind of ``current`` (the attribute as it is now)."""
    if isinstance(current, Enum):
        try:
            return type(current)(value)
        except (ValueError, TypeError):
            raise StateError(f"field {name!r} = {value!r}: not a "
                             f"{type(current).__name__}") from None
    if isinstance(current, bytearray):
        data = as_bytes(value, name)
        if len(data) == len(current):
            current[:] = data  # in place: views of the buffer stay valid
            return current
        return bytearray(data)
    if isinstance(current, bytes):
        return as_bytes(value, name)
    if isinstance(current, np.ndarray):
        if not isinstance(value, np.ndarray):
            raise StateError(f"field {name!r}: expected an array")
        if value.shape == current.shape and value.dtype == current.dtype \
                and current.flags.writeable:
            np.copyto(current, value)
            return current
        return value.copy()
    if isinstance(current, deque):
        if not isinstance(value, list):
            raise StateError(f"field {name!r}: expected a list")
        return deque(tuple(v) if isinstance(v, list) else v for v in value)
    if isinstance(current, (list, tuple)):
        if not isinstance(value, list):
            raise StateError(f"field {name!r}: expected a list")
        items = [tuple(v) if isinstance(v, list) and current and isinstance(current[0], tuple)
                 else v for v in value]
        return tuple(items) if isinstance(current, tuple) else items
    if isinstance(current, bool):
        if not isinstance(value, (bool, int)):
            raise StateError(f"field {name!r} = {value!r}: expected a boolean")
        return bool(value)
    if isinstance(current, int):
        if value is not None and (not isinstance(value, int) or isinstance(value, float)):
            raise StateError(f"field {name!r} = {value!r}: expected an integer")
        return value
    if isinstance(value, (list, dict, np.ndarray)) and not isinstance(current, (list, dict)) \
            and current is not None:
        raise StateError(f"field {name!r}: unexpected {type(value).__name__}")
    if current is None and isinstance(value, list):
        return tuple(value)  # an optional pair (e.g. a latched position)
    return value


def apply(obj: object, state: Mapping[str, Any], fields: Iterable[str]) -> None:
    """Set the named attributes of ``obj`` from ``state`` (checked first, then set)."""
    if not isinstance(state, Mapping):
        raise StateError(f"{type(obj).__name__}: expected a mapping of fields")
    fields = tuple(fields)
    missing = [name for name in fields if name not in state]
    if missing:
        raise StateError(f"{type(obj).__name__}: missing field {missing[0]!r}")
    values = {name: decode(getattr(obj, name, None), state[name], name) for name in fields}
    for name, value in values.items():
        setattr(obj, name, value)


def part(state: Mapping[str, Any], key: str) -> Any:
    """``state[key]``, or a :class:`StateError` naming the missing part."""
    if not isinstance(state, Mapping) or key not in state:
        raise StateError(f"missing part {key!r}")
    return state[key]
