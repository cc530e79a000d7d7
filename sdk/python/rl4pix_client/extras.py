"""Helpers on top of the generated rl4pix client: typed errors, job polling, uploads and downloads.

This module is written by hand. `python -m sdk.generate` copies it from `sdk/python_extras/` into
the generated package as `rl4pix_client.extras`; edit it there, not in `sdk/python/`.

    from rl4pix_client.extras import connect, unwrap, wait_for_train_job
    from rl4pix_client.api.train_jobs import get_train_job

    client = connect("http://127.0.0.1:8000")  # API key from RL4PIX_API_KEY
    job = unwrap(get_train_job.sync_detailed("...", client=client))

Every helper takes the generated `AuthenticatedClient` and raises `ApiError` (or a subclass such as
`NotFoundError` for 404 and `InvalidRequestError` for 422) with the server's error code and
message when the gateway rejects a request.
"""

from __future__ import annotations

import hashlib
import io
import json
import mimetypes
import os
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import quote

import httpx

from .api.datasets import create_dataset
from .api.edits import create_edit, get_edit
from .api.eval_jobs import get_eval_job
from .api.train_jobs import get_train_job
from .client import AuthenticatedClient
from .models.body_create_dataset import BodyCreateDataset
from .models.body_create_edit import BodyCreateEdit
from .models.checkpoint_out import CheckpointOut
from .models.dataset_out import DatasetOut
from .models.edit_out import EditOut
from .models.eval_job_out import EvalJobOut
from .models.train_job_out import TrainJobOut
from .types import UNSET, File, Response

__all__ = [
    "API_KEY_ENV",
    "ApiError",
    "AuthenticationError",
    "BadRequestError",
    "ChecksumMismatchError",
    "ConflictError",
    "InvalidRequestError",
    "JobFailedError",
    "JobTimeoutError",
    "NotFoundError",
    "PayloadTooLargeError",
    "ServiceUnavailableError",
    "WaitTimeoutError",
    "connect",
    "download_checkpoint",
    "download_edit_attention",
    "download_edit_image",
    "edit_image",
    "error_from_response",
    "unwrap",
    "upload_dataset",
    "wait_for",
    "wait_for_edit",
    "wait_for_eval_job",
    "wait_for_train_job",
    "write_dataset_zip",
]

API_KEY_ENV = "RL4PIX_API_KEY"
# Job states after which a job never changes again; "cancelling" still runs to its next step.
TERMINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
CHUNK_BYTES = 1024 * 1024
T = TypeVar("T")


# -- errors -------------------------------------------------------------------------------------


class ApiError(Exception):
    """A non-2xx response of the gateway, with the error code, message and field from its body.

    The gateway's error body is `{"error": {"code", "message", "field"}}`. For a response without
    one, such as a proxy's error page, `code` is None and `message` is the start of the body.
    """

    def __init__(self, status_code: int, code: str | None, message: str, field: str | None, content: bytes):
        super().__init__(f"{status_code} {code or 'error'}: {message}")
        self.status_code = status_code
        self.code = code
        self.message = message
        self.field = field
        self.content = content


class BadRequestError(ApiError):
    """400: the upload cannot be read (empty file, unreadable image)."""


class AuthenticationError(ApiError):
    """401: the API key is missing, unknown or revoked."""


class NotFoundError(ApiError):
    """404: no resource of the API key's tenant has this id."""


class ConflictError(ApiError):
    """409: the resource's state does not allow the request (not ready, not cancellable, key reused)."""


class PayloadTooLargeError(ApiError):
    """413: the body or an image exceeds the gateway's size or pixel limit."""


class InvalidRequestError(ApiError):
    """422: a field is invalid; `field` names it and `message` gives the reason."""


class ServiceUnavailableError(ApiError):
    """503: the broker or the object storage is unreachable; retrying later may succeed."""


_ERRORS_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: InvalidRequestError,
    503: ServiceUnavailableError,
}


class JobFailedError(Exception):
    """A job or edit ended as failed or cancelled; `resource` is its last state as returned."""

    def __init__(self, kind: str, resource: Any):
        error = getattr(resource, "error", None)
        self.kind = kind
        self.resource = resource
        self.status = resource.status
        self.code = getattr(error, "code", None)
        self.message = getattr(error, "message", None) or f"the {kind} was {resource.status}"
        super().__init__(f"{kind} {resource.id} {resource.status}: {self.message}")


class WaitTimeoutError(TimeoutError):
    """`wait_for` ran out of time; `last` is the last value that `fetch` returned."""

    def __init__(self, message: str, last: Any):
        super().__init__(message)
        self.last = last


class JobTimeoutError(WaitTimeoutError):
    """A job was still not finished when the wait's timeout ran out; `resource` is its last state."""

    def __init__(self, kind: str, resource: Any, timeout: float):
        super().__init__(
            f"{kind} {resource.id} still {resource.status} after {timeout:g} s; "
            "wait again with a longer timeout or cancel it",
            resource,
        )
        self.kind = kind
        self.resource = resource


class ChecksumMismatchError(Exception):
    """A downloaded file's size or SHA-256 differs from what the gateway listed."""


def error_from_response(status_code: int, content: bytes) -> ApiError:
    """Build the ApiError subclass for `status_code` from a response body."""
    code = field = None
    message = content[:500].decode("utf-8", errors="replace").strip() or f"HTTP {status_code}"
    try:
        detail = json.loads(content)["error"]
        code, message, field = detail["code"], detail["message"], detail.get("field")
    except (ValueError, KeyError, TypeError):
        pass  # not the gateway's error body: keep the raw text as the message
    error_class = _ERRORS_BY_STATUS.get(status_code, ApiError)
    return error_class(status_code, code, message, field, content)


def unwrap(response: Response[Any]) -> Any:
    """Return the parsed body of a 2xx response from a generated `sync_detailed` call.

    Raises the ApiError subclass of the status for any other response.
    """
    status = int(response.status_code)
    if not 200 <= status < 300:
        raise error_from_response(status, response.content)
    return response.parsed


def _raise_for_status(response: httpx.Response) -> None:
    """Raise ApiError for a non-2xx streamed response, reading its body first."""
    if not response.is_success:
        response.read()
        raise error_from_response(response.status_code, response.content)


# -- the client ---------------------------------------------------------------------------------


def connect(base_url: str, api_key: str | None = None, timeout: float = 60.0) -> AuthenticatedClient:
    """Create a client for the gateway at `base_url`; the key defaults to $RL4PIX_API_KEY.

    `timeout` is the read timeout of each request in seconds. It must exceed the `wait` of
    `edit_image`, because the gateway keeps that request open while the edit runs.
    """
    key = api_key or os.environ.get(API_KEY_ENV)
    if not key:
        raise ValueError(
            f"no API key: pass api_key or set {API_KEY_ENV} (create one with `rl4pix keys create`)"
        )
    return AuthenticatedClient(base_url=base_url, token=key, timeout=httpx.Timeout(timeout, connect=10.0))


# -- polling ------------------------------------------------------------------------------------


def wait_for(
    fetch: Callable[[], T],
    is_finished: Callable[[T], bool],
    *,
    timeout: float,
    initial_interval: float = 0.5,
    max_interval: float = 10.0,
    backoff: float = 1.5,
    on_poll: Callable[[T], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `fetch` until `is_finished` holds for its result, and return that result.

    The pause between calls starts at `initial_interval` seconds and grows by `backoff` up to
    `max_interval`. `on_poll` is called with every result. Raises WaitTimeoutError, carrying the last result,
    when `timeout` seconds pass first.
    """
    deadline = time.monotonic() + timeout
    interval = initial_interval
    while True:
        value = fetch()
        if on_poll is not None:
            on_poll(value)
        if is_finished(value):
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeoutError(f"not finished after {timeout:g} s", value)
        sleep(min(interval, remaining))
        interval = min(interval * backoff, max_interval)


def _wait_for_resource(
    kind: str,
    fetch: Callable[[], Any],
    timeout: float,
    on_poll: Callable[[Any], None] | None,
    raise_on_failure: bool,
    **intervals: float,
) -> Any:
    def is_finished(resource: Any) -> bool:
        return resource.status in TERMINAL_STATUSES

    try:
        resource = wait_for(fetch, is_finished, timeout=timeout, on_poll=on_poll, **intervals)
    except WaitTimeoutError as error:
        raise JobTimeoutError(kind, error.last, timeout) from None
    if raise_on_failure and resource.status != "succeeded":
        raise JobFailedError(kind, resource)
    return resource


def wait_for_train_job(
    client: AuthenticatedClient,
    job_id: str,
    *,
    timeout: float = 3600.0,
    on_progress: Callable[[TrainJobOut], None] | None = None,
    raise_on_failure: bool = True,
    **intervals: float,
) -> TrainJobOut:
    """Poll a training job until it succeeds, fails or is cancelled, and return its final state.

    `on_progress` is called with the job after every poll (`job.progress.epoch`, `job.latest_metrics`).
    Raises JobFailedError when it did not succeed (unless `raise_on_failure` is false) and
    JobTimeoutError after `timeout` seconds. `intervals` go to `wait_for`.
    """

    def fetch() -> TrainJobOut:
        return unwrap(get_train_job.sync_detailed(job_id, client=client))

    return _wait_for_resource("train job", fetch, timeout, on_progress, raise_on_failure, **intervals)


def wait_for_eval_job(
    client: AuthenticatedClient,
    job_id: str,
    *,
    timeout: float = 3600.0,
    on_poll: Callable[[EvalJobOut], None] | None = None,
    raise_on_failure: bool = True,
    **intervals: float,
) -> EvalJobOut:
    """Poll an evaluation job until it finishes and return it; errors as in `wait_for_train_job`."""

    def fetch() -> EvalJobOut:
        return unwrap(get_eval_job.sync_detailed(job_id, client=client))

    return _wait_for_resource("eval job", fetch, timeout, on_poll, raise_on_failure, **intervals)


def wait_for_edit(
    client: AuthenticatedClient,
    edit_id: str,
    *,
    timeout: float = 600.0,
    on_poll: Callable[[EditOut], None] | None = None,
    raise_on_failure: bool = True,
    **intervals: float,
) -> EditOut:
    """Poll an edit until it finishes and return it; errors as in `wait_for_train_job`."""

    def fetch() -> EditOut:
        return unwrap(get_edit.sync_detailed(edit_id, client=client))

    return _wait_for_resource("edit", fetch, timeout, on_poll, raise_on_failure, **intervals)


# -- uploads ------------------------------------------------------------------------------------


def write_dataset_zip(folder: str | Path, destination: IO[bytes]) -> int:
    """Zip a MagicBrush folder (edit_sessions.json, images/<id>/...) into `destination`.

    Members are stored under one top-level folder named after `folder`, a layout the gateway
    accepts. Return the number of files written.
    """
    folder = Path(folder)
    if not (folder / "edit_sessions.json").is_file():
        raise FileNotFoundError(
            f"{folder} has no edit_sessions.json; pass the folder of a MagicBrush dataset"
        )
    count = 0
    with zipfile.ZipFile(destination, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                archive.write(path, f"{folder.name}/{path.relative_to(folder).as_posix()}")
                count += 1
    return count


def _post_dataset(
    client: AuthenticatedClient, stream: IO[bytes], file_name: str, mime_type: str, name: str | None
) -> DatasetOut:
    body = BodyCreateDataset(
        file=File(payload=stream, file_name=file_name, mime_type=mime_type),
        name=name if name is not None else UNSET,
    )
    return unwrap(create_dataset.sync_detailed(client=client, body=body))


def upload_dataset(client: AuthenticatedClient, source: str | Path, name: str | None = None) -> DatasetOut:
    """Upload a MagicBrush dataset: a folder (zipped on the fly), a .zip or a .parquet file.

    `name` defaults to the file name on the server. Raises ApiError (422 with the reason) when the
    gateway rejects the layout or an image.
    """
    source = Path(source)
    if source.is_dir():
        with tempfile.TemporaryFile() as buffer:
            write_dataset_zip(source, buffer)
            buffer.seek(0)
            return _post_dataset(client, buffer, f"{source.name}.zip", "application/zip", name)
    mime_type = "application/vnd.apache.parquet" if source.suffix == ".parquet" else "application/zip"
    with source.open("rb") as stream:
        return _post_dataset(client, stream, source.name, mime_type, name)


def _image_file(source: str | Path | bytes, file_name: str) -> File:
    """Wrap image bytes or a file's content for upload; the gateway detects the format from the bytes."""
    if isinstance(source, bytes):
        return File(payload=io.BytesIO(source), file_name=file_name, mime_type="application/octet-stream")
    path = Path(source)
    mime_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return File(payload=io.BytesIO(path.read_bytes()), file_name=path.name, mime_type=mime_type)


def edit_image(
    client: AuthenticatedClient,
    image: str | Path | bytes,
    instruction: str,
    *,
    mask: str | Path | bytes | None = None,
    model: str | None = None,
    adapter_id: str | None = None,
    seed: int | None = None,
    steps: int | None = None,
    guidance_scale: float | None = None,
    image_guidance_scale: float | None = None,
    return_attention: bool = False,
    wait: float = 10.0,
    timeout: float = 600.0,
    raise_on_failure: bool = True,
) -> EditOut:
    """Submit an edit and return it once finished.

    The gateway keeps the request open for up to `wait` seconds (`Prefer: wait=N`); an edit that
    is still queued or running then is polled until it ends or `timeout` seconds pass. `image` and
    `mask` are file paths or encoded image bytes (PNG, JPEG or WebP). Raises JobFailedError when
    the edit fails (unless `raise_on_failure` is false) and ApiError when the gateway rejects it.
    """
    optional = {
        "model": model,
        "adapter_id": adapter_id,
        "seed": seed,
        "steps": steps,
        "guidance_scale": guidance_scale,
        "image_guidance_scale": image_guidance_scale,
    }
    body = BodyCreateEdit(
        image=_image_file(image, "image.png"),
        instruction=instruction,
        mask=_image_file(mask, "mask.png") if mask is not None else UNSET,
        return_attention=return_attention,
        **{key: value for key, value in optional.items() if value is not None},
    )
    edit = unwrap(create_edit.sync_detailed(client=client, body=body, prefer=f"wait={wait:g}"))
    if edit.status in TERMINAL_STATUSES:
        if raise_on_failure and edit.status != "succeeded":
            raise JobFailedError("edit", edit)
        return edit
    return wait_for_edit(client, edit.id, timeout=timeout, raise_on_failure=raise_on_failure)


# -- downloads ----------------------------------------------------------------------------------


def _write_stream(response: httpx.Response, path: Path) -> tuple[int, str]:
    """Write a streamed body to `path` through a temporary file; return its size and SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    handle, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as output:
            for chunk in response.iter_bytes(CHUNK_BYTES):
                output.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return size, digest.hexdigest()


def _download_edit_file(client: AuthenticatedClient, edit_id: str, artifact: str, path: str | Path) -> Path:
    """Stream GET /edits/{edit_id}/{artifact} ("image" or "attention") to `path`."""
    path = Path(path)
    url = f"/edits/{quote(str(edit_id), safe='')}/{artifact}"
    with client.get_httpx_client().stream("GET", url) as response:
        _raise_for_status(response)
        _write_stream(response, path)
    return path


def download_edit_image(client: AuthenticatedClient, edit_id: str, path: str | Path) -> Path:
    """Stream a succeeded edit's PNG to `path` and return `path`; 409 (ConflictError) while it runs."""
    return _download_edit_file(client, edit_id, "image", path)


def download_edit_attention(client: AuthenticatedClient, edit_id: str, path: str | Path) -> Path:
    """Stream an edit's attention overlay PNG to `path` (the edit needs return_attention=True)."""
    return _download_edit_file(client, edit_id, "attention", path)


def download_checkpoint(client: AuthenticatedClient, checkpoint: CheckpointOut, path: str | Path) -> Path:
    """Download a listed checkpoint to `path`, check its size and SHA-256, and return `path`.

    `checkpoint.url` is a presigned link (to the object storage, or to the gateway's /files route
    in embedded mode) that carries its own signature, so the request goes without the API key:
    object storage rejects a request that is signed twice. The link expires at
    `checkpoint.url_expires_at`; list the checkpoints again for a fresh one.
    """
    path = Path(path)
    http = client.get_httpx_client()
    request = http.build_request("GET", http.base_url.join(checkpoint.url))
    request.headers.pop(client.auth_header_name, None)
    response = http.send(request, stream=True)
    try:
        _raise_for_status(response)
        size, sha256 = _write_stream(response, path)
    finally:
        response.close()
    if size != checkpoint.size_bytes or sha256 != checkpoint.sha256:
        path.unlink(missing_ok=True)
        raise ChecksumMismatchError(
            f"checkpoint {checkpoint.id}: downloaded {size} bytes with SHA-256 {sha256}, expected "
            f"{checkpoint.size_bytes} bytes with {checkpoint.sha256}; download it again"
        )
    return path
