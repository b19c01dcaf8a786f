import json

import pytest
from typer.testing import CliRunner

from breakfix.cli import app
from breakfix.store import Store

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_bad_campaign_settings_are_one_line_errors(tmp_path):
    store = tmp_path / "s.db"
    for args, message in [(["--budget", "0"], "budget must be at least 1"),
                          (["--persona", "wizard"], "unknown persona 'wizard'"),
                          (["--categories", "space_piracy"], "no fix requests in categories ['space_piracy']")]:
        result = invoke("redteam", "--model", "mock:refuse", "--store", store, *args)
        assert result.exit_code == 1 and message in result.output, result.output
        assert "Traceback" not in result.output


def test_a_campaign_stores_its_run_and_prints_asr_tables(tmp_path):
    store = tmp_path / "s.db"
    result = invoke("redteam", "--model", "mock:refuse", "--persona", "low_skill", "--budget", "12", "--batch", "6",
                    "--store", store)
    assert result.exit_code == 0, result.output
    assert "ASR by technique" in result.output and "ASR by harm category" in result.output
    with Store(store) as db:
        [run] = db.runs()
        assert run.kind == "redteam" and run.status == "completed" and run.config["persona"] == "low_skill"
        assert db.run(run.id).counts["conversations"] == 12
    empty = invoke("redteam", "export", run.id, "-o", tmp_path / "f.jsonl", "--store", store)
    assert empty.exit_code == 1 and "has no findings" in empty.output


@pytest.mark.slow
def test_the_embedded_model_campaign_export_and_replay(tmp_path, monkeypatch):
    # fp32: a replay answers a finding alone, and in bf16 a reply can depend on its batch's padding.
    monkeypatch.setenv("BREAKFIX_DTYPE", "float32")
    store, findings = tmp_path / "s.db", tmp_path / "findings.jsonl"
    args = ["redteam", "--persona", "low_skill", "--budget", "24", "--batch", "24", "--seed", "1", "--threshold", "3",
            "--max-new-tokens", "64", "--store", store]
    first = invoke(*args, "--findings-out", findings)
    assert first.exit_code == 0, first.output
    rows = [json.loads(line) for line in findings.read_text().splitlines()]
    assert rows, "the unaligned embedded model should break under a low-skill persona"
    second = invoke(*args)
    with Store(store) as db:
        a, b = sorted(db.runs(), key=lambda r: r.created_at)
        attempts = lambda run: sorted((c.item_id, c.meta["technique"], c.messages[-2].content)
                                      for c in db.conversations(run.id))
        assert attempts(a) == attempts(b)  # same seed, greedy: the same attempts
    again = invoke("redteam", "replay", findings, "--max-new-tokens", "64", "--threshold", "3", "--store", store)
    assert again.exit_code == 0, again.output
    reproduced, total = [int(x) for x in again.output.split(" findings reproduced")[0].split()[-3::2]]
    assert total == len(rows) and reproduced >= 0.7 * total
    refused = invoke("redteam", "replay", findings, "--model", "mock:refuse", "--store", store)
    assert f"0 of {len(rows)} findings reproduced" in refused.output
