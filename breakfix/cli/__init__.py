"""The `breakfix` command: a thin layer over the library, one module per subcommand.

Heavy libraries (torch, transformers) are imported inside the commands that need them, so
`breakfix --help` answers at once.
"""

from __future__ import annotations

import logging
import sqlite3

import click
import typer
from typer.core import TyperGroup

from breakfix.errors import BreakfixError


class _Group(TyperGroup):
    """Turns user errors into one line on stderr and exit status 1 (tracebacks under --debug)."""

    def invoke(self, ctx: click.Context):
        from pydantic import ValidationError

        try:
            return super().invoke(ctx)
        except (BreakfixError, OSError, sqlite3.Error, ValidationError, UnicodeDecodeError) as exc:
            if ctx.params.get("debug"):
                raise
            click.echo(f"error: {_one_line(exc)}", err=True)
            ctx.exit(1)


def _one_line(exc: Exception) -> str:
    """What went wrong, in one line: user errors as written; an OS or store failure (a full disk,
    a read-only folder) with what it hit; an invalid value with the field it is in."""
    from pydantic import ValidationError

    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc.strerror or exc)
    if isinstance(exc, sqlite3.Error):
        return f"the run store failed: {exc}"
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"invalid {exc.title}{f' {where}' if where else ''}: {first['msg']}"
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text ({exc.reason} at byte {exc.start})"
    return str(exc)


app = typer.Typer(
    cls=_Group,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Red-team, judge, fix and re-measure small chat models, offline.",
)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug logs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only warnings and errors on stderr."),
) -> None:
    from rich.console import Console
    from rich.logging import RichHandler

    logger = logging.getLogger("breakfix")
    logger.handlers.clear()
    logger.addHandler(RichHandler(console=Console(stderr=True), show_time=False, show_path=False))
    logger.setLevel(logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO)
    logger.propagate = False


def _register() -> None:
    from breakfix.cli import assets, chat, data, demo, eval, fix, generate, judge, loop, redteam, runs, serve
    from breakfix.cli.list import list_

    app.command("chat")(chat.chat)
    app.command("generate")(generate.generate)
    app.command("serve")(serve.serve)
    app.command("assets")(assets.assets)
    app.command("demo")(demo.demo)
    app.command("vulns")(fix.vulns)
    app.command("curate")(fix.curate)
    app.command("train")(fix.train)
    app.command("gate")(fix.gate)
    app.command("run")(loop.run)
    app.command("report")(loop.report)
    app.command("list")(list_)
    app.add_typer(runs.app, name="runs")
    app.add_typer(data.app, name="data")
    app.add_typer(judge.app, name="judge")
    app.add_typer(redteam.app, name="redteam")
    app.add_typer(eval.app, name="eval")


_register()


def main() -> None:
    import signal

    # A stop by signal (`kill`, a scheduler ending a job) ends a command as Ctrl-C does: its run is
    # marked failed ("interrupted") and a rerun resumes it, instead of a row left "running".
    signal.signal(signal.SIGTERM, _interrupted)
    app()


def _interrupted(signum, frame) -> None:
    raise KeyboardInterrupt
