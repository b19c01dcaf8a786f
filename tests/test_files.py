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
