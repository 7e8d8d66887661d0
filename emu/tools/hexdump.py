"""The one hex dump of the tools, in the canonical layout of ``hexdump -C``.

Each line is an eight-digit offset, sixteen bytes in hex (an extra space after
the eighth) and the printable ASCII between bars; a run of lines identical to
the one before is shown as a single ``*``; the last line is the offset just
past the data.  ``emu read`` prints it whole; the console prints the first
``limit`` bytes of a reply and says how many more ``dump`` would show.
"""

from __future__ import annotations

WIDTH = 16


def _line(offset: int, chunk: bytes) -> str:
    left = " ".join(f"{b:02x}" for b in chunk[:8])
    right = " ".join(f"{b:02x}" for b in chunk[8:])
    text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
    return f"{offset:08x}  {left:<23}  {right:<23}  |{text}|"


def hexdump(data: bytes, base: int = 0, limit: int | None = None) -> list[str]:
    """``data`` as ``hexdump -C`` prints it, offsets counted from ``base``.

    With ``limit``, only the first ``limit`` bytes are dumped and a last line
    says how many were left out.
    """
    data = bytes(data)
    shown = data if limit is None else data[:limit]
    lines: list[str] = []
    previous: bytes | None = None
    starred = False
    for off in range(0, len(shown), WIDTH):
        chunk = shown[off : off + WIDTH]
        if chunk == previous and len(chunk) == WIDTH:
            if not starred:
                lines.append("*")
                starred = True
            continue
        previous, starred = chunk, False
        lines.append(_line(base + off, chunk))
    if shown:
        lines.append(f"{base + len(shown):08x}")
    if len(shown) < len(data):
        lines.append(f"… {len(data) - len(shown)} more bytes")
    return lines
