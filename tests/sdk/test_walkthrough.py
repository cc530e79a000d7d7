"""The quickstart walkthrough end to end through the generated SDK, against a real service stack.

examples/train_then_edit.py runs once per module against PostgreSQL, Redis, a moto S3 server, a
Celery worker process and the `tiny` preset. It trains an adapter on the real photos, edits one
photo with the adapter and with the base model at the same seed, and evaluates both on a
synthetic set. The tests check what it wrote, and call the SDK for the error cases.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

CASE = "cat-eyes"
METRIC_KEYS = {"l1", "l2", "clip_t", "ssim", "psnr"}


def load_example():
    spec = importlib.util.spec_from_file_location("train_then_edit", REPO / "examples" / "train_then_edit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def synthetic_eval_set(tmp_path_factory) -> Path:
    from rl4pix_core.data.synthetic import write_synthetic_magicbrush

    return write_synthetic_magicbrush(tmp_path_factory.mktemp("eval") / "synthetic", count=3, size=64, seed=0)


@pytest.fixture(scope="module")
def walkthrough(real_photos, stack, synthetic_eval_set, tmp_path_factory):
    """Run the example; return its exit code, printed output, output folder and summary."""
    out = tmp_path_factory.mktemp("walkthrough")
    argv = [
        "--url",
        stack.base_url,
        "--api-key",
        stack.api_key,
        "--data",
        str(real_photos),
        "--eval-data",
        str(synthetic_eval_set),
        "--case",
        CASE,
        "--out",
        str(out),
        "--timeout",
        "600",
    ]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        code = load_example().main(argv)
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    return {"code": code, "printed": printed.getvalue(), "out": out, "summary": summary}


@pytest.fixture(scope="module")
def client(stack):
    from rl4pix_client.extras import connect

    with connect(stack.base_url, stack.api_key) as sdk_client:
        yield sdk_client


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def test_walkthrough_exits_zero(walkthrough, stack):
    assert walkthrough["code"] == 0, (
        walkthrough["printed"] + "\n--- worker log ---\n" + stack.worker.output()[-4000:]
    )


def test_walkthrough_shows_training_progress(walkthrough):
    assert "epoch 2/2 (100%)" in walkthrough["printed"]


def test_walkthrough_prints_metrics_table(walkthrough):
    assert "| model | L1 | L2 | CLIP-T | SSIM | PSNR |" in walkthrough["printed"].splitlines()


def test_walkthrough_writes_both_edits(walkthrough):
    assert (walkthrough["out"] / "edit-adapter.png").is_file()
    assert (walkthrough["out"] / "edit-base.png").is_file()


def test_walkthrough_writes_attention_overlays(walkthrough):
    assert (walkthrough["out"] / "attention-adapter.png").is_file()
    assert (walkthrough["out"] / "attention-base.png").is_file()


def test_edits_keep_photo_size(walkthrough, real_photos):
    expected = Image.open(real_photos / "images" / CASE / f"{CASE}-input.png").size
    assert Image.open(walkthrough["out"] / "edit-adapter.png").size == expected


def test_adapter_edit_differs_from_base(walkthrough):
    difference = np.abs(
        pixels(walkthrough["out"] / "edit-adapter.png") - pixels(walkthrough["out"] / "edit-base.png")
    )
    assert difference.max() > 0


def test_edits_use_same_seed(client, walkthrough):
    from rl4pix_client.api.edits import get_edit
    from rl4pix_client.extras import unwrap

    edits = walkthrough["summary"]["edits"]
    seeds = {
        unwrap(get_edit.sync_detailed(edits[label]["id"], client=client)).seed
        for label in ("adapter", "base")
    }
    assert seeds == {0}


def test_adapter_edit_names_adapter(client, walkthrough):
    from rl4pix_client.api.edits import get_edit
    from rl4pix_client.extras import unwrap

    edit = unwrap(get_edit.sync_detailed(walkthrough["summary"]["edits"]["adapter"]["id"], client=client))
    assert edit.adapter_id == walkthrough["summary"]["adapter_id"]


def test_edit_with_mask_reports_reward(walkthrough):
    assert "total" in walkthrough["summary"]["edits"]["adapter"]["reward"]


def test_downloaded_weights_match_listing(client, walkthrough):
    from rl4pix_client.api.train_jobs import list_train_job_checkpoints
    from rl4pix_client.extras import unwrap

    listing = unwrap(
        list_train_job_checkpoints.sync_detailed(walkthrough["summary"]["train_job_id"], client=client)
    )
    final = next(item for item in listing.items if item.kind == "final")
    weights = Path(walkthrough["summary"]["files"]["adapter_weights"])
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == final.sha256


def test_training_listed_checkpoint_per_epoch(client, walkthrough):
    from rl4pix_client.api.train_jobs import list_train_job_checkpoints
    from rl4pix_client.extras import unwrap

    listing = unwrap(
        list_train_job_checkpoints.sync_detailed(walkthrough["summary"]["train_job_id"], client=client)
    )
    assert sorted(item.epoch for item in listing.items if item.kind == "checkpoint") == [1, 2]


@pytest.mark.parametrize("label", ["adapter", "base"])
def test_evaluation_reports_five_metrics(walkthrough, label):
    metrics = walkthrough["summary"]["metrics"][label]
    assert {key for key in METRIC_KEYS if isinstance(metrics.get(key), int | float)} == METRIC_KEYS


# -- errors through the SDK -----------------------------------------------------------------------


def test_unknown_train_job_raises_not_found(client):
    from rl4pix_client.api.train_jobs import get_train_job
    from rl4pix_client.extras import NotFoundError, unwrap

    job_id = str(uuid.uuid4())
    with pytest.raises(NotFoundError) as caught:
        unwrap(get_train_job.sync_detailed(job_id, client=client))
    assert caught.value.message == f"train job {job_id} not found"


def test_unknown_edit_image_raises_not_found(client, tmp_path):
    from rl4pix_client.extras import NotFoundError, download_edit_image

    with pytest.raises(NotFoundError) as caught:
        download_edit_image(client, str(uuid.uuid4()), tmp_path / "missing.png")
    assert caught.value.code == "not_found"


def test_failed_download_leaves_no_file(client, tmp_path):
    from rl4pix_client.extras import NotFoundError, download_edit_image

    with pytest.raises(NotFoundError):
        download_edit_image(client, str(uuid.uuid4()), tmp_path / "missing.png")
    assert list(tmp_path.iterdir()) == []


def test_empty_instruction_raises_invalid_request(client, real_photos):
    from rl4pix_client.extras import InvalidRequestError, edit_image

    photo = real_photos / "images" / CASE / f"{CASE}-input.png"
    with pytest.raises(InvalidRequestError) as caught:
        edit_image(client, photo, "   ", wait=0)
    assert caught.value.message.startswith("instruction must not be empty: describe the edit in words")


def test_invalid_request_names_field(client, real_photos):
    from rl4pix_client.extras import InvalidRequestError, edit_image

    photo = real_photos / "images" / CASE / f"{CASE}-input.png"
    with pytest.raises(InvalidRequestError) as caught:
        edit_image(client, photo, "   ", wait=0)
    assert caught.value.field == "instruction"


def test_unknown_config_key_raises_invalid_request(client, walkthrough):
    from rl4pix_client.api.train_jobs import create_train_job
    from rl4pix_client.extras import InvalidRequestError, unwrap
    from rl4pix_client.models.train_job_create import TrainJobCreate
    from rl4pix_client.models.train_job_create_config import TrainJobCreateConfig

    body = TrainJobCreate(
        dataset_id=walkthrough["summary"]["train_dataset_id"],
        config=TrainJobCreateConfig.from_dict({"sample": {"no_such_key": 1}}),
    )
    with pytest.raises(InvalidRequestError) as caught:
        unwrap(create_train_job.sync_detailed(client=client, body=body))
    assert "no_such_key" in caught.value.message


def test_wrong_api_key_raises_authentication_error(stack):
    from rl4pix_client.api.train_jobs import list_train_jobs
    from rl4pix_client.extras import AuthenticationError, connect, unwrap

    with connect(stack.base_url, "rl4pix_not-a-key") as wrong, pytest.raises(AuthenticationError):
        unwrap(list_train_jobs.sync_detailed(client=wrong))


def test_upload_zips_folder(client, synthetic_eval_set):
    from rl4pix_client.extras import upload_dataset

    dataset = upload_dataset(client, synthetic_eval_set, name="synthetic eval")
    assert (dataset.session_count, dataset.turn_count) == (3, 3)


def test_upload_accepts_zip_file(client, synthetic_eval_set, tmp_path):
    from rl4pix_client.extras import upload_dataset, write_dataset_zip

    archive = tmp_path / "synthetic.zip"
    with archive.open("wb") as stream:
        write_dataset_zip(synthetic_eval_set, stream)
    assert upload_dataset(client, archive).format_ == "magicbrush-zip"


def test_edit_image_accepts_bytes(client):
    from rl4pix_client.extras import edit_image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 140, 90)).save(buffer, format="PNG")
    edit = edit_image(client, buffer.getvalue(), "make it red", model="tiny", steps=2, seed=7, wait=30)
    assert (edit.status, edit.sizes.output.width, edit.sizes.output.height) == ("succeeded", 64, 48)
