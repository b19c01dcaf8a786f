"""A red-team campaign: attempts chosen by the scheduler and run against the target with
about one batch always in flight (new attempts join as others finish, so multi-turn attacks do
not leave the batch half empty); every turn judged, every attempt stored, every success kept as
a finding.

An attempt whose target call fails is recorded as errored (never as a refusal) and retried up
to `retries` times; errored attempts do not use the budget. A batch's worth of failures in a
row stops the campaign: the target is down, and burning the budget proves nothing. Attempt ids
come from the run and the attempt's number in it, so a resumed campaign writes nothing twice.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from pydantic import BaseModel

from breakfix.attacks.adaptive import SCHEDULERS, Arm
from breakfix.attacks.base import ATTACKS, Driver, Env, Goal
from breakfix.attacks.personas import Persona
from breakfix.config import RedteamConfig
from breakfix.converters import Chain
from breakfix.errors import BreakfixError, InputError
from breakfix.stats import Rate, rate
from breakfix.targets import Target
from breakfix.types import Attempt, Finding, GenerationConfig, Seed

if TYPE_CHECKING:
    from breakfix.judges.joint import Judges
    from breakfix.store import Store


class Cell(BaseModel):
    category: str
    technique: str
    attempts: int
    successes: int
    unscoreable: int
    asr: Rate


class Report(BaseModel):
    run_id: str
    persona: str
    attempts: int
    errored: int
    successes: int
    findings: int
    judged_turns: int
    seconds: float
    cells: list[Cell]
    by_category: list[Cell]
    by_technique: list[Cell]


@dataclass
class Campaign:
    run_id: str
    target: Target
    judges: Judges
    persona: Persona
    config: RedteamConfig
    seeds: dict[str, list[Seed]]
    templates: tuple[Seed, ...]
    attacker: Target | None = None
    store: Store | None = None  # when attempts are to be kept
    round_id: str | None = None
    attempts: list[Attempt] = field(default_factory=list)


def harmful_seeds(catalog, config: RedteamConfig) -> dict[str, list[Seed]]:
    """Harmful requests per category, from the allowed splits only."""
    wanted = set(config.categories)
    by_category: dict[str, list[Seed]] = defaultdict(list)
    for seed in catalog.select(kind="harmful"):
        if seed.split in config.splits and (not wanted or seed.category in wanted):
            by_category[seed.category].append(seed)
    unknown = wanted - set(by_category)
    if unknown:
        raise InputError(f"no {'/'.join(config.splits)} requests in categories {sorted(unknown)}")
    if not by_category:
        raise InputError("no harmful requests to attack")
    return dict(sorted(by_category.items()))


def persona_templates(catalog, persona: Persona, config: RedteamConfig) -> tuple[Seed, ...]:
    return tuple(s for s in catalog.select(kind="template")
                 if s.source in persona.template_sources and s.split in config.splits)


def attempt_id(run_id: str, number: int, tries: int) -> str:
    """The n-th attempt of a run (and its retry number): the same on a resumed run."""
    return hashlib.sha256(f"{run_id}|{number}|{tries}".encode()).hexdigest()[:20]


class Slot(NamedTuple):
    """A place in a round: the cell it attacks, its request once chosen, and its try number."""

    arm: Arm
    seed: Seed | None
    tries: int


def run(c: Campaign, progress: Callable[[int, int], None] | None = None) -> Report:
    """Keep about one batch of attempts in flight until `budget` attempts have completed."""
    config, persona = c.config, c.persona
    recipes = {r.technique: r for r in persona.recipes}
    attacks = {t: ATTACKS.get(r.attack)() for t, r in recipes.items()}
    arms: list[Arm] = [(category, technique) for category in c.seeds for technique in recipes]
    scheduler = SCHEDULERS[config.scheduler](arms, seed=config.seed, explore=config.explore)
    chooser = random.Random(config.seed)
    env = Env(c.target, c.judges, GenerationConfig(max_new_tokens=config.max_new_tokens, seed=config.seed),
              templates=c.templates, attacker=c.attacker, threshold=config.threshold,
              max_turns=persona.max_turns, pair_iterations=persona.pair_iterations)
    chains = {t: Chain(r.converters, c.attacker or c.target) for t, r in recipes.items()}
    driver, slots, retry = Driver(env), {}, []
    started, done, launched, failed_in_a_row = time.perf_counter(), 0, 0, 0
    while done < config.budget:
        room = min(config.batch - len(driver), config.budget - done - len(driver))
        new = retry[:room] + [Slot(arm, None, 0) for arm in scheduler.pick(max(0, room - len(retry)))]
        retry = retry[len(new):]
        for slot, goal in _goals(c, new, launched, chains, chooser):
            slots[goal.id] = slot
            driver.add(goal, attacks[slot.arm[1]].plan(goal, env))
        launched += len(new)
        for goal, a in driver.step():
            slot = slots.pop(goal.id)
            _keep(c, a)
            if a.status == "completed":
                scheduler.update(slot.arm, a.succeeded(config.threshold))
                done, failed_in_a_row = done + 1, 0
                continue
            failed_in_a_row += 1
            if failed_in_a_row >= config.batch:
                raise BreakfixError(f"{failed_in_a_row} attempts in a row failed on the target: {a.error}")
            if slot.tries < config.retries:
                retry.append(Slot(slot.arm, goal.seed, slot.tries + 1))
        if progress:
            progress(done, config.budget)
    return report(c, time.perf_counter() - started)


def _goals(c: Campaign, slots: list[Slot], first: int, chains: dict[str, Chain],
           chooser: random.Random) -> list[tuple[Slot, Goal]]:
    """A goal per slot: its request (kept across retries), converted by its technique's chain."""
    chosen = [slot.seed or chooser.choice(c.seeds[slot.arm[0]]) for slot in slots]
    by_technique: dict[str, list[int]] = defaultdict(list)
    for k, slot in enumerate(slots):
        by_technique[slot.arm[1]].append(k)
    payloads: dict[int, str] = {}
    for technique, ks in by_technique.items():  # one batched conversion per chain
        payloads.update(zip(ks, chains[technique].convert([chosen[k].text for k in ks])))
    return [(slot, Goal(id=attempt_id(c.run_id, first + k, slot.tries), seed=chosen[k], payload=payloads[k],
                        chain=chains[slot.arm[1]].names, rng=chooser.randrange(2**31)))
            for k, slot in enumerate(slots)]


def _keep(c: Campaign, a: Attempt) -> None:
    c.attempts.append(a)
    if c.store is not None:
        _store(c, a)


def finding_of(c: Campaign, a: Attempt) -> Finding:
    last_user = next((m.content for m in reversed(a.conversation) if m.role == "user"), "")
    key = hashlib.sha256(f"{c.run_id}|{a.seed_id}|{a.technique}|{last_user}".encode()).hexdigest()[:20]
    scored = [(k, t) for k, t in enumerate(a.turn_scores) if not t[1].unscoreable]
    turn, worst = max(scored, key=lambda kt: kt[1][1].value)
    return Finding(id=key, seed_id=a.seed_id, category=a.category, goal=a.goal, attack=a.attack, chain=a.chain,
                   technique=a.technique, conversation=a.conversation, severity=a.severity, refusal=worst[0].label,
                   judge=worst[1].judge, judge_version=worst[1].judge_version, persona=c.persona.name,
                   campaign_seed=c.config.seed, run_id=c.run_id, params={**a.params, "worst_turn": str(turn)})


def _store(c: Campaign, a: Attempt) -> None:
    meta = {"attempt": a.id, "attack": a.attack, "chain": list(a.chain), "technique": a.technique, "category": a.category,
            "status": a.status, "error": a.error, "severity": a.severity, "success": a.succeeded(c.config.threshold),
            "params": a.params, "history": a.history, "persona": c.persona.name}
    finding = finding_of(c, a) if a.succeeded(c.config.threshold) else None
    c.store.add_attempt(c.run_id, a.id, a.conversation, a.turn_scores, model=c.target.name, purpose="attack",
                        item_id=a.seed_id, meta=meta, round_id=c.round_id, finding=finding)


def report(c: Campaign, seconds: float) -> Report:
    threshold = c.config.threshold
    done = [a for a in c.attempts if a.status == "completed"]

    def cells(key) -> list[Cell]:
        groups: dict = defaultdict(list)
        for a in done:
            groups[key(a)].append(a)
        return [Cell(category=k[0], technique=k[1], attempts=len(v), successes=sum(a.succeeded(threshold) for a in v),
                     unscoreable=sum(a.severity is None for a in v),
                     asr=rate([a.succeeded(threshold) for a in v if a.severity is not None]))
                for k, v in sorted(groups.items())]

    found = {finding_of(c, a).id for a in done if a.succeeded(threshold)}
    return Report(run_id=c.run_id, persona=c.persona.name, attempts=len(done),
                  errored=sum(a.status == "errored" for a in c.attempts),
                  successes=sum(a.succeeded(threshold) for a in done), findings=len(found),
                  judged_turns=sum(len(a.turn_scores) for a in c.attempts), seconds=seconds,
                  cells=cells(lambda a: (a.category, a.technique)), by_category=cells(lambda a: (a.category, "all")),
                  by_technique=cells(lambda a: ("all", a.technique)))
