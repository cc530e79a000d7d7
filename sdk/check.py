"""Fail when `sdk/openapi.json` or `sdk/python/` differ from what the gateway's code produces now.

    python -m sdk.check [--schema PATH] [--client PATH]

Exports the document and generates the client into a temporary folder, then compares them with
the committed files. Exit status 0 when they match; 1 with the differing files and the command
that regenerates them (`python -m sdk.generate`); 2 when the export or the generator fails.

Python files that differ only in formatting count as equal, with a warning: the generator formats
its output with the installed ruff, and another ruff version may lay out the same code
differently. Any change to the code, docstrings included, counts as a difference.
"""

from __future__ import annotations

import argparse
import ast
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from sdk.export import REPO, SCHEMA_PATH, ExportError, write_schema
from sdk.generate import CLIENT_DIR, REGENERATE_COMMAND, GenerationError, generate_client

# Build, install and cache output that may sit in sdk/python/ and is not part of the client.
IGNORED_NAMES = {"__pycache__", ".ruff_cache", ".pytest_cache", ".mypy_cache", "build", "dist"}
IGNORED_SUFFIXES = (".egg-info", ".pyc")


@dataclass
class Comparison:
    differing: list[str] = field(default_factory=list)
    formatting_only: list[str] = field(default_factory=list)


def _is_ignored(relative: Path) -> bool:
    return any(part in IGNORED_NAMES or part.endswith(IGNORED_SUFFIXES) for part in relative.parts)


def _files_under(root: Path) -> set[Path]:
    if not root.is_dir():
        return set()
    return {
        path.relative_to(root)
        for path in root.rglob("*")
        if path.is_file() and not _is_ignored(path.relative_to(root))
    }


def _same_python_code(first: bytes, second: bytes) -> bool:
    try:
        return ast.dump(ast.parse(first)) == ast.dump(ast.parse(second))
    except (SyntaxError, ValueError):
        return False


def compare_trees(committed: Path, expected: Path, label: str) -> Comparison:
    """Compare every file under `committed` with `expected`; name files as `label`/relative path."""
    result = Comparison()
    for relative in sorted(_files_under(committed) | _files_under(expected)):
        name = f"{label}/{relative.as_posix()}"
        committed_file, expected_file = committed / relative, expected / relative
        if not committed_file.is_file() or not expected_file.is_file():
            result.differing.append(name + (" (missing)" if expected_file.is_file() else " (not generated)"))
            continue
        committed_bytes, expected_bytes = committed_file.read_bytes(), expected_file.read_bytes()
        if committed_bytes == expected_bytes:
            continue
        if relative.suffix == ".py" and _same_python_code(committed_bytes, expected_bytes):
            result.formatting_only.append(name)
        else:
            result.differing.append(name)
    return result


def _label(path: Path) -> str:
    path = path.resolve()
    return path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else str(path)


def check(schema_path: Path = SCHEMA_PATH, client_dir: Path = CLIENT_DIR) -> Comparison:
    """Regenerate into a temporary folder and compare with `schema_path` and `client_dir`."""
    result = Comparison()
    with tempfile.TemporaryDirectory(prefix="rl4pix-sdk-check-") as scratch:
        fresh_schema = write_schema(Path(scratch) / "openapi.json")
        if not schema_path.is_file():
            result.differing.append(f"{_label(schema_path)} (missing)")
        elif schema_path.read_bytes() != fresh_schema.read_bytes():
            result.differing.append(_label(schema_path))
        fresh_client = generate_client(fresh_schema, Path(scratch) / "python")
        client = compare_trees(client_dir, fresh_client, _label(client_dir))
    result.differing.extend(client.differing)
    result.formatting_only.extend(client.formatting_only)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sdk.check", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--schema", type=Path, default=SCHEMA_PATH, help="committed OpenAPI document to compare"
    )
    parser.add_argument(
        "--client", type=Path, default=CLIENT_DIR, help="committed generated client folder to compare"
    )
    args = parser.parse_args(argv)
    try:
        result = check(args.schema, args.client)
    except (ExportError, GenerationError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for name in result.formatting_only:
        print(f"warning: {name} differs from a fresh generation in formatting only (another ruff version?)")
    if result.differing:
        print("The committed SDK does not match the gateway's routes. Differing files:", file=sys.stderr)
        for name in result.differing:
            print(f"  {name}", file=sys.stderr)
        print(f"Regenerate them with: {REGENERATE_COMMAND}", file=sys.stderr)
        return 1
    print(f"{_label(args.schema)} and {_label(args.client)}/ match the gateway")
    return 0


if __name__ == "__main__":
    sys.exit(main())
