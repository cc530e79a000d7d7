"""Dataset resources: upload a MagicBrush zip or parquet file, and read its summary."""

from __future__ import annotations

import hashlib
import logging
import uuid
from typing import IO, Annotated

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select

from service.dataset_validation import validate_dataset
from service.deps import SessionDep, SettingsDep, StorageDep, TenantDep
from service.errors import ErrorBody
from service.lookups import get_owned
from service.models import Dataset, utcnow
from service.pagination import CursorQuery, LimitQuery, newest_first_page
from service.schemas import DatasetOut, DatasetPage
from service.storage import object_key
from service.views import dataset_out

logger = logging.getLogger(__name__)
router = APIRouter(tags=["datasets"])

ERROR_RESPONSES = {
    400: {"model": ErrorBody},
    401: {"model": ErrorBody},
    404: {"model": ErrorBody},
    413: {"model": ErrorBody},
    422: {"model": ErrorBody},
    503: {"model": ErrorBody},
}
_FILE_NAMES = {"magicbrush-zip": "dataset.zip", "parquet": "dataset.parquet"}


def _sha256(stream: IO[bytes]) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    stream.seek(0)
    while chunk := stream.read(1024 * 1024):
        digest.update(chunk)
        size += len(chunk)
    stream.seek(0)
    return digest.hexdigest(), size


def _store_dataset(session, settings, storage, tenant, stream: IO[bytes], name: str) -> Dataset:
    summary = validate_dataset(stream, settings)
    sha256, size = _sha256(stream)
    dataset_id = uuid.uuid4()
    key = object_key(tenant.id, "datasets", dataset_id, _FILE_NAMES[summary.format])
    content_type = (
        "application/zip" if summary.format == "magicbrush-zip" else "application/vnd.apache.parquet"
    )
    storage.put_stream(key, stream, content_type)
    dataset = Dataset(
        id=dataset_id,
        tenant_id=tenant.id,
        name=name,
        format=summary.format,
        storage_key=key,
        size_bytes=size,
        sha256=sha256,
        session_count=summary.session_count,
        turn_count=summary.turn_count,
        target_count=summary.target_count,
        created_at=utcnow(),
    )
    session.add(dataset)
    session.commit()
    logger.info(
        "dataset stored",
        extra={
            "dataset_id": str(dataset_id),
            "tenant_id": str(tenant.id),
            "bytes": size,
            "format": summary.format,
        },
    )
    return dataset


@router.post(
    "/datasets",
    operation_id="create_dataset",
    response_model=DatasetOut,
    status_code=201,
    responses=ERROR_RESPONSES,
    summary="Upload a MagicBrush dataset (zip of the folder layout, or parquet)",
)
async def create_dataset(
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    tenant: TenantDep,
    file: Annotated[UploadFile, File(description="zip of edit_sessions.json + images/, or a parquet file")],
    name: Annotated[str | None, Form(max_length=200)] = None,
) -> DatasetOut:
    display_name = (name or "").strip() or (file.filename or "dataset")[:200]
    dataset = await run_in_threadpool(
        _store_dataset, session, settings, storage, tenant, file.file, display_name
    )
    return dataset_out(dataset)


@router.get(
    "/datasets/{dataset_id}", operation_id="get_dataset", response_model=DatasetOut, responses=ERROR_RESPONSES
)
def get_dataset(dataset_id: str, session: SessionDep, tenant: TenantDep) -> DatasetOut:
    return dataset_out(get_owned(session, Dataset, dataset_id, tenant, "dataset"))


@router.get("/datasets", operation_id="list_datasets", response_model=DatasetPage, responses=ERROR_RESPONSES)
def list_datasets(
    session: SessionDep, tenant: TenantDep, limit: LimitQuery = 50, cursor: CursorQuery = None
) -> DatasetPage:
    """List the tenant's datasets, newest first."""
    statement = select(Dataset).where(Dataset.tenant_id == tenant.id)
    page, next_cursor = newest_first_page(session, statement, Dataset, limit, cursor)
    return DatasetPage(items=[dataset_out(row) for row in page], next_cursor=next_cursor)
