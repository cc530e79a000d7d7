"""Write the gateway's OpenAPI document to `sdk/openapi.json` without starting a server.

    python -m sdk.export [--output PATH]

The document comes from `service.app.create_app(settings).openapi()`. The settings are the
defaults, whatever RL4PIX_* variables are set, and the app gets a temporary data folder and an
in-memory broker URL, so exporting reads no configuration and creates no files outside a temporary
folder. The output is JSON with sorted keys, two-space indentation and a trailing newline, so equal
documents give equal bytes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SCHEMA_PATH = REPO / "sdk" / "openapi.json"
ENV_PREFIX = "RL4PIX_"


class ExportError(Exception):
    """The gateway's routes cannot be turned into a usable SDK."""


@contextlib.contextmanager
def _without_service_environment() -> Iterator[None]:
    """Hide every RL4PIX_* variable while the settings are read, and restore them afterwards."""
    saved = {name: value for name, value in os.environ.items() if name.upper().startswith(ENV_PREFIX)}
    for name in saved:
        del os.environ[name]
    try:
        yield
    finally:
        os.environ.update(saved)


def routes_without_operation_id(app: Any) -> list[str]:
    """List the documented routes ("METHOD /path") that rely on FastAPI's generated operation id.

    The generated id (for example `create_edit_edit_post`) becomes the SDK's module and function
    name, and it changes whenever the path or the function is renamed.
    """
    from fastapi.routing import APIRoute

    missing = []
    for route in app.routes:
        if isinstance(route, APIRoute) and route.include_in_schema and not route.operation_id:
            for method in sorted(route.methods):
                missing.append(f"{method} {route.path}")
    return missing


def build_schema() -> dict[str, Any]:
    """Build the gateway app with default settings and return its OpenAPI document."""
    from service.app import create_app
    from service.settings import Settings

    with tempfile.TemporaryDirectory(prefix="rl4pix-export-") as data_dir, _without_service_environment():
        app = create_app(Settings(data_dir=Path(data_dir), broker_url="memory://"))
        missing = routes_without_operation_id(app)
        if missing:
            raise ExportError(
                "these routes have no explicit operation_id, so their SDK function names would be "
                "generated from the path: " + ", ".join(missing) + ". Set operation_id=... on each route "
                "in service/routes/."
            )
        return app.openapi()


def render_schema(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_schema(path: Path) -> Path:
    """Export the document to `path` (parent folders are created) and return `path`."""
    text = render_schema(build_schema())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sdk.export", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output",
        type=Path,
        default=SCHEMA_PATH,
        help=f"file to write (default {SCHEMA_PATH.relative_to(REPO)})",
    )
    args = parser.parse_args(argv)
    try:
        path = write_schema(args.output)
    except ExportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
