"""The loop on the real model (the smoke recipe: one short round), killed with SIGKILL during
generation and during training and resumed: it must end with the same records as a run that
was never interrupted. Also its report, redacted and not, in headless Chromium."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from breakfix.store import Store
from tests.report.conftest import ARTIFACTS, open_in_chromium

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]  # three short real runs
SMOKE = Path(__file__).parents[1] / "recipes" / "smoke.yaml"
BREAKFIX = str(Path(sys.executable).parent / "breakfix")


def start(store: Path, *args: str) -> subprocess.Popen:
    log = open(store.parent / "log.txt", "a")
    return subprocess.Popen([BREAKFIX, "run", *args, "--store", str(store)], stdout=log, stderr=log,
                            start_new_session=True)


def records(store: Path) -> tuple[str, dict]:
    """The loop's run id, and each step's record counts (conversations, messages, scores, findings,
    datasets, checkpoints) and status."""
    with Store(store) as db:
        (run,) = [r for r in db.runs() if r.kind == "cycle"]
        steps = db.steps(run.id)
        return run.id, {f"r{s.round}.{s.phase}": {"status": s.status, **db.run(s.child_run_id).counts} for s in steps}


def query(store: Path, sql: str) -> list[tuple]:
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute(sql).fetchall()
    except sqlite3.Error:  # not created yet, or busy
        return []


def kill_when(proc: subprocess.Popen, ready, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before it could be killed there"
        if ready():
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return
        time.sleep(0.2)
    pytest.fail("the kill point never came")


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    store = tmp_path_factory.mktemp("whole") / "s.db"
    proc = start(store, "--config", str(SMOKE))
    assert proc.wait(timeout=1500) == 0, (store.parent / "log.txt").read_text()[-3000:]
    return store, *records(store)


def test_a_run_killed_while_generating_and_while_training_resumes_to_the_same_records(whole, tmp_path):
    _, _, expected = whole
    store = tmp_path / "s.db"
    generating = start(store, "--config", str(SMOKE))
    kill_when(generating, lambda: query(store, "SELECT COUNT(*) FROM conversations WHERE run_id LIKE '%.r0.eval'") > [(0,)]
              and query(store, "SELECT status FROM steps WHERE round = 0 AND phase = 'eval'") == [("running",)])
    run_id, partial = records(store)
    assert partial["r0.eval"]["status"] == "running"

    folder = tmp_path / run_id / "round-1"
    training = start(store, "--resume", run_id)
    kill_when(training, lambda: any(folder.glob("*/trainer/checkpoint-*")))
    _, partial = records(store)
    assert partial["r1.train"]["status"] == "running" and partial["r0.eval"]["status"] == "completed"

    finishing = start(store, "--resume", run_id)
    assert finishing.wait(timeout=1500) == 0, (tmp_path / "log.txt").read_text()[-3000:]
    _, final = records(store)
    assert final == expected
    with Store(store) as db:
        tries = {(s.round, s.phase): s.tries for s in db.steps(run_id)}
        assert db.run(run_id).status == "completed"
    assert tries[(0, "eval")] == 2 and tries[(1, "train")] == 2


def test_the_real_report_redacts_harm_unless_asked_and_renders(whole, tmp_path):
    store, run_id, counts = whole
    folder = store.parent / run_id
    ledger = json.loads((folder / "ledger.json").read_text())
    assert ledger["base_model"]["weights_sha256"] and ledger["checkpoints"][0]["parent"] is None
    assert [c["stage"] for c in ledger["checkpoints"]][:1] == ["sft"]
    with Store(store) as db:
        findings = db.findings(f"{run_id}.r1.redteam")
    harmful = [m.content for f in findings for m in f.conversation if m.role == "assistant" and len(m.content) > 40]
    redacted = (folder / "report.html").read_text()
    subprocess.run([BREAKFIX, "report", run_id, "--show-harmful", "-o", str(tmp_path / "shown.html"), "--store", str(store)],
                   check=True, capture_output=True)
    shown = (tmp_path / "shown.html").read_text()
    assert "[redacted:" in redacted
    if harmful:
        from html import escape

        assert not any(escape(text) in redacted for text in harmful)
        assert any(escape(text) in shown for text in harmful)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    dom, console = open_in_chromium(folder / "report.html", ARTIFACTS / "report-smoke.png")
    assert console == [] and 'data-rendered="ok"' in dom
    assert "round 1" in dom and "Attack success, round 1 red team" in dom


def test_the_smoke_round_trains_dpo_on_the_sft_models_answers_to_its_probes(whole):
    store, run_id, _ = whole
    with Store(store) as db:
        [train] = [s for s in db.steps(run_id) if s.phase == "train"]
        checkpoints = db.checkpoints(f"{run_id}.r1.train")
    on_policy = train.output["on_policy"]
    assert on_policy.get("benign", 0) + on_policy.get("harmful", 0) > 0  # smoke: probe_ratio 0.5
    dpo = next(c for c in checkpoints if c["meta"]["stage"] == "dpo")
    assert dpo["meta"]["on_policy"]["counts"] == on_policy and Path(dpo["meta"]["on_policy"]["path"]).is_file()
