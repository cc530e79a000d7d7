"""Adapter resources: the LoRA weights of succeeded training jobs."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from service.deps import SessionDep, TenantDep
from service.errors import ErrorBody
from service.lookups import get_owned
from service.models import Adapter
from service.schemas import AdapterList, AdapterOut
from service.views import adapter_out

router = APIRouter(tags=["adapters"])
ERROR_RESPONSES = {401: {"model": ErrorBody}, 404: {"model": ErrorBody}, 422: {"model": ErrorBody}}


@router.get("/adapters", operation_id="list_adapters", response_model=AdapterList, responses=ERROR_RESPONSES)
def list_adapters(session: SessionDep, tenant: TenantDep) -> AdapterList:
    rows = session.scalars(
        select(Adapter).where(Adapter.tenant_id == tenant.id).order_by(Adapter.created_at.desc()).limit(500)
    ).all()
    return AdapterList(items=[adapter_out(row) for row in rows])


@router.get(
    "/adapters/{adapter_id}", operation_id="get_adapter", response_model=AdapterOut, responses=ERROR_RESPONSES
)
def get_adapter(adapter_id: str, session: SessionDep, tenant: TenantDep) -> AdapterOut:
    return adapter_out(get_owned(session, Adapter, adapter_id, tenant, "adapter"))
