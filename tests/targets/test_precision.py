"""The dtype probe: its decision on fake timings, its cache per machine, and the override."""

import json

import pytest

from breakfix.errors import TargetError
from breakfix.targets import precision
from breakfix.targets.precision import Probe, decide, resolve_dtype


@pytest.mark.parametrize(("fp32", "bf16", "expected"), [
    ({"decode": 200, "square": 390}, {"decode": 456, "square": 2131}, "bfloat16"),  # AMX Xeon (issue 14)
    ({"decode": 100, "square": 110}, {"decode": 350, "square": 500}, "bfloat16"),  # AVX-512 BF16 EPYC
    ({"decode": 126, "square": 126}, {"decode": 40, "square": 60}, "float32"),     # no bf16 hardware: emulated
    ({"decode": 100, "square": 100}, {"decode": 140, "square": 400}, "float32"),   # decode gain too small
    ({"decode": 100, "square": 100}, {"decode": 150, "square": 150}, "bfloat16"),  # exactly 1.5x counts
    ({}, {}, "float32"),
])
def test_bf16_only_when_clearly_faster_on_every_shape(fp32, bf16, expected):
    assert decide(fp32, bf16) == expected


def _fake_measure(calls, dtype="bfloat16"):
    def measure(threads=1):
        calls.append(threads)
        return Probe(machine=precision.machine_key(), fp32_gflops={"decode": 1.0}, bf16_gflops={"decode": 2.0}, dtype=dtype)
    return measure


def test_the_probe_runs_once_per_machine_and_is_cached(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(precision, "measure", _fake_measure(calls))
    cache = tmp_path / "probe.json"
    assert precision.probe(cache).dtype == "bfloat16"
    assert precision.probe(cache).dtype == "bfloat16"
    assert len(calls) == 1 and precision.machine_key() in json.loads(cache.read_text())


def test_another_machine_in_the_cache_does_not_count(tmp_path, monkeypatch):
    calls = []
    cache = tmp_path / "probe.json"
    other = Probe(machine="elsewhere", fp32_gflops={"decode": 1.0}, bf16_gflops={"decode": 9.0}, dtype="bfloat16")
    cache.write_text(json.dumps({"elsewhere": other.model_dump()}))
    monkeypatch.setattr(precision, "measure", _fake_measure(calls, "float32"))
    assert precision.probe(cache).dtype == "float32" and len(calls) == 1
    assert set(json.loads(cache.read_text())) == {"elsewhere", precision.machine_key()}


def test_an_explicit_dtype_or_the_env_var_overrides_the_probe(tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "measure", lambda threads=1: pytest.fail("the probe ran"))
    assert resolve_dtype("float32")[0] == "float32"
    assert resolve_dtype("bf16")[0] == "bfloat16"
    monkeypatch.setenv("BREAKFIX_DTYPE", "fp32")
    assert resolve_dtype(None)[0] == "float32"
    assert resolve_dtype("auto", device="cuda")[0] == "bfloat16"
    with pytest.raises(TargetError, match="float16"):
        resolve_dtype("float16")


def test_auto_uses_the_probe_on_cpu(tmp_path, monkeypatch):
    monkeypatch.delenv("BREAKFIX_DTYPE", raising=False)
    monkeypatch.setattr(precision, "measure", _fake_measure([], "float32"))
    dtype, why = resolve_dtype("auto", cache=tmp_path / "p.json")
    assert dtype == "float32" and why.startswith("auto")


def test_the_real_probe_measures_both_dtypes_quickly():
    found = precision.measure()
    assert found.dtype in ("float32", "bfloat16")
    assert all(g > 0 for g in (*found.fp32_gflops.values(), *found.bf16_gflops.values()))
