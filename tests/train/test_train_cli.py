import json
import os
import subprocess
import sys

from typer.testing import CliRunner

from breakfix.cli import app
from breakfix.store import Store
from tests.train.conftest import DPO_ROWS, SFT_ROWS

runner = CliRunner()


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def settings(tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text("train:\n  sft_epochs: 1\n  dpo_epochs: 1\n  batch_size: 8\n  max_length: 96\n")
    return config


def test_train_records_both_stages_with_their_lineage_and_resumes(tiny, tmp_path):
    sft, dpo = write(tmp_path / "sft.jsonl", SFT_ROWS), write(tmp_path / "dpo.jsonl", DPO_ROWS)
    store, out = tmp_path / "s.db", tmp_path / "ckpt"
    args = ["train", "--base", str(tiny), "--sft", str(sft), "--dpo", str(dpo), "--out", str(out),
            "--config", str(settings(tmp_path)), "--store", str(store)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    with Store(store) as db:
        [run] = db.runs()
        sft_entry, dpo_entry = db.checkpoints(run.id)
    assert sft_entry["meta"]["stage"] == "sft" and dpo_entry["parent_id"] == sft_entry["id"]
    assert dpo_entry["meta"]["base"] == str(out / "sft" / "model")
    assert sft_entry["meta"]["data_sha256"] and sft_entry["sha256"] and len(sft_entry["meta"]["losses"]) == 2
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "sft: already complete" in again.output and "dpo: already complete" in again.output


def test_train_records_blends_and_scaled_updates_as_children_of_both_stages(tiny, tmp_path):
    sft, dpo = write(tmp_path / "sft.jsonl", SFT_ROWS), write(tmp_path / "dpo.jsonl", DPO_ROWS)
    config = settings(tmp_path)
    config.write_text(config.read_text() + "  blends: [0.5]\n  scales: [0.5]\n")
    store, out = tmp_path / "s.db", tmp_path / "ckpt"
    result = runner.invoke(app, ["train", "--base", str(tiny), "--sft", str(sft), "--dpo", str(dpo), "--out", str(out),
                                 "--config", str(config), "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert "blend@0.5" in result.output and "scaled@0.5" in result.output
    with Store(store) as db:
        [run] = db.runs()
        sft_entry, dpo_entry, blend, scaled = db.checkpoints(run.id)
    assert blend["meta"]["stage"] == "blend" and blend["path"] == str(out / "blend-0.5")
    assert scaled["meta"]["stage"] == "scaled" and scaled["path"] == str(out / "scaled-0.5")
    for entry in (blend, scaled):
        assert entry["parent_id"] == sft_entry["id"] and entry["meta"]["ends"] == {"sft": sft_entry["id"], "dpo": dpo_entry["id"]}


def test_without_dpo_pairs_dpo_is_skipped(tiny, tmp_path):
    empty = tmp_path / "dpo.jsonl"
    empty.write_text("")
    result = runner.invoke(app, ["train", "--base", str(tiny), "--sft", str(write(tmp_path / "s.jsonl", SFT_ROWS)),
                                 "--dpo", str(empty), "--out", str(tmp_path / "o"), "--config", str(settings(tmp_path)),
                                 "--store", str(tmp_path / "s.db")])
    assert result.exit_code == 0 and "skipping DPO" in result.output


def test_bad_training_data_names_the_line(tiny, tmp_path):
    bad = tmp_path / "sft.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "x"}]}\n{"prompt": "no messages"}\n')
    result = runner.invoke(app, ["train", "--base", str(tiny), "--sft", str(bad), "--out", str(tmp_path / "o"),
                                 "--store", str(tmp_path / "s.db")])
    assert result.exit_code == 1 and "sft.jsonl:2: a sft example needs messages" in result.output
    remote = runner.invoke(app, ["train", "--base", "openai:gpt@http://x/v1", "--sft", str(bad), "--out", str(tmp_path / "o")])
    assert remote.exit_code == 1 and "needs a local model directory" in remote.output


def test_two_cpu_processes_under_accelerate(tiny, tmp_path):
    sft = write(tmp_path / "sft.jsonl", SFT_ROWS)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # On a machine without GPUs, accelerate's multi-process launcher is selected with --multi_gpu; the
    # processes find no CUDA and train on the CPU with the gloo backend.
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "breakfix", "train", "--base", str(tiny),
               "--sft", str(sft), "--out", str(tmp_path / "o"), "--config", str(settings(tmp_path)),
               "--store", str(tmp_path / "s.db")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    with Store(tmp_path / "s.db") as db:
        [run] = db.runs()  # one record, from the main process only
        [entry] = db.checkpoints(run.id)
    manifest = json.loads((tmp_path / "o" / "sft" / "model" / "breakfix-checkpoint.json").read_text())
    assert manifest["steps"] == 1 and entry["sha256"] == manifest["weights_sha256"]  # 16 examples, 8 per process


def test_train_with_probes_alone_trains_dpo_on_the_sft_models_own_mistakes(tiny, tmp_path):
    helpful = {"role": "assistant", "content": "Keep the gate shut and stay within arm's reach of small swimmers."}
    probes = [{"kind": "benign", "prompt": [{"role": "user", "content": f"How do I keep {n} kids safe at the pool?"}],
               "chosen": [helpful], "category": "child_safety"} for n in range(2, 10)]
    sft, probe_file = write(tmp_path / "sft.jsonl", SFT_ROWS), write(tmp_path / "probes.jsonl", probes)
    store, out = tmp_path / "s.db", tmp_path / "ckpt"
    args = ["train", "--base", str(tiny), "--sft", str(sft), "--probes", str(probe_file), "--probe-tokens", "12",
            "--out", str(out), "--config", str(settings(tmp_path)), "--store", str(store)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    with Store(store) as db:
        [run] = db.runs()
        sft_entry, dpo_entry = db.checkpoints(run.id)  # a random tiny model answers nothing: every probe is a pair
    on_policy = dpo_entry["meta"]["on_policy"]
    assert on_policy["counts"]["benign"] == 8 and on_policy["counts"].get("benign_refused", 0) >= 1
    assert dpo_entry["meta"]["data"] is None and run.config["probes"] == str(probe_file)
    rows = json.loads(open(on_policy["path"]).read())["pairs"]
    assert rows and all(r["chosen"] == [helpful] and r["source"] == "on_policy:benign" for r in rows)
    again = runner.invoke(app, args)  # read back, not asked again
    assert again.exit_code == 0 and "dpo: already complete" in again.output


def test_a_malformed_probe_names_its_file_and_line_before_anything_trains(tiny, tmp_path):
    probes = write(tmp_path / "probes.jsonl", [{"kind": "benign", "prompt": [{"role": "user", "content": "Hi"}],
                                                "chosen": [{"role": "assistant", "content": "Hello!"}]},
                                               {"kind": "weird", "prompt": [], "chosen": []}])
    sft = write(tmp_path / "sft.jsonl", SFT_ROWS)
    result = runner.invoke(app, ["train", "--base", str(tiny), "--sft", str(sft), "--probes", str(probes),
                                 "--out", str(tmp_path / "ckpt"), "--store", str(tmp_path / "s.db")])
    assert result.exit_code != 0 and f"{probes}:2: not a probe (kind" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "ckpt").exists()
