"""The break-fix loop: measure the base model, then round after round red-team the current
checkpoint, rank what broke, curate fix data, post-train (SFT then DPO, saving candidates along
the way), choose a candidate on the DEV split's selection set, measure it on the eval split, and
promote it only when it keeps to the guards; stop early when the targets are met or a round
brings no significant gain. A round whose candidates all break a guard, or whose only
candidates better on dev than the checkpoint it started from do, tries again, rebalanced, up to
`curate.retries` times, then keeps the previous checkpoint; a round none of whose candidates
does better on dev keeps the checkpoint it started from and stops. With `train.gate`, the dev
front-runner also competes with a refusal gate fitted to it (targets/gate.py, train/gate.py) at
each flag rate. The rules themselves (guards,
choice, stopping, rebalancing) live in `breakfix.policy`.

Every phase is a step in the store: it runs once, writes its records into a child run named
after it, and is marked complete together with the output later phases need (a pydantic model,
stored as JSON). `resume` walks the same steps, skips the completed ones and reruns the one that
was cut off; its records have content-derived ids and its model replies are cached in the store,
so nothing is written twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from breakfix import bench, policy
from breakfix.bench.scorecard import Scorecard
from breakfix.config import CurateConfig, CycleConfig, GateConfig, TrainConfig
from breakfix.errors import BreakfixError
from breakfix.files import atomic_writer
from breakfix.policy import Choice, Decision, Headline, gain_p, headline  # noqa: F401  (re-exported for older callers)
from breakfix.store import Store
from breakfix.targets.cached import CachedTarget
from breakfix.targets.launched import LaunchedServer
from breakfix.train.post import Candidate
from breakfix.types import GenerationConfig

Update = Callable[[int, int | None, str], None]  # done, total, a short note (loss, ...)


class Hooks:
    """How the loop shows progress; the CLI draws bars, tests stay quiet."""

    def say(self, text: str) -> None:
        pass

    def track(self, label: str) -> AbstractContextManager[Update]:
        return nullcontext(lambda done, total, note="": None)


class FixFile(BaseModel):
    path: str
    n: int
    sha256: str


class CurateOutput(BaseModel):
    """The curate step: the fix data files (TRL columns), or why there is nothing to fix."""

    nothing_to_fix: bool = False
    why: str = ""
    files: dict[str, FixFile] = {}
    counts: dict[str, int] = {}
    notes: list[str] = []
    targets: list[dict] = []


class TrainOutput(BaseModel):
    """The train step: the candidates post-training saved (and what failed), with the settings used."""

    model: str | None
    parent: str
    stages: dict[str, dict]
    candidates: list[Candidate]
    failures: list[str] = []
    settings: TrainConfig
    on_policy: dict[str, int] = {}      # probes per kind, the SFT model's errors on them, the pairs made


class SelectionCard(BaseModel):
    """A model's scorecard on the dev selection set (a JSON file) and its headline figures."""

    name: str
    model: str
    scorecard: str
    headline: Headline


class SelectOutput(BaseModel):
    """The select step: every candidate's dev figures and guards, and the one chosen (if any)."""

    choice: Choice
    cards: list[SelectionCard]
    skipped: list[str] = []      # candidates that failed to load or score

    @property
    def model(self) -> str | None:
        return next((c.model for c in self.cards if c.name == self.choice.chosen), None)


@dataclass
class Loop:
    store: Store
    run_id: str
    config: CycleConfig
    folder: Path                        # the run's files: fix data, checkpoints, ledger, report
    catalog: object
    judges: object
    groundedness: object | None
    home: Path
    load: Callable[[str], object]       # model string -> target
    hooks: Hooks = field(default_factory=Hooks)
    _targets: dict[str, object] = field(default_factory=dict)
    _server: LaunchedServer | None = None

    # --- the loop -------------------------------------------------------------------------------

    def run(self) -> list[Decision]:
        try:
            return self._rounds()
        finally:
            self.release()

    def _rounds(self) -> list[Decision]:
        base = self.measure(0, self.config.model)
        current, best, decisions = self.config.model, base, []
        for n in range(1, self.config.rounds + 1):
            decision, model, card = self._round(n, current, base, best)
            decisions.append(decision)
            if decision.promoted:
                current, best = model, card
            if decision.stop:
                break
        return decisions

    def _round(self, n: int, current: str, base: Scorecard, best: Scorecard) -> tuple[Decision, str | None, Scorecard | None]:
        """Red team, curate, then up to 1 + `curate.retries` tries of: train, choose a candidate on
        dev, measure it on eval, decide. A try whose candidates all break a guard, or whose
        better candidates than the starting checkpoint all do, rebalances; one whose best does no
        better on dev than the starting checkpoint, no guard holding a better one back, ends the
        round, kept."""
        report = self.step(n, "redteam", current, lambda child: self._redteam(n, child, current))
        curation = self.config.curate
        fix = CurateOutput.model_validate(self.step(n, "curate", current,
                                                    lambda child: self._curate(n, child, current, report, best, curation)))
        if fix.nothing_to_fix:
            nothing = Decision(round=n, promoted=False, stop=True, why=fix.why, harmful=None, vprr_increase=None,
                               retention=None, p_gain=None)
            return self._decided(n, current, nothing), None, None
        settings, attempts, broken, decision = self.config.train, [], [], None
        for k in range(1 + self.config.curate.retries):
            tag = "" if k == 0 else f"-try{k + 1}"
            if k:
                settings, changed, why = policy.rebalance(settings, curation, broken)
                attempts.append(f"try {k + 1}: {why}")
                if changed != curation:
                    curation = changed
                    fix = CurateOutput.model_validate(self.step(n, f"curate{tag}", current, lambda child: self._curate(
                        n, child, current, report, best, curation)))
            trained = TrainOutput.model_validate(self.step(n, f"train{tag}", current,
                                                           lambda child: self._train(n, child, current, fix, settings, tag)))
            chosen = SelectOutput.model_validate(self.step(n, f"select{tag}", current,
                                                           lambda child: self._select(n, child, trained, tag, current)))
            attempts.append(f"try {k + 1}: {chosen.choice.why}" + "".join(f"; failed: {f}" for f in trained.failures))
            if chosen.model is None:
                decision = Decision(round=n, promoted=False, stop=True, harmful=None, vprr_increase=None, retention=None,
                                    p_gain=None, why=f"not promoted: {chosen.choice.why}; keeping the previous checkpoint")
                if chosen.choice.kept and not chosen.choice.held_back:
                    break  # no guard held a better candidate back: the round did not improve, rebalancing is no answer
                broken = chosen.choice.held_back or sorted({g.name for v in chosen.choice.verdicts for g in v.guards
                                                            if not g.passed})
                continue
            card = self.measure(n, chosen.model, f"eval{tag}")
            decision = policy.decide(n, base, best, card, self.config.guards, self.config.stop, chosen.choice.chosen)
            if decision.promoted:
                return self._decided(n, chosen.model, decision.model_copy(update={"attempts": attempts})), chosen.model, card
            # The eval split vetoes; it never steers: a retry chosen because of an eval figure
            # would tune the recipe on the split the scorecard reports.
            attempts.append(f"try {k + 1}: {decision.why}")
            break
        return self._decided(n, current, decision.model_copy(update={"attempts": attempts})), None, None

    def _decided(self, n: int, model: str, decision: Decision) -> Decision:
        return Decision.model_validate(self.step(n, "decide", model, lambda child: decision.model_dump(mode="json")))

    def step(self, n: int, phase: str, model: str, work: Callable[[str], dict]) -> dict:
        """Run one phase once; a completed phase returns its recorded output."""
        done = self.store.step(self.run_id, n, phase)
        if done and done.status == "completed":
            return done.output
        record = self.store.begin_step(self.run_id, n, phase, kind=phase, model=model,
                                       config={"round": n, "phase": phase})
        self.hooks.say(f"round {n}: {phase}" + (f" (resumed, try {record.tries})" if record.tries > 1 else ""))
        output = work(record.child_run_id)
        self.store.finish_step(self.run_id, n, phase, output)
        write_ledger(self)
        return output

    def measure(self, n: int, model: str, phase: str = "eval") -> Scorecard:
        output = self.step(n, phase, model, lambda child: self._eval(child, model))
        return Scorecard.model_validate_json(Path(output["scorecard"]).read_text(encoding="utf-8"))

    # --- phases ---------------------------------------------------------------------------------

    def target(self, model: str):
        """The model under work, loaded (or served) once, its replies cached in the store."""
        if model not in self._targets:
            self.release()  # one model in memory at a time
            spec = model
            if self.config.serve:
                s = self.config.serve
                self._server = LaunchedServer(s.command, s.model, s.port, self.folder / "serve.log", s.startup_timeout)
                self.hooks.say(f"serving {model}")
                spec = self._server.start(model)
            self._targets[model] = CachedTarget(self.load(spec), self.store)
        return self._targets[model]

    def release(self) -> None:
        """Let go of the model in use (and stop its server): before training, and at the end."""
        self._targets.clear()
        if self._server is not None:
            self._server.stop()
            self._server = None

    def _eval(self, child: str, model: str) -> dict:
        e = self.config.eval
        ctx = bench.EvalContext(target=self.target(model), judges=self.judges, groundedness=self.groundedness,
                                catalog=self.catalog, store=self.store, run_id=child, preset=e.preset, seed=self.config.seed,
                                config=GenerationConfig(max_new_tokens=e.max_new_tokens, seed=self.config.seed),
                                limits=dict(e.limits))
        suites = bench.expand(e.suites)
        with self.hooks.track("evaluating") as update:
            card = bench.run(ctx, suites, progress=lambda name: update(suites.index(name), len(suites), name))
        path = bench.save(card, self.store)
        figures = headline(card, self.config.stop.harmful)
        return {"scorecard": str(path), "model": model, "fingerprint": card.fingerprint,
                "headline": figures.model_dump(mode="json")}

    def _redteam(self, n: int, child: str, model: str) -> dict:
        from breakfix.attacks.campaign import Campaign, harmful_seeds, persona_templates, run
        from breakfix.attacks.personas import load_persona

        config = self.config.redteam.model_copy(update={"seed": self.config.seed + n})  # new attacks each round
        persona = load_persona(config.persona)
        seeds, templates = harmful_seeds(self.catalog, config), persona_templates(self.catalog, persona, config)
        c = Campaign(child, self.target(model), self.judges, persona, config, seeds, templates, store=self.store)
        with self.hooks.track("red teaming") as update:
            report = run(c, progress=lambda done, total: update(done, total, ""))
        return report.model_dump(mode="json")

    def _curate(self, n: int, child: str, model: str, report: dict, card: Scorecard, settings: CurateConfig) -> dict:
        from breakfix.curate.fix import curate

        with self.hooks.track("curating") as update:
            update(0, None, "answering twins and retention prompts")
            fix = curate(self.store, f"{self.run_id}.r{n}.redteam", self.catalog, self.target(model), self.judges,
                         settings.model_copy(update={"seed": self.config.seed + n}), card, self.home)
        targets = [v.model_dump(mode="json") for v in fix.ranking.targets]
        if not targets or not report["successes"]:
            return CurateOutput(nothing_to_fix=True, targets=targets,
                                why=f"nothing to fix: {report['successes']} successful attacks in {report['attempts']} "
                                    f"attempts, {len(targets)} groups over the threshold").model_dump(mode="json")
        folder = self.folder / f"round-{n}" / ("fix" if settings == self.config.curate else f"fix-{_short(settings)}")
        files = {}
        for kind, (path, n) in fix.write(folder).items():
            files[kind] = FixFile(path=str(path), n=n, sha256=_sha(path))
            self.store.add_dataset(child, kind, path, files[kind].sha256, n, fix.counts)
        return CurateOutput(files=files, counts=fix.counts, notes=fix.notes, targets=targets).model_dump(mode="json")

    def _train(self, n: int, child: str, model: str, fix, settings: TrainConfig | None = None, tag: str = "") -> dict:
        """Post-train (the same `post_train` as `breakfix train`), and record each stage's checkpoint."""
        from breakfix.curate.on_policy import read_probes, refresher
        from breakfix.targets.base import local_path
        from breakfix.train import post_train
        from breakfix.train.data import read_rows
        from breakfix.train.post import record_blends

        fix = CurateOutput.model_validate(fix)
        settings = (settings or self.config.train).model_copy(update={"seed": self.config.seed + n})
        self.release()  # free the serving copy (and its GPU) while training
        rows = {kind: read_rows(Path(f.path), kind) if f.n else [] for kind, f in fix.files.items() if kind != "probes"}
        folder = self.folder / f"round-{n}{tag}"
        on_policy: dict = {}

        def found(pairs) -> None:  # recorded with the DPO checkpoint; the SFT model let go before DPO trains
            self.release()
            on_policy.update(counts=pairs.counts, path=pairs.path, sha256=_sha(Path(pairs.path)) if pairs.path else None,
                             n=len(pairs.pairs))

        probes = read_probes(Path(fix.files["probes"].path)) if "probes" in fix.files else []
        refresh = refresher(probes, lambda path: self.target(f"hf:{path}"),
                            self.judges, GenerationConfig(max_new_tokens=self.config.curate.max_new_tokens, seed=self.config.seed),
                            folder / "on-policy", self.hooks.say, found)
        with self.hooks.track("training") as update:
            result = post_train(local_path(model), rows.get("sft", []), rows.get("dpo", []), folder, settings,
                                lambda stage, step, total, loss: update(step, total, stage + ("" if loss is None else f" loss {loss:.3f}")),
                                say=self.hooks.say, refresh=refresh)
        parent, stages, ids = None, {}, {}
        for stage, r in result.stages.items():
            data = fix.files[stage]
            parent = ids[stage] = self.store.add_checkpoint(child, Path(r.path), r.weights_sha256, {
                "stage": stage, "round": n, "base": r.parent, "data": data.path, "data_sha256": data.sha256,
                **({"on_policy": on_policy} if stage == "dpo" and on_policy else {}),
                "config": settings.model_dump(), "steps": r.steps, "losses": r.losses, "seconds": r.seconds,
                "truncated": r.truncated, "precision": r.precision}, parent_id=parent)
            stages[stage] = {"steps": r.steps, "seconds": r.seconds, "sha256": r.weights_sha256, "precision": r.precision,
                             "loss_first": r.losses[0] if r.losses else None, "loss_last": r.losses[-1] if r.losses else None}
        record_blends(self.store, child, result, ids, {"round": n, "config": settings.model_dump()})  # a promoted blend too
        return TrainOutput(model=f"hf:{result.model}" if result.model else None, parent=model, stages=stages,
                           candidates=result.candidates, failures=result.failures, settings=settings,
                           on_policy=on_policy.get("counts", {})).model_dump(mode="json")

    # --- choosing on dev ------------------------------------------------------------------------

    def selection_card(self, n: int, child: str, name: str, model: str) -> SelectionCard:
        """`model` scored on the dev selection set; its scorecard is written beside the run."""
        from breakfix import selection

        card = selection.score(self.target(model), self.judges, self.catalog, self.config.select, self.config.seed, child)
        path = self.folder / "selection" / f"round-{n}" / f"{name}.json"
        with atomic_writer(path) as handle:
            handle.write(card.model_dump_json(indent=1))
        return SelectionCard(name=name, model=model, scorecard=str(path), headline=headline(card, self.config.stop.harmful))

    def base_selection(self) -> Scorecard:
        """The base model on the selection set (once per run): what the candidates' guards compare with."""
        out = self.step(0, "select", self.config.model,
                        lambda child: self.selection_card(0, child, "base", self.config.model).model_dump(mode="json"))
        return Scorecard.model_validate_json(Path(SelectionCard.model_validate(out).scorecard).read_text(encoding="utf-8"))

    def _incumbent(self, n: int, child: str, current: str, base: Scorecard) -> Scorecard:
        """The checkpoint a round starts from, on the dev selection set: the base's card, or the
        card it was chosen on in an earlier round of this run (found by the model string the loop
        tracks, as the select steps stored it); scored now only when that card is missing."""
        if current == self.config.model:
            return base
        for step in self.store.steps(self.run_id):
            if step.phase.startswith("select") and step.round and step.status == "completed" and step.output:
                card = next((c for c in SelectOutput.model_validate(step.output).cards if c.model == current), None)
                if card is not None and Path(card.scorecard).is_file():
                    return Scorecard.model_validate_json(Path(card.scorecard).read_text(encoding="utf-8"))
        card = self.selection_card(n, child, "current", current)
        return Scorecard.model_validate_json(Path(card.scorecard).read_text(encoding="utf-8"))

    def _select(self, n: int, child: str, trained: TrainOutput, tag: str = "", current: str | None = None) -> dict:
        """Score every candidate on dev; choose by `policy.choose`, against the checkpoint the
        round started from (`current`). One that fails to load is skipped."""
        base = self.base_selection()
        cards, skipped = [], []
        with self.hooks.track("choosing on dev") as update:
            for k, c in enumerate(trained.candidates):
                update(k, len(trained.candidates), c.name)
                try:
                    cards.append(self.selection_card(n, child, f"{c.name}{tag}", f"hf:{c.path}"))
                except BreakfixError as exc:
                    skipped.append(f"{c.name}: {exc}")
        loaded = {c.name: Scorecard.model_validate_json(Path(c.scorecard).read_text(encoding="utf-8")) for c in cards}
        if trained.settings.gate.flag_rates and loaded:
            by_card = {f"{c.name}{tag}": c for c in trained.candidates}
            for front in _to_gate(self._choose(base, loaded, None), trained.settings.gate.gentlest):
                for card in self._gated(n, child, by_card[front], trained.settings.gate, tag, skipped):
                    cards.append(card)
                    loaded[card.name] = Scorecard.model_validate_json(Path(card.scorecard).read_text(encoding="utf-8"))
        incumbent = ("current", self._incumbent(n, child, current, base)) if current else None
        choice = self._choose(base, loaded, incumbent)
        return SelectOutput(choice=choice, cards=cards, skipped=skipped).model_dump(mode="json")

    def _record_gated(self, n: int, tag: str, name: str, front: Candidate, folder: Path, gate) -> None:
        """The gated model in the registry beside the round's checkpoints (the ledger's lineage),
        a child of the checkpoint it gates."""
        train = self.store.step(self.run_id, n, f"train{tag}")
        if train is None or not train.child_run_id:
            return
        parent = next((c["id"] for c in self.store.checkpoints(train.child_run_id) if c["path"] == front.path), None)
        self.store.add_checkpoint(train.child_run_id, folder, front.weights_sha256, {
            "stage": "gate", "name": name, "round": n, "gates": front.path,
            "gate": {"digest": gate.digest(), "layers": gate.layers, "threshold": gate.threshold,
                     "flag_rate": gate.flag_rate, "recall": gate.recall, "fitted": gate.fitted}}, parent_id=parent)

    def _choose(self, base: Scorecard, cards: dict[str, Scorecard], incumbent) -> policy.Choice:
        return policy.choose(base, cards, self.config.guards, self.config.stop.harmful,
                             self.config.select.over_refusal_weight, incumbent, self.config.select.vprr_confidence)

    def _gated(self, n: int, child: str, front: Candidate, settings: GateConfig, tag: str,
               skipped: list[str]) -> list[SelectionCard]:
        """A candidate (`_to_gate`) with a refusal gate fitted to it (train/gate.py) at each of
        `train.gate.flag_rates`, scored on dev: more candidates for the same choice. Needs the
        model in this process (not served)."""
        from breakfix.targets.hf import HFTarget
        from breakfix.train.gate import GATE_METHOD, GateFit, fit_gate, gate_data, gated_copy, refusal_texts

        if self.config.serve:
            skipped.append(f"{front.name}+gate: a refusal gate needs the model loaded in this process, not served")
            return []
        round_folder = self.folder / f"round-{n}{tag}"
        saved = round_folder / f"{front.name.replace('@', '-')}.gate-fit.json"
        key = {"weights_sha256": front.weights_sha256, "prompts": settings.prompts, "seed": self.config.seed + n,
               "method": GATE_METHOD}
        try:
            fit = GateFit.model_validate_json(saved.read_text(encoding="utf-8")) if saved.is_file() else None
        except ValueError:  # a fit saved by an older build: fitted again
            fit = None
        if fit is None or fit.key != key:  # a resumed select step reads its fit back, the same gate
            target = getattr(self.target(f"hf:{front.path}"), "target", None)
            if not isinstance(target, HFTarget):
                skipped.append(f"{front.name}+gate: a refusal gate needs a local Hugging Face model")
                return []
            with self.hooks.track("fitting a refusal gate") as update:
                update(0, 1, front.name)
                fit = fit_gate(target, gate_data(self.catalog, settings.prompts, key["seed"]), self.config.seed)
            fit = fit.model_copy(update={"key": key})
            saved.parent.mkdir(parents=True, exist_ok=True)
            with atomic_writer(saved) as handle:
                handle.write(fit.model_dump_json())
        cards = []
        for rate in settings.flag_rates:
            name = f"{front.name}+gate@{rate:g}"
            gate = fit.gate(rate, refusal_texts(self.config.seed))
            folder = gated_copy(Path(front.path), gate, round_folder / f"{front.name.replace('@', '-')}+gate-{rate:g}")
            self.hooks.say(f"{name}: layers {'+'.join(map(str, gate.layers))}, {gate.summary()}")
            try:
                cards.append(self.selection_card(n, child, f"{name}{tag}", f"hf:{folder}"))
            except BreakfixError as exc:
                skipped.append(f"{name}: {exc}")
                continue
            self._record_gated(n, tag, name, front, folder, gate)
        return cards


def _to_gate(choice: policy.Choice, gentlest: bool) -> list[str]:
    """The cards to gate (names with the try's tag): the dev front-runner and, with `gentlest`,
    the candidate within the guards with the lowest dev VPRR (then harm), when it is another."""
    if choice.chosen is None:
        return []
    eligible = [v for v in choice.verdicts if v.eligible and v.vprr is not None and v.harmful is not None]
    gentle = min(eligible, key=lambda v: (v.vprr, v.harmful)).name if gentlest and eligible else choice.chosen
    return list(dict.fromkeys([choice.chosen, gentle]))


def _short(settings: CurateConfig) -> str:
    return hashlib.sha256(settings.model_dump_json().encode()).hexdigest()[:8]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_ledger(loop: Loop) -> Path:
    """The run's manifest, rewritten after every step: enough to reproduce the run."""
    from breakfix.ledger import ledger

    path = loop.folder / "ledger.json"
    with atomic_writer(path) as handle:
        handle.write(json.dumps(ledger(loop), indent=1, default=str))
    return path
