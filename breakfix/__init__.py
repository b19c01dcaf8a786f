"""breakfix: iterative "break-fix" safety post-training for small chat models."""

__version__ = "0.1.0"
