"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from service.broker import check_broker
from service.deps import CeleryDep, SessionDep, StorageDep
from service.schemas import HealthOut, ReadyOut

logger = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="get_health", response_model=HealthOut)
def healthz() -> HealthOut:
    """Return ok while the process serves requests."""
    return HealthOut(status="ok")


def _check(name: str, probe) -> str:
    try:
        probe()
    except Exception as error:  # each backend raises its own classes; any of them means "not ready"
        logger.warning(
            "readiness check failed", extra={"check": name, "error": f"{type(error).__name__}: {error}"}
        )
        return f"failed: {type(error).__name__}"
    return "ok"


@router.get(
    "/readyz",
    operation_id="get_readiness",
    response_model=ReadyOut,
    responses={503: {"model": ReadyOut, "description": "a dependency is unreachable"}},
)
def readyz(response: Response, session: SessionDep, storage: StorageDep, celery: CeleryDep) -> ReadyOut:
    """Check that the database, the broker and the object storage are reachable; 503 otherwise."""
    checks = {
        "database": _check("database", lambda: session.execute(text("SELECT 1"))),
        "broker": _check("broker", lambda: check_broker(celery)),
        "storage": _check("storage", storage.check),
    }
    ready = all(value == "ok" for value in checks.values())
    if not ready:
        response.status_code = 503
    return ReadyOut(status="ready" if ready else "not_ready", checks=checks)


@router.get(
    "/metrics",
    operation_id="get_metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
