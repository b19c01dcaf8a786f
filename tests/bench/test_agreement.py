"""A scorecard says how far its judges agree with people, next to the figures they produced."""

from breakfix.bench.scorecard import Scorecard, agreement_line, markdown


def card(agreement):
    return Scorecard(run_id="r", model="m", fingerprint="f", preset="quick", suites=[], judges={}, created_at="now",
                     metrics=[], judge_agreement=agreement)


def test_the_agreement_line_names_each_judge_and_its_figures():
    line = agreement_line(card({"refusal/offline": {"n": 300, "binary_accuracy": 0.912},
                                "harm/offline": {"n": 500, "spearman": 0.68, "threshold_accuracy": 0.79}}))
    assert "refusal/offline" in line and "91.2%" in line and "n=300" in line
    assert "harm/offline" in line and "Spearman 0.68" in line and "79.0%" in line


def test_unmeasured_judges_add_nothing():
    assert agreement_line(card({})) == ""
    assert "Judges" not in markdown([card({})])
    assert "Judges, on held-out human labels" in markdown([card({"refusal/offline": {"n": 3, "binary_accuracy": 1.0}})])
