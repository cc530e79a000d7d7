"""API keys: generated once, shown once, stored as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import logging
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.models import ApiKey, Tenant, utcnow

logger = logging.getLogger(__name__)

KEY_PREFIX = "rl4p_"
# The stored prefix lets an operator tell keys apart without keeping anything secret.
DISPLAY_PREFIX_CHARS = 12


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def get_or_create_tenant(session: Session, name: str) -> Tenant:
    tenant = session.scalar(select(Tenant).where(Tenant.name == name))
    if tenant is None:
        tenant = Tenant(name=name)
        session.add(tenant)
        session.flush()
        logger.info("created tenant", extra={"tenant_id": str(tenant.id), "tenant": name})
    return tenant


def create_api_key(session: Session, tenant_name: str) -> tuple[Tenant, str]:
    """Create a key for `tenant_name` (creating the tenant if needed) and return it in clear text."""
    tenant = get_or_create_tenant(session, tenant_name)
    key = generate_key()
    record = ApiKey(tenant_id=tenant.id, key_hash=hash_key(key), prefix=key[:DISPLAY_PREFIX_CHARS])
    session.add(record)
    session.flush()
    logger.info("created API key", extra={"tenant_id": str(tenant.id), "key_id": str(record.id)})
    return tenant, key


def revoke_api_key(session: Session, key_prefix: str) -> int:
    """Revoke every active key whose display prefix is `key_prefix`; return how many were revoked."""
    keys = session.scalars(
        select(ApiKey).where(ApiKey.prefix == key_prefix, ApiKey.revoked_at.is_(None))
    ).all()
    for record in keys:
        record.revoked_at = utcnow()
        logger.info("revoked API key", extra={"tenant_id": str(record.tenant_id), "key_id": str(record.id)})
    return len(keys)


def authenticate(session: Session, key: str) -> Tenant | None:
    """Return the tenant of an active key, or None."""
    statement = (
        select(Tenant)
        .join(ApiKey, ApiKey.tenant_id == Tenant.id)
        .where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None))
    )
    return session.scalar(statement)
