"""Errors a user can act on.

Anything raised as a `BreakfixError` is printed by the CLI as one line, without a traceback
(unless `--debug`). Everything else is a bug and keeps its traceback under `--debug`.
"""


class BreakfixError(Exception):
    """A problem with the user's input, environment or a remote service, stated in one line."""


class InputError(BreakfixError):
    """A malformed file or argument; the message names the file and line where there is one."""


class AssetError(BreakfixError):
    """A pinned asset is missing, corrupt or could not be fetched."""


class TargetError(BreakfixError):
    """A model could not be loaded or an endpoint refused us for good (bad key, unknown model)."""
