"""Typed FastAPI dependencies: settings, database session, storage, broker client, current tenant."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from celery import Celery
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from service import auth
from service.db import session_factory
from service.errors import ApiError
from service.models import Tenant
from service.settings import Settings
from service.storage import LocalStorage, S3Storage, get_storage

_CHALLENGE = {"WWW-Authenticate": "Bearer"}
_bearer = HTTPBearer(auto_error=False, description="API key created with `rl4pix keys create --tenant NAME`")


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def get_session(settings: SettingsDep) -> Iterator[Session]:
    session = session_factory(settings.resolved_database_url)()
    try:
        yield session
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]


def get_app_storage(settings: SettingsDep) -> LocalStorage | S3Storage:
    return get_storage(settings)


StorageDep = Annotated[LocalStorage | S3Storage, Depends(get_app_storage)]


def get_celery(request: Request) -> Celery:
    return request.app.state.celery


CeleryDep = Annotated[Celery, Depends(get_celery)]


def current_tenant(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Tenant:
    """Return the tenant of the request's bearer key; 401 when the key is missing or unknown."""
    header = request.headers.get("authorization", "").strip()
    scheme = header.split(maxsplit=1)[0] if header else ""
    if scheme and scheme.lower() != "bearer":
        # HTTPBearer returns None for other schemes, which would read as a missing key.
        raise ApiError(
            401,
            "unauthorized",
            f"Authorization must use the Bearer scheme, not {scheme}: send `Authorization: Bearer <key>`",
            headers=_CHALLENGE,
        )
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise ApiError(
            401, "unauthorized", "missing API key: send `Authorization: Bearer <key>`", headers=_CHALLENGE
        )
    tenant = auth.authenticate(session, credentials.credentials)
    if tenant is None:
        raise ApiError(401, "unauthorized", "invalid or revoked API key", headers=_CHALLENGE)
    request.state.tenant_id = str(tenant.id)
    return tenant


TenantDep = Annotated[Tenant, Depends(current_tenant)]
