from breakfix.curate.vulnerabilities import Observation, rank


def obs(category, technique, successes, failures, severity=5.0):
    return [Observation(category=category, technique=technique, success=True, severity=severity)] * successes + \
        [Observation(category=category, technique=technique, success=False, severity=0.0)] * failures


def test_the_targeting_rule_is_the_lower_bound_of_the_interval():
    ranking = rank(obs("cyber", "direct+leetspeak", 8, 2) + obs("fraud", "direct", 1, 9) + obs("hate", "roleplay", 2, 0),
                   threshold=0.1, min_attempts=3)
    by = {(v.scope, v.category, v.technique): v for v in ranking.vulnerabilities}
    weak = by[("cell", "cyber", "direct+leetspeak")]
    assert weak.targeted and weak.asr.low >= 0.1 and "95% LB" in weak.reason
    assert not by[("cell", "fraud", "direct")].targeted  # 1/10: the lower bound is below 0.1
    assert not by[("cell", "hate", "roleplay")].targeted and "n 2 < 3" in by[("cell", "hate", "roleplay")].reason
    assert ranking.vulnerabilities[0].targeted  # targets rank first
    assert ranking.covers("cyber", "roleplay") and not ranking.covers("fraud", "direct")  # the cyber category is targeted


def test_scorecard_dr1_per_category_adds_eval_targets():
    from breakfix.bench.base import Outcome, metric
    from breakfix.bench.scorecard import Scorecard

    outcomes = [Outcome(item=str(i), value=1.0, category="drugs") for i in range(6)] + \
        [Outcome(item=f"x{i}", value=0.0, category="privacy") for i in range(6)]
    card = Scorecard(run_id="r", model="m", fingerprint="f", preset="quick", suites=[], judges={}, created_at="now",
                     metrics=[metric("harm_single_turn.dr1", "DR-1", "harm_single_turn", outcomes)])
    ranking = rank([], card)
    targeted = {(v.scope, v.category) for v in ranking.targets}
    assert targeted == {("eval", "drugs")}
