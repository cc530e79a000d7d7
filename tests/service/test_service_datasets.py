"""Dataset uploads: MagicBrush zip and parquet files are validated, stored and summarised."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
from service_testkit import png_bytes


def parquet_bytes(rows: int = 3) -> bytes:
    image = {"bytes": png_bytes(), "path": None}
    mask = {"bytes": png_bytes(mode="L"), "path": None}
    table = pa.table(
        {
            "img_id": [f"{index}" for index in range(rows)],
            "turn_index": [1] * rows,
            "source_img": [image] * rows,
            "mask_img": [mask] * rows,
            "instruction": ["make it red"] * rows,
            "target_img": [image] * rows,
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def test_zip_upload_is_summarised(client, auth, dataset_zip):
    response = client.post("/datasets", headers=auth, files={"file": ("dev.zip", dataset_zip)})
    assert response.status_code == 201, response.text
    assert (response.json()["format"], response.json()["session_count"]) == ("magicbrush-zip", 4)


def test_zip_upload_is_stored(client, auth, dataset_zip, storage):
    body = client.post("/datasets", headers=auth, files={"file": ("dev.zip", dataset_zip)}).json()
    listing = storage.client.list_objects_v2(Bucket=storage.bucket, Prefix="tenants/")
    keys = [item["Key"] for item in listing.get("Contents", [])]
    assert any(key.endswith(f"/datasets/{body['id']}/dataset.zip") for key in keys)


def test_parquet_upload_is_summarised(client, auth):
    response = client.post("/datasets", headers=auth, files={"file": ("train.parquet", parquet_bytes(3))})
    assert response.status_code == 201, response.text
    assert (response.json()["format"], response.json()["turn_count"]) == ("parquet", 3)


def test_dataset_is_readable(client, auth, dataset_id):
    assert client.get(f"/datasets/{dataset_id}", headers=auth).json()["id"] == dataset_id
