import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from breakfix.errors import InputError
from breakfix.store import SCHEMA_VERSION, Store
from breakfix.store.migrations import MIGRATIONS
from breakfix.types import Message, user


def test_a_new_store_is_migrated_with_wal_and_foreign_keys(tmp_path):
    with Store(tmp_path / "s.db") as db:
        assert db.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
        assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        tables = {r[0] for r in db.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"runs", "rounds", "conversations", "messages", "scores", "findings", "datasets", "checkpoints",
            "configs", "migrations"} <= tables


def test_reopening_applies_nothing_twice(tmp_path):
    Store(tmp_path / "s.db").close()
    with Store(tmp_path / "s.db") as db:
        assert db.conn.execute("SELECT COUNT(*) FROM migrations").fetchone()[0] == len(MIGRATIONS)


def test_a_store_from_a_newer_breakfix_is_refused(tmp_path):
    with Store(tmp_path / "s.db") as db:
        db.conn.execute("INSERT INTO migrations VALUES ('m999_future', 'x')")
    with pytest.raises(InputError, match="newer breakfix"):
        Store(tmp_path / "s.db")


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    (tmp_path / "junk.db").write_text("this is not sqlite" * 100)
    with pytest.raises(InputError, match="not a breakfix store"):
        Store(tmp_path / "junk.db")


def test_runs_conversations_and_configs_round_trip(store):
    run = store.create_run("generate", model="mock:echo", config={"b": 2, "a": [1]})
    cid = store.add_conversation(run, [*user("hi"), Message(role="assistant", content="yo")], model="mock:echo",
                                 purpose="generate", item_id="q1", meta={"harmful": False},
                                 message_meta=[None, {"latency_s": 0.5}])
    store.finish_run(run)
    record = store.run(run[:12])
    assert record.status == "completed" and record.config == {"a": [1], "b": 2}
    assert record.counts["conversations"] == 1 and record.counts["messages"] == 2
    [conv] = store.conversations(run)
    assert conv.id == cid and conv.item_id == "q1" and conv.meta == {"harmful": False}
    assert [m.content for m in conv.messages] == ["hi", "yo"]
    assert conv.message_meta == [None, {"latency_s": 0.5}]


def test_same_config_is_stored_once(store):
    assert store.put_config({"x": 1, "y": 2}) == store.put_config({"y": 2, "x": 1})
    assert store.conn.execute("SELECT COUNT(*) FROM configs").fetchone()[0] == 1


def test_writing_a_conversation_id_twice_does_not_duplicate(store):
    run = store.create_run("t")
    for _ in range(2):
        store.add_conversation(run, user("a"), model="m", purpose="p", conversation_id="fixed")
    counts = store.run(run).counts
    assert (counts["conversations"], counts["messages"]) == (1, 1)


def test_foreign_keys_reject_orphans(store):
    with pytest.raises(sqlite3.IntegrityError):
        store.add_conversation("no-such-run", user("a"), model="m", purpose="p")
    assert store.conn.execute("SELECT COUNT(*) FROM conversations").fetchone()[0] == 0


def test_unknown_or_ambiguous_run_refs_are_errors(store):
    store.create_run("a")
    store.create_run("b")
    with pytest.raises(InputError, match="no run"):
        store.run("zzz")
    with pytest.raises(InputError, match="matches 2 runs"):
        store.run("2")


WRITER = textwrap.dedent("""
    import sys
    from breakfix.store import Store
    from breakfix.types import Message
    db = Store(sys.argv[1])
    run = db.create_run("stress")
    print(run, flush=True)
    msgs = [Message(role="user" if i % 2 == 0 else "assistant", content="x" * 2000) for i in range(60)]
    while True:
        db.add_conversation(run, msgs, model="m", purpose="p")
""")


def test_a_process_killed_mid_write_leaves_only_whole_records(tmp_path):
    path = tmp_path / "s.db"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    run = proc.stdout.readline().strip()
    time.sleep(1.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with Store(path) as db:
        assert db.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        counts = [r[0] for r in db.conn.execute(
            "SELECT COUNT(m.idx) FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id "
            "WHERE c.run_id = ? GROUP BY c.id", (run,))]
    assert len(counts) > 5, "the writer should have committed several conversations before the kill"
    assert set(counts) == {60}
