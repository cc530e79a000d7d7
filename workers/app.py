"""The Celery application of the workers: `celery -A workers.app worker -Q edits,training,eval`.

Pool and CUDA: the parent process imports the task modules but never torch (the model layer is
imported inside the tasks, see workers.model_ops), so the prefork pool forks children in which
CUDA is first initialised. Run one process per GPU (`--concurrency 1`) and pin it with
CUDA_VISIBLE_DEVICES; `--pool solo` also works and runs the task in the main process.
"""

from __future__ import annotations

import logging

from celery import Celery, signals

from service.broker import celery_config, ensure_embedded_broker_folders
from service.logging_setup import configure_logging
from service.settings import get_settings

logger = logging.getLogger(__name__)

TASK_MODULES = ["workers.edit_tasks", "workers.train_tasks", "workers.eval_tasks"]

_settings = get_settings()
if _settings.is_embedded_broker:
    ensure_embedded_broker_folders(_settings)

app = Celery("rl4pix", include=TASK_MODULES)
app.conf.update(celery_config(_settings))

_reaper = None


@signals.setup_logging.connect
def _configure_logging(**_kwargs) -> None:
    configure_logging(_settings.log_format, _settings.log_level)


@signals.worker_ready.connect
def _start_reaper(**_kwargs) -> None:
    global _reaper
    if not _settings.reaper_enabled:
        logger.info("reaper disabled by RL4PIX_REAPER_ENABLED")
        return
    from workers.context import get_context
    from workers.reaper import ReaperThread

    _reaper = ReaperThread(get_context(), app)
    _reaper.start()


@signals.worker_shutdown.connect
def _stop_reaper(**_kwargs) -> None:
    if _reaper is not None:
        _reaper.stopped.set()
