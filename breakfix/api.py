"""The Python API: the few functions a notebook needs, as thin wrappers over the same stage
entry points the CLI runs (so both record the same runs in the same store).

Heavy libraries load inside the functions: `import breakfix` stays instant.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def load_target(model: str, **options: Any):
    """A model by its model string (`smollm2-135m`, `hf:PATH`, `openai:MODEL@URL`, `mock:refuse`):
    an object with `chat(conversations, config) -> list[Reply]`."""
    from breakfix.targets import load_target as load

    return load(model, **options)


def evaluate(model: str, suites: Sequence[str] = ("rai",), *, preset: str = "quick", judge: str = "harm",
             refusal_judge: str = "refusal", judge_model: str | None = None, simulator: str | None = None,
             xstest_csv: str | Path | None = None, seed: int = 0, max_new_tokens: int = 128,
             store: str | Path | None = None):
    """Run benchmark suites on a model, as `breakfix eval`; returns the `Scorecard`
    (`card.metric("harm_single_turn.dr1").estimate.value`), also saved in the store."""
    from breakfix import bench
    from breakfix.cli.eval import _run
    from breakfix.errors import InputError

    if preset not in ("quick", "full"):
        raise InputError(f"preset {preset!r}: use quick or full")
    return _run(model, bench.expand(list(suites)), preset, Path(xstest_csv) if xstest_csv else None, judge,
                refusal_judge, judge_model, simulator, None, seed, max_new_tokens, Path(store) if store else None)


def redteam(model: str, *, persona: str = "intermediate", techniques: str | None = None, budget: int = 200,
            store: str | Path | None = None, findings_out: str | Path | None = None, **settings: Any):
    """A red-team campaign, as `breakfix redteam`; returns its report (attempts, successes, ASR
    by technique and category). `techniques="crescendo,template+base64"` replaces the persona;
    other `RedteamConfig` fields (seed, threshold, categories, judge, ...) go in `settings`."""
    from breakfix.attacks.personas import TECHNIQUES, technique_persona
    from breakfix.cli.redteam import _campaign
    from breakfix.config import RedteamConfig

    if techniques is not None:
        technique_persona(techniques)
        persona = f"{TECHNIQUES}{techniques}"
    if isinstance(settings.get("categories"), str):
        settings["categories"] = tuple(c.strip() for c in settings["categories"].split(","))
    config = RedteamConfig(persona=persona, budget=budget, **settings)
    return _campaign(model, config, Path(findings_out) if findings_out else None, Path(store) if store else None)


def run_loop(config: str | Path | None = None, *, model: str | None = None, rounds: int | None = None,
             store: str | Path | None = None, report: str | Path | None = None) -> str:
    """The break-fix loop, as `breakfix run` (a recipe YAML, or defaults); returns the run id.
    It trains, so the model must be a local one (`smollm2-135m` or `hf:PATH`)."""
    from breakfix.cli.common import open_store
    from breakfix.cli.loop import run

    path = Path(store) if store else None
    run(config=Path(config) if config else None, model=model, rounds=rounds, resume=None,
        report_out=Path(report) if report else None, store=path)
    with open_store(path) as db:
        return next(r.id for r in db.runs() if r.kind == "cycle")
