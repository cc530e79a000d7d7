"""`rl4pix serve` with no RL4PIX_* settings: SQLite, a filesystem broker, local storage and a worker."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest
from service_testkit import REPO, free_port, png_bytes, wait_until


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("embedded")
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("RL4PIX_")}
    env.update({"RL4PIX_ALLOWED_MODELS": "tiny", "RL4PIX_DEFAULT_MODEL": "tiny", "RL4PIX_LOG_FORMAT": "text"})
    log_path = folder / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "rl4pix_cli.main", "serve", "--port", str(port)],
            cwd=folder,
            env={**env, "PYTHONPATH": str(REPO)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"

    def key_printed():
        match = re.search(r"API key: (\S+)", log_path.read_text(errors="replace"))
        return match.group(1) if match else (process.poll() is not None and "exited")

    key = wait_until(key_printed, 120, 0.5, "the API key line")
    if key == "exited":
        pytest.fail(f"rl4pix serve exited:\n{log_path.read_text()[-3000:]}")
    wait_until(lambda: _reachable(f"{base_url}/healthz"), 60, 0.5, "the gateway")
    yield {
        "url": base_url,
        "headers": {"Authorization": f"Bearer {key}"},
        "process": process,
        "folder": folder,
        "log": log_path,
    }
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _reachable(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.slow
def test_embedded_is_ready(embedded):
    body = httpx.get(f"{embedded['url']}/readyz", headers=embedded["headers"]).json()
    assert body["status"] == "ready", body


@pytest.mark.slow
def test_embedded_uses_local_data_dir(embedded):
    assert (embedded["folder"] / ".rl4pix" / "rl4pix.db").is_file()


@pytest.mark.slow
def test_embedded_edit_succeeds(embedded):
    response = httpx.post(
        f"{embedded['url']}/edit",
        headers={**embedded["headers"], "Prefer": "wait=120"},
        files={"image": ("input.png", png_bytes(), "image/png")},
        data={"instruction": "make it green", "steps": "2"},
        timeout=150,
    )
    assert response.json()["status"] == "succeeded", response.text
    image = httpx.get(f"{embedded['url']}{response.json()['urls']['image']}", headers=embedded["headers"])
    assert image.content.startswith(b"\x89PNG")


@pytest.mark.slow
def test_embedded_stops_its_worker(embedded):
    process = embedded["process"]
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    time.sleep(1)
    survivors = subprocess.run(
        ["pgrep", "-g", str(process.pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert survivors == []


@pytest.fixture
def busy_port_run(tmp_path):
    """Run `rl4pix serve` on a port that another socket is already listening on."""
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        env = {key: value for key, value in os.environ.items() if not key.startswith("RL4PIX_")}
        result = subprocess.run(
            [sys.executable, "-m", "rl4pix_cli.main", "serve", "--port", str(port)],
            cwd=tmp_path,
            env={**env, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    return result, port, tmp_path


def test_serve_on_busy_port_exits_2(busy_port_run):
    result, _, _ = busy_port_run
    assert result.returncode == 2, result.stderr


def test_serve_on_busy_port_names_port(busy_port_run):
    result, port, _ = busy_port_run
    assert f"port {port} is in use: pass --port N" in result.stderr


def test_serve_on_busy_port_prints_no_key(busy_port_run):
    result, _, _ = busy_port_run
    assert "API key" not in result.stdout


def test_serve_on_busy_port_creates_no_data(busy_port_run):
    _, _, folder = busy_port_run
    assert not (folder / ".rl4pix").exists()
