"""The documents do what they say: every code block runs, from outside the checkout.

Each fenced block of README.md and docs/*.md is one of:

* ``python``: run with this interpreter in a temporary directory outside the
  repository (so a path that only works from the checkout fails);
* ``sh``: each line run by ``sh`` there, with this environment's ``emu`` first
  on PATH; every command must succeed;
* a transcript after ``<!-- golden: COMMAND -->``: COMMAND is run and its
  output must equal the block, line for line (docs/teaching.md); for ``emu
  console`` the lines after the ``emu> `` prompts are its input;
* anything else must follow ``<!-- illustrative: REASON -->`` saying why it is
  not run.

The docs also stay inside the repository (no ``../shared``-style paths, every
relative link resolves) and their prose quotes the ratios their tables give.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent
RUNNABLE = {"python", "sh"}


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    lang: str
    code: str
    marker: str
    """The HTML comment right before the fence ('' if none)."""

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    found: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            lang = line[3:].strip()
            j = i - 1
            while j >= 0 and not lines[j].strip():
                j -= 1
            prev = lines[j].strip() if j >= 0 else ""
            marker = prev if prev.startswith("<!--") and prev.endswith("-->") else ""
            end = i + 1
            while not lines[end].startswith("```"):
                end += 1
            found.append(Block(path, i + 1, lang, "\n".join(lines[i + 1 : end]) + "\n", marker))
            i = end + 1
            continue
        i += 1
    return found


ALL = [b for path in DOCS for b in blocks(path)]


def marker_value(block: Block, kind: str) -> str | None:
    m = re.fullmatch(rf"<!--\s*{kind}:\s*(.*?)\s*-->", block.marker)
    return m.group(1) if m else None


def environment(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONPATH", None)
    env["HOME"] = str(tmp)
    return env


def test_every_block_is_run_or_says_why_not():
    unmarked = [b.name for b in ALL if b.lang not in RUNNABLE and not (
        marker_value(b, "illustrative") or marker_value(b, "golden"))]
    assert unmarked == [], "blocks neither runnable nor marked illustrative/golden"
    for b in ALL:
        reason = marker_value(b, "illustrative")
        if reason is not None:
            assert len(reason.split()) >= 3, f"{b.name}: say why the block is not run"


@pytest.mark.parametrize("block", [b for b in ALL if b.lang == "python"
                                   and marker_value(b, "illustrative") is None],
                         ids=lambda b: b.name)
def test_python_blocks_run_from_outside_the_checkout(block, tmp_path):
    out = subprocess.run([sys.executable, "-c", block.code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60, env=environment(tmp_path))
    assert out.returncode == 0, f"{block.name}:\n{out.stderr}"


@pytest.mark.parametrize("block", [b for b in ALL if b.lang == "sh"
                                   and marker_value(b, "illustrative") is None],
                         ids=lambda b: b.name)
def test_shell_blocks_run_from_outside_the_checkout(block, tmp_path):
    for command in block.code.splitlines():
        if not command.strip() or command.lstrip().startswith("#"):
            continue
        out = subprocess.run(["sh", "-c", command], cwd=tmp_path, capture_output=True,
                             text=True, timeout=60, env=environment(tmp_path))
        assert out.returncode == 0, f"{block.name}: {command}\n{out.stderr}"


GOLDEN = [b for b in ALL if marker_value(b, "golden")]


def test_there_is_a_golden_transcript():
    assert any(b.path.name == "teaching.md" for b in GOLDEN)


@pytest.mark.parametrize("block", GOLDEN, ids=lambda b: b.name)
def test_golden_transcripts_equal_what_the_tool_prints(block, tmp_path):
    command = shlex.split(marker_value(block, "golden") or "")
    assert command[0] == "emu"
    # A console transcript gives its own input: the lines typed after the prompt.
    assert golden_output(block, tmp_path).splitlines() == block.code.splitlines(), (
        f"{block.name} and `{' '.join(command)}` differ: if the tool is right, regenerate "
        "the page with `python -m tests.test_docs`")


def test_the_teaching_waveform_shows_intrq_rising_and_falling_during_the_read(tmp_path):
    from tests.test_trace import changes, values

    teaching = next(b for b in GOLDEN if b.path.name == "teaching.md")
    command = shlex.split(marker_value(teaching, "golden") or "")
    vcd = tmp_path / "read.vcd"
    out = subprocess.run([str(BIN / "emu"), *command[1:], "--vcd", str(vcd)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    ch = changes(vcd, ["INTRQ", "DRQ", "BSY", "reason", "byte_count", "phase", "phase_code"])
    # docs/teaching.md, "The waveform": exactly these transitions.
    assert values(ch["INTRQ"]) == [0, 1, 0, 1, 0]  # data block, acknowledge, completion, ack
    assert values(ch["DRQ"]) == [0, 1, 0, 1, 0]
    assert values(ch["BSY"]) == [0, 1, 0]
    assert values(ch["reason"]) == [3, 0, 1, 2, 3]
    assert values(ch["byte_count"]) == [2048]
    assert values(ch["phase"]) == ["HP0_idle", "HP1_send_packet", "HP2_busy", "HP4_data_in",
                                   "HP0_idle"]
    assert values(ch["phase_code"]) == [1, 2, 3, 6, 1]  # the same for readers without strings
    header = vcd.read_text(encoding="ascii").split("$enddefinitions")[0]
    assert "one unit per trace event" in header and "phase_code: 0 absent" in header


# -- self-contained ------------------------------------------------------------------------

LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_docs_point_only_inside_the_repository(path):
    text = path.read_text(encoding="utf-8")
    assert "../shared" not in text and "/work/" not in text
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+://", target):
            continue
        resolved = (path.parent / target).resolve()
        assert resolved.is_relative_to(ROOT), f"{path.name}: link {target} leaves the repo"
        assert resolved.exists(), f"{path.name}: link {target} does not exist"


def test_benchmark_prose_quotes_the_ratios_of_its_tables():
    text = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    ratio = re.compile(r"\b\d\.\d\d×")
    table = {m for line in text.splitlines() if line.startswith("|")
             for m in ratio.findall(line)}
    prose = {m for line in text.splitlines() if not line.startswith("|")
             for m in ratio.findall(line)}
    assert prose <= table, f"ratios in the text but not in the tables: {sorted(prose - table)}"


def test_the_readme_table_lists_every_option_of_every_subcommand():
    from emu.tools.cli import build_parser

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "cmd")
    missing = [f"emu {name} {option}" for name, p in sub.choices.items()
               for action in p._actions for option in action.option_strings
               if option.startswith("--") and option != "--help" and f"`{option}" not in readme
               and f" {option}" not in readme and f"[{option}" not in readme]
    assert missing == []
    assert "--version" in readme


def test_license_and_type_information_ship():
    license_text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert license_text.startswith("MIT License")
    assert "MIT (see [LICENSE](LICENSE))" in (ROOT / "README.md").read_text(encoding="utf-8")
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    for package in ("emu", "devices", "images"):
        assert (ROOT / package / "py.typed").exists()
        assert re.search(rf'^{package} = \[[^\]]*"py.typed"', pyproject, re.M), package


def test_a_second_vcd_reader_sees_the_same_waveform_through_the_numeric_twins(tmp_path):
    """vcdvcd reads VCD string signals as empty; phase_code carries the phase for it."""
    vcdvcd = pytest.importorskip("vcdvcd")
    from tests.test_trace import changes, values

    vcd = tmp_path / "read.vcd"
    out = subprocess.run([str(BIN / "emu"), "trace", "--script", "read", "--interrupts",
                          "--skip-setup", "--vcd", str(vcd)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    other = vcdvcd.VCDVCD(str(vcd))
    ours = changes(vcd, ["INTRQ", "phase_code", "event_code"])
    for name in ("INTRQ", "phase_code", "event_code"):
        theirs = [int(v, 2) for _, v in other[f"ide1.{name}"].tv]
        assert values([(0, v) for v in theirs]) == values(ours[name]), name


def golden_output(block: Block, cwd: Path) -> str:
    """What the block's golden command prints now (the console gets the typed lines)."""
    command = shlex.split(marker_value(block, "golden") or "")
    typed = "".join(line.removeprefix("emu> ") + "\n" for line in block.code.splitlines()
                    if line.startswith("emu> ")) if command[1:2] == ["console"] else None
    out = subprocess.run([str(BIN / "emu"), *command[1:]], cwd=cwd, capture_output=True,
                         text=True, timeout=60, env=environment(cwd), input=typed)
    return out.stdout


def regenerate() -> None:
    """Rewrite every golden block from the tool's output (``python -m tests.test_docs``)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for path in DOCS:
            lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
            for block in reversed([b for b in blocks(path) if marker_value(b, "golden")]):
                start = block.line  # the fence is line block.line; the body follows it
                end = start + len(block.code.splitlines())
                lines[start:end] = golden_output(block, Path(tmp)).splitlines(keepends=True)
                print(f"regenerated {block.name}")
            path.write_text("".join(lines), encoding="utf-8")


if __name__ == "__main__":
    regenerate()


def test_the_readme_examples_print_what_their_comments_say(tmp_path):
    readme = [b for b in ALL if b.path.name == "README.md" and b.lang == "python"]
    guest = next(b for b in readme if "dvd.guest" in b.code)
    board = next(b for b in readme if "IDENTIFY PACKET DEVICE" in b.code)
    for block, expected in ((guest, "['NOT READY', 'UNIT ATTENTION', 'GOOD']"),
                            (board, "0x85c0 True")):
        assert expected in block.code  # the comment in the page
        out = subprocess.run([sys.executable, "-c", block.code], cwd=tmp_path,
                             capture_output=True, text=True, timeout=60,
                             env=environment(tmp_path))
        assert out.stdout.strip() == expected, out.stderr
