"""The 80×25 colour text screen behind INT 10h, and the text stream users see.

The screen lives where a VGA keeps it, in guest memory at B8000h (character +
attribute per cell, 4 KiB per page, eight pages), so a loader that writes
there directly is on the screen too.  The cursor and mode live in the BIOS
data area fields loaders read (IBM PC/AT Technical Reference, BDA 40:49h-40:66h,
40:84h): 0x449 mode, 0x44A columns, 0x44C page size, 0x450 cursor per page,
0x460 cursor shape, 0x462 active page, 0x463 CRTC port, 0x484 rows − 1.

The *stream* turns screen writes into terminal text in the order they happen:
a character written right after the previous one is appended; one on a later
row starts new lines; a backward move on the same row becomes backspaces;
scrolling moves the stream's notion of "the previous row" up with the text.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

TEXT_BASE = 0xB8000
COLUMNS, ROWS = 80, 25
PAGE_SIZE = 0x1000
DEFAULT_ATTR = 0x07

BDA_MODE, BDA_COLUMNS, BDA_PAGE_SIZE, BDA_PAGE_OFFSET = 0x449, 0x44A, 0x44C, 0x44E
BDA_CURSOR, BDA_CURSOR_SHAPE, BDA_PAGE, BDA_CRTC = 0x450, 0x460, 0x462, 0x463
BDA_ROWS, BDA_CHAR_HEIGHT = 0x484, 0x485


class Screen:
    """Text mode 3 over guest RAM, with a stream of what appears."""

    def __init__(self, ram: np.ndarray, on_text: Callable[[str], None] | None = None,
                 before_change: Callable[[], None] | None = None) -> None:
        self.ram = ram
        self.on_text = on_text
        self.before_change = before_change
        """Called before the screen scrolls or clears, so a reader of the frame sees the
        text that is about to go (the session's screen reader)."""
        self.stream: list[str] = []
        self._stream_pos = (0, 0)
        self.set_mode(3)

    # -- BDA-backed state ------------------------------------------------------------
    def _u16(self, address: int) -> int:
        return int(self.ram[address]) | (int(self.ram[address + 1]) << 8)

    def _put16(self, address: int, value: int) -> None:
        self.ram[address] = value & 0xFF
        self.ram[address + 1] = (value >> 8) & 0xFF

    @property
    def page(self) -> int:
        return int(self.ram[BDA_PAGE]) & 7

    def cursor(self, page: int | None = None) -> tuple[int, int]:
        """(row, column) of ``page``'s cursor (the active page by default)."""
        page = self.page if page is None else page & 7
        value = self._u16(BDA_CURSOR + 2 * page)
        return value >> 8, value & 0xFF

    def set_cursor(self, row: int, col: int, page: int | None = None) -> None:
        page = self.page if page is None else page & 7
        self._put16(BDA_CURSOR + 2 * page, ((row & 0xFF) << 8) | (col & 0xFF))

    def set_mode(self, mode: int) -> None:
        """Any text mode request becomes 80×25 colour text (mode 3); the screen clears."""
        ram = self.ram
        ram[BDA_MODE] = mode & 0x7F if mode & 0x7F in (2, 3, 7) else 3
        self._put16(BDA_COLUMNS, COLUMNS)
        self._put16(BDA_PAGE_SIZE, PAGE_SIZE)
        self._put16(BDA_PAGE_OFFSET, 0)
        for page in range(8):
            self.set_cursor(0, 0, page)
        self._put16(BDA_CURSOR_SHAPE, 0x0607)
        ram[BDA_PAGE] = 0
        self._put16(BDA_CRTC, 0x3D4)
        ram[BDA_ROWS] = ROWS - 1
        self._put16(BDA_CHAR_HEIGHT, 16)
        if not mode & 0x80:  # bit 7: keep video memory
            if self.before_change is not None:
                self.before_change()
            cells = self._cells_all()
            cells[:, 0] = 0x20
            cells[:, 1] = DEFAULT_ATTR
        self._stream_pos = (0, 0)

    def _cells_all(self) -> np.ndarray:
        return self.ram[TEXT_BASE : TEXT_BASE + 8 * PAGE_SIZE].reshape(-1, 2)

    def cells(self, page: int | None = None) -> np.ndarray:
        """A (ROWS, COLUMNS, 2) view of ``page`` (char, attribute)."""
        page = self.page if page is None else page & 7
        start = TEXT_BASE + page * PAGE_SIZE
        return self.ram[start : start + ROWS * COLUMNS * 2].reshape(ROWS, COLUMNS, 2)

    # -- drawing ---------------------------------------------------------------------
    def put(self, row: int, col: int, ch: int, attr: int | None, page: int | None = None) -> None:
        """Write one cell (attribute kept when ``attr`` is None) and stream it."""
        if not (0 <= row < ROWS and 0 <= col < COLUMNS):
            return
        cells = self.cells(page)
        cells[row, col, 0] = ch
        if attr is not None:
            cells[row, col, 1] = attr
        if page is None or page == self.page:
            self._stream_char(row, col, ch)

    def write_repeated(self, ch: int, attr: int | None, count: int, page: int | None = None
                       ) -> None:
        """INT 10h AH=09h/0Ah: ``count`` copies from the cursor on; the cursor stays."""
        row, col = self.cursor(page)
        for _ in range(min(count, ROWS * COLUMNS)):
            if row >= ROWS:
                break
            self.put(row, col, ch, attr, page)
            col += 1
            if col >= COLUMNS:
                row, col = row + 1, 0

    def teletype(self, ch: int, attr: int | None = None, page: int | None = None) -> None:
        """INT 10h AH=0Eh: write and advance, with BEL, BS, CR, LF and scrolling."""
        row, col = self.cursor(page)
        if ch == 0x07:
            return
        if ch == 0x08:
            col = max(0, col - 1)
        elif ch == 0x0D:
            col = 0
        elif ch == 0x0A:
            row += 1
        else:
            self.put(row, col, ch, attr, page)
            col += 1
            if col >= COLUMNS:
                row, col = row + 1, 0
        if row >= ROWS:
            self.scroll(1, DEFAULT_ATTR if attr is None else attr, 0, 0, ROWS - 1, COLUMNS - 1,
                        up=True, page=page)
            row = ROWS - 1
        self.set_cursor(row, col, page)

    def scroll(self, lines: int, attr: int, top: int, left: int, bottom: int, right: int,
               up: bool = True, page: int | None = None) -> None:
        """INT 10h AH=06h/07h on a window; ``lines`` 0 (or too many) clears it."""
        bottom, right = min(bottom, ROWS - 1), min(right, COLUMNS - 1)
        if top > bottom or left > right:
            return
        if self.before_change is not None:
            self.before_change()
        cells = self.cells(page)
        window = cells[top : bottom + 1, left : right + 1]
        height = bottom - top + 1
        if lines == 0 or lines >= height:
            window[:, :, 0] = 0x20
            window[:, :, 1] = attr
            lines = height
        elif up:
            window[:-lines] = window[lines:].copy()
            window[-lines:, :, 0] = 0x20
            window[-lines:, :, 1] = attr
        else:
            window[lines:] = window[:-lines].copy()
            window[:lines, :, 0] = 0x20
            window[:lines, :, 1] = attr
        if up and (page is None or page == self.page):
            r, c = self._stream_pos
            self._stream_pos = (r - lines, c)

    # -- the stream ------------------------------------------------------------------
    def _stream_char(self, row: int, col: int, ch: int) -> None:
        srow, scol = self._stream_pos
        if row > srow:
            text = "\n" * (row - srow) + " " * col
        elif row < srow:
            text = "\n" + " " * col
        elif col > scol:
            text = " " * (col - scol)
        elif col < scol:
            text = "\b" * (scol - col)
        else:
            text = ""
        text += chr(ch) if 0x20 <= ch < 0x7F else ("?" if ch >= 0x80 else " ")
        self._stream_pos = (row, col + 1)
        self.stream.append(text)
        if self.on_text is not None:
            self.on_text(text)

    def text(self, page: int | None = None) -> str:
        """The screen as 25 lines of text (trailing blanks removed)."""
        rows = []
        for line in self.cells(page)[:, :, 0]:
            rows.append("".join(chr(c) if 0x20 <= c < 0x7F else " " for c in line).rstrip())
        return "\n".join(rows).rstrip("\n")
