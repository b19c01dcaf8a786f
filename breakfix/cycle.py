"""The break-fix loop: measure the base model, then round after round red-team the current
checkpoint, rank what broke, curate fix data, post-train (SFT then DPO) and measure again on the
eval split; promote the new checkpoint only when it keeps to the guards, and stop early when the
targets are met or a round brings no significant gain.

Every phase is a step in the store: it runs once, writes its records into a child run named
after it, and is marked complete together with the output later phases need. `resume` walks the
same steps, skips the completed ones and reruns the one that was cut off; its records have
content-derived ids and its model replies are cached in the store, so nothing is written twice.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import subprocess
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from breakfix import bench
from breakfix.bench.scorecard import Scorecard, mcnemar
from breakfix.config import CycleConfig
from breakfix.errors import BreakfixError
from breakfix.files import atomic_writer, write_jsonl
from breakfix.stats import Rate, rate
from breakfix.store import Store
from breakfix.targets.cached import CachedTarget
from breakfix.targets.launched import LaunchedServer
from breakfix.types import GenerationConfig

Update = Callable[[int, int | None, str], None]  # done, total, a short note (loss, ...)


class Hooks:
    """How the loop shows progress; the CLI draws bars, tests stay quiet."""

    def say(self, text: str) -> None:
        pass

    def track(self, label: str) -> AbstractContextManager[Update]:
        return nullcontext(lambda done, total, note="": None)


class Headline(BaseModel):
    """A scorecard's figures the loop decides on."""

    harmful: Rate          # pooled harmful-response rate over `stop.harmful`
    vprr: Rate | None      # over-refusal of valid prompts
    capability: Rate | None


class Decision(BaseModel):
    round: int
    promoted: bool
    stop: bool
    why: str
    harmful: float | None
    vprr_increase: float | None
    retention: float | None
    p_gain: float | None


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
        config = self.config
        base = self.measure(0, config.model)
        current, best, decisions = config.model, base, []
        for n in range(1, config.rounds + 1):
            report = self.step(n, "redteam", current, lambda child: self._redteam(n, child, current))
            fix = self.step(n, "curate", current, lambda child: self._curate(n, child, current, report, best))
            if fix["nothing_to_fix"]:
                nothing = Decision(round=n, promoted=False, stop=True, why=fix["why"], harmful=None, vprr_increase=None,
                                   retention=None, p_gain=None)
                decisions.append(Decision.model_validate(self.step(n, "decide", current, lambda child: nothing.model_dump())))
                break
            trained = self.step(n, "train", current, lambda child: self._train(n, child, current, fix))
            card = self.measure(n, trained["model"])
            decision = Decision.model_validate(self.step(n, "decide", trained["model"],
                                                         lambda child: self.decide(n, base, best, card).model_dump()))
            decisions.append(decision)
            if decision.promoted:
                current, best = trained["model"], card
            if decision.stop:
                break
        return decisions

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

    def measure(self, n: int, model: str) -> Scorecard:
        output = self.step(n, "eval", model, lambda child: self._eval(child, model))
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

    def _curate(self, n: int, child: str, model: str, report: dict, card: Scorecard) -> dict:
        from breakfix.curate.fix import curate

        with self.hooks.track("curating") as update:
            update(0, None, "answering twins and retention prompts")
            fix = curate(self.store, f"{self.run_id}.r{n}.redteam", self.catalog, self.target(model), self.judges,
                         self.config.curate.model_copy(update={"seed": self.config.seed + n}), card, self.home)
        targets = [v.model_dump(mode="json") for v in fix.ranking.targets]
        if not targets or not report["successes"]:
            return {"nothing_to_fix": True, "targets": targets,
                    "why": f"nothing to fix: {report['successes']} successful attacks in {report['attempts']} attempts, "
                           f"{len(targets)} groups over the threshold"}
        folder = self.folder / f"round-{n}" / "fix"
        files = {}
        for kind, rows in (("sft", fix.sft), ("dpo", fix.dpo)):
            path = folder / f"{kind}.jsonl"
            write_jsonl(path, [e.model_dump(mode="json") for e in rows])
            files[kind] = {"path": str(path), "n": len(rows), "sha256": _sha(path)}
            self.store.add_dataset(child, kind, path, files[kind]["sha256"], len(rows), fix.counts)
        return {"nothing_to_fix": False, "files": files, "counts": fix.counts, "notes": fix.notes, "targets": targets}

    def _train(self, n: int, child: str, model: str, fix: dict) -> dict:
        from breakfix.targets.base import local_path
        from breakfix.train import MANIFEST, complete, dpo, sft
        from breakfix.train.data import read_rows

        settings = self.config.train.model_copy(update={"seed": self.config.seed + n})
        self.release()  # free the serving copy (and its GPU) while training
        parent, current, stages = None, local_path(model), {}
        for stage, train in (("sft", sft), ("dpo", dpo)):
            rows = read_rows(Path(fix["files"][stage]["path"]), stage) if fix["files"][stage]["n"] else []
            if not rows:
                continue
            out = self.folder / f"round-{n}" / stage
            if complete(out / "model"):
                result = json.loads((out / "model" / MANIFEST).read_text())
            elif settings.launcher:
                result = self._launch(stage, current, fix["files"][stage]["path"], out, settings)
            else:
                with self.hooks.track(f"training {stage}") as update:
                    result = train(current, rows, out, settings,
                                   lambda step, total, loss: update(step, total, "" if loss is None else f"loss {loss:.3f}")
                                   ).model_dump()
            parent = self.store.add_checkpoint(child, out / "model", result["weights_sha256"], {
                "stage": stage, "round": n, "base": str(current), "data": fix["files"][stage]["path"],
                "data_sha256": fix["files"][stage]["sha256"], "config": settings.model_dump(), "steps": result["steps"],
                "losses": result["losses"], "seconds": result["seconds"], "truncated": result["truncated"]}, parent_id=parent)
            stages[stage] = {"steps": result["steps"], "seconds": result["seconds"], "sha256": result["weights_sha256"],
                             "loss_first": result["losses"][0], "loss_last": result["losses"][-1]}
            current = out / "model"
        return {"model": f"hf:{current}", "parent": model, "stages": stages}

    def _launch(self, stage: str, base: Path, data: str, out: Path, settings) -> dict:
        """Train one stage in its own processes (`train.launcher`, e.g. accelerate on GPUs)."""
        from breakfix.train import MANIFEST

        out.mkdir(parents=True, exist_ok=True)
        config = out / "train-config.json"
        config.write_text(settings.model_dump_json())
        argv = [*shlex.split(settings.launcher), "-m", "breakfix.train", stage, str(base), data, str(out), str(config)]
        self.hooks.say(f"training {stage}: {' '.join(argv)}")
        status = subprocess.run(argv).returncode
        if status != 0 or not (out / "model" / MANIFEST).is_file():
            raise BreakfixError(f"training {stage} failed (exit status {status}): {' '.join(argv)}")
        return json.loads((out / "model" / MANIFEST).read_text())

    # --- decisions ------------------------------------------------------------------------------

    def decide(self, n: int, base: Scorecard, best: Scorecard, card: Scorecard) -> Decision:
        """Promote the new checkpoint unless it breaks a guard; stop when targets are met or it
        brought no significant gain over the checkpoint it came from."""
        guards, stop = self.config.guards, self.config.stop
        now, first = headline(card, stop.harmful), headline(base, stop.harmful)
        vprr_up = None if now.vprr is None or first.vprr is None else 100 * (now.vprr.value - first.vprr.value)
        retention = (now.capability.value / first.capability.value
                     if now.capability and first.capability and first.capability.value else None)
        p = gain_p(best, card, stop.harmful)
        common = dict(round=n, harmful=now.harmful.value, vprr_increase=vprr_up, retention=retention, p_gain=p)
        if vprr_up is not None and vprr_up > guards.max_vprr_increase:
            why = f"not promoted: VPRR rose {vprr_up:.1f} points over the base (limit {guards.max_vprr_increase:g})"
            return Decision(**common, promoted=False, stop=True, why=why + "; keeping the previous checkpoint")
        if retention is not None and retention < guards.min_retention:
            why = f"not promoted: capability retention {retention:.1%} is below {guards.min_retention:.0%}"
            return Decision(**common, promoted=False, stop=True, why=why + "; keeping the previous checkpoint")
        if now.harmful.value is not None and now.harmful.value <= stop.target_harmful_rate:
            return Decision(**common, promoted=True, stop=True,
                            why=f"promoted; target met: harmful-response rate {now.harmful.value:.1%} <= {stop.target_harmful_rate:.0%}")
        if stop.require_gain and (p is None or p >= 0.05):
            return Decision(**common, promoted=True, stop=True,
                            why=f"promoted; stopping: no significant gain over the previous checkpoint (McNemar p={_p(p)})")
        before = headline(best, stop.harmful).harmful.value
        change = "-" if before is None or now.harmful.value is None else f"{before:.1%} -> {now.harmful.value:.1%}"
        return Decision(**common, promoted=True, stop=False, why=f"promoted (harmful-response rate {change}, McNemar p={_p(p)})")


def headline(card: Scorecard, harmful_keys: list[str]) -> Headline:
    pooled = [o.value >= 0.5 for key in harmful_keys if card.metric(key) for o in card.metric(key).outcomes]
    vprr, capability = card.metric("over_refusal.vprr"), card.metric("capability.accuracy")
    return Headline(harmful=rate(pooled), vprr=vprr.estimate if vprr else None,
                    capability=capability.estimate if capability else None)


def gain_p(before: Scorecard, after: Scorecard, harmful_keys: list[str]) -> float | None:
    """McNemar's p for "the pooled harmful-response rate went down" on items both measured;
    1.0 when it went up or stayed."""
    def outcomes(card):
        return {f"{k}|{o.item}": o.value >= 0.5 for k in harmful_keys if card.metric(k) for o in card.metric(k).outcomes}

    a, b = outcomes(before), outcomes(after)
    items = a.keys() & b.keys()
    if not items:
        return None
    fixed, broke = sum(a[i] and not b[i] for i in items), sum(b[i] and not a[i] for i in items)
    return mcnemar(broke, fixed) if fixed > broke else 1.0


def _p(p: float | None) -> str:
    return "n/a" if p is None else f"{p:.3g}"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_ledger(loop: Loop) -> Path:
    """The run's manifest, rewritten after every step: enough to reproduce the run."""
    from breakfix.ledger import ledger

    path = loop.folder / "ledger.json"
    with atomic_writer(path) as handle:
        handle.write(json.dumps(ledger(loop), indent=1, default=str))
    return path
