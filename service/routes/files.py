"""Signed downloads of the local storage backend (embedded mode), streamed through the gateway.

With the S3 backend, download links are S3 presigned URLs and this route returns 404.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from service.deps import StorageDep
from service.errors import ApiError, ErrorBody
from service.storage import LocalStorage, ObjectNotFoundError

logger = logging.getLogger(__name__)
router = APIRouter(tags=["files"])


@router.get(
    "/files/{key:path}",
    operation_id="download_file",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}},
        403: {"model": ErrorBody, "description": "signature invalid or link expired"},
        404: {"model": ErrorBody},
        422: {"model": ErrorBody},
    },
)
def download_file(
    key: str,
    storage: StorageDep,
    expires: Annotated[int, Query(ge=0, le=2**40)],
    signature: Annotated[str, Query(max_length=128)],
) -> StreamingResponse:
    if not isinstance(storage, LocalStorage):
        raise ApiError(404, "not_found", "file links are served by the object storage, not the gateway")
    if not storage.verify_link(key, expires, signature):
        logger.info("download link rejected", extra={"expires": expires})
        raise ApiError(
            403, "invalid_signature", "the download link is invalid or has expired; request a new one"
        )
    try:
        chunks = storage.iter_chunks(key)
    except (ObjectNotFoundError, ValueError) as error:
        raise ApiError(404, "not_found", "the file no longer exists") from error
    filename = key.rsplit("/", 1)[-1]
    return StreamingResponse(
        chunks,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
