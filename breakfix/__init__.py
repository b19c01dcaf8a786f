"""breakfix: iterative "break-fix" safety post-training for small chat models.

The Python API (see README, "Python API"): `load_target`, `evaluate`, `redteam`, `run_loop`.
"""

from breakfix.api import evaluate, load_target, redteam, run_loop

__version__ = "0.1.0"
__all__ = ["evaluate", "load_target", "redteam", "run_loop"]
