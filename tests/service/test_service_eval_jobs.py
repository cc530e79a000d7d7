"""Evaluation jobs end to end with a real worker and the tiny model."""

from __future__ import annotations

import pytest
from service_testkit import wait_for_status

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture(scope="module")
def finished_eval(client, auth, dataset_id):
    response = client.post(
        "/eval-jobs", headers=auth, json={"dataset_id": dataset_id, "steps": 2, "limit": 2}
    )
    assert response.status_code == 201, response.text
    job_id = response.json()["id"]
    return wait_for_status(client, f"/eval-jobs/{job_id}", auth, {"succeeded", "failed"}, 180)


def test_eval_succeeds(finished_eval):
    assert finished_eval["status"] == "succeeded", finished_eval["error"]


def test_eval_reports_metrics(finished_eval):
    assert {"l1", "l2", "ssim", "psnr", "clip_t", "count"} <= set(finished_eval["metrics"])


def test_eval_respects_limit(finished_eval):
    assert finished_eval["metrics"]["count"] == 2
