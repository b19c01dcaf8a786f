"""The HTML report of a `breakfix run`: one self-contained file (inline CSS and SVG, no
network), built from the store. Harmful completions are redacted unless asked for."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from pydantic import BaseModel

from breakfix.bench.scorecard import Scorecard, agreement_line, cell, label, rows
from breakfix.config import CycleConfig
from breakfix.policy import Headline, choice_rule, guard_rule, headline
from breakfix.files import atomic_writer
from breakfix.redact import redact
from breakfix.report import svg
from breakfix.stats import Rate, rate


class RoundView(BaseModel):
    """One round as the report shows it: its red team, fix, training, scorecard and decision."""

    round: int
    model: str | None = None
    card: Scorecard | None = None
    figures: Headline | None = None
    decision: str | None = None
    promoted: bool | None = None
    redteam: dict | None = None
    redteam_run: str | None = None
    fix: dict | None = None
    train: dict | None = None
    selections: list[dict] = []     # each try's select step: every candidate's dev figures and the choice
    attempts: list[str] = []        # each try of the round and how it ended

    @property
    def model_label(self) -> str:
        return "base" if self.round == 0 else f"round {self.round}" + ("" if self.promoted in (None, True) else " (not promoted)")

    def cell(self, name: str) -> str:
        value = getattr(self.figures, name, None) if self.figures else None
        return "-" if value is None else cell(value, True)


def rounds(store, run_id: str) -> list[RoundView]:
    views: dict[int, RoundView] = {}
    config = CycleConfig.model_validate(store.run(run_id).config)
    for step in store.steps(run_id):
        view = views.setdefault(step.round, RoundView(round=step.round))
        if step.status != "completed":
            continue
        output = step.output or {}
        phase = step.phase.split("-try")[0]  # a retried round's later tries: train-try2, ...; the last one shows
        if phase == "eval":
            view.card = Scorecard.model_validate_json(Path(output["scorecard"]).read_text(encoding="utf-8"))
            view.model, view.figures = output["model"], headline(view.card, config.stop.harmful)
        elif phase == "redteam":
            view.redteam, view.redteam_run = output, step.child_run_id
        elif phase == "curate":
            view.fix = output
        elif phase == "train":
            view.train = output
        elif phase == "select":
            view.selections = [*view.selections, output]
        elif phase == "decide":
            view.decision, view.promoted = output["why"], output["promoted"]
            view.attempts = output.get("attempts", [])
    return [views[k] for k in sorted(views)]


def write_report(store, run_id: str, path: Path, *, show_harmful: bool = False) -> Path:
    """Render the report to `path` (atomically); the folder is created when missing."""
    html = render(store, run_id, show_harmful=show_harmful)
    with atomic_writer(path) as handle:
        handle.write(html)
    return path


def render(store, run_id: str, *, show_harmful: bool = False) -> str:
    import jinja2

    record = store.run(run_id)
    config = CycleConfig.model_validate(record.config)
    views = rounds(store, run_id)
    measured = [v for v in views if v.card is not None]
    env = jinja2.Environment(loader=jinja2.FunctionLoader(_template), autoescape=True, undefined=jinja2.StrictUndefined)
    return env.get_template("report.html.j2").render(
        record=record, config=config, views=views, measured=measured, show_harmful=show_harmful,
        generated=datetime.now(UTC).isoformat(timespec="seconds"),
        table=_scorecard_table(measured), agreement=list(dict.fromkeys(
            line for v in measured if (line := agreement_line(v.card)))), targets=_target_figures(measured, config),
        category_chart=_category_chart(measured, config), tradeoff_chart=_tradeoff_chart(measured),
        guard_rule=guard_rule(config.guards), choice_rule=choice_rule(config.select.over_refusal_weight, config.select.vprr_confidence),
        fronts=_fronts(views),
        heatmaps=_heatmaps(views), transcripts=_transcripts(store, views, show_harmful),
        before_after=_before_after(store, measured, config, show_harmful))


def _template(name: str) -> str:
    return resources.files("breakfix.report").joinpath("templates", name).read_text(encoding="utf-8")


def _scorecard_table(measured: list[RoundView]) -> list[dict]:
    """Phi-3-style rows: each metric with its figure per round."""
    return [{"name": label(first), "cells": cells} for first, cells in rows([v.card for v in measured])]


def _target_figures(measured: list[RoundView], config: CycleConfig) -> list[dict]:
    """The loop's targets against what the last round measured."""
    if len(measured) < 2:
        return []
    base, last = measured[0].figures, measured[-1].figures
    out = []
    if base.harmful.value and last.harmful.value is not None:
        # the recipe's own stop target, not a fixed relative drop: the loop stops on this figure
        wanted, now = config.stop.target_harmful_rate, last.harmful.value
        out.append({"what": "harmful-response rate (the recipe's stop target)", "target": f"<= {wanted:.0%}",
                    "measured": f"{now:.1%} ({1 - now / base.harmful.value:.0%} below base)", "met": now <= wanted})
    if base.vprr and last.vprr and base.vprr.value is not None and last.vprr.value is not None:
        rise = 100 * (last.vprr.value - base.vprr.value)
        limit = config.guards.max_vprr_increase
        out.append({"what": "VPRR rise over base (points)", "target": f"<= {limit:g}", "measured": f"{rise:+.1f}", "met": rise <= limit})
    if base.capability and last.capability and base.capability.value:
        kept = last.capability.value / base.capability.value
        out.append({"what": "capability retention", "target": f">= {config.guards.min_retention:.0%}", "measured": f"{kept:.1%}",
                    "met": kept >= config.guards.min_retention})
    return out


def _pooled_by_category(card: Scorecard, keys: list[str]) -> dict[str, Rate]:
    by: dict[str, list[bool]] = defaultdict(list)
    for key in keys:
        m = card.metric(key)
        for o in m.outcomes if m else ():
            if o.category:
                by[o.category].append(o.value >= 0.5)
    return {c: rate(v) for c, v in sorted(by.items())}


def _percent(r: Rate | None) -> float | None:
    return None if r is None or r.value is None else 100 * r.value


def _interval(r: Rate | None) -> tuple[float, float] | None:
    """A rate's 95% interval in percent, when it has one."""
    return None if r is None or r.value is None or r.low is None or r.high is None else (100 * r.low, 100 * r.high)


def _category_chart(measured: list[RoundView], config: CycleConfig) -> str:
    per_round = [_pooled_by_category(v.card, config.stop.harmful) for v in measured]
    categories = sorted({c for r in per_round for c in r})
    rates = {c: [r.get(c) for r in per_round] for c in categories} | {"all categories": [v.figures.harmful for v in measured]}
    series = {name: [_percent(r) for r in rs] for name, rs in rates.items()}
    intervals = {name: [_interval(r) for r in rs] for name, rs in rates.items()}
    return svg.lines(series, [v.model_label for v in measured], "Harmful-response rate per harm category per round "
                     "(bars: 95% intervals)", intervals=intervals)


def _tradeoff_chart(measured: list[RoundView]) -> str:
    shown = [v for v in measured if _percent(v.figures.vprr) is not None and _percent(v.figures.harmful) is not None]
    points = [(v.model_label, _percent(v.figures.vprr), _percent(v.figures.harmful)) for v in shown]
    intervals = [(_interval(v.figures.vprr), _interval(v.figures.harmful)) for v in shown]
    return svg.tradeoff(points, "Safety vs over-refusal, one point per round (bars: 95% intervals)", intervals=intervals)


def _fronts(views: list[RoundView]) -> list[dict]:
    """Per try of each round: the candidates' harm against over-refusal on the dev selection set,
    the base model and the chosen point, and a row per candidate with the guards it broke."""
    base = next((v.selections[0] for v in views if v.round == 0 and v.selections), None)
    out = []
    for v in views:
        for k, sel in enumerate(v.selections if v.round else []):
            points = []
            if base and base["headline"]["vprr"] and base["headline"]["harmful"]["value"] is not None:
                points.append(("base", 100 * base["headline"]["vprr"]["value"], 100 * base["headline"]["harmful"]["value"], "base"))
            rows = []
            for verdict in sel["choice"]["verdicts"]:
                kind = "chosen" if verdict["name"] == sel["choice"]["chosen"] else "eligible" if verdict["eligible"] else "rejected"
                if verdict["vprr"] is not None and verdict["harmful"] is not None:
                    points.append((verdict["name"], 100 * verdict["vprr"], 100 * verdict["harmful"], kind))
                rows.append({**verdict, "kind": kind, "broken": [g["why"] for g in verdict["guards"] if not g["passed"]]})
            held, kept = sel["choice"].get("incumbent"), sel["choice"].get("kept", False)
            if held and held["harmful"] is not None and (v.round > 1 or kept):  # round 1 starts from the base
                if v.round > 1 and held["vprr"] is not None:
                    points.append(("current", 100 * held["vprr"], 100 * held["harmful"], "current"))
                name = "base" if v.round == 1 else held["name"]
                held_back = sel["choice"].get("held_back") or []
                rows.append({**held, "name": name, "kind": f"{name} (kept)" if kept and not held_back else name, "broken": []})
            title = f"Round {v.round}{f', try {k + 1}' if k else ''}: candidates on the dev selection set"
            out.append({"round": v.round, "try": k + 1, "why": sel["choice"]["why"], "skipped": sel.get("skipped", []),
                        "rows": rows, "svg": svg.front(points, title)})
    return out


def _heatmaps(views: list[RoundView]) -> list[dict]:
    """ASR per category x technique of each round's red team (on the model that round started from)."""
    out = []
    for v in views:
        if not v.redteam:
            continue
        cells = {(c["category"], c["technique"]): (c["successes"], c["attempts"]) for c in v.redteam["cells"]}
        categories = sorted({k[0] for k in cells})
        techniques = sorted({k[1] for k in cells})
        attacked = "the base model" if v.round == 1 else f"the checkpoint of round {v.round - 1}"
        out.append({"round": v.round, "attacked": attacked, "attempts": v.redteam["attempts"], "successes": v.redteam["successes"],
                    "svg": svg.heatmap(categories, techniques, cells, f"Attack success, round {v.round} red team")})
    return out


def _shown(text: str, harmful: bool, show_harmful: bool) -> str:
    return text if show_harmful or not harmful else redact(text)


def _transcripts(store, views: list[RoundView], show_harmful: bool, per_round: int = 3) -> list[dict]:
    """A few successful attacks per round, their completions redacted by default."""
    out = []
    for v in views:
        if not v.redteam_run:
            continue
        for f in store.findings(v.redteam_run)[:per_round]:
            out.append({"round": v.round, "title": f"{f.category} / {f.technique}, severity {f.severity}",
                        "messages": [{"role": m.role, "text": _shown(m.content, m.role == "assistant", show_harmful)}
                                     for m in f.conversation]})
    return out


def _last_promoted(measured: list[RoundView]) -> RoundView | None:
    """The round whose checkpoint the loop kept last (a round not promoted was discarded)."""
    return next((v for v in reversed(measured) if v.round > 0 and v.promoted), None)


def _before_after(store, measured: list[RoundView], config: CycleConfig, show_harmful: bool, n: int = 6) -> dict:
    """Eval items the base answered harmfully, with the last promoted checkpoint's answer to the
    same prompt; `round` is that checkpoint's round (None when no round was promoted)."""
    kept = _last_promoted(measured)
    if not measured or kept is None:
        return {"round": None, "items": []}
    return {"round": kept.round, "items": _compared(store, measured[0], kept, config, show_harmful, n)}


def _compared(store, base: RoundView, kept: RoundView, config: CycleConfig, show_harmful: bool, n: int) -> list[dict]:
    first, last = (store.conversations(v.card.run_id) for v in (base, kept))
    suites = {k.split(".")[0] for k in config.stop.harmful}
    after = {(c.purpose, c.item_id): c for c in last}
    out = []
    for c in first:
        if c.purpose.removeprefix("eval:") not in suites or (c.meta.get("severity") or 0) < 1:
            continue
        later = after.get((c.purpose, c.item_id))
        if later is None:
            continue
        prompt = next((m.content for m in reversed(c.messages) if m.role == "user"), "")
        out.append({"suite": c.purpose.removeprefix("eval:"), "prompt": prompt,
                    "before": _shown(c.messages[-1].content, True, show_harmful), "before_severity": c.meta.get("severity"),
                    "after": _shown(later.messages[-1].content, (later.meta.get("severity") or 0) >= 1, show_harmful),
                    "after_severity": later.meta.get("severity")})
        if len(out) == n:
            break
    return out
