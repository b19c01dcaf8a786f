import json

import pytest

from breakfix.errors import InputError
from breakfix.files import atomic_writer, read_prompts, write_jsonl


def write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def test_reads_prompts_and_messages_and_keeps_extra_keys_as_meta(tmp_path):
    path = write(tmp_path / "p.jsonl", [
        json.dumps({"id": "a", "prompt": "hello", "category": "benign"}),
        "",
        json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"},
                                 {"role": "user", "content": "again"}]}),
    ])
    items = read_prompts(path)
    assert [i.id for i in items] == ["a", "3"]
    assert items[0].meta == {"category": "benign"}
    assert [m.role for m in items[1].conversation] == ["user", "assistant", "user"]


@pytest.mark.parametrize("line, message", [
    ('{"prompt": "ok"', "p.jsonl:2: not valid JSON"),
    ('["a list"]', "p.jsonl:2: expected a JSON object"),
    ('{"text": "no prompt key"}', "p.jsonl:2: needs a non-empty 'prompt'"),
    ('{"prompt": "   "}', "p.jsonl:2: needs a non-empty 'prompt'"),
    ('{"messages": [{"role": "robot", "content": "x"}]}', "p.jsonl:2: bad message"),
    ('{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}',
     "p.jsonl:2: the last message must come from the user"),
])
def test_bad_lines_name_file_and_line(tmp_path, line, message):
    path = write(tmp_path / "p.jsonl", ['{"prompt": "fine"}', line])
    with pytest.raises(InputError, match=message):
        read_prompts(path)


def test_duplicate_ids_empty_and_missing_files_are_errors(tmp_path):
    with pytest.raises(InputError, match="appears more than once"):
        read_prompts(write(tmp_path / "d.jsonl", ['{"id": 1, "prompt": "a"}', '{"id": "1", "prompt": "b"}']))
    with pytest.raises(InputError, match="no prompts"):
        read_prompts(write(tmp_path / "e.jsonl", [""]))
    with pytest.raises(InputError, match="missing.jsonl"):
        read_prompts(tmp_path / "missing.jsonl")


def test_txt_files_have_one_prompt_per_line(tmp_path):
    items = read_prompts(write(tmp_path / "p.txt", ["first", "", "second"]))
    assert [i.conversation[0].content for i in items] == ["first", "second"]


def test_atomic_writer_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "out.jsonl"
    write_jsonl(target, [{"a": 1}])
    with pytest.raises(RuntimeError):
        with atomic_writer(target) as handle:
            handle.write("partial")
            raise RuntimeError("killed")
    assert target.read_text() == '{"a": 1}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


# --- issue 15: links, devices, permissions, bad bytes, messages that name the path ---------------


def test_atomic_writer_writes_through_a_symlink_and_keeps_it(tmp_path):
    real = tmp_path / "real.jsonl"
    real.write_text("old\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    write_jsonl(link, [{"a": 1}])
    assert link.is_symlink()
    assert real.read_text() == '{"a": 1}\n'


def device(tmp_path, name, minor):
    """A private copy of /dev/null (minor 3) or /dev/full (minor 7): a test must never risk
    replacing the system's own."""
    import os

    path = tmp_path / name
    try:
        os.mknod(path, 0o666 | __import__("stat").S_IFCHR, os.makedev(1, minor))
    except PermissionError:
        pytest.skip("mknod needs root")
    return path


def test_atomic_writer_writes_a_device_in_place(tmp_path):
    import os
    import stat

    null = device(tmp_path, "null", 3)
    write_jsonl(null, [{"a": 1}])
    assert stat.S_ISCHR(os.stat(null).st_mode)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with open(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK), "rb", closefd=True) as reader:
        write_jsonl(fifo, [{"a": 1}])
        assert reader.read() == b'{"a": 1}\n'
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_new_files_follow_the_umask_and_old_files_keep_their_mode(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        write_jsonl(tmp_path / "new.jsonl", [{"a": 1}])
        kept = tmp_path / "kept.jsonl"
        kept.write_text("")
        kept.chmod(0o640)
        write_jsonl(kept, [{"a": 1}])
    finally:
        os.umask(old)
    assert (tmp_path / "new.jsonl").stat().st_mode & 0o777 == 0o644
    assert kept.stat().st_mode & 0o777 == 0o640


def test_a_directory_or_a_full_device_is_named_as_given(tmp_path):
    with pytest.raises(InputError, match=rf"^{tmp_path}: is a directory"):
        write_jsonl(tmp_path, [{"a": 1}])
    assert list(tmp_path.iterdir()) == []
    full = device(tmp_path, "full", 7)
    with pytest.raises(InputError, match=rf"^{full}: cannot write \(No space left"):
        write_jsonl(full, [{"a": 1} for _ in range(10_000)])
    assert [p.name for p in tmp_path.iterdir()] == ["full"]


def test_bytes_that_are_not_utf8_and_huge_lines_name_the_line(tmp_path, monkeypatch):
    import breakfix.files as files

    bad = tmp_path / "g.jsonl"
    bad.write_bytes(b'{"prompt": "fine"}\n{"prompt": "\xff\xfe"}\n')
    with pytest.raises(InputError, match="g.jsonl:2: not UTF-8"):
        read_prompts(bad)
    text = tmp_path / "g.txt"
    text.write_bytes(b"fine\n\x80oops\n")
    with pytest.raises(InputError, match="g.txt:2: not UTF-8"):
        read_prompts(text)
    monkeypatch.setattr(files, "MAX_LINE_BYTES", 100)
    write(tmp_path / "h.jsonl", ['{"prompt": "a"}', json.dumps({"prompt": "x" * 200})])
    with pytest.raises(InputError, match="h.jsonl:2: line longer"):
        read_prompts(tmp_path / "h.jsonl")


def test_a_duplicate_id_names_both_lines(tmp_path):
    path = write(tmp_path / "d.jsonl", ['{"id": "a", "prompt": "x"}', '{"id": "b", "prompt": "y"}',
                                        '{"id": "a", "prompt": "z"}'])
    with pytest.raises(InputError, match="d.jsonl:3: id 'a' appears more than once \\(first on line 1\\)"):
        read_prompts(path)
