"""Defaults point only at this machine, and the compose file wires the stack as documented."""

from __future__ import annotations

import os
import re
import urllib.parse

import pytest
import yaml
from service_testkit import REPO

from service.settings import Settings

COMPOSE_SERVICES = {"postgres", "redis", "minio", "minio-setup", "migrate", "gateway", "worker"}


@pytest.fixture
def default_settings(monkeypatch, tmp_path) -> Settings:
    for name in list(os.environ):
        if name.startswith("RL4PIX_"):
            monkeypatch.delenv(name)
    return Settings(data_dir=tmp_path)


def test_default_database_is_local_sqlite(default_settings):
    assert default_settings.resolved_database_url.startswith(
        f"sqlite:///{default_settings.data_dir.resolve()}"
    )


def test_default_broker_needs_no_server(default_settings):
    assert default_settings.resolved_broker_url == "filesystem://"


def test_default_storage_is_local(default_settings):
    assert default_settings.storage_backend == "local"


def test_default_s3_endpoint_is_localhost(default_settings):
    assert urllib.parse.urlparse(default_settings.s3_endpoint_url).hostname == "localhost"


def test_allowed_models_accept_commas(monkeypatch):
    monkeypatch.setenv("RL4PIX_ALLOWED_MODELS", "tiny, sd15-random")
    assert Settings().allowed_models == ["tiny", "sd15-random"]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_has_every_service(compose):
    assert set(compose["services"]) == COMPOSE_SERVICES


def test_compose_worker_reserves_a_gpu(compose):
    devices = compose["services"]["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia"
    assert "gpu" in devices[0]["capabilities"]


def test_compose_urls_name_compose_services(compose):
    environment = compose["services"]["gateway"]["environment"]
    hosts = {
        urllib.parse.urlparse(re.sub(r"\$\{[^}]*\}", "x", value)).hostname
        for key, value in environment.items()
        if key.endswith("_URL")
    }
    assert hosts <= COMPOSE_SERVICES


def test_compose_publishes_ports_on_loopback(compose):
    ports = [port for service in compose["services"].values() for port in service.get("ports", [])]
    assert all(port.startswith("127.0.0.1:") for port in ports)
