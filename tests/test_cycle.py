"""The loop's steps and its choice among candidates, on stores and mock targets we build (fast;
the policy's rules are tested in tests/test_policy.py, the real loop end to end in
tests/cli/test_run_cli.py)."""

import pytest

from breakfix.bench.base import Outcome, metric
from breakfix.bench.scorecard import Scorecard
from breakfix.config import CycleConfig
from breakfix.cycle import Loop, SelectOutput


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


class Fake:
    """A scripted model for the selection set: refuses what `refuses(text)` says, answers the rest helpfully."""

    HELPFUL = ("Happy to help with that. {} The short answer: start with the basics, then look at the details one "
               "step at a time; here are the main points and an example.")

    def __init__(self, name, refuses):
        self.name = self.fingerprint = name
        self.refuses, self.batches, self.seen = refuses, [], []

    def chat(self, conversations, config):
        from breakfix.targets.mock import REFUSAL
        from breakfix.types import Reply

        self.batches.append(len(conversations))
        self.seen += [c[-1].content for c in conversations]
        return [Reply(content=REFUSAL if self.refuses(c[-1].content) else self.HELPFUL.format(c[-1].content))
                for c in conversations]


@pytest.fixture
def dev_loop(store, judges, tmp_path):
    """A loop whose models are Fakes named by the last part of their path: base and weak answer
    everything, over refuses everything, good refuses the harmful requests only, half about half of
    them, strict all of them and about one look-alike in seven; broken fails to load."""
    import zlib

    from breakfix.data import load_catalog
    from breakfix.errors import TargetError
    from breakfix.paths import home

    catalog = load_catalog(home())
    harmful = [s.text for s in catalog.select(kind="harmful")]
    half = [h for h in harmful if zlib.crc32(h.encode()) % 2]
    strict = [s.text for s in catalog.select(kind="benign") if zlib.crc32(s.text.encode()) % 7 == 0]
    rules = {"base": lambda t: False, "weak": lambda t: False, "over": lambda t: True,
             "good": lambda t: any(h in t for h in harmful), "half": lambda t: any(h in t for h in half),
             "strict": lambda t: any(h in t for h in harmful) or t in strict}
    made = {}

    def load(spec):
        name = spec.rsplit("/", 1)[-1].removeprefix("hf:")
        if name not in rules:
            raise TargetError(f"{spec}: cannot load")
        made[name] = Fake(name, rules[name])
        return made[name]

    config = CycleConfig.model_validate({"model": "hf:/m/base", "rounds": 1, "select": {
        "harmful": 1, "jailbreak": 6, "multi_turn": 4, "benign": 30, "instructions": 8}, "stop": {"harmful": [
        "harm_single_turn.dr1", "jailbreak.dr1", "harm_multi_turn.dr1"]}})
    run_id = store.create_run("cycle", model=config.model, config=config.model_dump(mode="json"))
    loop = Loop(store=store, run_id=run_id, config=config, folder=tmp_path / run_id, catalog=catalog, judges=judges,
                groundedness=None, home=home(), load=load)
    return loop, made, catalog


def trained(*names):
    from breakfix.config import TrainConfig
    from breakfix.cycle import TrainOutput
    from breakfix.train import Candidate

    return TrainOutput(model=f"/m/{names[-1]}", parent="hf:/m/base", stages={}, settings=TrainConfig(),
                       candidates=[Candidate(name=n, stage="sft", step=k, path=f"/m/{n}", weights_sha256="x")
                                   for k, n in enumerate(names)])


def test_the_loop_chooses_the_candidate_that_refuses_harm_but_not_look_alikes_on_dev(dev_loop):
    from breakfix.cycle import SelectOutput

    loop, made, catalog = dev_loop
    child = loop.store.begin_step(loop.run_id, 1, "select", kind="select", model="m").child_run_id
    out = SelectOutput.model_validate(loop._select(1, child, trained("weak", "over", "broken", "good")))
    assert out.choice.chosen == "good" and out.model == "hf:/m/good"
    verdicts = {v.name: v for v in out.choice.verdicts}
    assert not verdicts["over"].eligible and any(g.name == "over-refusal" and not g.passed for g in verdicts["over"].guards)
    assert verdicts["weak"].eligible and verdicts["weak"].harmful > verdicts["good"].harmful
    assert out.skipped and out.skipped[0].startswith("broken:")
    # One batched generation per model, all of it from the dev split, never eval.
    assert all(m.batches == [made["base"].batches[0]] for m in made.values()) and made["base"].batches[0] >= 48
    dev = {s.text for s in catalog.seeds if s.split == "dev"}
    evaluated = {s.text for s in catalog.seeds if s.split == "eval"}
    assert any(t in dev for t in made["good"].seen) and not any(t in evaluated for t in made["good"].seen)
    assert loop.store.step(loop.run_id, 0, "select").status == "completed"  # the base, scored once


def _red_teamed_and_curated(loop, n):
    """Round n's red team and curation as finished steps, so `_round` goes straight to training."""
    for phase, output in (("redteam", {"successes": 3, "attempts": 8}),
                          ("curate", {"files": {"sft": {"path": "x", "n": 1, "sha256": "s"}}})):
        loop.store.begin_step(loop.run_id, n, phase, kind=phase, model="m")
        loop.store.finish_step(loop.run_id, n, phase, output)


def test_a_round_whose_candidates_all_break_a_guard_retries_rebalanced_then_keeps_the_previous_checkpoint(dev_loop, monkeypatch):
    loop, made, _ = dev_loop
    monkeypatch.setattr("breakfix.cycle.write_ledger", lambda loop: None)
    _red_teamed_and_curated(loop, 1)
    settings = []
    monkeypatch.setattr(Loop, "_train", lambda self, n, child, model, fix, s=None, tag="": settings.append(s) or
                        trained("over").model_dump(mode="json"))
    monkeypatch.setattr(Loop, "_curate", lambda self, *a: {"files": {"sft": {"path": "y", "n": 1, "sha256": "t"}}})
    decision, model, card = loop._round(1, "hf:/m/base", None, None)
    assert not decision.promoted and decision.stop and model is None
    assert "every candidate breaks a guard" in decision.why and "VPRR +100.0 points" in decision.why
    assert len(settings) == 2 and settings[1].sft_learning_rate < settings[0].sft_learning_rate
    assert any("rebalanced after" in a and "over-refusal" in a and "benign_ratio" in a for a in decision.attempts)
    phases = [s.phase for s in loop.store.steps(loop.run_id)]
    assert {"train", "select", "curate-try2", "train-try2", "select-try2", "decide"} <= set(phases)


def test_a_round_that_does_not_beat_its_starting_checkpoint_on_dev_keeps_it_without_retrying(dev_loop, monkeypatch):
    loop, made, _ = dev_loop
    monkeypatch.setattr("breakfix.cycle.write_ledger", lambda loop: None)
    # Round 1 chose `good` (refuses harm only) on dev; its card is what round 2 must beat.
    child = loop.store.begin_step(loop.run_id, 1, "select", kind="select", model="m").child_run_id
    loop.store.finish_step(loop.run_id, 1, "select", loop._select(1, child, trained("weak", "good"), "", "hf:/m/base"))
    scored = made["good"]
    _red_teamed_and_curated(loop, 2)
    tries = []
    monkeypatch.setattr(Loop, "_train", lambda self, n, child, model, fix, s=None, tag="": tries.append(tag) or
                        trained("weak").model_dump(mode="json"))
    decision, model, card = loop._round(2, "hf:/m/good", None, None)  # a candidate that answers everything costs more
    assert not decision.promoted and decision.stop and model is None and tries == [""]
    assert "no candidate improves on the current checkpoint on dev" in decision.why
    assert made["good"] is scored  # round 1's card reused: the incumbent is not loaded or scored again
    choice = SelectOutput.model_validate(loop.store.step(loop.run_id, 2, "select").output).choice
    assert choice.kept and choice.incumbent.harmful < next(v.harmful for v in choice.verdicts if v.name == "weak")


def test_a_round_kept_because_a_guard_held_back_a_better_candidate_retries_rebalanced(dev_loop, monkeypatch):
    loop, made, _ = dev_loop
    monkeypatch.setattr("breakfix.cycle.write_ledger", lambda loop: None)
    child = loop.store.begin_step(loop.run_id, 1, "select", kind="select", model="m").child_run_id
    loop.store.finish_step(loop.run_id, 1, "select", loop._select(1, child, trained("half"), "", "hf:/m/base"))
    _red_teamed_and_curated(loop, 2)
    tries = []
    monkeypatch.setattr(Loop, "_train", lambda self, n, child, model, fix, s=None, tag="": tries.append(tag) or
                        trained("weak", "strict").model_dump(mode="json"))
    monkeypatch.setattr(Loop, "_curate", lambda self, *a: {"files": {"sft": {"path": "y", "n": 1, "sha256": "t"}}})
    decision, model, card = loop._round(2, "hf:/m/half", None, None)
    choice = SelectOutput.model_validate(loop.store.step(loop.run_id, 2, "select").output).choice
    strict = next(v for v in choice.verdicts if v.name == "strict")
    assert strict.harmful == 0 and strict.vprr >= 0.05  # every harmful request and a few dev look-alikes refused
    # strict refuses every harmful request and a few look-alikes: within the eval guard's rule, but
    # not sure enough to be chosen on dev; it would have beaten the incumbent, so the round retries.
    assert next(g for g in strict.guards if g.name == "over-refusal").passed
    assert choice.kept and choice.held_back == ["over-refusal bound"] and "strict would, but breaks" in choice.why
    assert tries == ["", "-try2"] and not decision.promoted and decision.stop and model is None
    assert any("rebalanced after over-refusal bound" in a for a in decision.attempts)


def test_a_refusal_gate_needs_the_model_in_this_process_and_is_skipped_with_a_note_otherwise(dev_loop):
    from breakfix.config import GateConfig
    from breakfix.cycle import SelectOutput

    loop, made, _ = dev_loop
    child = loop.store.begin_step(loop.run_id, 1, "select", kind="select", model="m").child_run_id
    plan = trained("weak", "good")
    plan.settings = plan.settings.model_copy(update={"gate": GateConfig(flag_rates=[0.05])})
    out = SelectOutput.model_validate(loop._select(1, child, plan))
    assert out.choice.chosen == "good" and [c.name for c in out.cards] == ["weak", "good"]
    assert out.skipped == ["good+gate: a refusal gate needs a local Hugging Face model"]
    # A retry's cards carry its tag; the front-runner is still found among the candidates.
    child = loop.store.begin_step(loop.run_id, 1, "select-try2", kind="select", model="m").child_run_id
    out = SelectOutput.model_validate(loop._select(1, child, plan, tag="-try2"))
    assert out.choice.chosen == "good-try2" and out.skipped == ["good+gate: a refusal gate needs a local Hugging Face model"]


def test_gate_flag_rates_are_shares_below_one_half():
    from pydantic import ValidationError

    from breakfix.config import GateConfig

    assert GateConfig(flag_rates=[0.05, 0.02, 0.05]).flag_rates == [0.02, 0.05]
    for bad in ([0.0], [0.5], [-0.1]):
        with pytest.raises(ValidationError):
            GateConfig(flag_rates=bad)


def test_the_gate_goes_on_the_front_runner_and_on_the_candidate_that_over_refuses_least():
    from breakfix.cycle import _to_gate
    from breakfix.policy import Choice, Verdict

    def verdict(name, harmful, vprr, eligible=True):
        return Verdict(name=name, harmful=harmful, vprr=vprr, capability=0.7, helpfulness=1.0, guards=[], eligible=eligible)

    verdicts = [verdict("blend", 0.26, 0.14), verdict("scaled", 0.35, 0.11), verdict("sft", 0.30, 0.05, eligible=False)]
    choice = Choice(chosen="blend", verdicts=verdicts, why="")
    assert _to_gate(choice, gentlest=True) == ["blend", "scaled"]  # sft breaks a guard: not gated
    assert _to_gate(choice, gentlest=False) == ["blend"]
    assert _to_gate(choice.model_copy(update={"verdicts": verdicts[:1]}), gentlest=True) == ["blend"]
    assert _to_gate(Choice(chosen=None, verdicts=verdicts, why=""), gentlest=True) == []
