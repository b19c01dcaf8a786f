"""What red-teamers coming from garak, PyRIT or promptfoo expect: listing what can be chosen,
choosing techniques on the command line, and a CI gate on eval."""

import pytest
from typer.testing import CliRunner

from breakfix.cli import app
from breakfix.store import Store

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("kind, expected", [("attacks", ["crescendo", "pair", "template"]),
                                            ("converters", ["base64", "rot13"]),
                                            ("judges", ["harm", "refusal", "llm-harm"]),
                                            ("suites", ["harm_single_turn", "over_refusal"]),
                                            ("personas", ["intermediate", "low_skill"])])
def test_list_names_every_item_with_a_one_line_description(kind, expected):
    from breakfix.cli.list import Kind, entries

    result = invoke("list", kind)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    names = [line.split()[0] for line in lines]
    assert set(expected) <= set(names) and names == sorted(names)
    assert all(description and description != "(no description)" for _, description in entries(Kind(kind)))


def test_list_refuses_an_unknown_kind():
    result = invoke("list", "probes")
    assert result.exit_code != 0 and "probes" in result.output


def test_techniques_choose_a_campaign_without_a_persona_file(tmp_path):
    store = tmp_path / "s.db"
    result = invoke("redteam", "--model", "mock:refuse", "--techniques", "direct,template+base64", "--budget", "8",
                    "--batch", "4", "--store", store)
    assert result.exit_code == 0, result.output
    assert "template+base64" in result.output and "crescendo" not in result.output
    with Store(store) as db:
        [run] = db.runs()
        assert run.config["persona"] == "techniques:direct,template+base64" and run.status == "completed"


@pytest.mark.parametrize("spec, says, valid", [("crescendo,telepathy", "unknown technique 'telepathy'", "crescendo"),
                                               ("direct+rot26", "'rot26' is not a converter", "rot13")])
def test_an_unknown_technique_is_one_line_listing_the_valid_ones(tmp_path, spec, says, valid):
    result = invoke("redteam", "--model", "mock:refuse", "--techniques", spec, "--store", tmp_path / "s.db")
    assert result.exit_code == 1 and says in result.output and "Traceback" not in result.output
    assert valid in result.output.split(says)[1]  # the valid names follow
    assert len(result.output.strip().splitlines()) == 1


def test_fail_if_gates_eval_on_a_metric(tmp_path):
    store = tmp_path / "s.db"
    base = ("eval", "--model", "mock:refuse", "--suite", "over_refusal", "--store", store)
    failed = invoke(*base, "--fail-if", "over_refusal.iprr<0.5", "--fail-if", "over_refusal.vprr>0.15")
    assert failed.exit_code == 3, failed.output
    assert failed.output.strip().splitlines()[-1] == "fail: over_refusal.vprr = 1 > 0.15 (n=120)"
    passed = invoke(*base, "--fail-if", "over_refusal.vprr>=1.01")
    assert passed.exit_code == 0, passed.output
    unknown = invoke(*base, "--fail-if", "harm_single_turn.dr1>0.1")
    assert unknown.exit_code == 1 and "no metric 'harm_single_turn.dr1'" in unknown.output
    assert "over_refusal.vprr" in unknown.output


def test_a_malformed_gate_fails_before_anything_runs(tmp_path):
    result = invoke("eval", "--model", "mock:refuse", "--fail-if", "dr1 is high", "--store", tmp_path / "s.db")
    assert result.exit_code == 1 and "METRIC>LIMIT" in result.output
    assert not (tmp_path / "s.db").exists() or not Store(tmp_path / "s.db").runs()
