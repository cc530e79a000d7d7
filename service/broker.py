"""Celery configuration shared by the gateway (a client only) and the workers.

The gateway never imports task code: it sends messages by task name with `send_task`. Messages
carry only a job id, JSON-encoded; the job itself is in the database.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from celery import Celery
from kombu import Exchange, Queue

from service.settings import Settings

logger = logging.getLogger(__name__)

EDIT_TASK = "rl4pix.edit"
TRAIN_TASK = "rl4pix.train"
EVAL_TASK = "rl4pix.eval"
QUEUES = {EDIT_TASK: "edits", TRAIN_TASK: "training", EVAL_TASK: "eval"}


class BrokerUnavailableError(Exception):
    """The message could not be sent to the broker."""


def celery_config(settings: Settings) -> dict[str, Any]:
    """Return the Celery settings both sides use."""
    queues = [
        Queue(name, Exchange(name, type="direct"), routing_key=name) for name in ("edits", "training", "eval")
    ]
    return {
        "broker_url": settings.resolved_broker_url,
        "broker_transport_options": settings.broker_transport_options(),
        "broker_connection_retry_on_startup": True,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "result_backend": None,
        "task_queues": queues,
        "task_default_queue": "edits",
        "task_routes": {name: {"queue": queue} for name, queue in QUEUES.items()},
        "worker_prefetch_multiplier": 1,
        "task_acks_late": False,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        "broker_pool_limit": 4,
    }


def build_celery_client(settings: Settings) -> Celery:
    """Create a Celery app that can send messages and defines no tasks (the gateway side)."""
    if settings.is_embedded_broker:
        ensure_embedded_broker_folders(settings)
    app = Celery("rl4pix-gateway", set_as_current=False)
    app.conf.update(celery_config(settings))
    return app


def ensure_embedded_broker_folders(settings: Settings) -> None:
    for name in ("messages", "control"):
        (settings.broker_folder / name).mkdir(parents=True, exist_ok=True)


def send_job(app: Celery, task_name: str, job_id: uuid.UUID, **log_ids: str) -> None:
    """Send the message of `job_id` to its queue; raise BrokerUnavailableError when that fails."""
    queue = QUEUES[task_name]
    try:
        app.send_task(task_name, args=[str(job_id)], queue=queue, retry=True, retry_policy={"max_retries": 2})
    except Exception as error:  # kombu raises transport-specific classes
        logger.error(
            "sending job message failed", extra={"job_id": str(job_id), "queue": queue, "error": str(error)}
        )
        raise BrokerUnavailableError(str(error)) from error
    logger.info(
        "job message sent", extra={"job_id": str(job_id), "queue": queue, "task": task_name, **log_ids}
    )


def check_broker(app: Celery) -> None:
    """Open and close a broker connection; raise when the broker cannot be reached."""
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=2)
