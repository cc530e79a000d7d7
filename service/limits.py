"""Request body caps, enforced before a body is read whole.

The middleware rejects a declared `Content-Length` above the route's cap with 413 before reading,
and counts the bytes of a streamed (chunked) body as they arrive, raising 413 once the cap is passed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)


class BodyTooLargeError(HTTPException):
    def __init__(self, limit: int):
        super().__init__(413, f"request body is larger than the {limit}-byte limit of this endpoint")
        self.limit = limit


def _json_error(status: int, code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "field": None}}).encode()


async def _send_error(send: Send, status: int, code: str, message: str) -> None:
    body = _json_error(status, code, message)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            return int(value)
    return None


class BodyLimitMiddleware:
    """Cap each request body at `limit_for(path)` bytes."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]):
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        try:
            declared = _declared_length(scope)
        except ValueError:
            await _send_error(send, 400, "invalid_header", "Content-Length is not an integer")
            return
        if declared is not None and declared > limit:
            logger.info(
                "request body rejected", extra={"path": scope["path"], "bytes": declared, "limit": limit}
            )
            await _send_error(send, 413, "payload_too_large", str(BodyTooLargeError(limit).detail))
            return

        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLargeError as error:
            logger.info("streamed request body rejected", extra={"path": scope["path"], "limit": limit})
            if not response_started:
                await _send_error(send, 413, "payload_too_large", str(error.detail))
