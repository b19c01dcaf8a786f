"""Where breakfix keeps things on disk.

- the asset cache (`BREAKFIX_HOME`, default the user cache dir, e.g. `~/.cache/breakfix`):
  pinned wheels, extracted data, the converted embedded model. Safe to delete; it is rebuilt.
- the run store (`BREAKFIX_STORE`, default `./breakfix-runs/breakfix.db`): results a user keeps,
  next to the work like MLflow's `mlruns/`, so a report can sit beside it.
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    env = os.environ.get("BREAKFIX_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("breakfix", appauthor=False))


def default_store() -> Path:
    env = os.environ.get("BREAKFIX_STORE")
    return Path(env).expanduser() if env else Path("breakfix-runs") / "breakfix.db"
