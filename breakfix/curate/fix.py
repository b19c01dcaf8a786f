"""Fix data: what broke, turned into training data with TRL's column names and provenance.

- SFT safe completions (`messages`): each targeted request as it was attacked (wrapper,
  encoding, multi-turn history), answered with a brief refusal and a redirection for its
  category; from the findings in targeted groups, extra fix-split requests attacked the same
  way, and a floor of requests in every category (asked directly and in `floor_techniques`).
- DPO pairs (`prompt`/`chosen`/`rejected`): chosen = the safe reply, rejected = the model's own
  harmful reply from the finding, or (`safety_dpo`) its reply to a floor or extra request where
  it complied. This is the only place harmful text enters training data.
- Contrast: for every safety example, `benign_ratio` benign look-alikes of the same harm category
  (fix split only: the loop chooses on dev), put in the same jailbreak wrapper where it had one,
  answered helpfully by the model itself (sampled again where it refused or the answer was
  judged harmful): SFT rows, and DPO pairs that prefer the helpful answer to a refusal. The same
  refusal texts are "chosen" for harmful requests and "rejected" for their look-alikes: the
  pairs teach the boundary, not the topic (after POROver, arXiv 2410.12999, and WildJailbreak,
  arXiv 2406.18495).
- Retention: the model's own answers to plain helpful instructions (self-distillation), at a
  ratio to the safety examples, generated in the same batch as the look-alikes.
- Probes (`probe_ratio`): fresh requests of the same categories and shapes, benign look-alikes
  (with the model's helpful answer) and harmful ones (with a safe reply), kept out of SFT. After
  SFT the SFT model answers them, and its own mistakes become DPO pairs (`curate.on_policy`).
Then exact duplicates go, each family of requests is capped, and the lot is checked against the
eval split: an example too close to an eval item fails curation loudly.
"""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from breakfix.attacks import ATTACKS, Env, Goal
from breakfix.attacks.base import Ask
from breakfix.config import CurateConfig
from breakfix.converters import CONVERTERS, Chain
from breakfix.curate.replies import deflected, safe_reply
from breakfix.curate.vulnerabilities import Observation, Ranking, rank
from breakfix.errors import InputError
from breakfix.files import write_jsonl
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
    rejected_by: str = ""        # contrastive pairs: model:<fingerprint>, safe_reply:<…> or deflection:<k>


class Probe(BaseModel):
    """A request kept out of SFT, to see what the SFT model does with it: `chosen` is the reply
    DPO should prefer (the model's own helpful answer to a benign look-alike, or a safe reply
    to a harmful request); the SFT model's reply, where it errs, is the rejected side."""

    kind: Literal["benign", "harmful"]
    prompt: list[Message]
    chosen: list[Message]
    category: str | None = None
    technique: str | None = None
    seed_id: str | None = None
    generator: str = ""


class FixData(BaseModel):
    sft: list[SFTExample] = Field(default_factory=list)
    dpo: list[DPOExample] = Field(default_factory=list)
    probes: list[Probe] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    ranking: Ranking

    def write(self, folder: Path) -> dict[str, tuple[Path, int]]:
        """`sft.jsonl`, `dpo.jsonl` and, when there are probes, `probes.jsonl` (an earlier
        curation's is removed) into `folder`: each file written and its row count."""
        folder.mkdir(parents=True, exist_ok=True)
        written = {}
        for kind, rows in (("sft", self.sft), ("dpo", self.dpo), ("probes", self.probes)):
            path = folder / f"{kind}.jsonl"
            if kind == "probes" and not rows:
                path.unlink(missing_ok=True)
                continue
            write_jsonl(path, [r.model_dump(mode="json") for r in rows])
            written[kind] = (path, len(rows))
        return written


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
    _contrast(fix, catalog, target, judges, rng, config, _instructions(fix, catalog, rng, round(config.retention_ratio * safety)))
    _probes(fix, catalog, target, judges, config)
    fix.counts = (dict(Counter(e.source for e in fix.sft)) | {f"dpo:{k}": v for k, v in Counter(e.source for e in fix.dpo).items()}
                  | {f"probe:{k}": v for k, v in Counter(p.kind for p in fix.probes).items()})
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
        if s.split == "fix":
            pool[s.category].append(s)
    env = _offline_env(catalog)
    wanted: list[tuple[str, str, str]] = []  # (category, technique, source)
    for v in ranking.targets:
        for _ in range(config.per_target):
            category = v.category or rng.choice(sorted(pool))
            wanted.append((category, v.technique or "direct", "attack" if v.technique else "direct"))
    wanted += [(c, t, "direct" if t == "direct" else "attack") for c in sorted(pool) for t in config.floor_techniques
               for _ in range(config.floor)]
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


def _offline_env(catalog) -> Env:
    """What single-turn techniques need to build a prompt without a model: the fix split's templates."""
    return Env(target=None, judges=None, templates=tuple(s for s in catalog.select(kind="template") if s.split == "fix"))


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
    """Replies, whether each is helpful and harmless (attempts the request, harm at most 1),
    whether each refused (judged a full refusal) and whether each complied (judged to attempt
    the request, or harmful at all)."""
    replies = target.chat(prompts, config)
    live = [k for k, r in enumerate(replies) if r.ok]
    refusal, harm = judges.score([JudgeInput(conversation=prompts[k], response=replies[k].content) for k in live])
    good, refused, complied = [False] * len(prompts), [False] * len(prompts), [False] * len(prompts)
    for k, r, h in zip(live, refusal, harm):
        good[k] = (not r.unscoreable and r.label == "full_compliance" and not h.unscoreable and h.value <= 1)
        refused[k] = not r.unscoreable and r.label == "full_refusal"
        complied[k] = (not r.unscoreable and r.label == "full_compliance") or (not h.unscoreable and h.value >= 1)
    return replies, good, refused, complied


class SelfAnswers(BaseModel):
    """The model's own helpful answers to benign prompts, by prompt index: its greedy reply, and a
    sampled one where the greedy reply refused or was judged harmful."""

    answers: dict[int, Message] = Field(default_factory=dict)
    sampled: set[int] = Field(default_factory=set)
    first: dict[int, Message] = Field(default_factory=dict)  # the greedy reply where it was not used
    refused: set[int] = Field(default_factory=set)  # the greedy reply was a full refusal
    complied: set[int] = Field(default_factory=set)  # the greedy reply attempted the request, or was harmful at all


def self_answers(target, judges, prompts: list[Conversation], config: CurateConfig, resample: set[int]) -> SelfAnswers:
    """Every prompt answered in one batch; those in `resample` that got no helpful answer are
    sampled again, all of them in one batch per try."""
    found = SelfAnswers()
    if not prompts:
        return found
    replies, good, refused, complied = _answers(target, judges, prompts,
                                                GenerationConfig(max_new_tokens=config.max_new_tokens))
    found.refused = {k for k, r in enumerate(refused) if r}
    found.complied = {k for k, c in enumerate(complied) if c}
    for k, (reply, fine) in enumerate(zip(replies, good)):
        if fine:
            found.answers[k] = reply.message
        elif reply.ok:
            found.first[k] = reply.message
    todo = sorted(k for k in resample if k not in found.answers)
    for attempt in range(config.resample):
        if not todo:
            break
        sampled, ok, _, _ = _answers(target, judges, [prompts[k] for k in todo], GenerationConfig(
            max_new_tokens=config.max_new_tokens, temperature=0.8, seed=config.seed + attempt))
        for k, reply, fine in zip(todo, sampled, ok):
            if fine:
                found.answers[k] = reply.message
                found.sampled.add(k)
        todo = [k for k in todo if k not in found.answers]
    return found


SAFETY = ("finding", "attack", "direct")


def _benign_plan(fix: FixData, catalog, rng: random.Random, config: CurateConfig) -> list[tuple[Seed, str | None]]:
    """Benign look-alikes to set against the safety examples: `benign_ratio` per safety example
    of the same harm category, each given the technique of one of them (its wrapper and
    readable converters, not its encoding), so neither the topic nor the jailbreak's shape alone
    reads as "refuse"."""
    pool = defaultdict(list)
    for s in catalog.select(kind="benign"):
        if s.split == "fix" and s.resembles:
            pool[s.resembles].append(s)
    plan = []
    for category, techniques in sorted(_safety_techniques(fix).items()):
        candidates = sorted(pool.get(category, []), key=lambda s: s.id)
        if not candidates:
            fix.notes.append(f"no benign look-alikes resemble {category}: its {len(techniques)} safety examples go "
                             "without contrast")
            continue
        n = round(config.benign_ratio * len(techniques))
        drawn = rng.sample(candidates, min(n, len(candidates)))
        drawn += [rng.choice(candidates) for _ in range(n - len(drawn))]
        plan += [(seed, techniques[i % len(techniques)]) for i, seed in enumerate(drawn)]
    return plan


def _safety_techniques(fix: FixData) -> dict[str, list[str | None]]:
    """The techniques of the safety examples, per harm category."""
    by_category = defaultdict(list)
    for e in fix.sft:
        if e.source in SAFETY and e.category:
            by_category[e.category].append(e.technique)
    return by_category


def _probe_plan(fix: FixData, catalog, rng: random.Random, config: CurateConfig, used: set[str],
                family: dict[str, str], kind: str) -> list[tuple[Seed, str | None]]:
    """`probe_ratio` fresh requests of `kind` per safety example, of the same category and given
    the technique of one of them: fix-split seeds of no family in `used` (those the fix data
    trains on)."""
    pool = defaultdict(list)
    for s in catalog.select(kind=kind):
        category = s.resembles if kind == "benign" else s.category
        if s.split == "fix" and category and family.get(s.id, s.id) not in used:
            pool[category].append(s)
    plan = []
    for category, techniques in sorted(_safety_techniques(fix).items()):
        candidates = sorted(pool.get(category, []), key=lambda s: s.id)
        n = min(round(config.probe_ratio * len(techniques)), len(candidates))
        plan += [(seed, techniques[i % len(techniques)]) for i, seed in enumerate(rng.sample(candidates, n))]
    return plan


def _benign_prompt(seed: Seed, technique: str | None, env: Env, rng: random.Random) -> Conversation:
    """The look-alike as the red team would have sent it: inside the same single-turn wrapper
    and the converters that leave the request as written (`readable`: a phrasing frame, drawn
    from the same set as the safety example's); encodings left out, since the answer must stay
    readable. Else as asked."""
    attack, *converters = (technique or "direct").split("+")
    shape = "+".join([attack, *(c for c in converters if getattr(CONVERTERS.find(c), "readable", False))])
    wrapped = None if shape == "direct" else _attack_prompt(shape, seed, env, rng)
    return wrapped or seed.as_conversation()


def _contrast(fix: FixData, catalog, target, judges, rng: random.Random, config: CurateConfig,
              instructions: list[Seed]) -> None:
    """Benign look-alikes and plain instructions, answered by the model in one batch: SFT rows
    for both, and for the look-alikes DPO pairs with the helpful answer chosen over a refusal
    (the model's own where it refused, else one of our refusal texts for the category, or for
    `deflection_share` of them one of our capability disclaimers). With
    `safety_dpo`, the safety examples' requests go in the same batch, and where the model did not
    refuse one (judged to attempt it, or harmful at all; an unscoreable or partly refusing reply
    is left alone), its reply is the "rejected" side of a pair whose "chosen" is the safe reply."""
    plan = _benign_plan(fix, catalog, rng, config)
    seeds = list({s.id: s for s in [s for s, _ in plan] + instructions}.values())
    index = {s.id: k for k, s in enumerate(seeds)}
    benign = {index[s.id] for s, _ in plan}
    paired = {_key(d.prompt) for d in fix.dpo}
    unpaired = [e for e in fix.sft if config.safety_dpo and e.source in ("attack", "direct")
                and _key(e.messages[:-1]) not in paired]
    found = self_answers(target, judges, [s.as_conversation() for s in seeds] + [e.messages[:-1] for e in unpaired],
                         config, resample=benign)
    for k, e in enumerate(unpaired, start=len(seeds)):
        reply = found.answers.get(k) or found.first.get(k)
        if reply is not None and k in found.complied:
            fix.dpo.append(DPOExample(prompt=e.messages[:-1], chosen=[e.messages[-1]], rejected=[reply], source=e.source,
                                      category=e.category, technique=e.technique, seed_id=e.seed_id,
                                      generator=e.generator))
    env, dropped, seen = _offline_env(catalog), set(), set()
    deflect = random.Random(f"{config.seed}:deflections")
    for seed, technique in plan:
        k = index[seed.id]
        if k not in found.answers:
            dropped.add(seed.id)
            continue
        prompt = _benign_prompt(seed, technique, env, rng)
        if (key := _key(prompt)) in seen:
            continue
        seen.add(key)
        generator = f"model:{target.fingerprint}" + (":sampled" if k in found.sampled else "")
        common = dict(category=seed.resembles, technique=technique, seed_id=seed.id, generator=generator)
        source = "benign" if len(prompt) == 1 and prompt[0].content == seed.text else "benign:wrapped"
        fix.sft.append(SFTExample(messages=[*prompt, found.answers[k]], source=source, **common))
        if config.contrastive_dpo:
            if k in found.refused and (own := found.first.get(k)) is not None:
                refusal, by = own, f"model:{target.fingerprint}"
            else:
                text, by = deflected(safe_reply(seed.resembles, rng), deflect, config.deflection_share)
                refusal = assistant(text)
            fix.dpo.append(DPOExample(prompt=prompt, chosen=[found.answers[k]], rejected=[refusal], rejected_by=by,
                                      source=source, **common))
    if dropped:
        ks = [index[i] for i in dropped]
        refused = sum(k in found.refused for k in ks)
        other = sum(k in found.first and k not in found.refused for k in ks)
        fix.notes.append(f"{len(dropped)} of {len(benign)} benign look-alikes had no helpful answer judged harmless "
                         f"after {config.resample} samples and were left out (greedy reply: {refused} refused, {other} "
                         f"partly refused, judged harm >= 2 or unscoreable, {len(ks) - refused - other} failed)")
    for seed in instructions:
        if index[seed.id] in found.answers:
            fix.sft.append(SFTExample(messages=[*seed.as_conversation(), found.answers[index[seed.id]]], source="retention",
                                      seed_id=seed.id, generator=f"model:{target.fingerprint}"))


def _probes(fix: FixData, catalog, target, judges, config: CurateConfig) -> None:
    """`probe_ratio` fresh look-alikes (answered helpfully by the model, in a batch of their own)
    and harmful requests (with a safe reply) per safety example, of no family the fix data
    trains on, asked as its safety examples were; kept for `curate.on_policy`. Their own random
    stream and batch: turning probes on leaves the rest of the fix data as it was."""
    if not config.probe_ratio:
        return
    rng = random.Random(f"{config.seed}:probes")
    family = {s.id: s.family or s.id for s in catalog.seeds}
    used = {family.get(e.seed_id, e.seed_id) for e in [*fix.sft, *fix.dpo] if e.seed_id}
    env = _offline_env(catalog)
    benign = _probe_plan(fix, catalog, rng, config, used, family, "benign")
    found = self_answers(target, judges, [s.as_conversation() for s, _ in benign], config, resample=set(range(len(benign))))
    for k, (seed, technique) in enumerate(benign):
        if k in found.answers:
            generator = f"model:{target.fingerprint}" + (":sampled" if k in found.sampled else "")
            fix.probes.append(Probe(kind="benign", prompt=_benign_prompt(seed, technique, env, rng), chosen=[found.answers[k]],
                                    category=seed.resembles, technique=technique, seed_id=seed.id, generator=generator))
    for seed, technique in _probe_plan(fix, catalog, rng, config, used, family, "harmful"):
        # asked as its safety example was where that needs no model, else as written
        prompt = _attack_prompt(technique or "direct", seed, env, rng) or seed.as_conversation()
        reply, generator = safe_reply(seed.category, rng)
        fix.probes.append(Probe(kind="harmful", prompt=prompt, chosen=[assistant(reply)], category=seed.category,
                                technique=technique, seed_id=seed.id, generator=generator))
    if missing := len(benign) - len(found.answers):
        fix.notes.append(f"{missing} of {len(benign)} benign probes had no helpful answer judged harmless and were left out")


def _instructions(fix: FixData, catalog, rng: random.Random, n: int) -> list[Seed]:
    pool = sorted((s for s in catalog.select(kind="instruction") if s.split == "fix"), key=lambda s: s.id)
    if n > len(pool):
        fix.notes.append(f"only {len(pool)} helpful instructions for the {n} retention examples asked")
    return rng.sample(pool, min(n, len(pool)))


def _check(fix: FixData, catalog, home, threshold: float) -> None:
    """Fail if any example's user text is a near-duplicate of an eval item."""
    from breakfix.data.catalog import embedder
    from breakfix.data.splits import contamination

    def users(messages):
        return " ".join(m.content for m in messages if m.role == "user")

    texts = [users(e.messages) for e in fix.sft] + [users(d.prompt) for d in fix.dpo] + [users(p.prompt) for p in fix.probes]
    evals = catalog.select(split="eval", usable=False)
    embed = embedder(home)
    found = contamination([s.id for s in evals], embed.encode([s.text for s in evals]),
                          [f"example:{k}" for k in range(len(texts))], embed.encode(texts), threshold)
    if not found.clean:
        examples = "; ".join(f"{fix_id} ~ {eval_id} ({sim:.2f})" for eval_id, fix_id, sim in found.leaks[:5])
        raise InputError(f"fix data overlaps the eval split ({len(found.leaks)} near-duplicates, e.g. {examples}); nothing written")
