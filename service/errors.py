"""The JSON error body of every 4xx and 5xx response, and the handlers that produce it.

Body: `{"error": {"code": "...", "message": "...", "field": "..." | null}}`.
"""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.metrics import REJECTED_REQUESTS

logger = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class ApiError(Exception):
    """An error returned to the client as-is: status, machine-readable code, message and field."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers


def not_found(resource: str, resource_id: object) -> ApiError:
    return ApiError(404, "not_found", f"{resource} {resource_id} not found", None)


def error_response(
    status_code: int, code: str, message: str, field: str | None = None, headers=None
) -> JSONResponse:
    body = ErrorBody(error=ErrorDetail(code=code, message=message, field=field))
    return JSONResponse(status_code=status_code, content=body.model_dump(), headers=headers)


_LOCATION_ROOTS = {"body", "query", "path", "header", "cookie"}


def _field_name(location: tuple) -> str | None:
    parts = [str(part) for part in location if str(part) not in _LOCATION_ROOTS]
    return ".".join(parts) or None


async def _api_error_handler(request: Request, error: ApiError) -> JSONResponse:
    logger.info(
        "request rejected",
        extra={
            "code": error.code,
            "field": error.field,
            "status": error.status_code,
            "path": request.url.path,
        },
    )
    REJECTED_REQUESTS.labels(error.code).inc()
    return error_response(error.status_code, error.code, error.message, error.field, error.headers)


EMPTY_INSTRUCTION_MESSAGE = (
    "instruction must not be empty: describe the edit in words, for example 'make the sky purple'"
)
_BOUND_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number"}


def _is_non_finite(value: object) -> bool:
    try:
        return not math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return False


def _describe_validation_error(request: Request, detail: dict) -> tuple[str, str, str | None]:
    """Return (code, message, field) for pydantic's first error on a request."""
    location = tuple(detail.get("loc", ()))
    error_type = detail.get("type")
    if error_type == "json_invalid":
        position = location[1] if len(location) > 1 else "?"
        reason = (detail.get("ctx") or {}).get("error", "JSON decode error")
        return "validation_error", f"body: not valid JSON ({reason} at character {position})", "body"
    if location == ("body",) and error_type == "model_attributes_type":
        content_type = request.headers.get("content-type", "none")
        return (
            "validation_error",
            f"body must be a JSON object sent with Content-Type: application/json, not {content_type}",
            "body",
        )
    field = _field_name(location)
    if field == "instruction" and error_type in ("missing", "string_too_short"):
        # An empty form value arrives as a missing field, so both get the same message.
        return "invalid_instruction", EMPTY_INSTRUCTION_MESSAGE, field
    if error_type in _BOUND_ERRORS and _is_non_finite(detail.get("input")):
        return "validation_error", f"{field}: must be a finite number, got {detail.get('input')}", field
    message = f"{field}: {detail.get('msg')}" if field else str(detail.get("msg"))
    return "validation_error", message, field


async def _validation_handler(request: Request, error: RequestValidationError) -> JSONResponse:
    first = error.errors()[0] if error.errors() else {"loc": (), "msg": "invalid request"}
    code, message, field = _describe_validation_error(request, first)
    logger.info("request validation failed", extra={"field": field, "path": request.url.path})
    REJECTED_REQUESTS.labels(code).inc()
    return error_response(422, code, message, field)


async def _http_error_handler(request: Request, error: StarletteHTTPException) -> JSONResponse:
    codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large", 401: "unauthorized"}
    code = codes.get(error.status_code, "http_error")
    return error_response(error.status_code, code, str(error.detail), headers=getattr(error, "headers", None))


async def _unexpected_error_handler(request: Request, error: Exception) -> JSONResponse:
    logger.exception("unhandled error", extra={"path": request.url.path})
    return error_response(500, "internal_error", "internal error; the request was logged")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
    app.add_exception_handler(Exception, _unexpected_error_handler)
