"""Local copies of uploaded datasets and trained adapters for the workers.

A dataset is downloaded and unpacked once per worker machine under `<work_dir>/datasets/<id>`, an
adapter under `<work_dir>/adapters/<id>`. Both go to a temporary name first and are renamed into
place, so a crash leaves no half copy.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
import zipfile
from pathlib import Path

from service.models import Adapter, Dataset
from workers.context import WorkerContext

logger = logging.getLogger(__name__)


class UnsafeArchiveError(Exception):
    """An archive member would be written outside the extraction folder."""


def _extract_zip(archive_path: Path, target: Path) -> None:
    # The gateway validated the archive before storing it; this re-checks every member path in
    # case the stored object was replaced.
    root = target.resolve()
    with zipfile.ZipFile(archive_path) as archive:
        for info in archive.infolist():
            destination = (root / info.filename).resolve()
            if not destination.is_relative_to(root):
                raise UnsafeArchiveError(f"archive member {info.filename!r} leaves the dataset folder")
            if info.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, open(destination, "wb") as output:
                shutil.copyfileobj(source, output, 1024 * 1024)


def local_dataset(ctx: WorkerContext, dataset: Dataset) -> Path:
    """Return the local path to pass to rl4pix_core's MagicBrush loader (folder or parquet file)."""
    parent = ctx.work_path("datasets")
    target = parent / str(dataset.id)
    file_name = "dataset.parquet" if dataset.format == "parquet" else None
    if target.is_dir():
        return target / file_name if file_name else target
    staging = Path(tempfile.mkdtemp(prefix=f".{dataset.id}-", dir=parent))
    try:
        download = staging / ("dataset.parquet" if file_name else "dataset.zip")
        ctx.storage.download_file(dataset.storage_key, download)
        if not file_name:
            _extract_zip(download, staging)
            download.unlink()
        try:
            os.replace(staging, target)
        except OSError:
            # Another process on this machine unpacked it first.
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("dataset unpacked", extra={"dataset_id": str(dataset.id), "path": str(target)})
    return target / file_name if file_name else target


def local_adapter(ctx: WorkerContext, adapter: Adapter) -> Path:
    """Return the adapter's LoRA file, downloading it on first use."""
    folder = ctx.work_path("adapters", str(adapter.id))
    target = folder / "pytorch_lora_weights.safetensors"
    if not target.is_file():
        partial = folder / f".download-{uuid.uuid4().hex}"
        ctx.storage.download_file(adapter.storage_key, partial)
        partial.replace(target)
    return target
