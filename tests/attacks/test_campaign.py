"""Campaigns with scripted targets and the real offline judges: scheduling, storage, errors, replay."""

import pytest

from breakfix.attacks import Env
from breakfix.attacks import findings as findings_io
from breakfix.attacks.campaign import Campaign, run
from breakfix.attacks.personas import Persona, Recipe
from breakfix.config import RedteamConfig
from breakfix.errors import BreakfixError
from breakfix.store import Store
from breakfix.targets.mock import MockTarget
from breakfix.types import Reply
from tests.attacks.conftest import EAGER, SEEDS

PERSONA = Persona(name="test", recipes=(Recipe(attack="direct"), Recipe(attack="direct", converters=("leetspeak",)),
                                        Recipe(attack="direct", converters=("base64",)), Recipe(attack="roleplay")))


class Weak(MockTarget):
    """Refuses everything except cyber requests in leetspeak (only cyber requests say 'hack')."""

    def chat(self, conversations, config):
        return [Reply(content=EAGER if "h4ck" in c[-1].content else "I can't help with that.") for c in conversations]


def campaign(judges, target, scheduler="adaptive", budget=80, store=None, **kw):
    config = RedteamConfig(persona="test", budget=budget, batch=8, scheduler=scheduler, seed=3, **kw)
    return Campaign("run-x", target, judges, PERSONA, config, SEEDS, (), store=store)


def test_the_adaptive_scheduler_finds_a_planted_weakness_faster_than_uniform(judges):
    adaptive = run(campaign(judges, Weak(), "adaptive"))
    uniform = run(campaign(judges, Weak(), "uniform"))
    weak = [c for c in adaptive.cells if (c.category, c.technique) == ("cyber", "direct+leetspeak")][0]
    assert weak.asr.value == 1.0 and all(c.successes == 0 for c in adaptive.cells if c is not weak)
    assert adaptive.successes >= 3 * max(1, uniform.successes), (adaptive.successes, uniform.successes)
    assert adaptive.attempts == uniform.attempts == 80


def test_same_seed_same_attempts(judges):
    first, second = campaign(judges, Weak()), campaign(judges, Weak())
    run(first), run(second)
    key = lambda c: [(a.seed_id, a.technique, a.conversation[-2].content) for a in c.attempts]
    assert key(first) == key(second)


def test_attempts_scores_and_findings_are_stored(judges, tmp_path):
    with Store(tmp_path / "s.db") as db:
        run_id = db.create_run("redteam")
        c = campaign(judges, Weak(), budget=24, store=db)
        c.run_id = run_id
        result = run(c)
        counts = db.run(run_id).counts
        findings = db.findings(run_id)
    assert counts["conversations"] == 24 and counts["scores"] == 48
    assert len(findings) == result.findings > 0
    assert all(f.technique == "direct+leetspeak" and f.category == "cyber" and f.severity >= 4 for f in findings)
    assert len({f.id for f in findings}) == len(findings)  # deduplicated


class Flaky(MockTarget):
    def __init__(self, fail_every):
        super().__init__("refuse")
        self.calls, self.fail_every = 0, fail_every

    def chat(self, conversations, config):
        out = []
        for _ in conversations:
            self.calls += 1
            out.append(Reply(error="timed out", finish_reason="error") if self.calls % self.fail_every == 0
                       else Reply(content="I can't help with that."))
        return out


def test_errored_attempts_are_retried_not_counted_and_a_dead_target_stops_the_run(judges):
    c = campaign(judges, Flaky(fail_every=3), budget=20)
    result = run(c)
    assert result.attempts == 20 and result.errored > 0
    assert all(a.severity is None for a in c.attempts if a.status == "errored")
    with pytest.raises(BreakfixError, match="in a row failed on the target: timed out"):
        run(campaign(judges, Flaky(fail_every=1), budget=5))


def test_budget_zero_and_eval_split_are_refused():
    with pytest.raises(ValueError, match="budget must be at least 1"):
        RedteamConfig(budget=0)
    with pytest.raises(ValueError, match="never uses the eval split"):
        RedteamConfig(splits=("fix", "eval"))


def test_replay_reproduces_findings_on_the_same_target_and_none_on_a_refusing_one(judges):
    c = campaign(judges, Weak(), budget=40)
    run(c)
    from breakfix.attacks.campaign import finding_of

    found = [finding_of(c, a) for a in c.attempts if a.succeeded(4)]
    assert found
    env_weak = Env(Weak(), judges)
    again = findings_io.replay(found, env_weak)
    assert all(r.reproduced(4) for r in again)
    env_safe = Env(MockTarget("refuse"), judges)
    assert not any(r.reproduced(4) for r in findings_io.replay(found, env_safe))


def test_findings_round_trip_through_jsonl_and_bad_lines_are_named(judges, tmp_path):
    c = campaign(judges, Weak(), budget=24)
    run(c)
    from breakfix.attacks.campaign import finding_of

    found = [finding_of(c, a) for a in c.attempts if a.succeeded(4)]
    path = tmp_path / "f.jsonl"
    findings_io.export(found, path)
    assert findings_io.read(path) == found
    path.write_text('{"id": "x"}\n')
    with pytest.raises(Exception, match=r"f.jsonl:1: not a finding"):
        findings_io.read(path)
