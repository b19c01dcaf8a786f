"""The run store: one SQLite file (WAL, foreign keys on) holding every run's records.

Every write that makes one record (a conversation and its messages, a score, a finding) is one
transaction, so a process killed mid-write leaves either the whole record or none of it.
Connections are opened per `Store` and passed explicitly; nothing here is process-global.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from breakfix.errors import InputError
from breakfix.store.migrations import MIGRATIONS
from breakfix.store.owner import alive, describe, this_process
from breakfix.types import Finding, Message, Score

SCHEMA_VERSION = len(MIGRATIONS)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def new_id() -> str:
    return uuid.uuid4().hex


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def config_key(config: dict[str, Any]) -> str:
    """A config's id: the sha256 of its canonical JSON, so equal configs share one row."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()


class RunRecord(BaseModel):
    id: str
    kind: str
    status: str
    model: str | None
    config: dict[str, Any] | None
    created_at: str
    finished_at: str | None
    error: str | None
    owner: str | None = None
    counts: dict[str, int] = {}

    @property
    def busy(self) -> bool:
        """Running in another live process of this machine: not to be resumed or written to."""
        return _busy(self.status, self.owner)


def _busy(status: str, owner: str | None) -> bool:
    return status == "running" and owner != this_process() and alive(owner) is True


def _ended(run_id: str, kind: str, owner: str) -> str:
    """Why a run is failed whose process is gone, and how to go on."""
    parent, _, _ = run_id.partition(".")
    then = (f"; continue the loop with: breakfix run --resume {parent}" if parent != run_id or kind == "cycle"
            else "; the same command resumes it" if kind == "generate" else "")
    return f"stopped without finishing: its process ({describe(owner)}) ended (killed or crashed){then}"


class StepRecord(BaseModel):
    run_id: str
    round: int
    phase: str
    status: str
    child_run_id: str | None
    output: dict[str, Any] | None
    tries: int
    started_at: str
    finished_at: str | None


def _step(row: sqlite3.Row) -> StepRecord:
    return StepRecord(**{**dict(row), "output": json.loads(row["output"]) if row["output"] else None})


class ConversationRecord(BaseModel):
    id: str
    run_id: str
    round_id: str | None
    model: str
    purpose: str
    item_id: str | None
    meta: dict[str, Any]
    messages: list[Message]
    message_meta: list[dict[str, Any] | None]


class Store:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            self.conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:  # read-only, full, locked: the file may be fine
            raise InputError(f"{self.path}: cannot open the store ({exc})") from None
        except sqlite3.DatabaseError as exc:
            raise InputError(f"{self.path}: not a breakfix store ({exc})") from None
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.execute("PRAGMA busy_timeout=30000")
        self.conn.row_factory = sqlite3.Row
        self._migrate()
        self._settle()

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All or nothing; `BEGIN IMMEDIATE` so two writers queue instead of deadlocking."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # --- schema ---------------------------------------------------------------------------------

    def _migrate(self) -> None:
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        applied = {r[0] for r in self.conn.execute("SELECT name FROM migrations")}
        known = {name for name, _ in MIGRATIONS}
        if applied - known:
            raise InputError(f"{self.path} was written by a newer breakfix (unknown migrations "
                             f"{sorted(applied - known)}); upgrade breakfix to read it")
        for name, sql in MIGRATIONS:
            if name in applied:
                continue
            try:
                self._apply(name, sql)
            except sqlite3.OperationalError as exc:  # a read-only store of an older breakfix
                raise InputError(f"{self.path}: cannot bring the store up to date ({exc})") from None

    def _apply(self, name: str, sql: str) -> None:
        with self.transaction() as tx:
            # another process opening the same new store may have applied it since we looked
            if tx.execute("SELECT 1 FROM migrations WHERE name = ?", (name,)).fetchone():
                return
            for statement in _statements(sql):
                tx.execute(statement)
            tx.execute("INSERT INTO migrations (name, applied_at) VALUES (?, ?)", (name, now()))

    @property
    def schema_version(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM migrations").fetchone()[0]

    def _settle(self) -> None:
        """Runs left "running" by a process that ended without saying so (`kill -9`, a crash, the
        OOM killer) read failed, so no run stays "running" for ever."""
        rows = self.conn.execute("SELECT id, kind, owner FROM runs WHERE status = 'running' AND owner IS NOT NULL")
        ended = [row for row in rows.fetchall() if alive(row["owner"]) is False]
        if not ended:
            return
        try:
            with self.transaction() as tx:
                for row in ended:
                    tx.execute("UPDATE runs SET status = 'failed', finished_at = ?, error = ? "
                               "WHERE id = ? AND status = 'running' AND owner = ?",
                               (now(), _ended(row["id"], row["kind"], row["owner"]), row["id"], row["owner"]))
        except sqlite3.OperationalError:  # a read-only store is shown as it is
            pass

    # --- configs and runs -----------------------------------------------------------------------

    def put_config(self, config: dict[str, Any]) -> str:
        body = canonical_json(config)
        config_id = config_key(config)
        with self.transaction() as tx:
            tx.execute("INSERT INTO configs (id, body) VALUES (?, ?) ON CONFLICT (id) DO NOTHING",
                       (config_id, body))
        return config_id

    def config(self, config_id: str) -> dict[str, Any]:
        row = self.conn.execute("SELECT body FROM configs WHERE id = ?", (config_id,)).fetchone()
        return json.loads(row[0])

    def create_run(self, kind: str, *, model: str | None = None, config: dict[str, Any] | None = None) -> str:
        config_id = self.put_config(config) if config is not None else None
        run_id = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
        with self.transaction() as tx:
            tx.execute(
                "INSERT INTO runs (id, kind, status, model, config_id, created_at, owner) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, kind, "running", model, config_id, now(), this_process()),
            )
        return run_id

    def unfinished_run(self, kind: str, *, model: str | None, config: dict[str, Any]) -> str | None:
        """The newest run of this kind, model and exact config that did not complete (killed,
        failed, interrupted): what a rerun of the same command resumes. One that another process
        of this machine is running now is not."""
        rows = self.conn.execute(
            "SELECT id, status, owner FROM runs WHERE kind = ? AND model IS ? AND config_id = ? "
            "AND status != 'completed' ORDER BY created_at DESC", (kind, model, config_key(config))).fetchall()
        return next((row["id"] for row in rows if not _busy(row["status"], row["owner"])), None)

    # --- the loop's steps ----------------------------------------------------------------------

    def begin_step(self, run_id: str, round_idx: int, phase: str, *, kind: str, model: str | None,
                   config: dict[str, Any] | None = None) -> StepRecord:
        """Start (or restart, after a kill) one phase of a loop. Its records go to a child run whose
        id is made from the step, so a restarted phase writes into the same run and its
        content-derived record ids make anything already written a no-op."""
        child = f"{run_id}.r{round_idx}.{phase}"
        config_id = self.put_config(config) if config is not None else None
        with self.transaction() as tx:
            tx.execute("INSERT INTO runs (id, kind, status, model, config_id, created_at, owner) "
                       "VALUES (?, ?, 'running', ?, ?, ?, ?) "
                       "ON CONFLICT (id) DO UPDATE SET status = 'running', error = NULL, owner = excluded.owner",
                       (child, kind, model, config_id, now(), this_process()))
            tx.execute("INSERT INTO steps (run_id, round, phase, status, child_run_id, started_at) "
                       "VALUES (?, ?, ?, 'running', ?, ?) "
                       "ON CONFLICT (run_id, round, phase) DO UPDATE SET status = 'running', tries = tries + 1",
                       (run_id, round_idx, phase, child, now()))
        return self.step(run_id, round_idx, phase)

    def finish_step(self, run_id: str, round_idx: int, phase: str, output: dict[str, Any]) -> None:
        """Mark a phase done with what later phases need, and close its child run, at once."""
        with self.transaction() as tx:
            tx.execute("UPDATE steps SET status = 'completed', output = ?, finished_at = ? "
                       "WHERE run_id = ? AND round = ? AND phase = ?",
                       (canonical_json(output), now(), run_id, round_idx, phase))
            tx.execute("UPDATE runs SET status = 'completed', finished_at = ? WHERE id = ?",
                       (now(), f"{run_id}.r{round_idx}.{phase}"))

    def step(self, run_id: str, round_idx: int, phase: str) -> StepRecord | None:
        row = self.conn.execute("SELECT * FROM steps WHERE run_id = ? AND round = ? AND phase = ?",
                                (run_id, round_idx, phase)).fetchone()
        return _step(row) if row else None

    def steps(self, run_id: str) -> list[StepRecord]:
        rows = self.conn.execute("SELECT * FROM steps WHERE run_id = ? ORDER BY round, started_at", (run_id,))
        return [_step(row) for row in rows.fetchall()]

    def resume_run(self, run_id: str, config: dict[str, Any] | None = None) -> bool:
        """Mark a stopped run running again, in this process (with its possibly extended config);
        False, and nothing changed, when another live process is running it now. The look and
        the claim are one transaction, so two processes never both resume one run."""
        config_id = self.put_config(config) if config is not None else None
        with self.transaction() as tx:
            row = tx.execute("SELECT status, owner FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None or _busy(row["status"], row["owner"]):
                return False
            tx.execute("UPDATE runs SET status = 'running', finished_at = NULL, error = NULL, owner = ?, "
                       "config_id = COALESCE(?, config_id) WHERE id = ?", (this_process(), config_id, run_id))
        return True

    def finish_run(self, run_id: str, status: str = "completed", error: str | None = None) -> None:
        """Close a run; a loop that stops also stops the phase it was in (its child run)."""
        with self.transaction() as tx:
            tx.execute("UPDATE runs SET status = ?, finished_at = ?, error = ? WHERE id = ?",
                       (status, now(), error, run_id))
            if status != "completed":
                tx.execute("UPDATE runs SET status = ?, finished_at = ?, error = ? "
                           "WHERE substr(id, 1, ?) = ? AND status = 'running'",
                           (status, now(), error, len(run_id) + 1, run_id + "."))

    def runs(self, limit: int = 50) -> list[RunRecord]:
        rows = self.conn.execute("SELECT * FROM runs ORDER BY created_at DESC LIMIT ?", (limit,))
        return [self._run(row) for row in rows.fetchall()]

    def run(self, ref: str) -> RunRecord:
        """A run by id or unique id prefix (as `git` takes commits); an exact id always wins
        (a loop's phases have ids that extend the loop's)."""
        rows = (self.conn.execute("SELECT * FROM runs WHERE id = ?", (ref,)).fetchall()
                or self.conn.execute("SELECT * FROM runs WHERE id LIKE ? ORDER BY created_at",
                                     (ref.replace("%", "") + "%",)).fetchall())
        if not rows:
            raise InputError(f"no run {ref!r} in {self.path}")
        roots = [r for r in rows if "." not in r["id"]]
        if len(rows) > 1 and len(roots) == 1 and all(r["id"].startswith(roots[0]["id"]) for r in rows):
            rows = roots  # a loop and its phases: the loop
        if len(rows) > 1:
            raise InputError(f"{ref!r} matches {len(rows)} runs: {', '.join(r['id'] for r in rows[:5])}")
        record = self._run(rows[0])
        for table in ("rounds", "conversations", "findings", "datasets", "checkpoints"):
            record.counts[table] = self.conn.execute(
                f"SELECT COUNT(*) FROM {table} WHERE run_id = ?", (record.id,)).fetchone()[0]
        record.counts["messages"] = self.conn.execute(
            "SELECT COUNT(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id "
            "WHERE c.run_id = ?", (record.id,)).fetchone()[0]
        record.counts["scores"] = self.conn.execute(
            "SELECT COUNT(*) FROM scores s JOIN conversations c ON c.id = s.conversation_id "
            "WHERE c.run_id = ?", (record.id,)).fetchone()[0]
        return record

    def _run(self, row: sqlite3.Row) -> RunRecord:
        config = self.config(row["config_id"]) if row["config_id"] else None
        return RunRecord(id=row["id"], kind=row["kind"], status=row["status"], model=row["model"],
                         config=config, created_at=row["created_at"], finished_at=row["finished_at"],
                         error=row["error"], owner=row["owner"])

    # --- conversations --------------------------------------------------------------------------

    def add_conversation(
        self,
        run_id: str,
        messages: Sequence[Message],
        *,
        model: str,
        purpose: str,
        round_id: str | None = None,
        config_id: str | None = None,
        item_id: str | None = None,
        meta: dict[str, Any] | None = None,
        message_meta: Sequence[dict[str, Any] | None] | None = None,
        conversation_id: str | None = None,
    ) -> str:
        """Store a whole conversation atomically. A given `conversation_id` makes it idempotent:
        writing the same id again is a no-op, so a resumed job cannot duplicate records."""
        cid = conversation_id or new_id()
        with self.transaction() as tx:
            _insert_conversation(tx, cid, run_id, messages, model=model, purpose=purpose, round_id=round_id,
                                 config_id=config_id, item_id=item_id, meta=meta, message_meta=message_meta)
        return cid

    def add_scores(self, conversation_id: str, message_idx: int | None, scores: Sequence[Score]) -> None:
        """Store a reply's scores in one transaction, each with its judge, version and config."""
        configs = self._score_configs(scores)
        with self.transaction() as tx:
            _insert_scores(tx, conversation_id, [(message_idx, s) for s in scores], configs)

    def add_attempt(self, run_id: str, conversation_id: str, messages: Sequence[Message],
                    turn_scores: Sequence[Sequence[Score]], *, model: str, purpose: str, item_id: str,
                    meta: dict[str, Any], round_id: str | None = None, finding: Finding | None = None) -> bool:
        """An attack attempt as one record: its conversation, every assistant turn's scores and its
        finding, all or nothing. Returns False when it was stored already (a resumed run)."""
        assistant = [i for i, m in enumerate(messages) if m.role == "assistant"]
        pairs = [(assistant[k], s) for k, turn in enumerate(turn_scores) for s in turn]
        configs = self._score_configs([s for _, s in pairs])
        with self.transaction() as tx:
            if not _insert_conversation(tx, conversation_id, run_id, messages, model=model, purpose=purpose,
                                        round_id=round_id, item_id=item_id, meta=meta):
                return False
            _insert_scores(tx, conversation_id, pairs, configs)
            if finding is not None:
                _insert_finding(tx, finding, conversation_id, round_id)
        return True

    def _score_configs(self, scores: Sequence[Score]) -> dict[str, str]:
        return {s.judge: self.put_config({"judge": s.judge, "version": s.judge_version, **s.config}) for s in scores}

    def findings(self, run_id: str) -> list[Finding]:
        rows = self.conn.execute("SELECT body FROM findings WHERE run_id = ? ORDER BY created_at, id", (run_id,))
        return [Finding.model_validate_json(row[0]) for row in rows.fetchall()]

    def add_dataset(self, run_id: str, kind: str, path: Path, sha256: str, n: int, meta: dict[str, Any] | None = None,
                    round_id: str | None = None) -> str:
        """One dataset of a run, keyed by (run, kind, path): writing it again updates it."""
        dataset_id = hashlib.sha256(f"{run_id}|{kind}|{path}".encode()).hexdigest()[:32]
        with self.transaction() as tx:
            tx.execute("INSERT INTO datasets (id, run_id, round_id, kind, path, sha256, n, meta, created_at) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET sha256 = excluded.sha256, "
                       "n = excluded.n, meta = excluded.meta",
                       (dataset_id, run_id, round_id, kind, str(path), sha256, n, canonical_json(meta or {}), now()))
        return dataset_id

    def add_checkpoint(self, run_id: str, path: Path, sha256: str, meta: dict[str, Any], parent_id: str | None = None,
                       round_id: str | None = None) -> str:
        """A model registry entry: where it is, what it came from (parent, data hashes), how it trained.
        Keyed by (run, path, weights), so recording it again is a no-op."""
        checkpoint_id = hashlib.sha256(f"{run_id}|{path}|{sha256}".encode()).hexdigest()[:32]
        with self.transaction() as tx:
            tx.execute("INSERT INTO checkpoints (id, run_id, round_id, parent_id, path, sha256, meta, created_at) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                       (checkpoint_id, run_id, round_id, parent_id, str(path), sha256, canonical_json(meta), now()))
        return checkpoint_id

    def checkpoints(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM checkpoints WHERE run_id = ? ORDER BY created_at", (run_id,)).fetchall()
        return [{**dict(row), "meta": json.loads(row["meta"] or "{}")} for row in rows]

    def dataset_path(self, run_id: str, kind: str) -> Path | None:
        row = self.conn.execute("SELECT path FROM datasets WHERE run_id = ? AND kind = ? ORDER BY created_at DESC LIMIT 1",
                                (run_id, kind)).fetchone()
        return Path(row[0]) if row else None

    def cached(self, keys: Sequence[str]) -> dict[str, str]:
        """Values already computed for these keys (replies, scores): a rerun reuses them."""
        found: dict[str, str] = {}
        for start in range(0, len(keys), 500):
            chunk = list(keys[start : start + 500])
            marks = ",".join("?" * len(chunk))
            found.update(self.conn.execute(f"SELECT key, value FROM cache WHERE key IN ({marks})", chunk).fetchall())
        return found

    def cache(self, kind: str, values: dict[str, str]) -> None:
        with self.transaction() as tx:
            tx.executemany("INSERT INTO cache (key, kind, value, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
                           [(k, kind, v, now()) for k, v in values.items()])

    def scores(self, run_id: str) -> list[ScoreRecord]:
        rows = self.conn.execute(
            "SELECT s.*, c.body AS config FROM scores s JOIN conversations v ON v.id = s.conversation_id "
            "LEFT JOIN configs c ON c.id = s.config_id WHERE v.run_id = ? ORDER BY s.created_at, s.id", (run_id,))
        records = []
        for row in rows.fetchall():
            detail = json.loads(row["detail"] or "{}")
            config = {k: str(v) for k, v in json.loads(row["config"] or "{}").items() if k not in ("judge", "version")}
            score = Score(kind=detail.get("kind", "harm"), judge=row["judge"], judge_version=row["judge_version"],
                          label=row["label"], value=row["value"], unscoreable=bool(row["unscoreable"]),
                          reason=detail.get("reason", ""), category=detail.get("category"),
                          confidence=detail.get("confidence"), flags=tuple(detail.get("flags", ())), config=config)
            records.append(ScoreRecord(conversation_id=row["conversation_id"], message_idx=row["message_idx"], score=score))
        return records

    def conversations(self, run_id: str, *, purpose: str | None = None, limit: int | None = None) -> list[ConversationRecord]:
        sql = "SELECT * FROM conversations WHERE run_id = ?"
        args: list[Any] = [run_id]
        if purpose:
            sql += " AND purpose = ?"
            args.append(purpose)
        sql += " ORDER BY created_at, id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        records = []
        for row in self.conn.execute(sql, args).fetchall():
            msgs = self.conn.execute(
                "SELECT role, content, meta FROM messages WHERE conversation_id = ? ORDER BY idx", (row["id"],)
            ).fetchall()
            records.append(ConversationRecord(
                id=row["id"], run_id=row["run_id"], round_id=row["round_id"], model=row["model"],
                purpose=row["purpose"], item_id=row["item_id"], meta=json.loads(row["meta"] or "{}"),
                messages=[Message(role=m["role"], content=m["content"]) for m in msgs],
                message_meta=[json.loads(m["meta"]) if m["meta"] else None for m in msgs],
            ))
        return records


class ScoreRecord(BaseModel):
    conversation_id: str
    message_idx: int | None
    score: Score


def _insert_conversation(tx: sqlite3.Connection, cid: str, run_id: str, messages: Sequence[Message], *, model: str,
                         purpose: str, round_id: str | None = None, config_id: str | None = None,
                         item_id: str | None = None, meta: dict[str, Any] | None = None,
                         message_meta: Sequence[dict[str, Any] | None] | None = None) -> bool:
    extra = list(message_meta or [])
    extra += [None] * (len(messages) - len(extra))
    inserted = tx.execute(
        "INSERT INTO conversations (id, run_id, round_id, config_id, model, purpose, item_id, meta, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        (cid, run_id, round_id, config_id, model, purpose, item_id, canonical_json(meta or {}), now()),
    ).rowcount
    if inserted:
        tx.executemany("INSERT INTO messages (conversation_id, idx, role, content, meta) VALUES (?, ?, ?, ?, ?)",
                       [(cid, i, m.role, m.content, canonical_json(x) if x else None)
                        for i, (m, x) in enumerate(zip(messages, extra))])
    return bool(inserted)


def _insert_scores(tx: sqlite3.Connection, cid: str, scores: Sequence[tuple[int | None, Score]],
                   configs: dict[str, str]) -> None:
    tx.executemany(
        "INSERT INTO scores (id, conversation_id, message_idx, judge, judge_version, config_id, label, value, "
        "unscoreable, detail, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(new_id(), cid, idx, s.judge, s.judge_version, configs[s.judge], s.label, s.value, int(s.unscoreable),
          _score_detail(s), now()) for idx, s in scores],
    )


def _insert_finding(tx: sqlite3.Connection, finding: Finding, cid: str, round_id: str | None) -> bool:
    return bool(tx.execute(
        "INSERT INTO findings (id, run_id, round_id, conversation_id, category, technique, severity, body, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        (finding.id, finding.run_id, round_id, cid, finding.category, finding.technique, int(round(finding.severity)),
         finding.model_dump_json(), now()),
    ).rowcount)


def _score_detail(score: Score) -> str:
    return canonical_json({"kind": score.kind, "reason": score.reason, "category": score.category,
                           "confidence": score.confidence, "flags": list(score.flags)})


def _statements(script: str) -> list[str]:
    """Split a migration into statements; `executescript` would commit outside our transaction."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements
