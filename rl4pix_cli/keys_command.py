"""The `rl4pix keys` command: create and revoke API keys of the service."""

from __future__ import annotations

import argparse


def _create(args: argparse.Namespace) -> int:
    from service.auth import create_api_key
    from service.db import session_scope
    from service.settings import get_settings

    with session_scope(get_settings().resolved_database_url) as session:
        tenant, key = create_api_key(session, args.tenant)
        tenant_id = tenant.id
    # The key is shown once; only its SHA-256 hash is stored.
    print(key)
    print(f"tenant {args.tenant} ({tenant_id}): store this key now, it cannot be shown again", flush=True)
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from service.auth import DISPLAY_PREFIX_CHARS, revoke_api_key
    from service.db import session_scope
    from service.settings import get_settings

    with session_scope(get_settings().resolved_database_url) as session:
        count = revoke_api_key(session, args.key[:DISPLAY_PREFIX_CHARS])
    print(f"revoked {count} key(s)")
    return 0 if count else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("keys", help="create or revoke API keys of the REST service")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a key for a tenant (created if new) and print it once")
    create.add_argument("--tenant", required=True, help="tenant name, for example acme")
    create.set_defaults(handler=_create)
    revoke = actions.add_parser("revoke", help="revoke a key, given the key or its first 12 characters")
    revoke.add_argument("key", help="the key, or its first 12 characters")
    revoke.set_defaults(handler=_revoke)
