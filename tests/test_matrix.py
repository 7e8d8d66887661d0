"""``emu matrix``: suites expand into cases; each case is its own ``emu boot`` process.

The suite under test runs the built-in sample under both firmwares and, beside
it, a disc whose boot code spins with interrupts off (``cli; jmp $``): it never
halts nor idles, so only the case's wall-clock limit ends it, and it must be
reported as ``timeout`` while the other cases complete.  The Ray backend runs
the same suite on a local Ray instance and must give the same per-case results
except the times.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from emu.firmware.seabios import SEABIOS_BIN
from emu.tools import matrix
from emu.tools.cli import main
from emu.tools.matrix import (
    Case,
    SuiteError,
    benchmark_json,
    comparable,
    iter_records,
    load_suite,
    parse_suite,
    run_suite,
)

needs_seabios = pytest.mark.skipif(not SEABIOS_BIN.exists(),
                                   reason="/usr/share/seabios/bios.bin is not installed")

SUITE = """
[suite]
name = "expansion"
timeout = 30
guest_timeout = 50

[axes]
firmware = ["builtin", "seabios"]
transfer = ["pio", "dma"]
memory = [16, "64M"]

[[image]]
name = "sample"
image = "builtin:sample"
until = "checksum OK"

[[image]]
image = "discs/other.iso"
firmware = "builtin"
transfer = ["dma"]
location = ["1:0", "0:1"]
keys = 'c\\r'
timeout = 5
expect = "until-not-seen"
"""


def parse(text: str) -> list[Case]:
    return parse_suite(text, Path("/suites/s.toml")).cases


# -- the suite file ------------------------------------------------------------------------


def test_a_suite_expands_images_times_axes_in_order_and_leaves_out_seabios_dma():
    suite = parse_suite(SUITE, Path("/suites/s.toml"))
    assert suite.name == "expansion"
    assert [c.id for c in suite.cases] == [
        "sample-builtin-pio-16M-ide1-0", "sample-builtin-pio-64M-ide1-0",
        "sample-builtin-dma-16M-ide1-0", "sample-builtin-dma-64M-ide1-0",
        "sample-seabios-pio-16M-ide1-0", "sample-seabios-pio-64M-ide1-0",
        "other-builtin-dma-16M-ide1-0", "other-builtin-dma-16M-ide0-1",
        "other-builtin-dma-64M-ide1-0", "other-builtin-dma-64M-ide0-1",
    ]
    assert [case_id for case_id, _ in suite.skipped] == [
        "sample-seabios-dma-16M-ide1-0", "sample-seabios-dma-64M-ide1-0"]
    first, other = suite.cases[0], suite.cases[-1]
    assert (first.until, first.keys, first.timeout, first.guest_timeout, first.expect) == (
        "checksum OK", "", 30.0, 50.0, "ok")
    assert (other.image, other.bus, other.device, other.memory) == ("discs/other.iso", 0, 1, 64)
    assert (other.until, other.keys, other.timeout, other.guest_timeout, other.expect) == (
        None, "c\\r", 5.0, 50.0, "until-not-seen")
    assert other.suite_dir == "/suites"


def test_axes_default_to_one_builtin_dma_boot_of_256_mib_at_1_0():
    (case,) = parse('[[image]]\nimage = "builtin:sample"\n')
    assert (case.id, case.firmware, case.transfer, case.memory, case.bus, case.device) == (
        "sample-builtin-dma-256M-ide1-0", "builtin", "dma", 256, 1, 0)
    assert (case.timeout, case.guest_timeout) == (60.0, None)  # emu boot's defaults
    (big,) = parse('[[image]]\nimage = "builtin:sample"\nmemory = "1.5G"\n')
    assert (big.memory, big.id) == (1536, "sample-builtin-dma-1536M-ide1-0")


@pytest.mark.parametrize(("text", "message"), [
    ("[[image]]\nimage = 'builtin:sample'\nuntill = 'x'\n", "unknown key 'untill'"),
    ("[axes]\nfirmware = ['bochs']\n[[image]]\nimage = 'builtin:sample'\n",
     "firmware 'bochs' is not one of builtin, seabios"),
    ("[[image]]\nimage = 'builtin:sample'\ntransfer = 'udma'\n", "transfer 'udma'"),
    ("[[image]]\nimage = 'builtin:sample'\nmemory = [1]\n", "memory size 1,048,576 bytes"),
    ("[[image]]\nimage = 'builtin:sample'\nmemory = '4100K'\n", "not a whole number of MiB"),
    ("[[image]]\nimage = 'builtin:sample'\nmemory = 'lots'\n", "memory size 'lots'"),
    ("[[image]]\nimage = 'builtin:sample'\nlocation = ['2:0']\n", "location '2:0'"),
    ("[[image]]\nimage = 'builtin:sample'\nmemory = [16, 16]\n", "memory lists 16 twice"),
    ("[[image]]\nimage = 'builtin:sample'\n[[image]]\nimage = 'builtin:sample'\n",
     "name 'sample' is used twice"),
    ("[[image]]\nimage = 'builder:knoppix'\n", "no image builder 'knoppix'"),
    ("[[image]]\nimage = 'builtin:sample'\ntimeout = -1\n", "timeout must be a number"),
    ("[[image]]\nimage = 'builtin:sample'\nexpect = 'fine'\n", "expect 'fine'"),
    ("[suite]\nname = 'x'\n", "no [[image]] tables"),
    ("[[image]\n", "not valid TOML"),
])
def test_a_bad_suite_is_refused_with_a_one_line_reason(text, message):
    with pytest.raises(SuiteError, match="^s.toml: .*" + message.replace("[", r"\[")) as info:
        parse(text)
    assert "\n" not in str(info.value)


def test_emu_matrix_says_what_is_wrong_with_a_suite_and_exits_2(tmp_path, capsys):
    assert main(["matrix", str(tmp_path / "missing.toml")]) == 2
    assert "missing.toml: cannot read the suite" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[[image]]\nimage = 'builtin:sample'\nfirmware = 'ami'\n")
    assert main(["matrix", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("emu matrix: bad.toml: [[image]] #1: firmware 'ami'")
    assert err.count("\n") == 1


def test_list_and_only_choose_cases_without_running_them(capsys):
    example = str(Path(__file__).parents[1] / "examples" / "suite.toml")
    assert main(["matrix", example, "--list", "--only", "grub", "--only", "seabios"]) == 0
    assert capsys.readouterr().out.split() == [
        "sample-seabios-pio-256M-ide1-0", "isolinux-seabios-pio-256M-ide1-0",
        "grub-builtin-pio-256M-ide1-0", "grub-builtin-dma-256M-ide1-0",
        "grub-seabios-pio-256M-ide1-0"]
    assert main(["matrix", example, "--only", "knoppix"]) == 2
    assert capsys.readouterr().err == "emu matrix: no case id contains 'knoppix'\n"


def test_the_example_suite_lists_three_discs_times_both_firmwares_and_pio_dma(capsys):
    suite = load_suite(Path(__file__).parents[1] / "examples" / "suite.toml")
    images = {c.image for c in suite.cases}
    assert images == {"builtin:sample", "builder:isolinux", "builder:grub-rescue"}
    assert {(c.firmware, c.transfer) for c in suite.cases} == {
        ("builtin", "pio"), ("builtin", "dma"), ("seabios", "pio")}
    assert len(suite.cases) == 9 and len(suite.skipped) == 3


# -- emu boot --transfer and --json-result --------------------------------------------------


def boot_json(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "result.json"
    assert main(["boot", "--no-interactive", "--json-result", str(out), *args]) == 0
    return json.loads(out.read_text())


def test_transfer_pio_and_dma_read_the_same_sectors_by_different_paths(tmp_path, capsys):
    pio = boot_json(tmp_path, "--transfer", "pio")
    dma = boot_json(tmp_path, "--transfer", "dma", "--memory", "32M")
    for result in (pio, dma):
        assert result["status_name"] == "ok" and "checksum OK" in result["screen"]
    assert pio["dma_reads"] == 0 and pio["drive"]["dma_bytes"] == 0
    assert dma["dma_reads"] == 3 and dma["drive"]["dma_bytes"] >= 16 * 2048
    assert pio["drive"]["read_sectors"] == dma["drive"]["read_sectors"] > 16
    # What DMA moved is exactly what PIO moved besides IDENTIFY / sense / capacity replies.
    assert pio["drive"]["pio_bytes"] - dma["drive"]["pio_bytes"] == dma["drive"]["dma_bytes"]
    assert pio["sectors_read"] == dma["sectors_read"] == 18


@needs_seabios
def test_seabios_refuses_transfer_dma_in_one_line(capsys):
    assert main(["boot", "--firmware", "seabios", "--transfer", "dma"]) == 2
    err = capsys.readouterr().err
    assert err == ("emu: SeaBIOS reads the disc by PIO only; --transfer dma applies to the "
                   "built-in BIOS\n")


# -- running a suite ------------------------------------------------------------------------


RUN_SUITE = """
[suite]
name = "small"
timeout = 60

[axes]
firmware = ["builtin", "seabios"]
transfer = ["pio"]
memory = [16]

[[image]]
name = "sample"
image = "builtin:sample"
until = "checksum OK"

[[image]]
name = "spin"
image = "builder:spin"
firmware = "builtin"
timeout = 2           # host seconds: the only limit that can end this boot
expect = "timeout"
"""


@pytest.fixture(scope="module")
def small_suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("suite") / "small.toml"
    path.write_text(RUN_SUITE)
    return path


@pytest.fixture(scope="module")
def local_run(small_suite: Path) -> tuple[int, str, Path, Path]:
    """``emu matrix small.toml`` run once for the module (its cases take a few seconds)."""
    out, bench = small_suite.with_suffix(".jsonl"), small_suite.with_suffix(".bench.json")
    proc = subprocess.run([sys.executable, "-m", "emu.tools.cli", "matrix", str(small_suite),
                           "--jobs", "3", "--out", str(out), "--benchmark-json", str(bench)],
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout, out, bench


@needs_seabios
def test_a_local_run_completes_the_boots_and_reports_the_hang_as_a_timeout(local_run):
    status, stdout, out, _ = local_run
    records = {r["id"]: r for r in iter_records(out)}
    assert list(records) == ["sample-builtin-pio-16M-ide1-0", "sample-seabios-pio-16M-ide1-0",
                             "spin-builtin-pio-16M-ide1-0"]
    for case_id in ("sample-builtin-pio-16M-ide1-0", "sample-seabios-pio-16M-ide1-0"):
        record = records[case_id]
        assert (record["status"], record["reached"], record["exit_status"]) == ("ok", True, 0)
        assert record["message"] == "saw 'checksum OK'"
        assert "checksum OK" in record["screen"]
        assert record["drive"]["read_sectors"] > 16 and record["drive"]["dma_bytes"] == 0
        assert record["boot_seconds"] <= record["wall_seconds"]
    seabios = records["sample-seabios-pio-16M-ide1-0"]
    assert seabios["screen"].startswith("SeaBIOS") and seabios["instructions"] > 1_000_000
    assert seabios["sectors_read"] is None  # the built-in BIOS's INT 13h count
    spin = records["spin-builtin-pio-16M-ide1-0"]
    assert (spin["status"], spin["reached"], spin["as_expected"]) == ("timeout", False, True)
    assert spin["exit_status"] == 3  # emu boot stopped at its own --timeout (status LIMIT)
    assert spin["message"].startswith("stopped at the time limit of 2 s (wall clock)")
    assert spin["instructions"] > 10_000_000 and spin["screen"] == ""
    assert spin["drive"]["read_sectors"] == 3  # boot record, catalog, the boot image
    assert 2 <= spin["boot_seconds"] < spin["wall_seconds"] < 30
    # Every case ended as the suite expected: exit status 0, and a table on stdout.
    assert status == 0, stdout
    assert "sample-seabios-pio-16M-ide1-0  ok" in stdout
    assert "spin-builtin-pio-16M-ide1-0    timeout" in stdout
    assert "3 cases: 2 ok, 1 timeout" in stdout


@needs_seabios
def test_the_benchmark_json_loads_in_pytest_benchmark_compare(local_run):
    _, _, out, bench = local_run
    doc = json.loads(bench.read_text())
    names = [b["name"] for b in doc["benchmarks"]]
    assert names == ["matrix[sample-builtin-pio-16M-ide1-0]",
                     "matrix[sample-seabios-pio-16M-ide1-0]"]  # not the timed-out case
    first = doc["benchmarks"][0]
    assert first["stats"]["rounds"] == 1 and first["extra_info"]["status"] == "ok"
    run_cli = "import sys; from pytest_benchmark.cli import main; sys.exit(main())"
    compare = subprocess.run([sys.executable, "-c", run_cli, "compare", str(bench),
                              "--columns", "min,rounds"],
                             capture_output=True, text=True, timeout=60)
    assert compare.returncode == 0, compare.stderr
    assert "matrix[sample-seabios-pio-16M-ide1-0]" in compare.stdout


def test_a_case_that_does_not_stop_by_itself_is_killed_and_reported_as_a_timeout(
        monkeypatch, tmp_path):
    # A process that ignores the case's timeout (as one stuck inside a CPU run would).
    monkeypatch.setattr(matrix, "KILL_GRACE", 0.5)
    monkeypatch.setattr(matrix, "boot_command", lambda case, image, result_file: [
        sys.executable, "-c", "import time; time.sleep(60)"])
    (case,) = parse_suite("[[image]]\nimage = 'builtin:sample'\ntimeout = 0.5\n",
                          tmp_path / "s.toml").cases
    record = matrix.run_case(case, str(tmp_path))
    assert (record["status"], record["exit_status"], record["screen"]) == ("timeout", None, None)
    assert record["message"] == "killed after 1 s of wall-clock time"
    assert 1 <= record["wall_seconds"] < 10


def test_a_case_whose_process_dies_is_an_error_and_the_others_run(tmp_path):
    missing = tmp_path / "gone.iso"
    missing.write_bytes(b"\0" * 4096)  # not a disc: emu boot says so and exits 2
    suite = parse_suite(f"""
[[image]]
name = "notadisc"
image = "{missing}"
[[image]]
image = "builtin:sample"
until = "checksum OK"
""", tmp_path / "s.toml")
    records = run_suite(suite, jobs=2)
    bad, good = records
    assert bad["status"] == "error" and bad["exit_status"] == 2
    assert bad["message"].startswith("exit status 2, no result: emu: ")
    assert good["status"] == "ok"
    benchmarks = benchmark_json(suite, records, "s.toml")["benchmarks"]
    assert [b["param"] for b in benchmarks] == ["sample-builtin-dma-256M-ide1-0"]


# -- the Ray backend ------------------------------------------------------------------------


@needs_seabios
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_the_ray_backend_gives_the_local_results_except_the_times(small_suite, local_run):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        records = run_suite(load_suite(small_suite), backend="ray")
    finally:
        ray.shutdown()
    local = [comparable(r) for r in iter_records(local_run[2])]
    assert [comparable(r) for r in records] == local
    assert [r["status"] for r in records] == ["ok", "ok", "timeout"]
