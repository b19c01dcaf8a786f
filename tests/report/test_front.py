"""The report's harm-vs-over-refusal front of a round's candidates on dev: the base, the chosen
point and the rejected ones, drawn as valid SVG, with the guard rule and what each candidate broke."""

import xml.etree.ElementTree as ET

from breakfix.config import GuardConfig
from breakfix.policy import choice_rule, guard_rule
from breakfix.report import RoundView, _fronts
from breakfix.report.svg import front

SVG = "{http://www.w3.org/2000/svg}"


def verdict(name, harmful, vprr, eligible, broken=()):
    guards = [{"name": "over-refusal", "passed": not broken, "why": w} for w in broken] or [
        {"name": "over-refusal", "passed": True, "why": "fine"}]
    return {"name": name, "harmful": harmful, "vprr": vprr, "capability": 0.8, "helpfulness": None, "guards": guards,
            "eligible": eligible}


def test_the_front_marks_the_base_the_chosen_and_the_rejected_candidates():
    base = RoundView(round=0, selections=[{"name": "base", "headline": {"harmful": {"value": 0.6}, "vprr": {"value": 0.05}}}])
    sel = {"choice": {"chosen": "sft@9", "why": "chose sft@9", "verdicts": [
        verdict("sft@9", 0.3, 0.08, True), verdict("sft", 0.1, 0.5, False, ["VPRR +45.0 points"]),
        verdict("dpo", 0.35, 0.06, True)]}, "skipped": ["dpo@3: cannot load"]}
    (f,) = _fronts([base, RoundView(round=1, selections=[sel])])
    assert [r["kind"] for r in f["rows"]] == ["chosen", "rejected", "eligible"]
    assert f["rows"][1]["broken"] == ["VPRR +45.0 points"] and f["skipped"] == ["dpo@3: cannot load"]
    root = ET.fromstring(f["svg"])
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert {"base", "sft@9", "sft", "dpo", "chosen", "breaks a guard"} <= set(labels)
    assert len(list(root.iter(f"{SVG}circle"))) == 3 and len(list(root.iter(f"{SVG}rect"))) >= 1


def test_a_later_round_draws_the_checkpoint_it_started_from_and_says_when_it_was_kept():
    base = RoundView(round=0, selections=[{"name": "base", "headline": {"harmful": {"value": 0.6}, "vprr": {"value": 0.05}}}])
    sel = {"choice": {"chosen": None, "kept": True, "why": "no candidate improves on the current checkpoint on dev",
                      "verdicts": [verdict("dpo", 0.4, 0.06, True)], "incumbent": verdict("current", 0.3, 0.1, True)}}
    (f,) = _fronts([base, RoundView(round=2, selections=[sel])])
    assert [r["kind"] for r in f["rows"]] == ["eligible", "current (kept)"]
    root = ET.fromstring(f["svg"])
    label = next(t for t in root.iter(f"{SVG}text") if t.text == "current")
    square = [r for r in root.iter(f"{SVG}rect") if abs(float(r.get("x")) + 5 + 9 - float(label.get("x"))) < 0.2]
    assert len(square) == 1 and square[0].get("fill") == "#9467bd"  # drawn as a square of its own colour
    assert len(list(root.iter(f"{SVG}circle"))) == 1 and not list(root.iter(f"{SVG}polyline"))  # not on the path


def test_points_land_where_their_figures_say():
    root = ET.fromstring(front([("a", 50.0, 20.0, "chosen"), ("b", 100.0, 0.0, "eligible")], "t"))
    a, b = list(root.iter(f"{SVG}circle"))
    assert float(a.get("cx")) < float(b.get("cx")) and float(a.get("cy")) < float(b.get("cy"))  # more harm: higher up


def test_the_guard_rule_the_report_prints_names_the_limits():
    text = guard_rule(GuardConfig())
    assert "item by item" in text and "10 points" in text and "95%" in text and "McNemar" in text


def test_the_choice_rule_says_what_a_point_of_over_refusal_costs():
    assert "plus 1 x its dev VPRR increase" in choice_rule(1.0) and "eval split" in choice_rule(1.0)
    assert "costs 2 point(s) of harm" in choice_rule(2.0)
    assert "VPRR" not in choice_rule(0.0) and "lowest harmful rate" in choice_rule(0.0)
