"""The loop's decisions and steps, on scorecards and stores we build (fast; the real loop is
exercised end to end in tests/cli/test_run_cli.py)."""

import pytest

from breakfix.bench.base import Outcome, metric
from breakfix.bench.scorecard import Scorecard
from breakfix.config import CycleConfig
from breakfix.cycle import Loop, gain_p, headline


def card(run_id, harmful, vprr, capability):
    """A scorecard with `harmful` of 40 single-turn items harmful, `vprr` of 20 valid prompts
    refused and `capability` of 50 pairs right."""
    metrics = [
        metric("harm_single_turn.dr1", "Harm DR-1", "harm_single_turn",
               [Outcome(item=f"h{k}", value=float(k < harmful), category="cyber" if k % 2 else "fraud") for k in range(40)]),
        metric("over_refusal.vprr", "VPRR", "over_refusal", [Outcome(item=f"v{k}", value=float(k < vprr)) for k in range(20)]),
        metric("capability.accuracy", "Capability", "capability",
               [Outcome(item=f"c{k}", value=float(k < capability)) for k in range(50)], better="higher"),
    ]
    return Scorecard(run_id=run_id, model="m", fingerprint="f", preset="quick", suites=[], judges={}, created_at="",
                     metrics=metrics)


def loop(**overrides):
    config = CycleConfig.model_validate({"stop": {"harmful": ["harm_single_turn.dr1"]}, **overrides})
    return Loop(store=None, run_id="r", config=config, folder=None, catalog=None, judges=None, groundedness=None,
                home=None, load=None)


def test_headline_pools_the_harmful_metrics_and_reads_vprr_and_capability():
    figures = headline(card("a", 10, 2, 40), ["harm_single_turn.dr1"])
    assert (figures.harmful.n, figures.harmful.value) == (40, 0.25)
    assert figures.vprr.value == 0.1 and figures.capability.value == 0.8


def test_a_round_that_cuts_harm_significantly_is_promoted_and_the_loop_goes_on():
    base = card("a", 30, 2, 40)
    decision = loop().decide(1, base, base, card("b", 10, 3, 39))
    assert decision.promoted and not decision.stop
    assert decision.p_gain < 0.05 and decision.vprr_increase == pytest.approx(5.0)
    assert decision.retention == pytest.approx(39 / 40)


def test_too_much_over_refusal_keeps_the_previous_checkpoint_and_says_why():
    base = card("a", 30, 2, 40)
    decision = loop().decide(1, base, base, card("b", 0, 5, 40))  # 15 points more valid prompts refused
    assert not decision.promoted and decision.stop
    assert "VPRR rose 15.0 points" in decision.why and "keeping the previous checkpoint" in decision.why


def test_lost_capability_keeps_the_previous_checkpoint():
    base = card("a", 30, 2, 40)
    decision = loop().decide(1, base, base, card("b", 0, 2, 30))
    assert not decision.promoted and "retention 75.0%" in decision.why


def test_meeting_the_target_stops_and_no_significant_gain_stops():
    base = card("a", 30, 2, 40)
    met = loop().decide(1, base, base, card("b", 1, 2, 40))
    assert met.promoted and met.stop and "target met" in met.why
    flat = loop().decide(2, base, card("b", 12, 2, 40), card("c", 11, 2, 40))
    assert flat.promoted and flat.stop and "no significant gain" in flat.why
    going_on = loop(stop={"harmful": ["harm_single_turn.dr1"], "require_gain": False}).decide(2, base, card("b", 12, 2, 40),
                                                                                             card("c", 11, 2, 40))
    assert going_on.promoted and not going_on.stop


def test_gain_is_one_sided():
    worse = gain_p(card("a", 5, 2, 40), card("b", 20, 2, 40), ["harm_single_turn.dr1"])
    assert worse == 1.0
    assert gain_p(card("a", 20, 2, 40), card("b", 5, 2, 40), ["harm_single_turn.dr1"]) < 0.001


def test_steps_run_once_and_a_restarted_step_reuses_its_run(store):
    run_id = store.create_run("cycle", model="m", config={})
    first = store.begin_step(run_id, 1, "redteam", kind="redteam", model="m")
    again = store.begin_step(run_id, 1, "redteam", kind="redteam", model="m")  # as after a kill
    assert first.child_run_id == again.child_run_id == f"{run_id}.r1.redteam" and again.tries == 2
    store.finish_step(run_id, 1, "redteam", {"attempts": 3})
    assert store.step(run_id, 1, "redteam").output == {"attempts": 3}
    assert store.run(run_id).id == run_id  # the exact id wins over the children it prefixes
    assert store.run(f"{run_id}.r1").status == "completed"


def test_calls_made_by_a_completed_step_are_not_repeated(store, monkeypatch):
    import breakfix.cycle

    monkeypatch.setattr(breakfix.cycle, "write_ledger", lambda loop: None)
    run_id = store.create_run("cycle", model="m", config={})
    l = loop()
    l.store, l.run_id = store, run_id
    calls = []
    for _ in range(2):
        assert l.step(1, "curate", "m", lambda child: calls.append(child) or {"n": 1}) == {"n": 1}
    assert calls == [f"{run_id}.r1.curate"]


def test_a_model_that_fails_to_load_stops_the_run_and_a_resume_finishes_it(store, judges, tmp_path):
    from breakfix.data import load_catalog
    from breakfix.errors import TargetError
    from breakfix.paths import home
    from breakfix.targets import load_target

    calls = []

    def flaky(spec):
        calls.append(spec)
        if len(calls) == 1:
            raise TargetError(f"{spec}: cannot load (disk gone)")
        return load_target(spec)

    config = CycleConfig.model_validate({"model": "mock:refuse", "rounds": 1, "eval": {"suites": ["over_refusal"],
                                         "limits": {"over_refusal": 4}}, "redteam": {"budget": 4, "batch": 4}})
    run_id = store.create_run("cycle", model=config.model, config=config.model_dump(mode="json"))
    made = dict(store=store, run_id=run_id, config=config, folder=tmp_path / run_id, catalog=load_catalog(home()),
                judges=judges, groundedness=None, home=home(), load=flaky)
    with pytest.raises(TargetError, match="disk gone"):
        Loop(**made).run()
    assert [(s.phase, s.status) for s in store.steps(run_id)] == [("eval", "running")]
    decisions = Loop(**made).run()  # resumed
    assert [(s.round, s.phase, s.status) for s in store.steps(run_id)] == [
        (0, "eval", "completed"), (1, "redteam", "completed"), (1, "curate", "completed"), (1, "decide", "completed")]
    assert "nothing to fix" in decisions[0].why and len(calls) == 2 and store.step(run_id, 0, "eval").tries == 2
