"""Helpers shared by the service tests: paths, test images, synthetic datasets and polling.

The module has its own name (not `conftest`) so that test modules can import it directly: pytest
puts this folder on sys.path, and the folder has no `__init__.py`, so that a `tests.service` package
never shadows the `service` package under test.
"""

from __future__ import annotations

import io
import os
import socket
import time
import uuid
import zipfile
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
PHOTOS_DIR = Path(
    os.environ.get("RL4PIX_TEST_PHOTOS", REPO.parent / "shared" / "cases" / "real-photos" / "images")
)
SESSION_TAG = uuid.uuid4().hex[:10]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def png_bytes(
    size: tuple[int, int] = (64, 64), color: tuple[int, int, int] = (120, 30, 200), mode: str = "RGB"
) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color if mode == "RGB" else 255).save(buffer, format="PNG")
    return buffer.getvalue()


def wait_until(condition, timeout: float, interval: float = 0.2, message: str = "condition"):
    """Poll `condition()` until it returns a truthy value; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {message}")


def wait_for_status(
    client, path: str, headers: dict[str, str], statuses: set[str], timeout: float = 240
) -> dict:
    """Poll GET `path` until its JSON `status` is one of `statuses`; return that body."""

    def finished() -> dict | None:
        body = client.get(path, headers=headers).json()
        return body if body.get("status") in statuses else None

    return wait_until(finished, timeout, 0.5, f"{path} to reach {sorted(statuses)}")


def photo(name: str, kind: str) -> bytes:
    path = PHOTOS_DIR / name / f"{name}-{kind}.png"
    if not path.is_file():
        pytest.skip(f"real photo {path} not available; set RL4PIX_TEST_PHOTOS")
    return path.read_bytes()


def synthetic_zip(tmp_path: Path, count: int = 4, size: int = 64) -> bytes:
    """Return a MagicBrush zip of `count` synthetic 64 px edits, wrapped in one top-level folder."""
    from rl4pix_core.data.synthetic import write_synthetic_magicbrush

    root = write_synthetic_magicbrush(tmp_path / "magicbrush", count, size, seed=0)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                archive.write(path, f"dev/{path.relative_to(root)}")
    return buffer.getvalue()
