"""`breakfix serve`: an OpenAI-compatible endpoint over any model."""

from __future__ import annotations

import typer

from breakfix.cli.common import Model, err, load


def serve(
    model: Model = "smollm2-135m",
    host: str = typer.Option("127.0.0.1", help="Address to bind; anything but loopback needs --api-key."),
    port: int = typer.Option(8000, min=0, max=65535),
    api_key: str | None = typer.Option(None, envvar="BREAKFIX_SERVER_KEY", help="Bearer key clients must send."),
    served_name: str | None = typer.Option(None, help="Model id clients use (default: the model string)."),
    max_batch: int = typer.Option(32, min=1, help="Most requests answered in one batch."),
    max_body_bytes: int = typer.Option(1 << 20, min=1024, help="Largest request body accepted."),
    max_queue: int = typer.Option(64, min=1, help="Most requests waiting at once; more are answered 429."),
    temperature: float = typer.Option(0.0, min=0.0, help="Temperature when a request gives none."),
) -> None:
    """Serve /v1/models and /v1/chat/completions (streaming too) until interrupted."""
    from breakfix.targets.server import ServerSettings
    from breakfix.targets.server import serve as run_server

    settings = ServerSettings(served_name=served_name or model, api_key=api_key, max_batch=max_batch,
                              max_body_bytes=max_body_bytes, default_temperature=temperature,
                              max_queue=max_queue)

    def make_target():
        target = load(model, max_batch)
        err.print(f"serving {target.name} as {settings.served_name!r} at http://{host}:{port}/v1 (Ctrl-C stops)")
        return target

    run_server(make_target, settings, host, port)
