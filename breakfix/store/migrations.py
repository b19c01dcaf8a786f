"""The store's schema, as forward-only numbered migrations. Never edit one that has shipped:
add the next. SQL stays portable (text ids made in Python, no AUTOINCREMENT, ISO timestamps as
text, JSON as text) so a shared server database can replace SQLite later.
"""

MIGRATIONS: list[tuple[str, str]] = [
    (
        "m001_initial",
        """
        CREATE TABLE configs (
            id TEXT PRIMARY KEY,            -- sha256 of the canonical JSON
            body TEXT NOT NULL
        );
        CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,             -- generate, demo, redteam, eval, cycle, ...
            status TEXT NOT NULL,           -- running, completed, failed
            model TEXT,
            config_id TEXT REFERENCES configs(id),
            created_at TEXT NOT NULL,
            finished_at TEXT,
            error TEXT
        );
        CREATE TABLE rounds (
            id TEXT PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(id),
            idx INTEGER NOT NULL,
            status TEXT NOT NULL,
            config_id TEXT REFERENCES configs(id),
            created_at TEXT NOT NULL,
            finished_at TEXT,
            UNIQUE (run_id, idx)
        );
        CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(id),
            round_id TEXT REFERENCES rounds(id),
            config_id TEXT REFERENCES configs(id),
            model TEXT NOT NULL,
            purpose TEXT NOT NULL,          -- what produced it: generate, attack, benchmark, ...
            item_id TEXT,                   -- the dataset item or attempt it answers
            meta TEXT,
            created_at TEXT NOT NULL
        );
        CREATE INDEX conversations_run ON conversations (run_id, round_id);
        CREATE TABLE messages (
            conversation_id TEXT NOT NULL REFERENCES conversations(id),
            idx INTEGER NOT NULL,
            role TEXT NOT NULL,
            content TEXT NOT NULL,
            meta TEXT,                      -- latency, token counts, finish reason, error
            PRIMARY KEY (conversation_id, idx)
        );
        CREATE TABLE scores (
            id TEXT PRIMARY KEY,
            conversation_id TEXT NOT NULL REFERENCES conversations(id),
            message_idx INTEGER,
            judge TEXT NOT NULL,
            judge_version TEXT NOT NULL,
            config_id TEXT REFERENCES configs(id),
            label TEXT,
            value REAL,
            unscoreable INTEGER NOT NULL DEFAULT 0,
            detail TEXT,
            created_at TEXT NOT NULL
        );
        CREATE INDEX scores_conversation ON scores (conversation_id);
        CREATE TABLE findings (
            id TEXT PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(id),
            round_id TEXT REFERENCES rounds(id),
            conversation_id TEXT NOT NULL REFERENCES conversations(id),
            category TEXT NOT NULL,
            technique TEXT NOT NULL,
            severity INTEGER NOT NULL,
            body TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE datasets (
            id TEXT PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(id),
            round_id TEXT REFERENCES rounds(id),
            kind TEXT NOT NULL,             -- sft, dpo, ...
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            n INTEGER NOT NULL,
            meta TEXT,
            created_at TEXT NOT NULL
        );
        CREATE TABLE checkpoints (
            id TEXT PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(id),
            round_id TEXT REFERENCES rounds(id),
            parent_id TEXT REFERENCES checkpoints(id),
            path TEXT NOT NULL,
            sha256 TEXT,
            meta TEXT,
            created_at TEXT NOT NULL
        );
        """,
    ),
    (
        "m002_cache",
        """
        CREATE TABLE cache (
            key TEXT PRIMARY KEY,           -- sha256 of what produced it (model, input, config)
            kind TEXT NOT NULL,             -- reply, score, ...
            value TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        """,
    ),
    (
        "m003_steps",
        """
        CREATE TABLE steps (
            run_id TEXT NOT NULL REFERENCES runs(id),   -- the loop's run
            round INTEGER NOT NULL,                      -- 0 is the base measurement
            phase TEXT NOT NULL,                         -- eval, redteam, curate, train, decide
            status TEXT NOT NULL,                        -- running, completed
            child_run_id TEXT REFERENCES runs(id),       -- the run holding the phase's records
            output TEXT,                                 -- JSON: what later phases and the report need
            tries INTEGER NOT NULL DEFAULT 1,            -- how often it was started (resumes)
            started_at TEXT NOT NULL,
            finished_at TEXT,
            PRIMARY KEY (run_id, round, phase)
        );
        """,
    ),
    (
        "m004_run_owner",
        """
        ALTER TABLE runs ADD COLUMN owner TEXT;          -- the process running it (see store/owner.py)
        """,
    ),
]
