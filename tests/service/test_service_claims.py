"""Conditional claims: a job runs once however many messages name it, and batches stay compatible."""

from __future__ import annotations

import uuid

import pytest
from service_testkit import SESSION_TAG

from service.auth import create_api_key
from service.db import session_scope
from service.models import Edit, utcnow
from workers.context import WorkerContext
from workers.edit_tasks import _claim_peers
from workers.jobs import claim, finish


@pytest.fixture(scope="module")
def tenant_id(settings):
    with session_scope(settings.resolved_database_url) as session:
        tenant, _ = create_api_key(session, f"claims-{SESSION_TAG}")
        return tenant.id


def queued_edit(settings, tenant_id, steps: int = 2, model: str = "claims-test-model") -> uuid.UUID:
    with session_scope(settings.resolved_database_url) as session:
        edit = Edit(
            tenant_id=tenant_id,
            model=model,
            instruction="x",
            steps=steps,
            guidance_scale=7.5,
            image_guidance_scale=1.5,
            seed=1,
            input_key="k",
            input_width=8,
            input_height=8,
            status="queued",
            created_at=utcnow(),
        )
        session.add(edit)
        session.flush()
        return edit.id


def test_second_claim_gets_nothing(settings, tenant_id):
    ctx = WorkerContext(settings)
    edit_id = queued_edit(settings, tenant_id)
    assert claim(ctx, Edit, edit_id) == 1
    assert claim(ctx, Edit, edit_id) is None


def test_finish_of_stale_attempt_is_refused(settings, tenant_id):
    ctx = WorkerContext(settings)
    edit_id = queued_edit(settings, tenant_id)
    attempt = claim(ctx, Edit, edit_id)
    assert not finish(ctx, Edit, edit_id, attempt + 1, "succeeded")


def test_batch_takes_only_compatible_edits(settings, tenant_id):
    ctx = WorkerContext(settings.model_copy(update={"edit_batch_size": 3, "edit_batch_window_seconds": 0.0}))
    model = f"batch-model-{uuid.uuid4().hex[:6]}"
    lead = queued_edit(settings, tenant_id, model=model)
    compatible = [queued_edit(settings, tenant_id, model=model) for _ in range(3)]
    other_steps = queued_edit(settings, tenant_id, steps=5, model=model)
    batch = {lead: claim(ctx, Edit, lead)}
    with session_scope(settings.resolved_database_url) as session:
        lead_row = session.get(Edit, lead)
    _claim_peers(ctx, lead_row, batch)
    assert len(batch) == 3
    assert set(batch) - {lead} <= set(compatible)
    assert other_steps not in batch
