"""The FastAPI gateway: `create_app(settings)` builds it; `app` is the instance uvicorn serves.

This module and everything it imports stay free of torch, diffusers and rl4pix_core model code,
which only the workers load.
"""

from __future__ import annotations

import logging
import time
import uuid

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.broker import build_celery_client
from service.errors import error_response, install_error_handlers
from service.limits import BodyLimitMiddleware
from service.metrics import HTTP_LATENCY, HTTP_REQUESTS
from service.routes import adapters, datasets, edits, eval_jobs, files, health, train_jobs
from service.settings import Settings, get_settings
from service.storage import StorageError

logger = logging.getLogger(__name__)


class RequestLogMiddleware:
    """Log one line per request (method, route, status, duration, tenant) and record the metrics."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = uuid.uuid4().hex[:16]
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            HTTP_REQUESTS.labels(scope["method"], route, str(status)).inc()
            HTTP_LATENCY.labels(scope["method"], route).observe(elapsed)
            state = scope.get("state") or {}
            logger.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 1),
                    "tenant_id": state.get("tenant_id"),
                },
            )


def _body_limit_for(settings: Settings):
    def limit_for(path: str) -> int:
        if path == "/edit":
            return settings.max_upload_bytes
        if path == "/datasets":
            return settings.max_dataset_bytes
        return settings.max_json_bytes

    return limit_for


async def _storage_error_handler(request, error: StorageError):
    logger.error("storage unavailable", extra={"path": request.url.path, "error": str(error)})
    return error_response(503, "storage_unavailable", "object storage is unreachable; retry later")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="rl4pix",
        version="0.1.0",
        description="Instruction-guided image editing (InstructPix2Pix) with PPO-trained LoRA adapters.",
    )
    app.state.settings = settings
    app.state.celery = build_celery_client(settings)
    install_error_handlers(app)
    app.add_exception_handler(StorageError, _storage_error_handler)
    for module in (edits, datasets, train_jobs, eval_jobs, adapters, health, files):
        app.include_router(module.router)
    app.add_middleware(BodyLimitMiddleware, limit_for=_body_limit_for(settings))
    app.add_middleware(RequestLogMiddleware)
    return app


_default_app: FastAPI | None = None


def __getattr__(name: str) -> FastAPI:
    # `uvicorn service.app:app` gets an app built from the environment on first access, so that
    # importing this module (tests, the CLI) reads no settings.
    global _default_app
    if name != "app":
        raise AttributeError(name)
    if _default_app is None:
        _default_app = create_app()
    return _default_app
