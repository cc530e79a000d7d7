"""Prometheus metrics of the gateway, served at GET /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter(
    "rl4pix_http_requests_total",
    "HTTP requests by method, route template and status",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "rl4pix_http_request_duration_seconds",
    "HTTP request latency by method and route template",
    ["method", "route"],
)
JOBS_CREATED = Counter("rl4pix_jobs_created_total", "jobs inserted, by kind (edit, train, eval)", ["kind"])
REJECTED_REQUESTS = Counter("rl4pix_rejected_requests_total", "4xx responses by error code", ["code"])
