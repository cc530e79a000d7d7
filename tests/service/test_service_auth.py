"""Bearer-key authentication and tenant isolation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from service_testkit import REPO, png_bytes
from sqlalchemy import select

from service.auth import hash_key
from service.db import session_scope
from service.models import ApiKey

PROTECTED = [
    ("get", "/edits/00000000-0000-0000-0000-000000000000"),
    ("get", "/train-jobs"),
    ("get", "/adapters"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_missing_key_is_unauthorized(client, method, path):
    assert getattr(client, method)(path).status_code == 401


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_wrong_key_is_unauthorized(client, method, path):
    assert getattr(client, method)(path, headers={"Authorization": "Bearer rl4p_wrong"}).status_code == 401


def test_basic_scheme_is_unauthorized(client):
    assert client.get("/train-jobs", headers={"Authorization": "Basic dXNlcjpwYXNz"}).status_code == 401


def test_basic_scheme_message_names_bearer(client):
    body = client.get("/train-jobs", headers={"Authorization": "Basic dXNlcjpwYXNz"}).json()
    assert "must use the Bearer scheme" in body["error"]["message"]


def test_unauthorized_body_names_the_fix(client):
    assert "Authorization: Bearer" in client.get("/train-jobs").json()["error"]["message"]


def test_revoked_key_is_unauthorized(client, settings):
    from service.auth import create_api_key, revoke_api_key

    with session_scope(settings.resolved_database_url) as session:
        _, key = create_api_key(session, "revoked-tenant")
    with session_scope(settings.resolved_database_url) as session:
        revoke_api_key(session, key[:12])
    assert client.get("/train-jobs", headers={"Authorization": f"Bearer {key}"}).status_code == 401


def test_keys_command_prints_key_once(service_env, settings):
    result = subprocess.run(
        [sys.executable, "-m", "rl4pix_cli.main", "keys", "create", "--tenant", "cli-tenant"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    key = result.stdout.splitlines()[0]
    with session_scope(settings.resolved_database_url) as session:
        stored = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
    assert stored is not None


def run_cli(*arguments: str, cwd=REPO, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rl4pix_cli.main", *arguments],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def outside_env(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A folder without .rl4pix and an environment without RL4PIX_* variables, like a new user's shell."""
    folder = tmp_path_factory.mktemp("elsewhere")
    env = {key: value for key, value in os.environ.items() if not key.startswith("RL4PIX_")}
    return folder, {**env, "PYTHONPATH": str(REPO)}


CLI_WITHOUT_DATABASE = {
    "keys create": ("keys", "create", "--tenant", "acme"),
    "keys revoke": ("keys", "revoke", "rl4p_AbCdEfG"),
    "db current": ("db", "current"),
    "db downgrade": ("db", "downgrade", "base"),
}


@pytest.mark.parametrize("case", CLI_WITHOUT_DATABASE, ids=list(CLI_WITHOUT_DATABASE))
def test_cli_outside_service_folder_exits_2(outside_env, case):
    folder, env = outside_env
    result = subprocess.run(
        [sys.executable, "-m", "rl4pix_cli.main", *CLI_WITHOUT_DATABASE[case]],
        cwd=folder, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr


@pytest.mark.parametrize("case", CLI_WITHOUT_DATABASE, ids=list(CLI_WITHOUT_DATABASE))
def test_cli_outside_service_folder_names_database(outside_env, case):
    folder, env = outside_env
    result = subprocess.run(
        [sys.executable, "-m", "rl4pix_cli.main", *CLI_WITHOUT_DATABASE[case]],
        cwd=folder, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert str(folder / ".rl4pix" / "rl4pix.db") in result.stderr
    assert "RL4PIX_DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (folder / ".rl4pix").exists()


@pytest.mark.parametrize("tenant", ["", "   "])
def test_keys_create_blank_tenant_is_rejected(service_env, tenant):
    result = run_cli("keys", "create", "--tenant", tenant)
    assert result.returncode == 2
    assert "tenant name must not be empty" in result.stderr


def test_keys_revoke_unknown_key_fails(service_env):
    result = run_cli("keys", "revoke", "rl4p_NoSuchKey0")
    assert result.returncode == 1
    assert "not found" in result.stderr


def test_keys_are_stored_hashed(settings):
    with session_scope(settings.resolved_database_url) as session:
        hashes = session.scalars(select(ApiKey.key_hash)).all()
    assert all(len(value) == 64 and not value.startswith("rl4p_") for value in hashes)


@pytest.fixture(scope="module")
def foreign_edit(client, auth):
    response = client.post(
        "/edit",
        headers={**auth, "Prefer": "wait=0"},
        files={"image": ("a.png", png_bytes(), "image/png")},
        data={"instruction": "make it red", "steps": "2"},
    )
    assert response.status_code in (200, 202), response.text
    return response.json()["id"]


@pytest.mark.parametrize("suffix", ["", "/image", "/attention"])
def test_other_tenant_edit_is_not_found(client, other_auth, foreign_edit, suffix):
    assert client.get(f"/edits/{foreign_edit}{suffix}", headers=other_auth).status_code == 404


def test_other_tenant_cannot_cancel_edit(client, other_auth, foreign_edit):
    assert client.post(f"/edits/{foreign_edit}/cancel", headers=other_auth).status_code == 404


def test_other_tenant_dataset_is_not_found(client, other_auth, dataset_id):
    assert client.get(f"/datasets/{dataset_id}", headers=other_auth).status_code == 404


def test_other_tenant_cannot_train_on_dataset(client, other_auth, dataset_id):
    response = client.post("/train-jobs", headers=other_auth, json={"dataset_id": dataset_id, "config": {}})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unknown_dataset"
