"""Tenant-scoped lookups shared by the routes: another tenant's id reads as not found."""

from __future__ import annotations

import uuid
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.errors import ApiError, not_found
from service.models import Adapter, Dataset, Tenant
from service.settings import Settings

Row = TypeVar("Row")


def parse_id(value: str | None) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return None


def get_owned(session: Session, model: type[Row], raw_id: str, tenant: Tenant, resource: str) -> Row:
    """Return the row with `raw_id` that belongs to `tenant`; 404 for a malformed, unknown or foreign id."""
    row_id = parse_id(raw_id)
    row = (
        session.scalar(select(model).where(model.id == row_id, model.tenant_id == tenant.id))
        if row_id
        else None
    )
    if row is None:
        raise not_found(resource, raw_id)
    return row


def resolve_model(settings: Settings, model: str | None, field: str = "model") -> str:
    """Return `model` or the default one; 4xx when it is not in the allowed list."""
    name = (model or "").strip() or settings.default_model
    if name not in settings.allowed_models:
        allowed = ", ".join(settings.allowed_models)
        raise ApiError(422, "unknown_model", f"{field}: unknown model {name!r}; allowed: {allowed}", field)
    return name


def resolve_adapter(
    session: Session, settings: Settings, tenant: Tenant, adapter_id: str | None, model: str | None
) -> tuple[str, Adapter | None]:
    """Return the model to run and the adapter, checking that the adapter exists and fits the model."""
    if adapter_id is None or adapter_id == "":
        return resolve_model(settings, model), None
    row_id = parse_id(adapter_id)
    adapter = (
        session.scalar(select(Adapter).where(Adapter.id == row_id, Adapter.tenant_id == tenant.id))
        if row_id
        else None
    )
    if adapter is None:
        raise ApiError(422, "unknown_adapter", f"adapter_id: adapter {adapter_id!r} not found", "adapter_id")
    resolved = resolve_model(settings, model or adapter.model)
    if resolved != adapter.model:
        raise ApiError(
            422,
            "adapter_model_mismatch",
            f"adapter_id: adapter {adapter_id} was trained on {adapter.model!r}, not {resolved!r}",
            "adapter_id",
        )
    return resolved, adapter


def get_dataset_for(session: Session, tenant: Tenant, dataset_id: str) -> Dataset:
    row_id = parse_id(dataset_id)
    dataset = (
        session.scalar(select(Dataset).where(Dataset.id == row_id, Dataset.tenant_id == tenant.id))
        if row_id
        else None
    )
    if dataset is None:
        raise ApiError(422, "unknown_dataset", f"dataset_id: dataset {dataset_id!r} not found", "dataset_id")
    return dataset
