"""Regenerate the Python client in `sdk/python/` from the gateway's routes.

    python -m sdk.generate

The command exports the OpenAPI document to `sdk/openapi.json` (see `sdk.export`) and adapts a
copy of it for the generator (`generator_document`). It then runs openapi-python-client 0.29.1
with `sdk/openapi-python-client.yaml` into a temporary folder, copies the hand-written modules
listed in `HAND_WRITTEN_FILES` into the package, and replaces `sdk/python/` with the result. The
generator reads only the schema file, so it runs offline. Never edit `sdk/python/` by hand,
because the next run replaces it.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from sdk.export import REPO, SCHEMA_PATH, ExportError, render_schema, write_schema

SDK_DIR = REPO / "sdk"
CLIENT_DIR = SDK_DIR / "python"
CONFIG_PATH = SDK_DIR / "openapi-python-client.yaml"
GENERATOR = "openapi-python-client"
GENERATOR_VERSION = "0.29.1"
# Hand-written sources (relative to sdk/) and where generation puts them (relative to sdk/python/).
HAND_WRITTEN_FILES = {Path("python_extras/extras.py"): Path("rl4pix_client/extras.py")}
REGENERATE_COMMAND = "python -m sdk.generate"


class GenerationError(Exception):
    """The generator is missing, has the wrong version, or failed."""


def check_generator_version() -> None:
    """Raise GenerationError unless openapi-python-client is installed at exactly GENERATOR_VERSION.

    Other versions write different code from the same document, so `sdk.check` would report
    differences that no route change caused.
    """
    try:
        installed = metadata.version(GENERATOR)
    except metadata.PackageNotFoundError as error:
        raise GenerationError(
            f"{GENERATOR} is not installed; run: pip install {GENERATOR}=={GENERATOR_VERSION}"
        ) from error
    if installed != GENERATOR_VERSION:
        raise GenerationError(
            f"{GENERATOR} {installed} is installed, but the SDK is generated with {GENERATOR_VERSION}; "
            f"run: pip install {GENERATOR}=={GENERATOR_VERSION}"
        )


def _mark_binary_strings(node: Any) -> None:
    """Add `format: binary` to every string schema that has `contentMediaType` and no encoding.

    OpenAPI 3.1 (as FastAPI writes it) describes an uploaded file as a string with
    `contentMediaType`; openapi-python-client 0.29.1 recognises files only by the OpenAPI 3.0 form
    `format: binary`, and without it would send each file as the text of its `str()`.
    """
    if isinstance(node, dict):
        is_raw_string = node.get("type") == "string" and "contentMediaType" in node
        if is_raw_string and "format" not in node and "contentEncoding" not in node:
            node["format"] = "binary"
        for value in node.values():
            _mark_binary_strings(value)
    elif isinstance(node, list):
        for value in node:
            _mark_binary_strings(value)


def _type_schemaless_responses(document: dict[str, Any]) -> None:
    """Give response bodies declared without a schema (PNG, downloads, text) a string schema.

    Without a schema the generated functions parse those responses as None. With one they return
    a `File` (binary media types) or a `str` (text/*).
    """
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            for response in operation.get("responses", {}).values():
                for media_type, content in response.get("content", {}).items():
                    if "json" in media_type or content.get("schema"):
                        continue
                    if media_type.startswith("text/"):
                        content["schema"] = {"type": "string"}
                    else:
                        content["schema"] = {"type": "string", "format": "binary"}


def generator_document(schema: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of the gateway's document adapted to what openapi-python-client 0.29.1 reads.

    The changes keep the meaning and only switch to the form this generator version reads.
    `sdk/openapi.json` itself stays exactly what the gateway serves at /openapi.json.
    """
    document = copy.deepcopy(schema)
    _mark_binary_strings(document)
    _type_schemaless_responses(document)
    return document


def _generator_environment() -> dict[str, str]:
    """Return the environment of the generator, with this interpreter's scripts folder first on PATH.

    The generator's post hooks call `ruff` by name, so ruff must be found even when the virtual
    environment is not activated.
    """
    scripts = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": scripts + os.pathsep + os.environ.get("PATH", "")}


def _generator_command() -> list[str]:
    beside_python = Path(sys.executable).parent / GENERATOR
    if beside_python.is_file():
        return [str(beside_python)]
    found = shutil.which(GENERATOR)
    if found is None:
        raise GenerationError(
            f"{GENERATOR} is not on PATH; run: pip install {GENERATOR}=={GENERATOR_VERSION}"
        )
    return [found]


def generate_client(schema_path: Path, output_dir: Path) -> Path:
    """Generate the client from the document at `schema_path` into `output_dir`, which must not exist.

    The hand-written modules are copied in afterwards. Return `output_dir`.
    """
    check_generator_version()
    if output_dir.exists():
        raise GenerationError(f"{output_dir} already exists; generation writes into a new folder")
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="rl4pix-sdk-") as scratch:
        adapted_path = Path(scratch) / "openapi.json"
        adapted_path.write_text(render_schema(generator_document(schema)), encoding="utf-8")
        command = [
            *_generator_command(),
            "generate",
            "--path",
            str(adapted_path),
            "--config",
            str(CONFIG_PATH),
            "--meta",
            "setup",
            "--output-path",
            str(output_dir),
            "--fail-on-warning",
        ]
        result = subprocess.run(
            command, capture_output=True, text=True, env=_generator_environment(), check=False
        )
    if result.returncode != 0:
        raise GenerationError(
            f"{GENERATOR} failed with exit code {result.returncode}:\n{result.stdout}{result.stderr}".rstrip()
        )
    for source, target in HAND_WRITTEN_FILES.items():
        shutil.copyfile(SDK_DIR / source, output_dir / target)
    return output_dir


def replace_client(new_dir: Path, client_dir: Path = CLIENT_DIR) -> None:
    """Move `new_dir` to `client_dir`, deleting the previous client only once the new one is in place."""
    previous = client_dir.with_name(client_dir.name + ".previous")
    if previous.exists():
        shutil.rmtree(previous)
    if client_dir.exists():
        client_dir.rename(previous)
    shutil.move(str(new_dir), str(client_dir))
    if previous.exists():
        shutil.rmtree(previous)


def regenerate() -> None:
    """Export the document to sdk/openapi.json and regenerate sdk/python/ from it."""
    check_generator_version()
    write_schema(SCHEMA_PATH)
    with tempfile.TemporaryDirectory(prefix=".generate-", dir=SDK_DIR) as scratch:
        new_dir = generate_client(SCHEMA_PATH, Path(scratch) / "python")
        replace_client(new_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sdk.generate", description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    try:
        regenerate()
    except (ExportError, GenerationError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {SCHEMA_PATH.relative_to(REPO)} and {CLIENT_DIR.relative_to(REPO)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
