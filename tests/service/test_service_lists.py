"""GET /datasets, /eval-jobs and /edits: newest first, paginated by cursor, scoped to the tenant.

Rows are inserted directly, for two tenants created here, so that each listing contains exactly them.
Their model is one that no real edit uses, so that a worker batching queued edits never claims them.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from service_testkit import SESSION_TAG

from service.auth import create_api_key
from service.db import session_scope
from service.models import Dataset, Edit, EvalJob

COUNT = 3


def new_tenant(settings, name: str) -> tuple[uuid.UUID, dict[str, str]]:
    with session_scope(settings.resolved_database_url) as session:
        tenant, key = create_api_key(session, f"{name}-{SESSION_TAG}")
        return tenant.id, {"Authorization": f"Bearer {key}"}


def insert_rows(settings, tenant_id: uuid.UUID) -> dict[str, list[str]]:
    """Insert COUNT datasets, eval jobs and edits one second apart; return their ids, oldest first."""
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    ids: dict[str, list[str]] = {"/datasets": [], "/eval-jobs": [], "/edits": []}
    with session_scope(settings.resolved_database_url) as session:
        for index in range(COUNT):
            created = start + dt.timedelta(seconds=index)
            dataset = Dataset(
                tenant_id=tenant_id, name=f"d{index}", format="parquet", storage_key="none", size_bytes=1,
                sha256="0" * 64, session_count=1, turn_count=1, target_count=1, created_at=created,
            )  # fmt: skip
            session.add(dataset)
            session.flush()
            job = EvalJob(
                tenant_id=tenant_id, dataset_id=dataset.id, model="tiny", setting="single-turn", steps=2,
                seed=0, status="failed" if index == 0 else "queued", created_at=created,
            )  # fmt: skip
            edit = Edit(
                tenant_id=tenant_id, model="unserved-model", instruction="x", steps=2, guidance_scale=7.5,
                image_guidance_scale=1.5, seed=1, input_key="none", input_width=8, input_height=8,
                status="failed" if index == 0 else "queued", created_at=created,
            )  # fmt: skip
            session.add_all([job, edit])
            session.flush()
            ids["/datasets"].append(str(dataset.id))
            ids["/eval-jobs"].append(str(job.id))
            ids["/edits"].append(str(edit.id))
    return ids


@pytest.fixture(scope="module")
def owner(settings):
    tenant_id, headers = new_tenant(settings, "lists-owner")
    return {"headers": headers, "ids": insert_rows(settings, tenant_id)}


@pytest.fixture(scope="module")
def outsider(settings):
    return new_tenant(settings, "lists-outsider")[1]


def list_all(client, path: str, headers: dict[str, str], **params) -> list[str]:
    ids, cursor = [], None
    while True:
        query = {"limit": 2, **params, **({"cursor": cursor} if cursor else {})}
        page = client.get(path, headers=headers, params=query).json()
        ids.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return ids


PATHS = ["/datasets", "/eval-jobs", "/edits"]


@pytest.mark.parametrize("path", PATHS)
def test_list_first_page_has_limit(client, owner, path):
    page = client.get(path, headers=owner["headers"], params={"limit": 2}).json()
    assert len(page["items"]) == 2
    assert page["next_cursor"] is not None


@pytest.mark.parametrize("path", PATHS)
def test_list_pages_are_newest_first(client, owner, path):
    assert list_all(client, path, owner["headers"]) == list(reversed(owner["ids"][path]))


@pytest.mark.parametrize("path", PATHS)
def test_list_hides_other_tenant(client, owner, outsider, path):
    assert client.get(path, headers=outsider).json()["items"] == []


@pytest.mark.parametrize("path", ["/eval-jobs", "/edits"])
def test_list_filters_by_status(client, owner, path):
    assert list_all(client, path, owner["headers"], status="failed") == [owner["ids"][path][0]]


@pytest.mark.parametrize("path", PATHS)
def test_list_rejects_bad_cursor(client, owner, path):
    response = client.get(path, headers=owner["headers"], params={"cursor": "not-a-cursor"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_cursor"


@pytest.mark.parametrize("path", PATHS)
def test_list_needs_key(client, path):
    assert client.get(path).status_code == 401
