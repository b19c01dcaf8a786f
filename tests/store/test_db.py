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
from breakfix.store.owner import this_process
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


HOLDER = textwrap.dedent("""
    import sys, time
    from breakfix.store import Store
    db = Store(sys.argv[1])
    print(db.create_run("generate", model="m", config={"n": 1}), flush=True)
    time.sleep(60)
""")


def test_a_run_whose_process_was_killed_reads_failed_and_one_still_running_is_left_alone(tmp_path):
    path, holders, runs = tmp_path / "s.db", [], []
    try:
        for _ in range(2):  # one after the other: the second run is the newer
            holders.append(subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True))
            runs.append(holders[-1].stdout.readline().strip())
        killed, live = runs
        holders[0].kill()
        holders[0].wait()
        with Store(path) as db:
            gone, running = db.run(killed), db.run(live)
            assert gone.status == "failed" and not gone.busy
            assert gone.error.startswith("stopped without finishing: its process (pid ")
            assert gone.error.endswith("; the same command resumes it")
            assert running.status == "running" and running.busy
            # a rerun of the same command resumes the killed run, never the one another process is running
            assert db.unfinished_run("generate", model="m", config={"n": 1}) == killed
            assert not db.resume_run(live) and db.run(live).owner == running.owner
    finally:
        for holder in holders:
            holder.kill()
            holder.wait()
    with Store(path) as db:
        assert [r.status for r in db.runs()] == ["failed", "failed"]
        assert db.unfinished_run("generate", model="m", config={"n": 1}) == live  # the newest
        assert db.resume_run(live) and db.run(live).status == "running" and not db.run(live).busy


def test_runs_of_this_process_of_another_machine_or_of_no_known_owner_are_left_running(store):
    mine, elsewhere, unknown = (store.create_run("eval") for _ in range(3))
    store.conn.execute("UPDATE runs SET owner = 'another-host:a.1:1:1' WHERE id = ?", (elsewhere,))
    store.conn.execute("UPDATE runs SET owner = NULL WHERE id = ?", (unknown,))  # written before owners were
    store._settle()
    assert [r.status for r in store.runs()] == ["running"] * 3 and not any(r.busy for r in store.runs())


def test_a_stopped_loop_stops_the_phase_it_was_in_and_a_killed_one_says_how_to_go_on(tmp_path, monkeypatch):
    from breakfix.store import db as module

    with Store(tmp_path / "s.db") as db:
        loop = db.create_run("cycle")
        db.begin_step(loop, 1, "redteam", kind="redteam", model="m")
        db.finish_run(loop, "failed", "interrupted")
        assert {r.id: (r.status, r.error) for r in db.runs()} == {
            loop: ("failed", "interrupted"), f"{loop}.r1.redteam": ("failed", "interrupted")}
        db.resume_run(loop)
        db.begin_step(loop, 1, "redteam", kind="redteam", model="m")
    real = module.alive
    monkeypatch.setattr(module, "alive", lambda owner: False if owner == this_process() else real(owner))  # as if killed
    with Store(tmp_path / "s.db") as db:
        errors = {r.id: r.error for r in db.runs()}
    assert errors[loop].startswith("stopped without finishing")
    assert all(e.endswith(f"; continue the loop with: breakfix run --resume {loop}") for e in errors.values())


def test_a_new_store_that_another_process_migrates_meanwhile_is_migrated_once(tmp_path, monkeypatch):
    path, real, raced = tmp_path / "s.db", Store.transaction, []

    def transaction(self):
        if not raced:  # another process opens the new store between our look at it and our first write
            raced.append(True)
            Store(path).close()
        return real(self)

    monkeypatch.setattr(Store, "transaction", transaction)
    with Store(path) as db:
        assert raced and db.schema_version == len(MIGRATIONS)


def test_a_store_that_cannot_be_brought_up_to_date_is_a_clear_error(tmp_path, monkeypatch):
    def read_only(self, name, sql):
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(Store, "_apply", read_only)  # as a read-only store of an older breakfix does
    with pytest.raises(InputError, match="cannot bring the store up to date .attempt to write a readonly database"):
        Store(tmp_path / "s.db")
