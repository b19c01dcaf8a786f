"""`breakfix chat`: talk to a model, interactively or one-shot with -p."""

from __future__ import annotations

import typer
from rich.markup import escape

from breakfix.cli.common import MaxNewTokens, Model, Seed, System, Temperature, err, load, out
from breakfix.errors import BreakfixError
from breakfix.redact import terminal_safe
from breakfix.types import GenerationConfig, Message


def chat(
    model: Model = "smollm2-135m",
    prompt: str | None = typer.Option(None, "--prompt", "-p", help="Ask once, print the reply and exit."),
    system: System = None,
    max_new_tokens: MaxNewTokens = 256,
    temperature: Temperature = 0.0,
    seed: Seed = 0,
) -> None:
    """Chat with a model. Interactive unless -p is given; /reset clears the history, /exit leaves."""
    config = GenerationConfig(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed,
                              system_prompt=system)
    target = load(model)
    if prompt is not None:
        reply = target.chat([[Message(role="user", content=prompt)]], config)[0]
        if reply.error:
            raise BreakfixError(reply.error)
        out.print(terminal_safe(reply.content), markup=False, highlight=False)
        return
    err.print(f"[dim]chatting with {target.name}; /reset clears the history, /exit or Ctrl-D leaves[/]")
    history: list[Message] = []
    while True:
        try:
            text = input("you> ")
        except EOFError:
            break
        if text.strip() in ("/exit", "/quit"):
            break
        if text.strip() == "/reset":
            history.clear()
            continue
        if not text.strip():
            continue
        history.append(Message(role="user", content=text))
        reply = target.chat([history], config)[0]
        if reply.error:
            err.print(f"[red]error:[/] {escape(terminal_safe(reply.error))}")
            history.pop()
            continue
        history.append(reply.message)
        out.print(f"[bold]model>[/] {escape(terminal_safe(reply.content))}", highlight=False)
