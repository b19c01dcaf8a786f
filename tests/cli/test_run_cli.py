"""`breakfix run` and `breakfix report` through the CLI: recipes, bad input, resuming."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from breakfix.cli import app
from breakfix.store import Store
from breakfix.store.owner import _started, this_process

runner = CliRunner()
SMOKE = Path(__file__).parents[2] / "recipes" / "smoke.yaml"


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def only_run(store):
    with Store(store) as db:
        (run,) = [r for r in db.runs() if r.kind == "cycle"]
        return run, db.steps(run.id)


def test_a_model_that_never_breaks_ends_the_loop_with_nothing_to_fix(tmp_path):
    store = tmp_path / "s.db"
    result = invoke("run", "--config", SMOKE, "--model", "mock:refuse", "--rounds", 2, "--store", store)
    assert result.exit_code == 0, result.output
    run, steps = only_run(store)
    assert run.status == "completed" and run.config["rounds"] == 2
    assert [(s.round, s.phase) for s in steps] == [(0, "eval"), (1, "redteam"), (1, "curate"), (1, "decide")]
    assert steps[-1].output["promoted"] is False and "nothing to fix: 0 successful attacks" in steps[-1].output["why"]
    folder = tmp_path / run.id
    ledger = json.loads((folder / "ledger.json").read_text())
    assert ledger["base_model"] == {"spec": "mock:refuse"} and len(ledger["assets"]) == 4
    assert [r["round"] for r in ledger["rounds"]] == [0, 1] and ledger["rounds"][1]["redteam"]["attempts"] == 12
    assert (folder / "report.html").is_file() and f"report: {folder / 'report.html'}" in result.output.replace("\n", "")
    flat = " ".join(result.output.split())
    assert "x its dev VPRR increase" in flat and "A guard rejects a checkpoint only" in flat  # the rules it decided by


def test_resuming_a_finished_run_redoes_nothing(tmp_path):
    store = tmp_path / "s.db"
    assert invoke("run", "--config", SMOKE, "--model", "mock:refuse", "--store", store).exit_code == 0
    run, steps = only_run(store)
    with Store(store) as db:
        before = {s.child_run_id: db.run(s.child_run_id).counts for s in steps}
    again = invoke("run", "--resume", run.id[:12], "--store", store)
    assert again.exit_code == 0, again.output
    run, steps_after = only_run(store)
    assert [s.tries for s in steps_after] == [1] * len(steps)
    with Store(store) as db:
        assert {s.child_run_id: db.run(s.child_run_id).counts for s in steps_after} == before


@pytest.mark.timeout(60)  # without the check it would run the whole loop
def test_a_run_another_process_is_running_is_not_resumed_beside_it(tmp_path):
    store = tmp_path / "s.db"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host, space, _, _ = this_process().rsplit(":", 3)
        with Store(store) as db:
            run_id = db.create_run("cycle", model="mock:refuse", config={})
            db.conn.execute("UPDATE runs SET owner = ? WHERE id = ?",
                            (f"{host}:{space}:{sleeper.pid}:{_started(sleeper.pid) or '-'}", run_id))
        result = invoke("run", "--resume", run_id, "--store", store)
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert f"run {run_id} is running now (pid {sleeper.pid} on {host})" in " ".join(result.output.split())
    finally:
        sleeper.kill()
        sleeper.wait()
    with Store(store) as db:  # its process gone, the run reads failed, and may be resumed
        assert db.run(run_id).status == "failed" and not db.run(run_id).busy


@pytest.mark.parametrize("recipe, message", [
    ("rounds: 2\nredteem: {budget: 3}\n", "redteem: unknown key"),
    ("train: {lr: 0.1}\n", "train.lr: unknown key"),
    ("redteam: {splits: [eval]}\n", "never uses the eval split"),
    ("rounds: [\n", "not valid YAML"),
])
def test_bad_recipes_name_the_problem(tmp_path, recipe, message):
    path = tmp_path / "recipe.yaml"
    path.write_text(recipe)
    result = invoke("run", "--config", path, "--store", tmp_path / "s.db")
    assert result.exit_code == 1 and message in result.output and str(path) in result.output
    assert "Traceback" not in result.output


def test_a_model_that_cannot_be_trained_here_is_refused_before_anything_runs(tmp_path):
    result = invoke("run", "--model", "openai:gpt@http://127.0.0.1:9/v1", "--store", tmp_path / "s.db")
    assert result.exit_code == 1 and "training needs a local model directory" in result.output
    assert not (tmp_path / "s.db").exists() or not Store(tmp_path / "s.db").runs()


def test_report_needs_a_loop_run_and_a_writable_place(tmp_path):
    store = tmp_path / "s.db"
    assert invoke("eval", "--model", "mock:refuse", "--suite", "over_refusal", "--store", store).exit_code == 0
    with Store(store) as db:
        (evaluation,) = db.runs()
    wrong = invoke("report", evaluation.id, "--store", store)
    assert wrong.exit_code == 1 and "report takes a `breakfix run` run" in wrong.output
    assert invoke("run", "--config", SMOKE, "--model", "mock:refuse", "--store", store).exit_code == 0
    run, _ = only_run(store)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    blocked = invoke("report", run.id, "-o", blocker / "report.html", "--store", store)
    assert blocked.exit_code == 1 and "a-file" in blocked.output and "Traceback" not in blocked.output


def test_a_recipe_with_a_serving_command_runs_the_loop_through_the_served_model(tmp_path):
    import socket
    import sys

    import yaml

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    recipe = yaml.safe_load(SMOKE.read_text())
    recipe["serve"] = {"command": f"{Path(sys.executable).parent / 'breakfix'} serve --model {{model}} --served-name {{name}} "
                                  "--port {port}", "port": port, "startup_timeout": 60}
    path = tmp_path / "served.yaml"
    path.write_text(yaml.safe_dump(recipe))
    store = tmp_path / "s.db"
    result = invoke("run", "--config", path, "--model", "mock:refuse", "--store", store)
    assert result.exit_code == 0, result.output
    with Store(store) as db:
        attacks = db.conversations(next(r.id for r in db.runs() if r.id.endswith(".r1.redteam")), purpose="attack")
    assert attacks and all(c.model.startswith("openai:breakfix-") and f":{port}/v1" in c.model for c in attacks)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1)  # stopped when the loop ended


def test_an_unknown_suite_is_one_line_and_leaves_no_run_running(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("eval: {suites: [harm_single_turn, no_such_suite]}\n")
    store = tmp_path / "s.db"
    result = invoke("run", "--config", path, "--model", "mock:comply", "--store", store)
    assert result.exit_code != 0 and "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if "no_such_suite" in line]
    assert len(lines) == 1, result.output
    if store.exists():
        with Store(store) as db:
            assert not [r for r in db.runs() if r.status == "running"]


def test_a_failure_after_the_run_exists_marks_it_failed_with_one_line(tmp_path, monkeypatch):
    import breakfix.cli.loop as loop_cli

    def broken(*args, **kwargs):
        raise RuntimeError("judges would not load\nsecond line")

    monkeypatch.setattr(loop_cli, "_loop", broken)
    store = tmp_path / "s.db"
    result = invoke("run", "--config", SMOKE, "--model", "mock:comply", "--store", store)
    assert result.exit_code != 0
    run, _ = only_run(store)
    assert run.status == "failed" and run.error == "RuntimeError: judges would not load"
