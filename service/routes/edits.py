"""Edit resources: POST /edit, GET /edits/{id}, its image and attention overlay, and cancel."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import secrets
import time
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Header, Query, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from service import broker, jobstate
from service.deps import CeleryDep, SessionDep, SettingsDep, StorageDep, TenantDep
from service.enqueue import enqueue_or_fail
from service.errors import EMPTY_INSTRUCTION_MESSAGE, ApiError, ErrorBody
from service.images import ImageInfo, validate_image
from service.lookups import get_owned, resolve_adapter
from service.metrics import JOBS_CREATED
from service.models import TERMINAL_STATUSES, Edit, EditStatus, Tenant, utcnow
from service.pagination import CursorQuery, LimitQuery, newest_first_page
from service.schemas import EditOut, EditPage
from service.settings import Settings
from service.storage import ObjectNotFoundError, object_key
from service.views import edit_out

logger = logging.getLogger(__name__)
router = APIRouter(tags=["edits"])

MAX_SEED = 2**32 - 1
ERROR_RESPONSES = {
    400: {"model": ErrorBody, "description": "unreadable upload"},
    401: {"model": ErrorBody, "description": "missing or invalid API key"},
    404: {"model": ErrorBody, "description": "unknown id"},
    413: {"model": ErrorBody, "description": "upload above the size or pixel limit"},
    422: {"model": ErrorBody, "description": "invalid field"},
    503: {"model": ErrorBody, "description": "broker or storage unavailable"},
}
_WAIT_PREFERENCE = re.compile(r"(?:^|[,;\s])wait\s*=\s*\"?(\d+(?:\.\d+)?)\"?", re.IGNORECASE)


@dataclasses.dataclass
class EditParameters:
    instruction: str
    model: str | None
    adapter_id: str | None
    steps: int | None
    guidance_scale: float
    image_guidance_scale: float
    seed: int | None
    return_attention: bool


@dataclasses.dataclass
class ValidatedUploads:
    image: bytes
    image_info: ImageInfo
    mask: bytes | None
    mask_info: ImageInfo | None


def wait_seconds(prefer: str | None, settings: Settings) -> float:
    """Return the wait requested by `Prefer: wait=N`, capped at the configured maximum."""
    if prefer:
        match = _WAIT_PREFERENCE.search(prefer)
        if match:
            return min(float(match.group(1)), settings.max_wait_seconds)
        if "respond-async" in prefer.lower():
            return 0.0
    return min(settings.default_wait_seconds, settings.max_wait_seconds)


def _validate_parameters(params: EditParameters, settings: Settings) -> tuple[str, int]:
    instruction = params.instruction.strip()
    if not instruction:
        raise ApiError(422, "invalid_instruction", EMPTY_INSTRUCTION_MESSAGE, "instruction")
    if len(instruction) > settings.max_instruction_chars:
        raise ApiError(
            422,
            "invalid_instruction",
            f"instruction: {len(instruction)} characters, above the limit of {settings.max_instruction_chars}",
            "instruction",
        )
    steps = params.steps if params.steps is not None else settings.default_steps
    if not 1 <= steps <= settings.max_steps:
        raise ApiError(422, "invalid_steps", f"steps: {steps} is outside 1..{settings.max_steps}", "steps")
    return instruction, steps


def _validate_uploads(image: bytes, mask: bytes | None, settings: Settings) -> ValidatedUploads:
    image_info = validate_image(image, "image", settings.max_image_pixels)
    mask_info = validate_image(mask, "mask", settings.max_image_pixels) if mask is not None else None
    return ValidatedUploads(image=image, image_info=image_info, mask=mask, mask_info=mask_info)


def _insert_edit(
    session: Session,
    storage: StorageDep,
    tenant: Tenant,
    params: EditParameters,
    uploads: ValidatedUploads,
    model: str,
    adapter_id: uuid.UUID | None,
    instruction: str,
    steps: int,
) -> Edit:
    edit_id = uuid.uuid4()
    input_key = object_key(tenant.id, "edits", edit_id, "input")
    storage.put_bytes(input_key, uploads.image, "image/" + uploads.image_info.format.lower())
    mask_key = None
    if uploads.mask is not None:
        mask_key = object_key(tenant.id, "edits", edit_id, "mask")
        storage.put_bytes(mask_key, uploads.mask, "image/" + uploads.mask_info.format.lower())
    edit = Edit(
        id=edit_id,
        tenant_id=tenant.id,
        status=EditStatus.queued.value,
        model=model,
        adapter_id=adapter_id,
        instruction=instruction,
        steps=steps,
        guidance_scale=params.guidance_scale,
        image_guidance_scale=params.image_guidance_scale,
        seed=params.seed if params.seed is not None else secrets.randbelow(MAX_SEED + 1),
        return_attention=params.return_attention,
        input_key=input_key,
        mask_key=mask_key,
        input_width=uploads.image_info.width,
        input_height=uploads.image_info.height,
        mask_width=uploads.mask_info.width if uploads.mask_info else None,
        mask_height=uploads.mask_info.height if uploads.mask_info else None,
        created_at=utcnow(),
    )
    session.add(edit)
    session.commit()
    return edit


def _create_edit(
    session: Session,
    settings: Settings,
    storage: StorageDep,
    celery: CeleryDep,
    tenant: Tenant,
    params: EditParameters,
    image: bytes,
    mask: bytes | None,
) -> Edit:
    """Validate everything, then store the uploads, insert the row and send the message."""
    instruction, steps = _validate_parameters(params, settings)
    model, adapter = resolve_adapter(session, settings, tenant, params.adapter_id, params.model)
    uploads = _validate_uploads(image, mask, settings)
    edit = _insert_edit(
        session, storage, tenant, params, uploads, model, adapter.id if adapter else None, instruction, steps
    )
    JOBS_CREATED.labels("edit").inc()
    logger.info("edit queued", extra={"edit_id": str(edit.id), "tenant_id": str(tenant.id), "model": model})
    enqueue_or_fail(session, celery, Edit, broker.EDIT_TASK, edit)
    return edit


def _reload_edit(session: Session, edit_id: uuid.UUID) -> Edit:
    session.expire_all()
    return session.get(Edit, edit_id)


async def _wait_for_edit(session: Session, edit: Edit, seconds: float, poll: float) -> Edit:
    deadline = time.monotonic() + seconds
    while edit.status not in TERMINAL_STATUSES and time.monotonic() < deadline:
        await asyncio.sleep(min(poll, max(deadline - time.monotonic(), 0)))
        edit = await run_in_threadpool(_reload_edit, session, edit.id)
    return edit


@router.post(
    "/edit",
    operation_id="create_edit",
    response_model=EditOut,
    status_code=200,
    responses={
        202: {"model": EditOut, "description": "accepted; poll the Location header"},
        **ERROR_RESPONSES,
    },
    summary="Edit an image by an instruction",
)
async def create_edit(
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    celery: CeleryDep,
    tenant: TenantDep,
    image: Annotated[UploadFile, File(description="PNG, JPEG or WebP image to edit")],
    instruction: Annotated[str, Form(description="edit instruction, e.g. 'make the sky purple'")],
    mask: Annotated[UploadFile | None, File(description="optional mask, white = region to edit")] = None,
    model: Annotated[str | None, Form(max_length=300)] = None,
    adapter_id: Annotated[str | None, Form(max_length=64)] = None,
    steps: Annotated[int | None, Form(ge=1, le=1000)] = None,
    guidance_scale: Annotated[float, Form(ge=0.0, le=50.0)] = 7.5,
    image_guidance_scale: Annotated[float, Form(ge=0.0, le=50.0)] = 1.5,
    seed: Annotated[
        int | None, Form(ge=0, le=MAX_SEED, description="random seed; generated when absent")
    ] = None,
    return_attention: Annotated[bool, Form()] = False,
    prefer: Annotated[str | None, Header(description="`wait=N`: seconds to wait for the result")] = None,
) -> EditOut:
    params = EditParameters(
        instruction, model, adapter_id, steps, guidance_scale, image_guidance_scale, seed, return_attention
    )
    image_bytes = await image.read()
    mask_bytes = await mask.read() if mask is not None else None
    edit = await run_in_threadpool(
        _create_edit, session, settings, storage, celery, tenant, params, image_bytes, mask_bytes
    )
    wait = wait_seconds(prefer, settings)
    edit = await _wait_for_edit(session, edit, wait, settings.wait_poll_seconds)
    response.headers["Preference-Applied"] = f"wait={wait:g}"
    if edit.status not in TERMINAL_STATUSES:
        response.status_code = 202
        response.headers["Location"] = f"/edits/{edit.id}"
    return edit_out(edit)


@router.get("/edits", operation_id="list_edits", response_model=EditPage, responses=ERROR_RESPONSES)
def list_edits(
    session: SessionDep,
    tenant: TenantDep,
    status: Annotated[
        Literal["queued", "running", "succeeded", "failed", "cancelled"] | None,
        Query(description="only edits in this state"),
    ] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> EditPage:
    """List the tenant's edits, newest first."""
    statement = select(Edit).where(Edit.tenant_id == tenant.id)
    if status is not None:
        statement = statement.where(Edit.status == status)
    page, next_cursor = newest_first_page(session, statement, Edit, limit, cursor)
    return EditPage(items=[edit_out(row) for row in page], next_cursor=next_cursor)


@router.get("/edits/{edit_id}", operation_id="get_edit", response_model=EditOut, responses=ERROR_RESPONSES)
def get_edit(edit_id: str, session: SessionDep, tenant: TenantDep) -> EditOut:
    return edit_out(get_owned(session, Edit, edit_id, tenant, "edit"))


def _stream_object(storage: StorageDep, key: str | None, edit: Edit, artifact: str) -> StreamingResponse:
    if key is None:
        if edit.status in TERMINAL_STATUSES:
            raise ApiError(404, "not_found", f"edit {edit.id} has no {artifact}")
        raise ApiError(
            409, "not_ready", f"edit {edit.id} is {edit.status}; the {artifact} exists once it has succeeded"
        )
    try:
        chunks = storage.iter_chunks(key)
    except ObjectNotFoundError as error:
        raise ApiError(
            404, "not_found", f"the {artifact} of edit {edit.id} is missing from storage"
        ) from error
    return StreamingResponse(chunks, media_type="image/png")


_IMAGE_RESPONSES = {
    200: {"content": {"image/png": {}}, "description": "PNG image"},
    409: {"model": ErrorBody},
}


@router.get(
    "/edits/{edit_id}/image",
    operation_id="get_edit_image",
    response_class=StreamingResponse,
    responses={**ERROR_RESPONSES, **_IMAGE_RESPONSES},
)
def get_edit_image(
    edit_id: str, session: SessionDep, storage: StorageDep, tenant: TenantDep
) -> StreamingResponse:
    edit = get_owned(session, Edit, edit_id, tenant, "edit")
    return _stream_object(storage, edit.output_key, edit, "image")


@router.get(
    "/edits/{edit_id}/attention",
    operation_id="get_edit_attention",
    response_class=StreamingResponse,
    responses={**ERROR_RESPONSES, **_IMAGE_RESPONSES},
)
def get_edit_attention(
    edit_id: str, session: SessionDep, storage: StorageDep, tenant: TenantDep
) -> StreamingResponse:
    edit = get_owned(session, Edit, edit_id, tenant, "edit")
    if not edit.return_attention:
        raise ApiError(
            404,
            "not_found",
            f"edit {edit.id} was requested without return_attention=true, so it has no attention overlay; "
            "send return_attention=true with POST /edit to get one",
        )
    return _stream_object(storage, edit.attention_key, edit, "attention overlay")


@router.post(
    "/edits/{edit_id}/cancel",
    operation_id="cancel_edit",
    response_model=EditOut,
    responses={
        **ERROR_RESPONSES,
        409: {"model": ErrorBody, "description": "the edit already started or finished"},
    },
)
def cancel_edit(edit_id: str, session: SessionDep, tenant: TenantDep) -> EditOut:
    """Cancel a queued edit. An edit that a worker has started runs to its end."""
    edit = get_owned(session, Edit, edit_id, tenant, "edit")
    changed = jobstate.transition(
        session, Edit, edit.id, EditStatus.queued.value, EditStatus.cancelled.value, finished_at=utcnow()
    )
    session.commit()
    edit = _reload_edit(session, edit.id)
    if not changed and edit.status != EditStatus.cancelled.value:
        raise ApiError(
            409, "not_cancellable", f"edit {edit.id} is {edit.status}; only a queued edit can be cancelled"
        )
    return edit_out(edit)
