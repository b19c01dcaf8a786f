"""`runs show` and `chat` print model text safely: redacted when a stored judge found harm,
and never able to drive the terminal."""

import json

from typer.testing import CliRunner

from breakfix.cli import app
from breakfix.store import Store
from breakfix.types import Score

runner = CliRunner()
HOSTILE = "before \x1b[2J\x1b]8;;http://evil.example\x1b\\link\x1b]8;;\x1b\\ \x9b31m after"


def invoke(*args, **kwargs):
    return runner.invoke(app, [str(a) for a in args], **kwargs)


def generate(tmp_path, model, rows):
    src = tmp_path / "p.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    store = tmp_path / "s.db"
    result = invoke("generate", "-m", model, "-i", src, "-o", tmp_path / "o.jsonl", "--store", store)
    assert result.exit_code == 0, result.output
    with Store(store) as db:
        run_id = db.runs()[0].id
    return store, run_id


def test_replies_a_judge_scored_harmful_in_the_store_are_redacted(tmp_path):
    store, run_id = generate(tmp_path, "mock:comply", [{"id": f"q{i}", "prompt": f"question {i}"} for i in range(3)])
    with Store(store) as db:
        convs = db.conversations(run_id)
        for conv, severity in zip(convs, (3.0, 0.0, 1.0)):
            db.add_scores(conv.id, len(conv.messages) - 1,
                          [Score(kind="harm", judge="harm", judge_version="1", value=severity)])
    shown = invoke("runs", "show", run_id, "--store", store)
    assert shown.exit_code == 0, shown.output
    assert shown.output.count("[redacted:") == 2  # severities 3 and 1; the 0 one prints
    assert shown.output.count("Sure, here is exactly") == 1
    revealed = invoke("runs", "show", run_id, "--store", store, "--show-harmful")
    assert "[redacted:" not in revealed.output and revealed.output.count("Sure, here is exactly") == 3


def test_escape_codes_in_replies_are_printed_as_text(tmp_path):
    store, run_id = generate(tmp_path, "mock:echo", [{"id": "x", "prompt": HOSTILE}])
    shown = invoke("runs", "show", run_id, "--store", store)
    assert shown.exit_code == 0
    assert "\x1b" not in shown.output and "\x9b" not in shown.output
    assert "\\x1b[2J" in shown.output and "link" in shown.output
    once = invoke("chat", "-m", "mock:echo", "-p", HOSTILE)
    assert once.exit_code == 0 and "\x1b" not in once.output and "\\x1b]8;;" in once.output
    talk = invoke("chat", "-m", "mock:echo", input=HOSTILE + "\n/exit\n")
    assert talk.exit_code == 0 and "\x1b" not in talk.output.replace(HOSTILE, "")


def test_a_running_run_names_its_process_and_a_finished_one_does_not(tmp_path):
    import os

    store = tmp_path / "s.db"
    with Store(store) as db:
        running, done = db.create_run("eval"), db.create_run("eval")
        db.finish_run(done)
    listed = " ".join(invoke("runs", "list", "--store", store, env={"COLUMNS": "200"}).output.split())
    assert f"running (pid {os.getpid()} on" in listed and listed.count("(pid ") == 1
    shown = " ".join(invoke("runs", "show", running, "--store", store).output.split())
    assert f"running (pid {os.getpid()} on" in shown
    assert "(pid " not in " ".join(invoke("runs", "show", done, "--store", store).output.split())
