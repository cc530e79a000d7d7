"""Job state transitions as conditional UPDATEs.

`transition` changes a row only while its status is one of the expected ones, so of two workers
that race for a job (or a message the broker delivered twice) exactly one gets `True`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from service.models import Edit, EvalJob, TrainJob

logger = logging.getLogger(__name__)

JobModel = type[Edit] | type[TrainJob] | type[EvalJob]


def transition(
    session: Session,
    model: JobModel,
    job_id: uuid.UUID,
    expected: str | Collection[str],
    new_status: str,
    *,
    extra_conditions: Collection[Any] = (),
    **values: Any,
) -> bool:
    """Set `status = new_status` (and `values`) where the row's status is in `expected`.

    Returns whether the row changed. The caller commits.
    """
    allowed = [expected] if isinstance(expected, str) else list(expected)
    statement = (
        update(model)
        .where(model.id == job_id, model.status.in_(allowed), *extra_conditions)
        .values(status=new_status, **values)
        .execution_options(synchronize_session=False)
    )
    changed = session.execute(statement).rowcount == 1
    log_fields = {
        "job_id": str(job_id),
        "table": model.__tablename__,
        "from_status": allowed,
        "to_status": new_status,
    }
    if changed:
        logger.info("job transition", extra=log_fields)
    else:
        logger.info("job transition skipped: status was not the expected one", extra=log_fields)
    return changed
