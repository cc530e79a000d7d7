"""rl4pix_client.extras without a server: errors, polling, zipping and downloads over a mock transport."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import httpx
import pytest
from rl4pix_client import AuthenticatedClient
from rl4pix_client.extras import (
    ApiError,
    ChecksumMismatchError,
    InvalidRequestError,
    JobFailedError,
    JobTimeoutError,
    NotFoundError,
    WaitTimeoutError,
    connect,
    download_checkpoint,
    error_from_response,
    wait_for,
    wait_for_train_job,
    write_dataset_zip,
)
from rl4pix_client.models.checkpoint_out import CheckpointOut

BASE_URL = "http://gateway.test"
API_KEY = "rl4pix_test-key"
WEIGHTS = b"safetensors bytes"


def mock_client(handler) -> AuthenticatedClient:
    client = AuthenticatedClient(base_url=BASE_URL, token=API_KEY)
    transport = httpx.MockTransport(handler)
    client.set_httpx_client(
        httpx.Client(base_url=BASE_URL, transport=transport, headers={"Authorization": f"Bearer {API_KEY}"})
    )
    return client


def error_body(code: str, message: str, field: str | None = None) -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "field": field}}).encode()


def train_job(status: str, epoch: int = 0) -> dict:
    return {
        "id": "job-1",
        "status": status,
        "model": "tiny",
        "dataset_id": "dataset-1",
        "config": {},
        "progress": {"epoch": epoch, "total_epochs": 2, "fraction": epoch / 2},
        "latest_metrics": None,
        "attempts": 1,
        "adapter_id": None,
        "error": {"code": "training_failed", "message": "reward is NaN"} if status == "failed" else None,
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
        "started_at": None,
        "finished_at": None,
    }


def checkpoint(url: str, content: bytes = WEIGHTS) -> CheckpointOut:
    return CheckpointOut.from_dict(
        {
            "id": "artifact-1",
            "kind": "final",
            "epoch": 2,
            "size_bytes": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
            "url": url,
            "url_expires_at": "2024-01-01T01:00:00Z",
            "created_at": "2024-01-01T00:00:00Z",
        }
    )


# -- errors ---------------------------------------------------------------------------------------


def test_error_404_is_not_found():
    assert type(error_from_response(404, error_body("not_found", "edit x not found"))) is NotFoundError


def test_error_422_is_invalid_request():
    assert (
        type(error_from_response(422, error_body("invalid_steps", "steps: 0", "steps")))
        is InvalidRequestError
    )


def test_error_carries_server_message():
    assert error_from_response(404, error_body("not_found", "edit x not found")).message == "edit x not found"


def test_error_carries_field():
    assert error_from_response(422, error_body("invalid_steps", "steps: 0", "steps")).field == "steps"


def test_error_without_gateway_body_keeps_text():
    error = error_from_response(502, b"<html>bad gateway</html>")
    assert (type(error), error.code, error.message) == (ApiError, None, "<html>bad gateway</html>")


def test_connect_without_key_raises(monkeypatch):
    monkeypatch.delenv("RL4PIX_API_KEY", raising=False)
    with pytest.raises(ValueError, match="RL4PIX_API_KEY"):
        connect(BASE_URL)


def test_connect_reads_key_from_environment(monkeypatch):
    monkeypatch.setenv("RL4PIX_API_KEY", "from-env")
    assert connect(BASE_URL).token == "from-env"


# -- polling --------------------------------------------------------------------------------------


def test_wait_for_backs_off_up_to_maximum():
    values = iter(range(6))
    pauses: list[float] = []
    wait_for(
        lambda: next(values), lambda value: value == 5, timeout=60, max_interval=1.0, sleep=pauses.append
    )
    assert pauses == [0.5, 0.75, 1.0, 1.0, 1.0]


def test_wait_for_returns_finished_value():
    values = iter(["queued", "running", "succeeded"])
    assert (
        wait_for(lambda: next(values), lambda value: value == "succeeded", timeout=60, sleep=lambda _: None)
        == "succeeded"
    )


def test_wait_for_timeout_carries_last_value():
    with pytest.raises(WaitTimeoutError) as caught:
        wait_for(lambda: "running", lambda value: False, timeout=0, sleep=lambda _: None)
    assert caught.value.last == "running"


def test_wait_for_train_job_raises_on_failure():
    client = mock_client(lambda request: httpx.Response(200, json=train_job("failed")))
    with pytest.raises(JobFailedError) as caught:
        wait_for_train_job(client, "job-1", timeout=5)
    assert caught.value.message == "reward is NaN"


def test_wait_for_train_job_times_out():
    client = mock_client(lambda request: httpx.Response(200, json=train_job("running", epoch=1)))
    with pytest.raises(JobTimeoutError) as caught:
        wait_for_train_job(client, "job-1", timeout=0)
    assert caught.value.resource.progress.epoch == 1


def test_wait_for_train_job_reports_progress():
    states = iter([train_job("running", 1), train_job("succeeded", 2)])
    client = mock_client(lambda request: httpx.Response(200, json=next(states)))
    seen: list[int] = []
    wait_for_train_job(
        client,
        "job-1",
        timeout=5,
        on_progress=lambda job: seen.append(job.progress.epoch),
        initial_interval=0.01,
    )
    assert seen == [1, 2]


def test_wait_for_unknown_job_raises_not_found():
    client = mock_client(
        lambda request: httpx.Response(404, content=error_body("not_found", "train job x not found"))
    )
    with pytest.raises(NotFoundError):
        wait_for_train_job(client, "x", timeout=5)


# -- datasets -------------------------------------------------------------------------------------


def test_dataset_zip_nests_files_in_folder(tmp_path):
    folder = tmp_path / "set"
    (folder / "images" / "a").mkdir(parents=True)
    (folder / "edit_sessions.json").write_text("{}")
    (folder / "images" / "a" / "a-input.png").write_bytes(b"png")
    archive_path = tmp_path / "set.zip"
    with archive_path.open("wb") as stream:
        write_dataset_zip(folder, stream)
    assert sorted(zipfile.ZipFile(archive_path).namelist()) == [
        "set/edit_sessions.json",
        "set/images/a/a-input.png",
    ]


def test_dataset_zip_needs_sessions_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="edit_sessions.json"):
        write_dataset_zip(tmp_path, io.BytesIO())


# -- checkpoint downloads -------------------------------------------------------------------------


def test_checkpoint_download_omits_api_key(tmp_path):
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=WEIGHTS)

    download_checkpoint(
        mock_client(handler), checkpoint("http://s3.test/bucket/w?X-Amz-Signature=1"), tmp_path / "w"
    )
    assert "authorization" not in seen[0].headers


def test_checkpoint_download_follows_absolute_url(tmp_path):
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=WEIGHTS)

    download_checkpoint(
        mock_client(handler), checkpoint("http://s3.test/bucket/w?X-Amz-Signature=1"), tmp_path / "w"
    )
    assert str(seen[0].url) == "http://s3.test/bucket/w?X-Amz-Signature=1"


def test_checkpoint_download_joins_relative_url(tmp_path):
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=WEIGHTS)

    download_checkpoint(mock_client(handler), checkpoint("/files/a/w?expires=1&signature=s"), tmp_path / "w")
    assert str(seen[0].url) == f"{BASE_URL}/files/a/w?expires=1&signature=s"


def test_checkpoint_download_writes_file(tmp_path):
    client = mock_client(lambda request: httpx.Response(200, content=WEIGHTS))
    path = download_checkpoint(client, checkpoint("/files/w"), tmp_path / "adapter" / "w.safetensors")
    assert path.read_bytes() == WEIGHTS


def test_checkpoint_checksum_mismatch_raises(tmp_path):
    client = mock_client(lambda request: httpx.Response(200, content=b"truncated"))
    with pytest.raises(ChecksumMismatchError):
        download_checkpoint(client, checkpoint("/files/w"), tmp_path / "w")


def test_checkpoint_checksum_mismatch_removes_file(tmp_path):
    client = mock_client(lambda request: httpx.Response(200, content=b"truncated"))
    with pytest.raises(ChecksumMismatchError):
        download_checkpoint(client, checkpoint("/files/w"), tmp_path / "w")
    assert list(tmp_path.iterdir()) == []


def test_expired_checkpoint_link_raises_api_error(tmp_path):
    body = error_body("invalid_signature", "the download link is invalid or has expired; request a new one")
    client = mock_client(lambda request: httpx.Response(403, content=body))
    with pytest.raises(ApiError) as caught:
        download_checkpoint(client, checkpoint("/files/w"), tmp_path / "w")
    assert caught.value.code == "invalid_signature"
