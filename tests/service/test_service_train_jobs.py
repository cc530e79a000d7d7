"""Training jobs end to end with a real worker: success, adapters, cancel, worker loss and redelivery."""

from __future__ import annotations

import os
import signal
import uuid

import httpx
import pytest
from service_testkit import png_bytes, synthetic_zip, wait_until
from service_testkit import wait_for_status as poll_status

pytestmark = pytest.mark.usefixtures("worker")

TERMINAL = {"succeeded", "failed", "cancelled"}


def tiny_config(epochs: int) -> dict:
    return {
        "num_epochs": epochs,
        "save_freq": 1,
        "resolution": 64,
        "sample": {"num_steps": 4, "batch_size": 2, "num_batches_per_epoch": 1},
        "train.batch_size": 2,
        "train.use_8bit_adam": False,
    }


def create_job(client, auth, dataset_id: str, epochs: int, key: str | None = None):
    headers = {**auth, **({"Idempotency-Key": key} if key else {})}
    return client.post(
        "/train-jobs", headers=headers, json={"dataset_id": dataset_id, "config": tiny_config(epochs)}
    )


def job_state(client, auth, job_id: str) -> dict:
    return client.get(f"/train-jobs/{job_id}", headers=auth).json()


def wait_for_status(client, auth, job_id: str, statuses: set[str], timeout: float = 240) -> dict:
    return poll_status(client, f"/train-jobs/{job_id}", auth, statuses, timeout)


def events(client, auth, job_id: str) -> list[dict]:
    items, cursor = [], None
    while True:
        params = {"limit": 50, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"/train-jobs/{job_id}/events", headers=auth, params=params).json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def has_event(client, auth, job_id: str, kind: str, text: str = "") -> bool:
    return any(event["kind"] == kind and text in event["message"] for event in events(client, auth, job_id))


@pytest.fixture(scope="module")
def trained_job(client, auth, dataset_id):
    response = create_job(client, auth, dataset_id, epochs=2)
    assert response.status_code == 201, response.text
    return wait_for_status(client, auth, response.json()["id"], TERMINAL)


@pytest.mark.slow
def test_training_succeeds(trained_job):
    assert trained_job["status"] == "succeeded", trained_job["error"]


@pytest.mark.slow
def test_training_reports_progress(trained_job):
    assert trained_job["progress"] == {"epoch": 2, "total_epochs": 2, "fraction": 1.0}


@pytest.mark.slow
def test_training_records_epoch_events(client, auth, trained_job):
    epochs = [event["epoch"] for event in events(client, auth, trained_job["id"]) if event["kind"] == "epoch"]
    assert epochs == [1, 2]


@pytest.mark.slow
def test_training_stores_checkpoints(client, auth, trained_job):
    items = client.get(f"/train-jobs/{trained_job['id']}/checkpoints", headers=auth).json()["items"]
    assert sorted((item["kind"], item["epoch"]) for item in items) == [
        ("checkpoint", 1),
        ("checkpoint", 2),
        ("final", 2),
    ]


@pytest.mark.slow
def test_checkpoint_links_download_safetensors(client, auth, trained_job):
    items = client.get(f"/train-jobs/{trained_job['id']}/checkpoints", headers=auth).json()["items"]
    response = httpx.get(items[0]["url"])
    # A safetensors file starts with the 8-byte little-endian length of its JSON header, then '{'.
    assert response.content[8:9] == b"{"
    assert len(response.content) == items[0]["size_bytes"]


@pytest.mark.slow
def test_edit_with_trained_adapter(client, auth, trained_job):
    files = {"image": ("input.png", png_bytes(), "image/png")}
    data = {"instruction": "add a hat", "steps": "2", "adapter_id": trained_job["adapter_id"]}
    response = client.post("/edit", headers={**auth, "Prefer": "wait=120"}, files=files, data=data)
    assert response.json()["status"] == "succeeded", response.text
    assert response.json()["adapter_id"] == trained_job["adapter_id"]


@pytest.mark.slow
def test_eval_settings_name_adapter_id(client, auth, trained_job, dataset_id):
    body = {"dataset_id": dataset_id, "adapter_id": trained_job["adapter_id"], "steps": 2, "limit": 1}
    response = client.post("/eval-jobs", headers=auth, json=body)
    assert response.status_code == 201, response.text
    job = poll_status(client, f"/eval-jobs/{response.json()['id']}", auth, TERMINAL, 180)
    assert job["status"] == "succeeded", job["error"]
    assert job["metrics"]["settings"]["adapters"] == [trained_job["adapter_id"]]


@pytest.mark.slow
def test_adapter_is_listed(client, auth, trained_job):
    ids = [item["id"] for item in client.get("/adapters", headers=auth).json()["items"]]
    assert trained_job["adapter_id"] in ids


@pytest.mark.slow
def test_redelivered_message_is_ignored(client, auth, trained_job):
    from service import broker

    broker.send_job(client.app.state.celery, broker.TRAIN_TASK, uuid.UUID(trained_job["id"]))
    wait_until(
        lambda: has_event(client, auth, trained_job["id"], "log", "duplicate message ignored"),
        60,
        0.5,
        "the duplicate message to be ignored",
    )
    after = job_state(client, auth, trained_job["id"])
    starts = [event for event in events(client, auth, trained_job["id"]) if "started" in event["message"]]
    assert after["status"] == "succeeded"
    assert after["attempts"] == 1
    assert len(starts) == 1


def test_idempotency_key_returns_same_job(client, auth, dataset_id):
    key = f"retry-{uuid.uuid4()}"
    first = create_job(client, auth, dataset_id, epochs=1, key=key)
    second = create_job(client, auth, dataset_id, epochs=1, key=key)
    client.post(f"/train-jobs/{first.json()['id']}/cancel", headers=auth)
    assert second.json()["id"] == first.json()["id"]
    assert second.headers["idempotent-replayed"] == "true"


def test_idempotency_key_with_other_body_conflicts(client, auth, dataset_id):
    key = f"retry-{uuid.uuid4()}"
    first = create_job(client, auth, dataset_id, epochs=1, key=key)
    client.post(f"/train-jobs/{first.json()['id']}/cancel", headers=auth)
    second = create_job(client, auth, dataset_id, epochs=2, key=key)
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "idempotency_key_reused"


def test_list_is_paginated_and_filtered(client, other_auth, tmp_path):
    # Another tenant, so that the listing holds only these jobs.
    upload = client.post(
        "/datasets", headers=other_auth, files={"file": ("d.zip", synthetic_zip(tmp_path, count=2))}
    )
    ids = [create_job(client, other_auth, upload.json()["id"], epochs=1).json()["id"] for _ in range(3)]
    for job_id in ids:
        client.post(f"/train-jobs/{job_id}/cancel", headers=other_auth)
    for job_id in ids:
        wait_for_status(client, other_auth, job_id, TERMINAL)
    first = client.get("/train-jobs", headers=other_auth, params={"limit": 2, "status": "cancelled"}).json()
    second = client.get(
        "/train-jobs",
        headers=other_auth,
        params={"limit": 2, "status": "cancelled", "cursor": first["next_cursor"]},
    ).json()
    listed = [item["id"] for item in first["items"] + second["items"]]
    assert listed == list(reversed(ids))
    assert second["next_cursor"] is None


def test_cancel_queued_job_is_immediate(client, auth, dataset_id):
    job_id = create_job(client, auth, dataset_id, epochs=1).json()["id"]
    response = client.post(f"/train-jobs/{job_id}/cancel", headers=auth)
    # The worker may claim the job first; then it is cancelling and stops at its first poll.
    assert response.json()["status"] in {"cancelled", "cancelling"}
    assert wait_for_status(client, auth, job_id, TERMINAL)["status"] == "cancelled"


@pytest.mark.slow
def test_cancel_running_job(client, auth, dataset_id):
    job_id = create_job(client, auth, dataset_id, epochs=200).json()["id"]
    wait_until(lambda: has_event(client, auth, job_id, "epoch"), 180, 0.5, "the first epoch")
    response = client.post(f"/train-jobs/{job_id}/cancel", headers=auth)
    assert response.json()["status"] == "cancelling"
    final = wait_for_status(client, auth, job_id, TERMINAL)
    checkpoints = client.get(f"/train-jobs/{job_id}/checkpoints", headers=auth).json()["items"]
    assert final["status"] == "cancelled"
    assert final["progress"]["epoch"] < 200
    assert checkpoints, "the trainer saves a checkpoint when it stops"


def worker_pid(settings, job_id: str) -> int:
    from service.db import session_scope
    from service.models import TrainJob

    with session_scope(settings.resolved_database_url) as session:
        return int(session.get(TrainJob, uuid.UUID(job_id)).worker.rsplit(":", 1)[1])


@pytest.mark.slow
def test_killed_worker_job_resumes(client, auth, dataset_id, settings):
    job_id = create_job(client, auth, dataset_id, epochs=6).json()["id"]
    wait_until(lambda: has_event(client, auth, job_id, "checkpoint"), 180, 0.5, "the first checkpoint")
    os.kill(worker_pid(settings, job_id), signal.SIGKILL)
    final = wait_for_status(client, auth, job_id, TERMINAL, timeout=300)
    assert final["status"] == "succeeded", final["error"]
    assert final["attempts"] == 2
    assert has_event(client, auth, job_id, "state", "resuming from checkpoint")
