"""The docs agree with each other and with the drive (issue 13: no two docs saying
different things about the same behaviour).

Each check greps for a contradiction that once existed; the behaviour itself is
tested at the ports elsewhere (named in each check).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
DEVICES = ROOT / "devices"


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _all_docs() -> dict[str, str]:
    return {p.name: _text(p) for p in DOCS.glob("*.md")}


def _sources() -> dict[str, str]:
    return {str(p.relative_to(ROOT)): _text(p) for p in DEVICES.rglob("*.py")}


def test_one_differences_table_linked_from_core_commands_and_management_api() -> None:
    docs = _all_docs()
    assert "differences.md" in docs
    for name in ("core.md", "commands.md", "management-api.md"):
        assert "differences.md" in docs[name], name
        assert "Deliberate differences from QEMU" not in docs[name], name
        assert "Where we differ from QEMU (and why)" not in docs[name], name


def test_every_row_of_the_differences_tables_names_a_section_or_qemu_compatible() -> None:
    rows = [line for line in _text(DOCS / "differences.md").splitlines()
            if line.startswith("|") and not line.startswith("|---")
            and not line.startswith("| Behaviour") and not line.startswith("| Words")]
    assert len(rows) >= 45
    for row in rows:
        standard = row.rstrip(" |").rsplit("|", 1)[-1]
        assert "§" in standard or "QEMU-compatible" in standard, row


def test_the_wrong_qemu_unit_attention_row_is_gone() -> None:
    # QEMU 7.2 reports a UNIT ATTENTION as an ordinary CHECK CONDITION (41h, reason 03h).
    for name, text in _all_docs().items():
        assert "status 01h, sector count 0" not in text, name
        assert "gets status 01h (ERR, no DRDY)" not in text, name


def test_gesn_is_cited_as_mmc5_6_7_everywhere() -> None:
    pattern = re.compile(r"GET EVENT STATUS NOTIFICATION[^\n]{0,40}§6\.6|GESN[^\n]{0,20}§6\.6")
    for name, text in {**_all_docs(), **_sources()}.items():
        assert not pattern.search(text), name
    assert "MMC-5 §6.6" not in _text(DEVICES / "scsi" / "mmc_media.py")


def test_the_byte_count_limit_0_interrupt_has_one_citation() -> None:
    for name, text in _all_docs().items():
        for line in text.splitlines():
            if "byte-count limit" in line.lower() and ("0" in line) and "INTRQ" in line:
                assert "vol 1 §6.2" not in line, (name, line)


def test_request_sense_and_a_pending_unit_attention_are_described_one_way() -> None:
    # tests/test_tray.py drives it: REQUEST SENSE keeps the UA while other sense is
    # pending and reports (and clears) it only when none is.
    api = _text(DOCS / "management-api.md")
    assert "REQUEST SENSE, GET CONFIGURATION and GET EVENT STATUS NOTIFICATION pass" not in api
    for name in ("core.md", "management-api.md"):
        text = _text(DOCS / name)
        assert "§5.9.7" in text and "keeps the UA" in text.replace("**", ""), name


@pytest.mark.parametrize("doc", ["management-api.md", "commands.md"])
def test_gesn_tray_open_media_status_is_01h_in_the_docs(doc: str) -> None:
    # tests/test_gesn.py: the bare-Machine guest eject reports 01h too.
    for line in _text(DOCS / doc).splitlines():
        if "Media Removal" in line and "status" in line:
            assert "status 03h" not in line, line


def test_commands_table_lists_every_opcode_of_the_drive() -> None:
    from devices.scsi.target import MmcTarget

    table = MmcTarget().table
    text = _text(DOCS / "commands.md")
    for row in table:
        assert f"| {row.opcode:02X}h | {row.name} |" in text, row.name
