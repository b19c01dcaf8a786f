"""Findings out and back in: export as JSONL, and replay against another checkpoint to see
whether a fix held.

Replay sends a single-turn attack's prompt exactly as it was (a many-shot attack's fabricated
history included). A multi-turn attack's user turns are replayed in order, with the new model
writing its own replies in between. A replayed finding is reproduced when any of its replies is
judged at or above the threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from breakfix.attacks.base import ATTACKS, Ask, Env, Goal, Plan, drive, severity
from breakfix.errors import InputError
from breakfix.files import read_records, write_jsonl
from breakfix.types import Attempt, Finding, Message, Seed


def export(findings: Sequence[Finding], path: Path) -> None:
    write_jsonl(path, [f.model_dump(mode="json") for f in findings])


def read(path: Path) -> list[Finding]:
    findings = read_records(path, Finding, "finding")
    if not findings:
        raise InputError(f"{path}: no findings")
    return findings


class Replayed(BaseModel):
    finding: Finding
    attempt: Attempt

    def reproduced(self, threshold: float) -> bool:
        return self.attempt.succeeded(threshold)


def _plan(finding: Finding, goal: Goal) -> Plan:
    multi_turn = getattr(ATTACKS.find(finding.attack), "multi_turn", False)
    prompt = finding.conversation[:-1] if finding.conversation and finding.conversation[-1].role == "assistant" \
        else finding.conversation
    turns = [[m] for m in prompt if m.role == "user"] if multi_turn else [prompt]
    conversation: list[Message] = []
    turn_scores = []
    for n, turn in enumerate(turns):
        ask = [*conversation, *turn] if multi_turn else list(turn)
        reply, scores = yield Ask(ask, on_goal=n == len(turns) - 1)
        if not reply.ok:
            return _attempt(finding, goal, ask, turn_scores, reply.error)
        conversation = [*ask, reply.message]
        turn_scores.append(scores)
    return _attempt(finding, goal, conversation, turn_scores)


def _attempt(finding: Finding, goal: Goal, conversation, turn_scores, error: str | None = None) -> Attempt:
    worst = [s for s in (severity(t) for t in turn_scores) if s is not None]
    return Attempt(id=goal.id, seed_id=finding.seed_id, category=finding.category, goal=finding.goal,
                   attack=finding.attack, chain=finding.chain, conversation=conversation, turn_scores=turn_scores,
                   status="errored" if error else "completed", error=error,
                   severity=max(worst) if worst and not error else None, params={"replay_of": finding.id})


def replay(findings: Sequence[Finding], env: Env) -> list[Replayed]:
    goals = [Goal(id=f"replay-{f.id}", payload=f.goal, chain=f.chain,
                  seed=Seed(id=f.seed_id, kind="harmful", text=f.goal, category=f.category, source="finding",
                            source_id=f.id, licence="-")) for f in findings]
    attempts = drive([(g, _plan(f, g)) for f, g in zip(findings, goals)], env)
    return [Replayed(finding=f, attempt=a) for f, a in zip(findings, attempts)]
