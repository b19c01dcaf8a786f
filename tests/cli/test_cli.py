"""The CLI as a user runs it: typer's runner for most paths, real subprocesses where it matters."""

import json
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
from typer.testing import CliRunner

from breakfix.cli import app
from breakfix.store import Store

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def prompts(tmp_path, rows):
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_generate_writes_replies_and_records_the_run(tmp_path):
    src = prompts(tmp_path, [{"id": "a", "prompt": "alpha", "topic": "x"}, {"prompt": "beta"}])
    out = tmp_path / "replies.jsonl"
    result = invoke("generate", "--model", "mock:echo", "-i", src, "-o", out, "--store", tmp_path / "s.db")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["id"], r["response"], r["topic"] if "topic" in r else None) for r in rows] == \
        [("a", "alpha", "x"), ("2", "beta", None)]
    with Store(tmp_path / "s.db") as db:
        [run] = db.runs()
        assert run.kind == "generate" and run.status == "completed" and run.config["input"] == str(src)
        assert db.run(run.id).counts["conversations"] == 2


def test_a_malformed_prompts_file_names_the_line_and_writes_nothing(tmp_path):
    src = tmp_path / "bad.jsonl"
    src.write_text('{"prompt": "ok"}\n{"prompt": oops}\n')
    out = tmp_path / "replies.jsonl"
    result = invoke("generate", "--model", "mock:echo", "-i", src, "-o", out, "--store", tmp_path / "s.db")
    assert result.exit_code == 1
    assert f"error: {src}:2: not valid JSON" in result.output
    assert "Traceback" not in result.output
    assert not out.exists() and not (tmp_path / "s.db").exists()


def test_a_dead_endpoint_fails_the_run_without_an_output_file(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = prompts(tmp_path, [{"prompt": "a"}])
    out = tmp_path / "replies.jsonl"
    result = invoke("generate", "--model", f"openai:m@http://127.0.0.1:{port}/v1", "-i", src, "-o", out,
                    "--store", tmp_path / "s.db")
    assert result.exit_code == 1 and "all 1 requests failed" in result.output and "ConnectError" in result.output
    assert not out.exists()
    with Store(tmp_path / "s.db") as db:
        assert db.runs()[0].status == "failed"


def test_unknown_model_is_one_line(tmp_path):
    result = invoke("chat", "--model", "nonsense-model", "-p", "hi")
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].startswith("error: unknown model 'nonsense-model'")


def test_debug_shows_the_traceback():
    result = invoke("--debug", "chat", "--model", "nonsense-model", "-p", "hi")
    assert result.exit_code != 0 and result.exception is not None


def test_chat_one_shot_and_interactive():
    assert invoke("chat", "--model", "mock:echo", "-p", "[bold]literal[/bold]").output.strip() == "[bold]literal[/bold]"
    result = runner.invoke(app, ["chat", "--model", "mock:echo"], input="first\n/reset\nsecond\n/exit\n")
    assert result.exit_code == 0
    assert "model> first" in result.output and "model> second" in result.output


def test_runs_list_and_show(tmp_path):
    src = prompts(tmp_path, [{"id": "bad", "prompt": "harm me", "harmful": True}, {"id": "ok", "prompt": "hello"}])
    store = tmp_path / "s.db"
    invoke("generate", "--model", "mock:comply", "-i", src, "-o", tmp_path / "o.jsonl", "--store", store)
    listed = invoke("runs", "list", "--store", store)
    assert listed.exit_code == 0 and "generate" in listed.output and "mock:comply" in listed.output
    run_id = Store(store).runs()[0].id
    shown = invoke("runs", "show", run_id[:15], "--store", store)
    assert shown.exit_code == 0 and "conversations=2" in shown.output
    assert "[redacted:" in shown.output and "Sure, here is exactly" in shown.output  # only the harmful one hidden
    revealed = invoke("runs", "show", run_id, "--store", store, "--show-harmful")
    assert "[redacted:" not in revealed.output
    missing = invoke("runs", "show", "nope", "--store", store)
    assert missing.exit_code == 1 and "no run 'nope'" in missing.output


def test_help_is_instant_and_imports_no_torch():
    code = "import sys, breakfix.cli; print('torch' in sys.modules, 'transformers' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False False"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "breakfix", "--help"], capture_output=True, check=True)
    assert time.perf_counter() - started < 3


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_runs_as_a_real_process_and_answers(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "breakfix", "serve", "--model", "mock:echo", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        from breakfix.targets.openai import OpenAITarget
        from breakfix.types import GenerationConfig, user

        assert OpenAITarget("mock:echo", f"{url}/v1").chat([user("ping")], GenerationConfig())[0].content == "ping"
        busy = subprocess.run([sys.executable, "-m", "breakfix", "serve", "--model", "mock:echo", "--port", str(port)],
                              capture_output=True, text=True, timeout=30)
        assert busy.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in busy.stderr
        assert "Traceback" not in busy.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_serve_refuses_a_public_address_without_a_key():
    env = {k: v for k, v in os.environ.items() if k != "BREAKFIX_SERVER_KEY"}
    done = subprocess.run([sys.executable, "-m", "breakfix", "serve", "--model", "mock:echo", "--host", "0.0.0.0"],
                          capture_output=True, text=True, timeout=30, env=env)
    assert done.returncode == 1 and "without a key" in done.stderr


@pytest.mark.slow
def test_generate_and_demo_with_the_embedded_model(tmp_path):
    src = prompts(tmp_path, [{"prompt": "What is the capital of France?"}])
    out = tmp_path / "o.jsonl"
    result = invoke("generate", "-i", src, "-o", out, "--max-new-tokens", "24", "--store", tmp_path / "s.db")
    assert result.exit_code == 0, result.output
    assert "Paris" in json.loads(out.read_text())["response"]
    demo = invoke("demo", "--max-new-tokens", "16", "--store", tmp_path / "s.db")
    assert demo.exit_code == 0, demo.output
    assert demo.output.count("[redacted:") == 3 and "latency" in demo.output
