"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations


def test_healthz(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_checks_dependencies(client):
    body = client.get("/readyz").json()
    assert body == {"status": "ready", "checks": {"database": "ok", "broker": "ok", "storage": "ok"}}


def test_readyz_reports_unreachable_storage(settings):
    from fastapi.testclient import TestClient

    from service.app import create_app

    broken = settings.model_copy(update={"s3_endpoint_url": "http://127.0.0.1:9", "s3_bucket": "missing"})
    with TestClient(create_app(broken)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["storage"] != "ok"


def test_metrics_count_requests(client):
    client.get("/healthz")
    assert (
        'rl4pix_http_requests_total{method="GET",route="/healthz",status="200"}'
        in client.get("/metrics").text
    )


def test_openapi_operation_ids_are_stable(client):
    schema = client.get("/openapi.json").json()
    operation_ids = {
        operation["operationId"] for path in schema["paths"].values() for operation in path.values()
    }
    assert {
        "create_edit",
        "get_edit",
        "create_dataset",
        "create_train_job",
        "get_train_job",
        "list_train_jobs",
        "cancel_train_job",
        "list_train_job_events",
        "list_train_job_checkpoints",
        "create_eval_job",
        "get_eval_job",
    } <= operation_ids
