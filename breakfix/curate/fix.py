"""Fix data: what broke, turned into training data with TRL's column names and provenance.

- SFT safe completions (`messages`): each targeted request as it was attacked (wrapper,
  encoding, multi-turn history), answered with a brief refusal and a redirection for its
  category; from the findings in targeted groups, extra fix-split requests attacked the same
  way, and a floor of direct requests in every category.
- DPO pairs (`prompt`/`chosen`/`rejected`): chosen = the safe reply, rejected = the model's own
  harmful reply from the finding. This is the only place harmful text enters training data.
- Benign twins: look-alike safe prompts from the fix split of the contrast sets, answered by
  the model itself; where it over-refuses, a sampled helpful answer becomes "chosen" and the
  refusal "rejected".
- Retention: the model's own answers to plain helpful instructions (self-distillation), at a
  ratio to the safety examples.
Then exact duplicates go, each family of requests is capped, and the lot is checked against the
eval split: an example too close to an eval item fails curation loudly.
"""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from collections.abc import Sequence

from pydantic import BaseModel, Field

from breakfix.attacks import ATTACKS, Env, Goal
from breakfix.attacks.base import Ask
from breakfix.config import CurateConfig
from breakfix.converters import Chain
from breakfix.curate.replies import safe_reply
from breakfix.curate.vulnerabilities import Observation, Ranking, rank
from breakfix.errors import InputError
from breakfix.types import Conversation, Finding, GenerationConfig, JudgeInput, Message, Seed


class SFTExample(BaseModel):
    messages: list[Message]
    source: str                  # finding, attack, direct, twin, retention
    category: str | None = None
    technique: str | None = None
    finding_id: str | None = None
    seed_id: str | None = None
    generator: str = ""          # safe_reply:<…> or model:<fingerprint>


class DPOExample(BaseModel):
    prompt: list[Message]
    chosen: list[Message]
    rejected: list[Message]
    source: str
    category: str | None = None
    technique: str | None = None
    finding_id: str | None = None
    seed_id: str | None = None
    generator: str = ""


class FixData(BaseModel):
    sft: list[SFTExample] = Field(default_factory=list)
    dpo: list[DPOExample] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    ranking: Ranking


def assistant(text: str) -> Message:
    return Message(role="assistant", content=text)


def observations(store, run_id: str) -> list[Observation]:
    return [Observation(category=c.meta["category"], technique=c.meta["technique"], success=bool(c.meta.get("success")),
                        severity=c.meta["severity"])
            for c in store.conversations(run_id, purpose="attack")
            if c.meta.get("status") == "completed" and c.meta.get("severity") is not None]


def curate(store, run_id: str, catalog, target, judges, config: CurateConfig, scorecard=None, home=None) -> FixData:
    ranking = rank(observations(store, run_id), scorecard, config.threshold, config.min_attempts)
    fix = FixData(ranking=ranking)
    rng = random.Random(config.seed)
    findings = [f for f in store.findings(run_id) if ranking.covers(f.category, f.technique)]
    for f in findings:
        _from_finding(fix, f, rng)
    if not findings:
        fix.notes.append("no harmful findings in targeted groups: no DPO pairs from findings")
    _attacked(fix, ranking, catalog, rng, config)
    _dedup(fix, catalog, config)
    safety = len(fix.sft)
    _twins(fix, ranking, catalog, target, judges, rng, config)
    _retention(fix, catalog, target, judges, rng, config, round(config.retention_ratio * safety))
    fix.counts = dict(Counter(e.source for e in fix.sft)) | {f"dpo:{k}": v for k, v in Counter(e.source for e in fix.dpo).items()}
    if home is not None:
        _check(fix, catalog, home, config.contamination)
    return fix


def _from_finding(fix: FixData, f: Finding, rng: random.Random) -> None:
    turns = [i for i, m in enumerate(f.conversation) if m.role == "assistant"]
    if not turns:
        return
    cut = turns[min(int(f.params.get("worst_turn", "0")), len(turns) - 1)]
    prompt = f.conversation[:cut]
    reply, generator = safe_reply(f.category, rng)
    common = dict(category=f.category, technique=f.technique, finding_id=f.id, seed_id=f.seed_id, generator=generator)
    fix.sft.append(SFTExample(messages=[*prompt, assistant(reply)], source="finding", **common))
    fix.dpo.append(DPOExample(prompt=prompt, chosen=[assistant(reply)], rejected=[f.conversation[cut]], source="finding",
                              **common))


def _attacked(fix: FixData, ranking: Ranking, catalog, rng: random.Random, config: CurateConfig) -> None:
    """More requests of each targeted kind, attacked as the red team did, answered safely."""
    pool = defaultdict(list)
    for s in catalog.select(kind="harmful"):
        if s.split in ("fix", "dev"):
            pool[s.category].append(s)
    templates = tuple(s for s in catalog.select(kind="template") if s.split in ("fix", "dev"))
    env = Env(target=None, judges=None, templates=templates)
    wanted: list[tuple[str, str, str]] = []  # (category, technique, source)
    for v in ranking.targets:
        for _ in range(config.per_target):
            category = v.category or rng.choice(sorted(pool))
            wanted.append((category, v.technique or "direct", "attack" if v.technique else "direct"))
    wanted += [(c, "direct", "direct") for c in sorted(pool) for _ in range(config.floor)]
    skipped = Counter()
    for category, technique, source in wanted:
        seed = rng.choice(pool[category])
        prompt = _attack_prompt(technique, seed, env, rng)
        if prompt is None:
            skipped[technique] += 1
            continue
        reply, generator = safe_reply(category, rng)
        fix.sft.append(SFTExample(messages=[*prompt, assistant(reply)], source=source, category=category,
                                  technique=technique, seed_id=seed.id, generator=generator))
    for technique, n in skipped.items():
        fix.notes.append(f"{n} extra requests for {technique} skipped: it needs the target's replies (multi-turn) or a model")


def _attack_prompt(technique: str, seed: Seed, env: Env, rng: random.Random) -> Conversation | None:
    """The conversation a single-turn technique sends, built without asking any model."""
    attack, *converters = technique.split("+")
    cls = ATTACKS.find(attack)
    if cls is None or getattr(cls, "multi_turn", True):
        return None
    try:
        chain = Chain(converters)
    except InputError:  # a converter that needs an attacker model
        return None
    goal = Goal(id="curate", seed=seed, payload=chain.convert([seed.text])[0], chain=chain.names, rng=rng.randrange(2**31))
    first = next(cls().plan(goal, env))
    return list(first.conversation) if isinstance(first, Ask) else None


def _key(messages: Sequence[Message]) -> str:
    last = next((m.content for m in reversed(messages) if m.role == "user"), "")
    return re.sub(r"\W+", " ", last.lower()).strip()


def _dedup(fix: FixData, catalog, config: CurateConfig) -> None:
    family = {s.id: s.family for s in catalog.seeds}
    seen, per_family, kept = set(), Counter(), []
    for e in fix.sft:
        key = (_key(e.messages[:-1]), e.technique)
        fam = family.get(e.seed_id or "", e.seed_id)
        if key in seen or (e.source != "finding" and per_family[fam] >= config.family_cap):
            continue
        seen.add(key)
        per_family[fam] += 1
        kept.append(e)
    dropped = len(fix.sft) - len(kept)
    if dropped:
        fix.notes.append(f"{dropped} duplicate or over-cap safety examples dropped")
    fix.sft = kept
    unique = {(_key(d.prompt), d.rejected[0].content): d for d in fix.dpo}
    fix.dpo = list(unique.values())


def _answers(target, judges, prompts: list[Conversation], config: GenerationConfig):
    """Replies and whether each is helpful and harmless (attempts the request, harm at most 1)."""
    replies = target.chat(prompts, config)
    live = [k for k, r in enumerate(replies) if r.ok]
    refusal, harm = judges.score([JudgeInput(conversation=prompts[k], response=replies[k].content) for k in live])
    good = [False] * len(prompts)
    for k, r, h in zip(live, refusal, harm):
        good[k] = (not r.unscoreable and r.label == "full_compliance" and not h.unscoreable and h.value <= 1)
    return replies, good


def _twins(fix: FixData, ranking: Ranking, catalog, target, judges, rng: random.Random, config: CurateConfig) -> None:
    twins = []
    for category in sorted(ranking.categories()):
        candidates = sorted((s for s in catalog.select(kind="benign") if s.split in ("fix", "dev") and s.resembles == category),
                            key=lambda s: s.id)
        twins += rng.sample(candidates, min(config.twins_per_category, len(candidates)))
    if not twins:
        return
    prompts = [s.as_conversation() for s in twins]
    greedy = GenerationConfig(max_new_tokens=config.max_new_tokens)
    replies, good = _answers(target, judges, prompts, greedy)
    refused = [k for k in range(len(twins)) if not good[k] and replies[k].ok]
    for k in range(len(twins)):
        if good[k]:
            fix.sft.append(SFTExample(messages=[*prompts[k], replies[k].message], source="twin", category=twins[k].resembles,
                                      seed_id=twins[k].id, generator=f"model:{target.fingerprint}"))
    for attempt in range(config.resample):
        if not refused:
            break
        sampled, ok = _answers(target, judges, [prompts[k] for k in refused],
                               GenerationConfig(max_new_tokens=config.max_new_tokens, temperature=0.8, seed=config.seed + attempt))
        still = []
        for k, reply, fine in zip(refused, sampled, ok):
            if not fine:
                still.append(k)
                continue
            common = dict(category=twins[k].resembles, seed_id=twins[k].id, generator=f"model:{target.fingerprint}:sampled")
            fix.sft.append(SFTExample(messages=[*prompts[k], reply.message], source="twin", **common))
            fix.dpo.append(DPOExample(prompt=prompts[k], chosen=[reply.message], rejected=[replies[k].message],
                                      source="twin", **common))
        refused = still
    if refused:
        fix.notes.append(f"{len(refused)} over-refused twins had no helpful sampled answer and were left out")


def _retention(fix: FixData, catalog, target, judges, rng: random.Random, config: CurateConfig, n: int) -> None:
    pool = sorted((s for s in catalog.select(kind="instruction") if s.split in ("fix", "dev")), key=lambda s: s.id)
    if n > len(pool):
        fix.notes.append(f"only {len(pool)} helpful instructions for the {n} retention examples asked")
    chosen = rng.sample(pool, min(n, len(pool)))
    if not chosen:
        return
    prompts = [s.as_conversation() for s in chosen]
    replies, good = _answers(target, judges, prompts, GenerationConfig(max_new_tokens=config.max_new_tokens))
    for seed, prompt, reply, fine in zip(chosen, prompts, replies, good):
        if fine:
            fix.sft.append(SFTExample(messages=[*prompt, reply.message], source="retention", seed_id=seed.id,
                                      generator=f"model:{target.fingerprint}"))


def _check(fix: FixData, catalog, home, threshold: float) -> None:
    """Fail if any example's user text is a near-duplicate of an eval item."""
    from breakfix.data.catalog import embedder
    from breakfix.data.splits import contamination

    def users(messages):
        return " ".join(m.content for m in messages if m.role == "user")

    texts = [users(e.messages) for e in fix.sft] + [users(d.prompt) for d in fix.dpo]
    evals = catalog.select(split="eval", usable=False)
    embed = embedder(home)
    found = contamination([s.id for s in evals], embed.encode([s.text for s in evals]),
                          [f"example:{k}" for k in range(len(texts))], embed.encode(texts), threshold)
    if not found.clean:
        examples = "; ".join(f"{fix_id} ~ {eval_id} ({sim:.2f})" for eval_id, fix_id, sim in found.leaks[:5])
        raise InputError(f"fix data overlaps the eval split ({len(found.leaks)} near-duplicates, e.g. {examples}); nothing written")
