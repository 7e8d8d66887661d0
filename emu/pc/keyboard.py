"""The BIOS keyboard behind INT 16h: a key buffer fed by a script or a terminal.

Keys are (scan code, ASCII) pairs as INT 16h AH=00h returns them (IBM PC/AT
Technical Reference, keyboard scan codes, set 1).  A scripted key is *typed
when the guest asks*: it enters the buffer once the guest waits on an empty
buffer (a blocking read, or a few polls in a row), so keys are not eaten by
a loader's start-up "was a key pressed?" checks and arrive at its prompt.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable

POLLS_BEFORE_TYPING = 4
"""Consecutive empty polls (INT 16h AH=01h) before the next scripted key is typed."""
POLLS_BEFORE_STARVED = 200
"""Consecutive empty polls, with nothing left to type, that mean "waiting for input"."""

_LETTERS = "qwertyuiop" + "asdfghjkl" + "zxcvbnm"
_LETTER_SCANS = [*range(0x10, 0x1A), *range(0x1E, 0x27), *range(0x2C, 0x33)]
_SCAN: dict[str, int] = {c: s for c, s in zip(_LETTERS, _LETTER_SCANS, strict=True)}
_SCAN.update({"1": 2, "2": 3, "3": 4, "4": 5, "5": 6, "6": 7, "7": 8, "8": 9, "9": 10, "0": 11,
              "-": 0x0C, "=": 0x0D, "[": 0x1A, "]": 0x1B, ";": 0x27, "'": 0x28, "`": 0x29,
              "\\": 0x2B, ",": 0x33, ".": 0x34, "/": 0x35, " ": 0x39, "\r": 0x1C, "\t": 0x0F,
              "\b": 0x0E, "\x1b": 0x01})
_SHIFTED = {"!": "1", "@": "2", "#": "3", "$": "4", "%": "5", "^": "6", "&": "7", "*": "8",
            "(": "9", ")": "0", "_": "-", "+": "=", "{": "[", "}": "]", ":": ";", '"': "'",
            "~": "`", "|": "\\", "<": ",", ">": ".", "?": "/"}
NAMED_KEYS = {"up": 0x4800, "down": 0x5000, "left": 0x4B00, "right": 0x4D00,
              "home": 0x4700, "end": 0x4F00, "pgup": 0x4900, "pgdn": 0x5100,
              "del": 0x5300, "ins": 0x5200, "f1": 0x3B00, "f2": 0x3C00, "f10": 0x4400,
              "enter": 0x1C0D, "esc": 0x011B, "tab": 0x0F09, "bs": 0x0E08}


def key_code(ch: str) -> int:
    """The INT 16h word (scan << 8 | ASCII) for one character."""
    base = ch.lower() if ch.isalpha() else _SHIFTED.get(ch, ch)
    if ch == "\n":
        base = ch = "\r"
    scan = _SCAN.get(base, 0)
    return (scan << 8) | (ord(ch) & 0xFF)


def parse_keys(text: str) -> list[int]:
    """Turn a ``--keys`` string into key words.

    Escapes: ``\\r`` or ``\\n`` Enter, ``\\t`` Tab, ``\\b`` Backspace, ``\\e`` Escape,
    ``\\\\`` a backslash, ``\\xNN`` a byte; ``{name}`` a named key (up, down, left,
    right, home, end, pgup, pgdn, del, ins, f1, f2, f10, enter, esc, tab, bs).
    """
    keys: list[int] = []
    escapes = {"r": "\r", "n": "\r", "t": "\t", "b": "\b", "e": "\x1b", "\\": "\\"}
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", text[i + 2 : i + 4]):
                keys.append(key_code(chr(int(text[i + 2 : i + 4], 16))))
                i += 4
                continue
            if nxt in escapes:
                keys.append(key_code(escapes[nxt]))
                i += 2
                continue
        if ch == "{":
            end = text.find("}", i)
            name = text[i + 1 : end].lower() if end > 0 else ""
            if name in NAMED_KEYS:
                keys.append(NAMED_KEYS[name])
                i = end + 1
                continue
        keys.append(key_code(ch))
        i += 1
    return keys


class Keyboard:
    """The BIOS key buffer plus the typist (script first, then an optional live source)."""

    def __init__(self, script: list[int] | None = None,
                 live: Callable[[], int | None] | None = None) -> None:
        self.script: deque[int] = deque(script or [])
        self.buffer: deque[int] = deque()
        self.live = live
        """Returns a typed key word or None (a terminal in raw mode)."""
        self.empty_polls = 0
        self.typed: list[int] = []

    def _type_next(self) -> bool:
        if self.script:
            key = self.script.popleft()
        elif self.live is not None:
            live = self.live()
            if live is None:
                return False
            key = live
        else:
            return False
        self.buffer.append(key)
        self.typed.append(key)
        return True

    def peek(self) -> int | None:
        """INT 16h AH=01h: the next key without taking it (the guest is polling)."""
        if not self.buffer:
            self.empty_polls += 1
            if self.empty_polls >= POLLS_BEFORE_TYPING or (self.live and not self.script):
                self._type_next()
        if self.buffer:
            return self.buffer[0]
        return None

    def read(self) -> int | None:
        """INT 16h AH=00h: take a key, typing the next one if the guest is waiting."""
        if not self.buffer:
            self._type_next()
        if self.buffer:
            self.empty_polls = 0
            return self.buffer.popleft()
        return None

    def store(self, key: int) -> bool:
        """INT 16h AH=05h: put a key in the buffer (False when full)."""
        if len(self.buffer) >= 15:
            return False
        self.buffer.append(key)
        return True

    @property
    def starved(self) -> bool:
        """The guest waits for a key that nobody will type."""
        return not self.buffer and not self.script and self.live is None \
            and self.empty_polls >= POLLS_BEFORE_STARVED
