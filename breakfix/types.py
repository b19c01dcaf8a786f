"""Shared types: everything that crosses a module boundary is one of these.

Records that are persisted carry `SCHEMA_VERSION` in the store's migrations, not per object.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["system", "user", "assistant"]


class Message(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: Role
    content: str


Conversation = list[Message]
"""A chat so far, oldest first. A target answers the last user turn."""


def user(text: str) -> Conversation:
    """A one-turn conversation: the common case for single-turn prompts."""
    return [Message(role="user", content=text)]


class GenerationConfig(BaseModel):
    """How a target decodes. `temperature == 0` means greedy decoding."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_new_tokens: int = Field(256, ge=1, description="Upper bound on tokens in each reply.")
    temperature: float = Field(0.0, ge=0.0, description="0 is greedy; above 0 samples.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling mass when sampling.")
    seed: int = Field(0, description="Seed for sampling, so a sampled run can be repeated.")
    stop: tuple[str, ...] = Field((), description="Strings that end a reply (not included).")
    system_prompt: str | None = Field(
        None, description="Used when a conversation has no system message of its own."
    )

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


# "blocked": a provider's content filter withheld the reply (the platform refused, not the model).
FinishReason = Literal["stop", "length", "error", "blocked"]


class Reply(BaseModel):
    """A target's answer to one conversation.

    A reply with `error` set has no usable content: callers record it as errored, never as a
    refusal or as safe.
    """

    content: str = ""
    finish_reason: FinishReason = "stop"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def message(self) -> Message:
        return Message(role="assistant", content=self.content)


Split = Literal["fix", "dev", "eval"]
SeedKind = Literal["harmful", "benign", "instruction", "template", "continuation", "capability"]
TEMPLATE_SLOT = "{{ prompt }}"


class Seed(BaseModel):
    """One item of safety data, with its provenance.

    - `harmful`: a request a safe model refuses; `benign`: a safe request that looks risky (its
      look-alike harm category in `resembles`); `instruction`: a plain helpful request;
    - `template`: a jailbreak wrapper whose text holds `TEMPLATE_SLOT` where a request goes;
    - `continuation`: a text to be continued (toxic-continuation prompts);
    - `capability`: a judge-free knowledge item, `choices[answer]` being the right one.

    `family` groups items that must share a split (a behaviour and its rephrasings, a contrast
    pair, copies of one template); `split` is `fix` (may be trained on), `dev` or `eval`.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    kind: SeedKind
    text: str
    conversation: Conversation | None = None
    category: str | None = None
    resembles: str | None = None
    source: str
    source_id: str
    licence: str
    labels: tuple[str, ...] = ()
    family: str = ""
    split: Split | None = None
    tags: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    answer: int | None = None
    meta: dict[str, str] = Field(default_factory=dict)

    def as_conversation(self) -> Conversation:
        return list(self.conversation) if self.conversation else user(self.text)


class LabelledResponse(BaseModel):
    """A model response with human labels, for measuring and training judges (never attacks).

    `harm` is a 0-1 human harm score (the mean where several raters scored it);
    `refused` is a human refusal label.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    prompt: str
    response: str
    source: str
    licence: str
    category: str | None = None
    harm: float | None = None
    refused: bool | None = None
    family: str = ""
    split: Split | None = None


ScoreKind = Literal["refusal", "harm", "ungroundedness"]
# Words under which a user turn ("go", "Continue.", "Do it now.") cannot say by itself what was asked.
TERSE = 5


class JudgeInput(BaseModel):
    """What a judge looks at: the conversation up to the reply, the reply, and optionally the
    context an answer must be grounded in and the converters that encoded the request."""

    model_config = ConfigDict(frozen=True)

    conversation: Conversation
    response: str
    context: str | None = None
    category: str | None = None
    encodings: tuple[str, ...] = ()
    goal: str | None = None  # what an attack was after, in plain words, when the turn hides it
    blocked: bool = False  # a content filter withheld the reply: nothing of the model's to judge

    @property
    def request(self) -> str:
        """The last user turn: what the reply answers."""
        return next((m.content for m in reversed(self.conversation) if m.role == "user"), "")

    @property
    def subject(self) -> str:
        """What the reply should be judged against: an attack's goal, else the last user turn."""
        return self.goal or self.request

    @property
    def said(self) -> str | None:
        """Where there is no goal and the last user turn is too terse to say what was asked ("go",
        "Continue.") after a system prompt or earlier turns: the system prompt and user turns
        joined, which may say it. None otherwise."""
        if self.goal or len(self.request.split()) >= TERSE or len(self.conversation) < 2:
            return None
        return "\n".join(m.content for m in self.conversation if m.role in ("system", "user"))


class Score(BaseModel):
    """One judge's verdict on one reply. `unscoreable` verdicts carry a reason and no value:
    they are counted as unscoreable, never as safe."""

    model_config = ConfigDict(frozen=True)

    kind: ScoreKind
    judge: str
    judge_version: str
    label: str | None = None       # refusal label, or the harm band
    value: float | None = None     # severity 0-7, ungroundedness 0-4, or P(any refusal)
    confidence: float | None = None
    category: str | None = None
    reason: str = ""
    unscoreable: bool = False
    flags: tuple[str, ...] = ()
    config: dict[str, str] = Field(default_factory=dict)


def severity_band(severity: float) -> str:
    """Azure content-safety bands: 0-1 very low, 2-3 low, 4-5 medium, 6-7 high."""
    return ("very_low", "low", "medium", "high")[min(3, int(round(severity)) // 2)]


class Attempt(BaseModel):
    """One attack on one harmful request: the conversation it produced and every turn's scores."""

    id: str
    seed_id: str
    category: str
    goal: str
    attack: str
    chain: tuple[str, ...] = ()
    conversation: Conversation = Field(default_factory=list)
    turn_scores: list[list[Score]] = Field(default_factory=list)  # per assistant turn: [refusal, harm]
    status: Literal["completed", "errored"] = "completed"
    error: str | None = None
    severity: float | None = None  # the worst harm over the turns
    params: dict[str, str] = Field(default_factory=dict)
    history: list[dict[str, str]] = Field(default_factory=list)

    @property
    def technique(self) -> str:
        return "+".join((self.attack, *self.chain))

    def succeeded(self, threshold: float) -> bool:
        return self.status == "completed" and self.severity is not None and self.severity >= threshold


class Finding(BaseModel):
    """A successful attack, complete enough to reproduce, replay and curate fix data from."""

    id: str
    seed_id: str
    category: str
    goal: str
    attack: str
    chain: tuple[str, ...] = ()
    technique: str
    conversation: Conversation
    severity: float
    refusal: str | None = None
    judge: str
    judge_version: str
    persona: str | None = None
    campaign_seed: int | None = None
    run_id: str | None = None
    params: dict[str, str] = Field(default_factory=dict)
