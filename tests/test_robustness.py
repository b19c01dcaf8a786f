"""Every command that reads a user file, fed a table of bad inputs and bad output places.

Each must exit non-zero with one line on stderr that names the file (and the line, where there
is one), print no traceback, leave nothing half-written beside the output, and leave no run
`running` in the store. Outputs that are links or devices are written the way `open()` would.
Everything runs in-process with `mock:` targets and a fake judge; full and read-only disks are
small tmpfs mounts where the test may mount, private device nodes otherwise.
"""

import json
import os
import sqlite3
import stat
import subprocess

import pytest
from typer.testing import CliRunner

import breakfix.files
from breakfix.cli import app
from breakfix.store import Store
from breakfix.types import Score

runner = CliRunner()

# A first line every reader accepts: generate's prompt, judge score's messages + response, a data file's text.
FINE = json.dumps({"prompt": "fine", "text": "fine", "messages": [{"role": "user", "content": "fine"}],
                   "response": "ok"}).encode() + b"\n"
BAD_JSONL = {  # name: (content, line named in the error, what the error says)
    "not_utf8": (FINE + b'{"prompt": "\xff\xfe\x80"}\n', 2, "not UTF-8"),
    "random_bytes": (bytes(range(128, 256)) * 8, 1, "not UTF-8"),
    "empty": (b"\n\n", None, "no"),
    "truncated_json": (FINE + b'{"prompt": "cut', 2, "not valid JSON"),
    "not_an_object": (FINE + b'["a", "list"]\n', 2, "expected a JSON object"),
    "wrong_types": (FINE + b'{"prompt": 5, "messages": "hi", "response": 7}\n', 2, ""),
    "bad_role": (FINE + b'{"messages": [{"role": "robot", "content": "x"}], "response": "y"}\n', 2, "role"),
    "huge_line": (FINE + b'{"prompt": "' + b"x" * 5000 + b'"}\n', 2, "line longer"),
}


class FakeJudge:
    name, version, kind = "fake", "1", "refusal"

    def score(self, items):
        return [Score(kind="refusal", judge="fake", judge_version="1", value=0.0) for _ in items]


@pytest.fixture(autouse=True)
def small_lines_and_fake_judge(monkeypatch, tmp_path):
    monkeypatch.setattr(breakfix.files, "MAX_LINE_BYTES", 4096)  # "huge" without writing 8 MiB
    monkeypatch.setattr("breakfix.cli.judge._judge", lambda *a, **k: FakeJudge())
    monkeypatch.setenv("BREAKFIX_STORE", str(tmp_path / "store" / "s.db"))


def invoke(*args):
    return runner.invoke(app, ["--quiet", *map(str, args)])


def assert_one_line_failure(result, *named, out_dir=None, expected_files=()):
    """Non-zero exit, one `error:` line naming each of `named`, no traceback, nothing half-written."""
    assert result.exit_code not in (0, None), result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for name in named:
        assert name in lines[0], (name, lines[0])
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    if out_dir is not None:
        assert sorted(p.name for p in out_dir.iterdir()) == sorted(expected_files)


def assert_no_run_left_running(tmp_path):
    path = tmp_path / "store" / "s.db"
    if path.exists():
        with Store(path) as db:
            assert [r.id for r in db.runs() if r.status == "running"] == []


COMMANDS = {  # name: build argv from (input file, output folder); which BAD_JSONL rows apply
    "generate": (lambda src, out: ["generate", "-m", "mock:echo", "-i", src, "-o", out / "o.jsonl"],
                 set(BAD_JSONL)),
    "judge score": (lambda src, out: ["judge", "score", "-i", src, "-o", out / "o.jsonl"], set(BAD_JSONL) - {"empty"}),
    "data list --file": (lambda src, out: ["data", "list", "--file", src], set(BAD_JSONL) - {"bad_role", "wrong_types", "empty"}),
    "data check --file": (lambda src, out: ["data", "check", "--file", src], set(BAD_JSONL) - {"bad_role", "wrong_types", "empty"}),
}
CASES = [(cmd, bad) for cmd, (_, applies) in COMMANDS.items() for bad in BAD_JSONL if bad in applies]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("command, bad", CASES, ids=[f"{c}-{b}" for c, b in CASES])
def test_a_bad_input_file_is_one_line_naming_file_and_line(tmp_path, command, bad):
    content, line, says = BAD_JSONL[bad]
    src = tmp_path / f"{bad}.jsonl"
    src.write_bytes(content)
    out = tmp_path / "out"
    out.mkdir()
    result = invoke(*COMMANDS[command][0](src, out))
    assert_one_line_failure(result, f"{src}:{line}:" if line else str(src), says, out_dir=out)
    assert_no_run_left_running(tmp_path)


BAD_YAML = {
    "not_utf8": (b"rounds: 2\nmodel: \xff\xfe\n", "not UTF-8"),
    "truncated": (b"rounds: [\n", "not valid YAML"),
    "wrong_types": (b"rounds: many\n", "rounds"),
    "unknown_key": (b"roundz: 2\n", "unknown key"),
    "not_a_mapping": (b"- rounds\n- 2\n", "top level must be a mapping"),
    "multi_turn_floor": (b"curate:\n  floor_techniques: [direct, crescendo]\n", "needs a single-turn attack"),
    "dev_in_the_loops_red_team": (b"redteam:\n  splits: [fix, dev]\n", "must not include dev"),
    "unknown_floor_converter": (b"curate:\n  floor_techniques: [direct+nonsense]\n", "unknown converter 'nonsense'"),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("bad", list(BAD_YAML))
def test_a_bad_recipe_is_one_line_naming_the_file_and_no_run_starts(tmp_path, bad):
    content, says = BAD_YAML[bad]
    recipe = tmp_path / "recipe.yaml"
    recipe.write_bytes(content)
    result = invoke("run", "--config", recipe, "--model", "mock:comply")
    assert_one_line_failure(result, str(recipe), says)
    assert_no_run_left_running(tmp_path)


def test_rounds_out_of_range_is_one_line(tmp_path):
    assert_one_line_failure(invoke("run", "--rounds", 21, "--model", "mock:comply"), "rounds", "20")
    assert_no_run_left_running(tmp_path)


# --- output places ------------------------------------------------------------------------------


@pytest.fixture
def prompts(tmp_path):
    src = tmp_path / "p.jsonl"
    src.write_text('{"id": "a", "prompt": "alpha"}\n{"id": "b", "prompt": "beta"}\n')
    return src


def generate(prompts, output):
    return invoke("generate", "-m", "mock:echo", "-i", prompts, "-o", output)


def test_a_symlink_output_is_written_through(tmp_path, prompts):
    real, link = tmp_path / "real.jsonl", tmp_path / "link.jsonl"
    real.write_text("")
    link.symlink_to(real)
    assert generate(prompts, link).exit_code == 0
    assert link.is_symlink() and len(real.read_text().splitlines()) == 2


def _node(tmp_path, name, minor):
    path = tmp_path / name
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
    except PermissionError:
        pytest.skip("mknod needs root")
    return path


def test_a_device_output_is_written_in_place(tmp_path, prompts):
    null = _node(tmp_path, "null", 3)
    assert generate(prompts, null).exit_code == 0
    assert stat.S_ISCHR(null.stat().st_mode)


def test_a_full_device_output_fails_in_one_line_and_the_run_fails(tmp_path, prompts):
    full = _node(tmp_path, "full", 7)
    assert_one_line_failure(generate(prompts, full), str(full), "No space left")
    assert_no_run_left_running(tmp_path)
    with Store(tmp_path / "store" / "s.db") as db:
        assert [r.status for r in db.runs()] == ["failed"]


def test_a_directory_output_names_the_path_given(tmp_path, prompts):
    folder = tmp_path / "folder"
    folder.mkdir()
    assert_one_line_failure(generate(prompts, folder), f"{folder}: is a directory", out_dir=folder)
    assert not (tmp_path / "store").exists()  # refused before any run


@pytest.fixture
def mounted(tmp_path):
    """Mount a tmpfs with options (root only); yields a function taking the options."""
    points = []

    def mount(options):
        point = tmp_path / f"mnt{len(points)}"
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
        points.append(point)
        return point

    yield mount
    for point in points:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)  # lazily: the store may still hold it


def test_a_read_only_folder_fails_before_generation(tmp_path, prompts, mounted):
    if os.geteuid() == 0:
        folder = mounted("ro,size=64k")
    else:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o500)
    result = generate(prompts, folder / "o.jsonl")
    assert_one_line_failure(result, str(folder / "o.jsonl"), "cannot write", out_dir=folder)
    assert not (tmp_path / "store").exists()


@pytest.mark.timeout(120)
def test_a_store_on_a_full_disk_is_one_line_and_no_run_is_left_running(tmp_path, mounted):
    disk = mounted("size=256k")
    src = tmp_path / "big.jsonl"
    src.write_text("".join(json.dumps({"id": str(i), "prompt": "x" * 2000}) + "\n" for i in range(400)))
    out = tmp_path / "out"
    out.mkdir()
    result = runner.invoke(app, ["--quiet", "generate", "-m", "mock:echo", "-i", str(src), "-o", str(out / "o.jsonl"),
                                 "--store", str(disk / "s.db")])
    assert_one_line_failure(result, "full", out_dir=out)
    print(result.stderr)
    with sqlite3.connect(f"file:{disk / 's.db'}?mode=ro", uri=True) as conn:
        assert conn.execute("SELECT status FROM runs").fetchall() == [("failed",)]
