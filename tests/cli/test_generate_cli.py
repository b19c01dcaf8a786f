"""`breakfix generate` never leaves a run `running`, keeps a batch when one request fails,
records content-filtered requests as blocked, and resumes after a kill without duplicates."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from breakfix.cli import app
from breakfix.store import Store
from tests.stubs import stub

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def prompts(tmp_path, texts):
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps({"id": f"q{i}", "prompt": t}) + "\n" for i, t in enumerate(texts)))
    return path


def statuses(store):
    with Store(store) as db:
        return [(r.status, r.error) for r in db.runs()]


def _provider(body):
    """A provider that answers HTML for one prompt, rejects one (400), filters two (Azure's 400
    and `finish_reason: content_filter`) and shouts the rest back."""
    prompt = body["messages"][-1]["content"]
    if prompt == "html":
        return 200, b"<html>login</html>", "text/html"
    if prompt == "bad":
        return 400, {"error": {"message": "this prompt is invalid", "type": "invalid_request_error"}}
    if prompt == "azure":
        return 400, {"error": {"message": "filtered", "code": "content_filter"}}
    choice = ({"message": {"role": "assistant", "content": None}, "finish_reason": "content_filter"} if prompt == "filtered"
              else {"message": {"role": "assistant", "content": prompt.upper()}, "finish_reason": "stop"})
    return 200, {"choices": [{"index": 0, **choice}]}


@pytest.fixture
def provider():
    with stub(_provider) as (url, _):
        yield f"openai:m@{url}"


def test_an_unwritable_output_fails_before_any_run_starts(tmp_path):
    src = prompts(tmp_path, ["a"])
    result = invoke("generate", "-m", "mock:echo", "-i", src, "-o", tmp_path, "--store", tmp_path / "s.db")
    assert result.exit_code == 1 and f"error: {tmp_path}: is a directory" in result.output
    assert ".p.jsonl" not in result.output and not (tmp_path / "s.db").exists()


@pytest.mark.timeout(60)
def test_one_400_keeps_the_batch_and_filtered_requests_are_blocked(tmp_path, provider):
    src = prompts(tmp_path, ["one", "bad", "azure", "two", "filtered"])
    out, store = tmp_path / "o.jsonl", tmp_path / "s.db"
    result = invoke("generate", "-m", provider, "-i", src, "-o", out, "--store", store)
    text = " ".join(result.output.split())  # rich wraps long lines
    assert result.exit_code == 1 and "1 of 5 requests failed" in text and "this prompt is invalid" in text
    assert "2 blocked by the provider's content filter" in text
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["status"], r["response"]) for r in rows] == [
        ("ok", "ONE"), ("error", None), ("blocked", None), ("ok", "TWO"), ("blocked", None)]
    with Store(store) as db:
        [run] = db.runs()
        convs = db.conversations(run.id)
    assert (run.status, run.error) == ("failed", "1 requests failed")
    replied = [c for c in convs if c.messages[-1].role == "assistant"]
    assert sorted(c.messages[-1].content for c in replied) == ["ONE", "TWO"]  # a blocked one is never an empty reply
    assert sorted(c.item_id for c in convs if "blocked" in c.meta) == ["q2", "q4"]


@pytest.mark.timeout(60)
def test_a_reply_that_is_not_json_fails_the_run_in_one_line(tmp_path, provider):
    result = invoke("generate", "-m", provider, "-i", prompts(tmp_path, ["html"]), "-o", tmp_path / "o.jsonl",
                    "--store", tmp_path / "s.db")
    assert result.exit_code == 1 and "Traceback" not in result.output
    [(status, error)] = statuses(tmp_path / "s.db")
    assert status == "failed" and "not an OpenAI chat completion" in error


def test_a_full_disk_under_the_store_fails_the_run_in_one_line(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Store, "add_conversation", full)
    result = invoke("generate", "-m", "mock:echo", "-i", prompts(tmp_path, ["a", "b"]), "-o", tmp_path / "o.jsonl",
                    "--store", tmp_path / "s.db")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip().splitlines()[-1] == "error: the run store failed: database or disk is full"
    monkeypatch.undo()
    assert statuses(tmp_path / "s.db") == [("failed", "OperationalError: database or disk is full")]
    assert not (tmp_path / "o.jsonl").exists()


N = 3000


def _generating(tmp_path):
    """`breakfix generate` of N prompts in a process of its own, once it has stored 200 replies:
    the command, its store, its output and the process."""
    src = prompts(tmp_path, [f"prompt {i}" for i in range(N)])
    store, out = tmp_path / "s.db", tmp_path / "o.jsonl"
    command = [sys.executable, "-m", "breakfix", "generate", "-m", "mock:echo", "-i", str(src), "-o", str(out),
               "--store", str(store), "--batch-size", "50"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while _stored(store) < 200 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
    except BaseException:
        proc.kill()
        raise
    return command, store, out, proc


@pytest.mark.timeout(120)
def test_a_kill_during_store_writes_then_a_rerun_resumes_without_duplicates(tmp_path):
    command, store, out, proc = _generating(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    first = _stored(store)
    assert 0 < first < N and not out.exists()
    [(status, error)] = statuses(store)  # not left "running": its process is gone
    assert status == "failed" and error.startswith("stopped without finishing")
    done = subprocess.run(command, capture_output=True, text=True, timeout=100)
    assert done.returncode == 0, done.stderr
    assert "resuming run" in done.stderr and "prompts already answered" in done.stderr
    with Store(store) as db:
        [run] = db.runs()
        assert run.status == "completed"
        assert db.run(run.id).counts["conversations"] == N
    assert len(out.read_text().splitlines()) == N
    again = subprocess.run(command, capture_output=True, text=True, timeout=100)
    assert again.returncode == 0 and len(statuses(store)) == 2  # a completed run is not resumed: a new one


@pytest.mark.timeout(120)
def test_a_stop_by_sigterm_marks_the_run_interrupted_and_a_rerun_resumes_it(tmp_path):
    command, store, out, proc = _generating(tmp_path)
    proc.terminate()
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode != 0 and "Traceback" not in stderr
    assert statuses(store) == [("failed", "interrupted")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=100)
    assert done.returncode == 0 and "resuming run" in done.stderr, done.stderr
    assert statuses(store) == [("completed", None)] and len(out.read_text().splitlines()) == N


def _stored(store):
    if not store.exists():
        return 0
    try:
        with sqlite3.connect(store, timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM conversations").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
