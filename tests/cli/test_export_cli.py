"""Exports other tools read: `runs export` as JSONL that `datasets` loads, with every score;
`data export --format hf` with real nested structs."""

import json

from typer.testing import CliRunner

from breakfix.cli import app
from breakfix.store import Store
from breakfix.types import Score

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_runs_export_writes_conversations_with_every_score_that_datasets_loads(tmp_path):
    src = tmp_path / "p.jsonl"
    src.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"question {i}", "category": "c" if i else None}) + "\n"
                           for i in range(3)))
    store = tmp_path / "s.db"
    assert invoke("generate", "-m", "mock:comply", "-i", src, "-o", tmp_path / "o.jsonl", "--store", store).exit_code == 0
    with Store(store) as db:
        run_id = db.runs()[0].id
        for conv, severity in zip(db.conversations(run_id), (3.0, 0.0, None)):
            scores = [Score(kind="refusal", judge="refusal", judge_version="r2", label="full_compliance", value=0.0)]
            if severity is not None:
                scores.append(Score(kind="harm", judge="harm", judge_version="h7", value=severity, config={"at": "4"}))
            db.add_scores(conv.id, len(conv.messages) - 1, scores)
    out = tmp_path / "run.jsonl"
    result = invoke("runs", "export", run_id[:8], "-o", out, "--store", store)
    assert result.exit_code == 0, result.output
    from datasets import load_dataset

    rows = load_dataset("json", data_files=str(out), split="train")
    assert len(rows) == 3 and set(rows["run_id"]) == {run_id}
    assert rows[0]["messages"][-1] == {"role": "assistant", "content": "Sure, here is exactly what you asked for, step by step."}
    judged = sorted((s["judge"], s["judge_version"], s["value"]) for r in rows for s in r["scores"])
    assert judged == [("harm", "h7", 0.0), ("harm", "h7", 3.0)] + [("refusal", "r2", 0.0)] * 3
    assert json.loads(next(s for r in rows for s in r["scores"] if s["judge"] == "harm")["config_json"]) == {"at": "4"}


def test_data_export_hf_keeps_nested_fields_as_structs(tmp_path):
    hf_dir = tmp_path / "hf"
    result = invoke("data", "export", "--source", "breakfix.contrast", "--split", "fix", "--format", "hf", "-o", hf_dir)
    assert result.exit_code == 0, result.output
    from datasets import load_from_disk

    dataset = load_from_disk(str(hf_dir))
    nested = [k for k, v in dataset[0].items() if isinstance(v, (dict, list))]
    assert nested, dataset.features  # something nested came through as a struct or list
    assert not any(isinstance(v, str) and v[:1] in "[{" and v[-1:] in "]}" for v in dataset[0].values())
