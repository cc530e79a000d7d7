"""The gateway never loads the model stack; the workers' parent process never loads torch or FastAPI."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import pytest
from service_testkit import REPO


def loaded_modules(statement: str, *names: str) -> dict[str, bool]:
    probe = f"import sys\n{statement}\nprint(','.join(str(name in sys.modules) for name in {names!r}))"
    with tempfile.TemporaryDirectory() as data_dir:
        # Building the app or the Celery app makes the embedded broker folders, which belong in a
        # throwaway data dir rather than in the repository.
        env = {**os.environ, "RL4PIX_DATA_DIR": data_dir}
        output = subprocess.run(
            [sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True, check=True
        )
    return dict(zip(names, (value == "True" for value in output.stdout.strip().split(","))))


@pytest.mark.parametrize("module", ["torch", "diffusers", "transformers", "rl4pix_core.loading"])
def test_gateway_import_skips_model_stack(module):
    loaded = loaded_modules("import service.app; service.app.create_app()", module)
    assert not loaded[module]


def test_config_validation_skips_torch():
    loaded = loaded_modules(
        "from service.train_config import validate_overrides; validate_overrides('tiny', {})", "torch"
    )
    assert not loaded["torch"]


@pytest.mark.parametrize("module", ["torch", "fastapi"])
def test_worker_parent_skips_torch_and_fastapi(module):
    statement = (
        "import workers.app, workers.edit_tasks, workers.train_tasks, workers.eval_tasks, workers.reaper"
    )
    loaded = loaded_modules(statement, module)
    assert not loaded[module]
