"""The SDK tooling: schema export, generation and `python -m sdk.check` against the committed files.

Every test that changes something works on a copy in a temporary folder; the committed
sdk/openapi.json and sdk/python/ are only read.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "sdk" / "openapi.json"
CLIENT = REPO / "sdk" / "python"
MODEL_FILE = Path("rl4pix_client/models/train_job_out.py")


def run_module(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def committed_check() -> subprocess.CompletedProcess:
    return run_module("sdk.check")


@pytest.fixture
def client_copy(tmp_path) -> Path:
    copy = tmp_path / "python"
    shutil.copytree(CLIENT, copy, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    return copy


@pytest.fixture
def changed_schema(tmp_path) -> Path:
    """A copy of the committed schema with one operation's summary changed."""
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    schema["paths"]["/train-jobs/{job_id}"]["get"]["summary"] = "A summary the gateway does not have"
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


# -- the committed files ----------------------------------------------------------------------------


def test_committed_sdk_passes_check(committed_check):
    assert committed_check.returncode == 0, committed_check.stdout + committed_check.stderr


def test_committed_sdk_has_no_formatting_drift(committed_check):
    assert "warning" not in committed_check.stdout


def test_schema_has_readable_operation_ids():
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    operation_ids = {
        operation["operationId"] for item in schema["paths"].values() for operation in item.values()
    }
    assert {"create_edit", "get_train_job", "create_train_job", "create_eval_job"} <= operation_ids


def test_extras_copy_matches_source():
    source = REPO / "sdk" / "python_extras" / "extras.py"
    assert (CLIENT / "rl4pix_client" / "extras.py").read_bytes() == source.read_bytes()


# -- check failures -------------------------------------------------------------------------------


def test_check_fails_on_changed_schema(changed_schema):
    result = run_module("sdk.check", "--schema", str(changed_schema))
    assert result.returncode == 1


def test_check_names_changed_schema(changed_schema):
    result = run_module("sdk.check", "--schema", str(changed_schema))
    assert str(changed_schema.resolve()) in result.stderr


def test_check_names_regenerate_command(changed_schema):
    result = run_module("sdk.check", "--schema", str(changed_schema))
    assert "python -m sdk.generate" in result.stderr


def test_check_fails_on_edited_generated_file(client_copy):
    path = client_copy / MODEL_FILE
    path.write_text(
        path.read_text().replace("class TrainJobOut:", "class TrainJobOut:  # edited\n    x = 1\n")
    )
    result = run_module("sdk.check", "--client", str(client_copy))
    assert f"  {client_copy.resolve()}/{MODEL_FILE.as_posix()}\n" in result.stderr


def test_check_fails_on_stray_file(client_copy):
    (client_copy / "rl4pix_client" / "handmade.py").write_text("VALUE = 1\n")
    result = run_module("sdk.check", "--client", str(client_copy))
    assert result.returncode == 1


def test_check_fails_on_missing_file(client_copy):
    (client_copy / MODEL_FILE).unlink()
    result = run_module("sdk.check", "--client", str(client_copy))
    assert "(missing)" in result.stderr


def test_check_accepts_formatting_only_change(client_copy):
    path = client_copy / MODEL_FILE
    path.write_text(path.read_text() + "\n\n\n")
    result = run_module("sdk.check", "--client", str(client_copy))
    assert result.returncode == 0, result.stderr


def test_check_warns_on_formatting_only_change(client_copy):
    path = client_copy / MODEL_FILE
    path.write_text(path.read_text() + "\n\n\n")
    result = run_module("sdk.check", "--client", str(client_copy))
    assert "formatting only" in result.stdout


# -- export and generation ------------------------------------------------------------------------


def test_export_is_byte_identical_across_runs(tmp_path):
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    run_module("sdk.export", "--output", str(first))
    run_module("sdk.export", "--output", str(second))
    assert first.read_bytes() == second.read_bytes()


def test_export_ignores_service_environment(tmp_path):
    output = tmp_path / "openapi.json"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "RL4PIX_MAX_STEPS": "7",
        "RL4PIX_DATA_DIR": str(tmp_path / "d"),
    }
    subprocess.run(
        [sys.executable, "-m", "sdk.export", "--output", str(output)],
        cwd=REPO,
        env=env,
        check=True,
        timeout=120,
    )
    assert output.read_bytes() == SCHEMA.read_bytes()


def test_export_creates_no_data_folder(tmp_path):
    run_module("sdk.export", "--output", str(tmp_path / "openapi.json"), cwd=tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["openapi.json"]


def test_export_ends_with_newline():
    assert SCHEMA.read_bytes().endswith(b"}\n")


def test_routes_without_operation_id_are_listed():
    from fastapi import FastAPI

    from sdk.export import routes_without_operation_id

    app = FastAPI()

    @app.get("/named", operation_id="get_named")
    def named() -> dict:
        return {}

    @app.post("/unnamed")
    def unnamed() -> dict:
        return {}

    assert routes_without_operation_id(app) == ["POST /unnamed"]


def test_generator_document_marks_uploads_binary():
    from sdk.generate import generator_document

    schema = {
        "components": {
            "schemas": {
                "Body": {
                    "properties": {"file": {"type": "string", "contentMediaType": "application/octet-stream"}}
                }
            }
        }
    }
    adapted = generator_document(schema)
    assert adapted["components"]["schemas"]["Body"]["properties"]["file"]["format"] == "binary"


def test_generator_document_leaves_input_unchanged():
    from sdk.generate import generator_document

    schema = {
        "components": {
            "schemas": {"Body": {"properties": {"file": {"type": "string", "contentMediaType": "image/png"}}}}
        }
    }
    generator_document(schema)
    assert "format" not in schema["components"]["schemas"]["Body"]["properties"]["file"]


def test_generator_document_types_png_responses():
    from sdk.generate import generator_document

    schema = {"paths": {"/image": {"get": {"responses": {"200": {"content": {"image/png": {}}}}}}}}
    adapted = generator_document(schema)
    content = adapted["paths"]["/image"]["get"]["responses"]["200"]["content"]["image/png"]
    assert content["schema"] == {"type": "string", "format": "binary"}


def test_generated_upload_sends_file_bytes():
    from rl4pix_client.models.body_create_dataset import BodyCreateDataset
    from rl4pix_client.types import File

    body = BodyCreateDataset(file=File(payload=io.BytesIO(b"PK\x03\x04data"), file_name="d.zip"))
    parts = dict(body.to_multipart())
    assert parts["file"][1].read() == b"PK\x03\x04data"


def test_client_installs_on_its_own(tmp_path, client_copy):
    target = tmp_path / "site"
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(client_copy),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert install.returncode == 0, install.stderr
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import rl4pix_client.extras, rl4pix_client.api.edits.create_edit; print('ok')",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert probe.stdout.strip() == "ok", probe.stderr
