"""Bad requests get a 4xx JSON error naming the field, and create no job row, message or stored object."""

from __future__ import annotations

import io
import json
import struct
import uuid
import zipfile
import zlib

import pytest
from fastapi.testclient import TestClient
from service_testkit import SESSION_TAG, png_bytes
from sqlalchemy import text

from service.auth import create_api_key
from service.db import session_scope

TABLES = ("edits", "train_jobs", "eval_jobs", "datasets")


@pytest.fixture(scope="module")
def tenant(settings):
    """A tenant used only here, so that counting its rows and objects finds no other test's work."""
    with session_scope(settings.resolved_database_url) as session:
        tenant, key = create_api_key(session, f"bad-input-{SESSION_TAG}")
        return {"id": str(tenant.id), "headers": {"Authorization": f"Bearer {key}"}}


def footprint(settings, storage, sent_messages, tenant_id: str) -> dict[str, int]:
    counts = {}
    with session_scope(settings.resolved_database_url) as session:
        for table in TABLES:
            counts[table] = session.scalar(
                text(f"SELECT count(*) FROM {table} WHERE tenant_id = :t"), {"t": tenant_id}
            )
    listing = storage.client.list_objects_v2(Bucket=storage.bucket, Prefix=f"tenants/{tenant_id}/")
    counts["objects"] = listing.get("KeyCount", 0)
    counts["messages"] = sent_messages.count
    return counts


@pytest.fixture
def unchanged(settings, storage, sent_messages, tenant):
    """Assert after the test that the tenant has no new rows, objects or messages."""
    before = footprint(settings, storage, sent_messages, tenant["id"])
    yield
    assert footprint(settings, storage, sent_messages, tenant["id"]) == before


def png_with_size(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height but whose data is a single tiny row."""
    data = bytearray(png_bytes((1, 1)))
    ihdr_start = 8 + 8  # signature, then chunk length and type
    data[ihdr_start : ihdr_start + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr_start - 4 : ihdr_start + 13]))
    data[ihdr_start + 13 : ihdr_start + 17] = struct.pack(">I", crc)
    return bytes(data)


def gif_bytes() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="GIF")
    return buffer.getvalue()


VALID = png_bytes()
EDIT_CASES = {
    "empty image": ({"image": b""}, {}, 400, "image"),
    "truncated image": ({"image": VALID[: len(VALID) // 2]}, {}, 400, "image"),
    "text as image": ({"image": b"this is not an image"}, {}, 400, "image"),
    "gif image": ({"image": gif_bytes()}, {}, 400, "image"),
    "image over pixel limit": ({"image": png_with_size(5000, 5000)}, {}, 413, "image"),
    "decompression bomb": ({"image": png_with_size(100_000, 100_000)}, {}, 413, "image"),
    "text as mask": ({"mask": b"not a mask"}, {}, 400, "mask"),
    "empty mask": ({"mask": b""}, {}, 400, "mask"),
    "blank instruction": ({}, {"instruction": "   "}, 422, "instruction"),
    "missing instruction": ({}, {"instruction": None}, 422, "instruction"),
    "long instruction": ({}, {"instruction": "x" * 5000}, 422, "instruction"),
    "unknown model": ({}, {"model": "no-such-model"}, 422, "model"),
    "unknown adapter": ({}, {"adapter_id": str(uuid.uuid4())}, 422, "adapter_id"),
    "malformed adapter": ({}, {"adapter_id": "../../etc"}, 422, "adapter_id"),
    "zero steps": ({}, {"steps": "0"}, 422, "steps"),
    "too many steps": ({}, {"steps": "500"}, 422, "steps"),
    "text steps": ({}, {"steps": "many"}, 422, "steps"),
    "negative guidance": ({}, {"guidance_scale": "-1"}, 422, "guidance_scale"),
    "negative seed": ({}, {"seed": "-5"}, 422, "seed"),
    "huge seed": ({}, {"seed": str(2**40)}, 422, "seed"),
}


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("case", EDIT_CASES, ids=list(EDIT_CASES))
def test_bad_edit_is_rejected(client, tenant, case):
    file_overrides, field_overrides, status, field = EDIT_CASES[case]
    files = {"image": ("input.png", VALID, "image/png")}
    for name, content in file_overrides.items():
        files[name] = (f"{name}.png", content, "image/png")
    data = {"instruction": "make it blue", "steps": "2"}
    for name, value in field_overrides.items():
        if value is None:
            data.pop(name)
        else:
            data[name] = value
    response = client.post("/edit", headers={**tenant["headers"], "Prefer": "wait=0"}, files=files, data=data)
    assert response.status_code == status, response.text
    assert response.json()["error"]["field"] == field


MESSAGE_CASES = {
    "empty instruction": (
        {"instruction": ""},
        "instruction",
        "instruction must not be empty: describe the edit",
    ),
    "blank instruction": (
        {"instruction": "  "},
        "instruction",
        "instruction must not be empty: describe the edit",
    ),
    "nan guidance": ({"guidance_scale": "nan"}, "guidance_scale", "must be a finite number"),
    "infinite image guidance": (
        {"image_guidance_scale": "inf"},
        "image_guidance_scale",
        "must be a finite number",
    ),
}


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("case", MESSAGE_CASES, ids=list(MESSAGE_CASES))
def test_bad_edit_message(client, tenant, case):
    fields, field, text = MESSAGE_CASES[case]
    files = {"image": ("input.png", VALID, "image/png")}
    data = {"instruction": "make it blue", "steps": "2", **fields}
    response = client.post("/edit", headers={**tenant["headers"], "Prefer": "wait=0"}, files=files, data=data)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert text in response.json()["error"]["message"]


@pytest.mark.usefixtures("unchanged")
def test_missing_image_is_rejected(client, tenant):
    response = client.post("/edit", headers=tenant["headers"], data={"instruction": "x"})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "image"


@pytest.fixture(scope="module")
def small_client(settings, sent_messages):
    from service.app import create_app

    app = create_app(settings.model_copy(update={"max_upload_bytes": 64 * 1024, "max_json_bytes": 2048}))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.mark.usefixtures("unchanged")
def test_declared_oversized_body_is_rejected(small_client, tenant):
    files = {"image": ("big.png", b"\0" * 100_000, "image/png")}
    response = small_client.post("/edit", headers=tenant["headers"], files=files, data={"instruction": "x"})
    assert response.status_code == 413


@pytest.mark.usefixtures("unchanged")
def test_streamed_oversized_body_is_rejected(small_client, tenant):
    boundary = "rl4pixboundary"

    def chunks():
        yield f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'.encode()
        for _ in range(20):
            yield b"\0" * 10_000
        yield f"\r\n--{boundary}--\r\n".encode()

    headers = {**tenant["headers"], "Content-Type": f"multipart/form-data; boundary={boundary}"}
    response = small_client.post("/edit", headers=headers, content=chunks())
    assert response.status_code == 413


@pytest.mark.usefixtures("unchanged")
def test_oversized_json_is_rejected(small_client, tenant):
    body = {"dataset_id": "x", "config": {"note": "y" * 5000}}
    assert small_client.post("/train-jobs", headers=tenant["headers"], json=body).status_code == 413


# -- training and evaluation jobs ---------------------------------------------------------------


@pytest.fixture(scope="module")
def tenant_dataset(client, tenant, dataset_zip):
    response = client.post("/datasets", headers=tenant["headers"], files={"file": ("d.zip", dataset_zip)})
    assert response.status_code == 201, response.text
    return response.json()["id"]


TRAIN_CASES = {
    "negative learning rate": ({"config": {"train": {"learning_rate": -1}}}, "config.train.learning_rate"),
    "dotted bad value": ({"config": {"train.learning_rate": "fast"}}, "config.train.learning_rate"),
    "unknown key": ({"config": {"no_such_key": 1}}, "config.no_such_key"),
    "zero epochs": ({"config": {"num_epochs": 0}}, "config.num_epochs"),
    "boolean epochs": ({"config": {"num_epochs": True}}, "config.num_epochs"),
    "boolean learning rate": ({"config": {"train.learning_rate": False}}, "config.train.learning_rate"),
    "key set nested and dotted": (
        {"config": {"train": {"learning_rate": 1e-4}, "train.learning_rate": 1e-3}},
        "config.train.learning_rate",
    ),
    "unknown lora target module": (
        {"config": {"lora": {"target_modules": ["nope"]}}},
        "config.lora.target_modules",
    ),
    "attention downsample 3": ({"config": {"attention_downsample": 3}}, "config.attention_downsample"),
    "data split": ({"config": {"data": {"split": "train"}}}, "config.data.split"),
    "dotted data split": ({"config": {"data.split": "train"}}, "config.data.split"),
    "indivisible batch": (
        {"config": {"sample.batch_size": 3, "sample.num_batches_per_epoch": 1, "train.batch_size": 2}},
        "config",
    ),
    "section as value": ({"config": {"train": 5}}, "config.train"),
    "service key": ({"config": {"logdir": "/tmp/x"}}, "config.logdir"),
    "service data path": ({"config": {"data": {"path": "/etc"}}}, "config.data.path"),
    "unknown model": ({"model": "nope"}, "model"),
    "unknown dataset": ({"dataset_id": str(uuid.uuid4())}, "dataset_id"),
    "malformed dataset": ({"dataset_id": "not-an-id"}, "dataset_id"),
    "extra field": ({"epochs": 3}, "epochs"),
    "config not an object": ({"config": [1, 2]}, "config"),
    "not a number": ({"config": {"reward.attention_weight": float("nan")}}, "config.reward.attention_weight"),
}


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("case", TRAIN_CASES, ids=list(TRAIN_CASES))
def test_bad_train_job_is_rejected(client, tenant, tenant_dataset, case):
    overrides, field = TRAIN_CASES[case]
    body = {"dataset_id": tenant_dataset, "config": {"num_epochs": 1}, **overrides}
    # json.dumps writes NaN as a bare literal, which Python's JSON parser (and so FastAPI) accepts.
    headers = {**tenant["headers"], "Content-Type": "application/json"}
    response = client.post("/train-jobs", headers=headers, content=json.dumps(body))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


def test_config_error_message_names_key(client, tenant, tenant_dataset):
    body = {"dataset_id": tenant_dataset, "config": {"train": {"learning_rate": -1}}}
    response = client.post("/train-jobs", headers=tenant["headers"], json=body)
    assert response.json()["error"]["message"].startswith("config.train.learning_rate: ")


def test_key_set_twice_message(client, tenant, tenant_dataset):
    body = {
        "dataset_id": tenant_dataset,
        "config": {"num_epochs": 1, "sample": {"eta": 0.5}, "sample.eta": 0.5},
    }
    response = client.post("/train-jobs", headers=tenant["headers"], json=body)
    assert "set twice" in response.json()["error"]["message"]


def test_lora_target_module_message_lists_names(client, tenant, tenant_dataset):
    body = {"dataset_id": tenant_dataset, "config": {"lora": {"target_modules": ["nope"]}}}
    response = client.post("/train-jobs", headers=tenant["headers"], json=body)
    assert "to_q" in response.json()["error"]["message"]


def test_data_split_message_has_no_path(client, tenant, tenant_dataset):
    body = {"dataset_id": tenant_dataset, "config": {"data": {"split": "train"}}}
    response = client.post("/train-jobs", headers=tenant["headers"], json=body)
    assert "/" not in response.json()["error"]["message"].removeprefix("config.data.split: ")


@pytest.mark.usefixtures("unchanged")
def test_train_job_body_not_json_is_rejected(client, tenant):
    headers = {**tenant["headers"], "Content-Type": "application/json"}
    response = client.post("/train-jobs", headers=headers, content=b'{"dataset_id": x}')
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "body"
    assert "not valid JSON" in response.json()["error"]["message"]
    assert "character 15" in response.json()["error"]["message"]


@pytest.mark.usefixtures("unchanged")
def test_form_encoded_train_job_is_rejected(client, tenant, tenant_dataset):
    response = client.post("/train-jobs", headers=tenant["headers"], data={"dataset_id": tenant_dataset})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "body"
    assert "Content-Type: application/json" in response.json()["error"]["message"]


EVAL_CASES = {
    "unknown dataset": ({"dataset_id": str(uuid.uuid4())}, "dataset_id"),
    "unknown adapter": ({"adapter_id": str(uuid.uuid4())}, "adapter_id"),
    "bad setting": ({"setting": "sideways"}, "setting"),
    "zero limit": ({"limit": 0}, "limit"),
    "unknown model": ({"model": "nope"}, "model"),
}


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("case", EVAL_CASES, ids=list(EVAL_CASES))
def test_bad_eval_job_is_rejected(client, tenant, tenant_dataset, case):
    overrides, field = EVAL_CASES[case]
    response = client.post(
        "/eval-jobs", headers=tenant["headers"], json={"dataset_id": tenant_dataset, **overrides}
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


@pytest.fixture(scope="module")
def dataset_without_targets(client, tenant):
    content = make_zip(magicbrush_members())
    response = client.post("/datasets", headers=tenant["headers"], files={"file": ("d.zip", content)})
    assert response.status_code == 201, response.text
    return response.json()


def test_dataset_without_targets_counts_none(dataset_without_targets):
    assert dataset_without_targets["target_count"] == 0


def test_dataset_with_targets_counts_them(client, tenant, tenant_dataset):
    body = client.get(f"/datasets/{tenant_dataset}", headers=tenant["headers"]).json()
    assert body["target_count"] == body["turn_count"]


@pytest.mark.usefixtures("unchanged")
def test_eval_job_without_ground_truth_is_rejected(client, tenant, dataset_without_targets):
    body = {"dataset_id": dataset_without_targets["id"]}
    response = client.post("/eval-jobs", headers=tenant["headers"], json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_dataset"
    assert response.json()["error"]["field"] == "dataset_id"
    assert "-output<k>.png" in response.json()["error"]["message"]


# -- datasets -----------------------------------------------------------------------------------


def make_zip(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def magicbrush_members(mask: bytes | None = png_bytes(mode="L"), image: bytes = VALID) -> dict[str, bytes]:
    sessions = {
        "101": [
            {
                "input": "101-input.png",
                "mask": "101-mask1.png",
                "output": "101-output1.png",
                "instruction": "make it red",
            }
        ]
    }
    members = {"edit_sessions.json": json.dumps(sessions).encode(), "images/101/101-input.png": image}
    if mask is not None:
        members["images/101/101-mask1.png"] = mask
    return members


def symlink_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in magicbrush_members().items():
            archive.writestr(name, content)
        link = zipfile.ZipInfo("images/101/link.png")
        link.external_attr = 0o120777 << 16
        archive.writestr(link, "/etc/passwd")
    return buffer.getvalue()


DATASET_CASES = {
    "empty file": (b"", 400),
    "text file": (b"hello, this is not a dataset", 422),
    "truncated zip": (make_zip(magicbrush_members())[:200], 422),
    "no sessions file": (make_zip({"images/101/101-input.png": VALID}), 422),
    "sessions not json": (make_zip({"edit_sessions.json": b"{oops"}), 422),
    "missing mask": (make_zip(magicbrush_members(mask=None)), 422),
    "corrupt input image": (make_zip(magicbrush_members(image=VALID[:40])), 422),
    "parent path member": (make_zip({**magicbrush_members(), "../evil.png": VALID}), 422),
    "absolute path member": (make_zip({**magicbrush_members(), "/tmp/evil.png": VALID}), 422),
    "backslash member": (make_zip({**magicbrush_members(), "..\\evil.png": VALID}), 422),
    "symlink member": (symlink_zip(), 422),
    "zip bomb": (make_zip({**magicbrush_members(), "images/101/zeros.bin": b"\0" * (50 * 1024 * 1024)}), 422),
    "parquet without columns": (b"PAR1" + b"\0" * 64 + b"PAR1", 422),
}


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("case", DATASET_CASES, ids=list(DATASET_CASES))
def test_bad_dataset_is_rejected(client, tenant, case):
    content, status = DATASET_CASES[case]
    response = client.post("/datasets", headers=tenant["headers"], files={"file": ("upload.zip", content)})
    assert response.status_code == status, response.text
    assert response.json()["error"]["field"] == "file"


# -- unknown ids --------------------------------------------------------------------------------

UNKNOWN_PATHS = [
    "/edits/{id}",
    "/edits/{id}/image",
    "/edits/{id}/attention",
    "/datasets/{id}",
    "/train-jobs/{id}",
    "/train-jobs/{id}/events",
    "/train-jobs/{id}/checkpoints",
    "/eval-jobs/{id}",
    "/adapters/{id}",
]


@pytest.mark.parametrize("path", UNKNOWN_PATHS)
@pytest.mark.parametrize("identifier", [str(uuid.uuid4()), "not-a-uuid"])
def test_unknown_id_is_not_found(client, tenant, path, identifier):
    response = client.get(path.format(id=identifier), headers=tenant["headers"])
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("path", ["/edits/{id}/cancel", "/train-jobs/{id}/cancel"])
def test_cancel_unknown_id_is_not_found(client, tenant, path):
    assert client.post(path.format(id=uuid.uuid4()), headers=tenant["headers"]).status_code == 404
