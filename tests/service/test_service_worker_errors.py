"""Error messages that workers store on failed jobs: service wording, no server paths, no library noise.

These call workers.model_ops in this process with the model layer replaced where a real failure
would need the network (loading a hub model offline).
"""

from __future__ import annotations

import pytest

from rl4pix_core.errors import ConfigError, ModelNotFoundError
from workers import model_ops

HUB_FAILURE = (
    "could not load 'timbrooks/instruct-pix2pix' from /root/.cache/huggingface/hub: "
    "pass a preset (tiny, sd15-random) or a local folder. "
    "Please check out the root cause in the stacktrace above.."
)


@pytest.fixture
def failed_load(monkeypatch) -> model_ops.ModelLayerError:
    def fail(model, device=None, dtype=None):
        raise ModelNotFoundError(HUB_FAILURE)

    monkeypatch.setattr("rl4pix_core.loading.load_components", fail)
    with pytest.raises(model_ops.ModelLayerError) as caught:
        model_ops.load_editor("timbrooks/instruct-pix2pix", None, None, "cpu", None, ["tiny", "sd15-random"])
    return caught.value


def test_model_load_failure_code(failed_load):
    assert model_ops.classify_error(failed_load)[0] == "model_not_found"


def test_model_load_failure_names_model(failed_load):
    assert "'timbrooks/instruct-pix2pix'" in model_ops.classify_error(failed_load)[1]


def test_model_load_failure_lists_allowed_models(failed_load):
    assert "tiny, sd15-random" in model_ops.classify_error(failed_load)[1]


def test_model_load_failure_explains_network(failed_load):
    assert "network access" in model_ops.classify_error(failed_load)[1]


def test_model_load_failure_has_no_library_noise(failed_load):
    assert "stacktrace" not in model_ops.classify_error(failed_load)[1]


def test_model_load_failure_has_no_path(failed_load):
    assert "/root" not in model_ops.classify_error(failed_load)[1]


def test_editor_cache_reports_load_seconds(monkeypatch):
    monkeypatch.setattr(model_ops, "load_editor", lambda *args: object())
    cache = model_ops.EditorCache(capacity=1)
    first = cache.get("tiny", None, None, "cpu", None)
    second = cache.get("tiny", None, None, "cpu", None)
    assert first[1] >= 0.0
    assert second[1] == 0.0


PATH_CASES = {
    "bare path": ("invalid value 'x' for 'data.split': /srv/rl4pix/work/datasets/ab has no folder", "/srv"),
    "quoted path with space": ("LoRA weights not found at '/srv/my data/a.safetensors'", "my data"),
    "path after equals": ("failed (path=/var/lib/rl4pix)", "/var"),
}


@pytest.mark.parametrize("case", PATH_CASES, ids=list(PATH_CASES))
def test_error_message_hides_server_paths(case):
    message, secret = PATH_CASES[case]
    assert secret not in model_ops.classify_error(ConfigError(message))[1]


def test_error_message_keeps_urls():
    message = model_ops.classify_error(ConfigError("see https://huggingface.co/docs"))[1]
    assert "https://huggingface.co/docs" in message


def test_error_message_keeps_hub_ids():
    message = model_ops.classify_error(ConfigError("model 'timbrooks/instruct-pix2pix' failed"))[1]
    assert "timbrooks/instruct-pix2pix" in message
