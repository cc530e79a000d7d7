"""Latency and throughput of POST /edit against a direct call of the same edit (tiny model, 64 px).

Starts `rl4pix serve` in embedded mode (SQLite, filesystem broker, one solo worker) in a temporary
folder, once with edit batching on and once with it off. Then it prints a markdown table:

    python bench/service_latency.py [--requests 20] [--clients 8] [--per-client 4] [--steps 4]

Numbers depend on the machine; the table header names the settings. The embedded broker polls
its folder every 0.1 s, which adds to every service latency; the Redis stack does not.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def png(size: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (90, 140, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


class EmbeddedServer:
    """`rl4pix serve` in a temporary folder with the given edit batch size."""

    def __init__(self, batch_size: int, window: float):
        self.folder = tempfile.TemporaryDirectory(prefix="rl4pix-bench-")
        self.port = free_port()
        env = {key: value for key, value in os.environ.items() if not key.startswith("RL4PIX_")}
        env.update(
            {
                "RL4PIX_ALLOWED_MODELS": "tiny",
                "RL4PIX_DEFAULT_MODEL": "tiny",
                "RL4PIX_LOG_LEVEL": "WARNING",
                "RL4PIX_EDIT_BATCH_SIZE": str(batch_size),
                "RL4PIX_EDIT_BATCH_WINDOW_SECONDS": str(window),
                "RL4PIX_WORKER_DEVICE": "cpu",
                "PYTHONPATH": str(REPO),
            }
        )
        self.log_path = Path(self.folder.name) / "serve.log"
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rl4pix_cli.main", "serve", "--port", str(self.port)],
            cwd=self.folder.name,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.headers = {"Authorization": f"Bearer {self._wait_for_key()}"}

    def _wait_for_key(self, timeout: float = 180) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(r"API key: (\S+)", self.log_path.read_text(errors="replace"))
            if match:
                return match.group(1)
            if self.process.poll() is not None:
                raise RuntimeError(f"rl4pix serve exited:\n{self.log_path.read_text()[-2000:]}")
            time.sleep(0.5)
        raise TimeoutError("rl4pix serve printed no API key")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()
        self.folder.cleanup()


def post_edit(client: httpx.Client, server: EmbeddedServer, image: bytes, steps: int, seed: int) -> float:
    started = time.perf_counter()
    response = client.post(
        f"{server.url}/edit",
        headers={**server.headers, "Prefer": "wait=120"},
        files={"image": ("input.png", image, "image/png")},
        data={"instruction": "make the sky purple", "steps": str(steps), "seed": str(seed)},
        timeout=180,
    )
    elapsed = time.perf_counter() - started
    body = response.json()
    if body.get("status") != "succeeded":
        raise RuntimeError(f"edit did not succeed: {response.status_code} {response.text[:300]}")
    return elapsed


def service_latencies(server: EmbeddedServer, image: bytes, steps: int, count: int) -> list[float]:
    with httpx.Client() as client:
        post_edit(client, server, image, steps, seed=0)  # warm-up: the worker loads torch and the model
        return [post_edit(client, server, image, steps, seed=index) for index in range(count)]


def throughput(server: EmbeddedServer, image: bytes, steps: int, clients: int, per_client: int) -> float:
    errors: list[BaseException] = []

    def run_client(offset: int) -> None:
        try:
            with httpx.Client() as client:
                for index in range(per_client):
                    post_edit(client, server, image, steps, seed=offset * 1000 + index)
        except BaseException as error:  # reported after the threads join
            errors.append(error)

    threads = [threading.Thread(target=run_client, args=(offset,)) for offset in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return clients * per_client / elapsed


def direct_latencies(size: int, steps: int, count: int) -> list[float]:
    from rl4pix_core.editing import EditRequest, InstructEditor
    from rl4pix_core.loading import load_components

    editor = InstructEditor(load_components("tiny", device="cpu"))
    image = Image.new("RGB", (size, size), (90, 140, 200))
    editor.edit([EditRequest(image=image, instruction="make the sky purple", seed=0, steps=steps)])
    latencies = []
    for index in range(count):
        started = time.perf_counter()
        editor.edit([EditRequest(image=image, instruction="make the sky purple", seed=index, steps=steps)])
        latencies.append(time.perf_counter() - started)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20, help="sequential edits for the latency rows")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients for the throughput rows")
    parser.add_argument("--per-client", type=int, default=4, help="edits per concurrent client")
    parser.add_argument("--steps", type=int, default=4, help="DDIM steps per edit")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--batch-size", type=int, default=8, help="edit batch size with batching on")
    parser.add_argument("--window", type=float, default=0.05, help="batch window in seconds with batching on")
    args = parser.parse_args()
    image = png(args.size)

    direct = direct_latencies(args.size, args.steps, args.requests)
    rows = [("direct InstructEditor.edit", percentile(direct, 0.5), percentile(direct, 0.95), None)]
    for label, batch_size, window in (
        ("batching on", args.batch_size, args.window),
        ("batching off", 1, 0.0),
    ):
        server = EmbeddedServer(batch_size, window)
        try:
            latencies = service_latencies(server, image, args.steps, args.requests)
            rate = throughput(server, image, args.steps, args.clients, args.per_client)
        finally:
            server.close()
        rows.append((f"POST /edit, {label}", percentile(latencies, 0.5), percentile(latencies, 0.95), rate))

    print(
        f"tiny model, {args.size} px, {args.steps} steps, embedded mode, {os.cpu_count()} CPUs; "
        f"throughput with {args.clients} clients x {args.per_client} edits\n"
    )
    print("| path | p50 latency (s) | p95 latency (s) | throughput (edits/s) |")
    print("| --- | --- | --- | --- |")
    for label, p50, p95, rate in rows:
        shown = f"{rate:.2f}" if rate is not None else "-"
        print(f"| {label} | {p50:.3f} | {p95:.3f} | {shown} |")
    print(f"\ndirect mean {statistics.mean(direct):.3f} s over {len(direct)} edits")


if __name__ == "__main__":
    main()
