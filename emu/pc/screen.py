"""What is on the screen: the VGA text frame at B8000h read as a stream of text.

Every firmware and every guest ends up writing characters into the text frame (a BIOS's
INT 10h teletype, SeaVGABIOS, a loader or memtest86+ writing cells directly), so the
session watches the frame, not a firmware's output calls: :class:`TextScraper` compares
the displayed page (the CRTC start address, VGA register reference) with the last look
and turns what changed into appearing text, and :meth:`TextScraper.text` is the screen.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from devices.platform.vga import VgaRegisters

TEXT_BASE = 0xB8000
COLUMNS, ROWS = 80, 25


def _kept(old: str, new: str) -> bool:
    """Does row text ``new`` keep what ``old`` showed (same, grown, or filling a blank row)?"""
    return not old or new.startswith(old)


class TextScraper:
    """Turns the 80×25 text frame at B8000h into a stream of appearing text.

    Each poll compares the frame with the last one.  When some row lost its
    old text, a scroll is looked for first: the smallest *k* such that the old
    rows moved up by *k* are all still there (unchanged, grown, or blank
    before).  Then every changed, non-blank row is emitted — only the new tail
    when the row grew from its old content, else the whole row on a new line.
    """

    def __init__(self, ram: np.ndarray, vga: VgaRegisters,
                 on_text: Callable[[str], None] | None = None) -> None:
        self.ram = ram
        self.vga = vga
        self.on_text = on_text
        self.rows = [""] * ROWS
        self.stream: list[str] = []
        self.last_row = 0
        self.changed = False

    def frame_rows(self) -> list[str]:
        """The displayed page as 25 strings (trailing blanks removed)."""
        start = TEXT_BASE + 2 * self.vga.start_offset()
        cells = self.ram[start : start + 2 * COLUMNS * ROWS : 2]
        chars = np.where((cells >= 0x20) & (cells < 0x7F), cells, 0x20).astype(np.uint8)
        text = chars.tobytes().decode("latin-1")
        return [text[r * COLUMNS : (r + 1) * COLUMNS].rstrip() for r in range(ROWS)]

    def text(self) -> str:
        """The screen as lines of text."""
        return "\n".join(self.frame_rows()).rstrip("\n")

    def poll(self) -> str:
        """Compare with the last frame; return (and stream) what appeared."""
        new = self.frame_rows()
        old = self.rows
        if new == old:
            self.changed = False
            return ""
        self.changed = True
        if not all(_kept(o, n) for o, n in zip(old, new, strict=True)):
            for k in range(1, ROWS):
                moved = old[k:]
                if any(moved) and all(_kept(o, n) for o, n in zip(moved, new, strict=False)):
                    old = moved + [""] * k
                    self.last_row = max(0, self.last_row - k)
                    break
        out: list[str] = []
        for r in range(ROWS):
            if new[r] == old[r] or not new[r]:
                continue
            if r == self.last_row and new[r].startswith(old[r]):
                out.append(new[r][len(old[r]):])
            else:
                out.append("\n" + new[r])
            self.last_row = r
        self.rows = new
        text = "".join(out)
        if text:
            self.stream.append(text)
            if self.on_text is not None:
                self.on_text(text)
        return text
