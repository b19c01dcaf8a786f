"""Shared fixtures. Real-model tests use the embedded SmolLM2 from the user cache (prepared by
`make test` through `breakfix assets`); nothing here reaches a model hub."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path, monkeypatch):
    """No test writes into ./breakfix-runs."""
    monkeypatch.setenv("BREAKFIX_STORE", str(tmp_path / "store" / "breakfix.db"))


@pytest.fixture
def store(tmp_path):
    from breakfix.store import Store

    with Store(tmp_path / "runs.db") as db:
        yield db


@pytest.fixture(scope="session")
def smol():
    """The real embedded model, loaded once per test session."""
    from breakfix.targets import load_target

    return load_target("smollm2-135m")


@pytest.fixture(scope="session")
def judges():
    """The offline refusal and harm judges (trained by `breakfix assets`), loaded once."""
    from breakfix.judges.joint import load_judges
    from breakfix.paths import home

    return load_judges(home())
