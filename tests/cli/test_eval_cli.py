import json

import pytest
from typer.testing import CliRunner

from breakfix.cli import app
from breakfix.store import Store

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_eval_prints_and_keeps_a_scorecard_and_compare_pairs_two(tmp_path):
    store = tmp_path / "s.db"
    first = invoke("eval", "--model", "mock:refuse", "--suite", "over_refusal", "--suite", "harm_single_turn",
                   "--store", store, "-o", tmp_path / "a.json", "--markdown", tmp_path / "a.md")
    assert first.exit_code == 0, first.output
    assert "IPRR" in first.output and "100.0 [" in first.output
    assert json.loads((tmp_path / "a.json").read_text())["model"] == "mock:refuse"
    assert (tmp_path / "a.md").read_text().startswith("| Metric | mock:refuse |")
    second = invoke("eval", "--model", "mock:echo", "--suite", "over_refusal", "--store", store)
    assert second.exit_code == 0, second.output
    with Store(store) as db:
        runs = sorted(db.runs(), key=lambda r: r.created_at)
    assert [r.kind for r in runs] == ["eval", "eval"]
    compared = invoke("eval", "compare", runs[0].id, runs[1].id, "--store", store, "-o", tmp_path / "c.json")
    assert compared.exit_code == 0, compared.output
    rows = {r["key"]: r for r in json.loads((tmp_path / "c.json").read_text())}
    assert rows["over_refusal.vprr"]["verdict"] == "better" and rows["over_refusal.vprr"]["paired"] == 120
    assert "harm_single_turn.dr1" not in rows  # only what both measured


@pytest.mark.parametrize("args, message", [
    (["--preset", "medium"], "use quick or full"),
    (["--suite", "xstest"], "needs --xstest-csv"),
    (["--suite", "vibes"], "unknown suite 'vibes'"),
])
def test_bad_eval_arguments_are_one_line_errors(tmp_path, args, message):
    result = invoke("eval", "--model", "mock:refuse", "--store", tmp_path / "s.db", *args)
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


def test_compare_needs_scorecards(tmp_path):
    result = invoke("eval", "compare", "nope", "nada", "--store", tmp_path / "s.db")
    assert result.exit_code == 1 and "no run 'nope'" in result.output


@pytest.mark.slow
def test_the_embedded_model_on_a_few_suites(tmp_path):
    result = invoke("eval", "--suite", "capability", "--suite", "over_refusal", "--store", tmp_path / "s.db",
                    "-o", tmp_path / "card.json", "--max-new-tokens", "64")
    assert result.exit_code == 0, result.output
    card = json.loads((tmp_path / "card.json").read_text())
    values = {m["key"]: m["estimate"]["value"] for m in card["metrics"]}
    assert values["capability.accuracy"] > 0.7  # the base model knows most of these
    assert values["capability.helpfulness"] > 0.7 and values["over_refusal.vprr"] < 0.5  # unaligned: rarely refuses
