"""POST /edit end to end: gateway in-process, a real Celery worker and the tiny model."""

from __future__ import annotations

import io
import uuid

import pytest
from PIL import Image
from service_testkit import photo, png_bytes, wait_for_status

pytestmark = pytest.mark.usefixtures("worker")


def post_edit(client, auth, image: bytes, wait: int = 120, mask: bytes | None = None, **fields):
    files = {"image": ("input.png", image, "image/png")}
    if mask is not None:
        files["mask"] = ("mask.png", mask, "image/png")
    data = {
        "instruction": "make the eyes green",
        "steps": "2",
        **{key: str(value) for key, value in fields.items()},
    }
    return client.post("/edit", headers={**auth, "Prefer": f"wait={wait}"}, files=files, data=data)


@pytest.fixture(scope="module")
def photo_edit(client, auth):
    response = post_edit(
        client,
        auth,
        photo("cat-eyes", "input"),
        mask=photo("cat-eyes", "mask1"),
        seed=1234,
        return_attention="true",
    )
    return response


def test_photo_edit_succeeds(photo_edit):
    assert photo_edit.status_code == 200, photo_edit.text
    assert photo_edit.json()["status"] == "succeeded"


def test_photo_edit_echoes_seed(photo_edit):
    assert photo_edit.json()["seed"] == 1234


def test_photo_edit_reports_sizes(photo_edit):
    sizes = photo_edit.json()["sizes"]
    assert sizes["output"] == sizes["input"] == {"width": 451, "height": 300}


def test_photo_edit_has_reward_components(photo_edit):
    assert set(photo_edit.json()["reward"]) >= {"attention_similarity", "clip_loss", "total"}


def test_photo_edit_has_timings(photo_edit):
    assert {"queue", "total", "batch", "model_load"} <= set(photo_edit.json()["timings"])


def test_edit_phases_fit_in_total(client, auth):
    timings = post_edit(client, auth, png_bytes()).json()["timings"]
    phases = timings["queue"] + timings["model_load"] + timings["batch"] + timings["png_encode"]
    assert phases <= timings["total"] + 0.01


def test_photo_edit_image_downloads(client, auth, photo_edit):
    response = client.get(photo_edit.json()["urls"]["image"], headers=auth)
    assert Image.open(io.BytesIO(response.content)).size == (451, 300)


def test_photo_edit_attention_downloads(client, auth, photo_edit):
    response = client.get(photo_edit.json()["urls"]["attention"], headers=auth)
    assert Image.open(io.BytesIO(response.content)).size == (451, 300)


def test_edit_get_matches_result(client, auth, photo_edit):
    body = photo_edit.json()
    assert client.get(f"/edits/{body['id']}", headers=auth).json() == body


def test_edit_without_seed_generates_one(client, auth):
    response = post_edit(client, auth, png_bytes())
    assert isinstance(response.json()["seed"], int)


def test_edit_without_mask_has_no_reward(client, auth):
    response = post_edit(client, auth, png_bytes())
    assert response.json()["reward"] is None


def test_edit_without_attention_has_no_overlay(client, auth):
    response = post_edit(client, auth, png_bytes())
    assert response.json()["urls"]["attention"] is None


def test_mask_of_other_size_is_resized(client, auth):
    response = post_edit(client, auth, png_bytes((64, 48)), mask=png_bytes((32, 32), mode="L"))
    assert response.json()["status"] == "succeeded", response.text


def test_zero_wait_returns_accepted(client, auth):
    response = post_edit(client, auth, png_bytes(), wait=0)
    assert response.status_code == 202
    assert response.headers["location"] == f"/edits/{response.json()['id']}"


def test_accepted_edit_finishes(client, auth):
    location = post_edit(client, auth, png_bytes(), wait=0).headers["location"]
    body = wait_for_status(client, location, auth, {"succeeded", "failed"}, 120)
    assert body["urls"]["image"] is not None


def test_image_of_queued_edit_is_not_ready(client, auth, settings):
    from service.auth import authenticate
    from service.db import session_scope
    from service.models import Edit, utcnow

    with session_scope(settings.resolved_database_url) as session:
        tenant = authenticate(session, auth["Authorization"].split()[1])
        edit = Edit(
            tenant_id=tenant.id,
            model="tiny",
            instruction="x",
            steps=2,
            guidance_scale=7.5,
            image_guidance_scale=1.5,
            seed=1,
            input_key="none",
            input_width=8,
            input_height=8,
            status="queued",
            created_at=utcnow(),
        )
        session.add(edit)
        session.flush()
        edit_id = edit.id
    assert client.get(f"/edits/{edit_id}/image", headers=auth).status_code == 409


def insert_edit_row(settings, auth, status: str, return_attention: bool) -> uuid.UUID:
    """Insert an edit row directly, in a state that a real worker would only hold for a moment.

    Its model is one that no real edit uses, so that a worker batching queued edits never claims it.
    """
    from service.auth import authenticate
    from service.db import session_scope
    from service.models import Edit, utcnow

    with session_scope(settings.resolved_database_url) as session:
        tenant = authenticate(session, auth["Authorization"].split()[1])
        edit = Edit(
            tenant_id=tenant.id, model="unserved-model", instruction="x", steps=2, guidance_scale=7.5,
            image_guidance_scale=1.5, seed=1, input_key="none", input_width=8, input_height=8,
            status=status, return_attention=return_attention, created_at=utcnow(),
        )  # fmt: skip
        session.add(edit)
        session.flush()
        return edit.id


@pytest.mark.parametrize("status", ["queued", "running", "succeeded", "failed"])
def test_attention_not_requested_is_not_found(client, auth, settings, status):
    edit_id = insert_edit_row(settings, auth, status, return_attention=False)
    response = client.get(f"/edits/{edit_id}/attention", headers=auth)
    assert response.status_code == 404
    assert "without return_attention=true" in response.json()["error"]["message"]


def test_attention_of_running_edit_is_not_ready(client, auth, settings):
    edit_id = insert_edit_row(settings, auth, "running", return_attention=True)
    assert client.get(f"/edits/{edit_id}/attention", headers=auth).status_code == 409


def test_unknown_edit_is_not_found(client, auth):
    assert client.get(f"/edits/{uuid.uuid4()}", headers=auth).status_code == 404


def queue_edits_directly(settings, storage, auth, count: int) -> list[uuid.UUID]:
    """Insert queued edits and only then send their messages, so that all are queued when the first runs."""
    from service.auth import authenticate
    from service.db import session_scope
    from service.models import Edit, utcnow

    ids = []
    with session_scope(settings.resolved_database_url) as session:
        tenant = authenticate(session, auth["Authorization"].split()[1])
        for _ in range(count):
            edit_id = uuid.uuid4()
            key = f"tenants/{tenant.id}/edits/{edit_id}/input"
            storage.put_bytes(key, png_bytes())
            session.add(
                Edit(
                    id=edit_id,
                    tenant_id=tenant.id,
                    model="tiny",
                    instruction="add a hat",
                    steps=3,
                    guidance_scale=7.5,
                    image_guidance_scale=1.5,
                    seed=7,
                    input_key=key,
                    input_width=64,
                    input_height=64,
                    status="queued",
                    created_at=utcnow(),
                )
            )
            ids.append(edit_id)
    return ids


def test_queued_edits_are_batched(client, auth, settings, storage):
    from service import broker

    ids = queue_edits_directly(settings, storage, auth, settings.edit_batch_size)
    for edit_id in ids:
        broker.send_job(client.app.state.celery, broker.EDIT_TASK, edit_id)
    bodies = [
        wait_for_status(client, f"/edits/{edit_id}", auth, {"succeeded", "failed"}, 120) for edit_id in ids
    ]
    # Two pool processes may split the edits between them, but the first claimer finds queued peers.
    assert max(body["batch_size"] for body in bodies) >= 2
