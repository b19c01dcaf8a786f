"""The `breakfix` command: a thin layer over the library, one module per subcommand.

Heavy libraries (torch, transformers) are imported inside the commands that need them, so
`breakfix --help` answers at once.
"""

from __future__ import annotations

import logging

import click
import typer
from typer.core import TyperGroup

from breakfix.errors import BreakfixError


class _Group(TyperGroup):
    """Turns user errors into one line on stderr and exit status 1 (tracebacks under --debug)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (BreakfixError, OSError) as exc:
            if ctx.params.get("debug"):
                raise
            message = str(exc) if isinstance(exc, BreakfixError) else _os_error(exc)
            click.echo(f"error: {message}", err=True)
            ctx.exit(1)


def _os_error(exc: OSError) -> str:
    where = f": {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"


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

    app.command("chat")(chat.chat)
    app.command("generate")(generate.generate)
    app.command("serve")(serve.serve)
    app.command("assets")(assets.assets)
    app.command("demo")(demo.demo)
    app.command("vulns")(fix.vulns)
    app.command("curate")(fix.curate)
    app.command("train")(fix.train)
    app.command("run")(loop.run)
    app.command("report")(loop.report)
    app.add_typer(runs.app, name="runs")
    app.add_typer(data.app, name="data")
    app.add_typer(judge.app, name="judge")
    app.add_typer(redteam.app, name="redteam")
    app.add_typer(eval.app, name="eval")


_register()


def main() -> None:
    app()
