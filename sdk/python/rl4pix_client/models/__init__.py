"""Contains all the data models used in inputs/outputs"""

from .adapter_list import AdapterList
from .adapter_out import AdapterOut
from .body_create_dataset import BodyCreateDataset
from .body_create_edit import BodyCreateEdit
from .checkpoint_list import CheckpointList
from .checkpoint_out import CheckpointOut
from .checkpoint_out_kind import CheckpointOutKind
from .dataset_out import DatasetOut
from .dataset_out_format import DatasetOutFormat
from .dataset_page import DatasetPage
from .edit_out import EditOut
from .edit_out_reward_type_0 import EditOutRewardType0
from .edit_out_status import EditOutStatus
from .edit_out_timings import EditOutTimings
from .edit_page import EditPage
from .edit_sizes import EditSizes
from .edit_urls import EditUrls
from .error_body import ErrorBody
from .error_detail import ErrorDetail
from .eval_job_create import EvalJobCreate
from .eval_job_create_setting import EvalJobCreateSetting
from .eval_job_out import EvalJobOut
from .eval_job_out_metrics_type_0 import EvalJobOutMetricsType0
from .eval_job_out_status import EvalJobOutStatus
from .eval_job_page import EvalJobPage
from .health_out import HealthOut
from .image_size import ImageSize
from .job_error import JobError
from .job_event_out import JobEventOut
from .job_event_out_data_type_0 import JobEventOutDataType0
from .job_event_page import JobEventPage
from .list_edits_status_type_0 import ListEditsStatusType0
from .list_eval_jobs_status_type_0 import ListEvalJobsStatusType0
from .list_train_jobs_status_type_0 import ListTrainJobsStatusType0
from .progress import Progress
from .ready_out import ReadyOut
from .ready_out_checks import ReadyOutChecks
from .ready_out_status import ReadyOutStatus
from .train_job_create import TrainJobCreate
from .train_job_create_config import TrainJobCreateConfig
from .train_job_out import TrainJobOut
from .train_job_out_config import TrainJobOutConfig
from .train_job_out_latest_metrics_type_0 import TrainJobOutLatestMetricsType0
from .train_job_out_status import TrainJobOutStatus
from .train_job_page import TrainJobPage

__all__ = (
    "AdapterList",
    "AdapterOut",
    "BodyCreateDataset",
    "BodyCreateEdit",
    "CheckpointList",
    "CheckpointOut",
    "CheckpointOutKind",
    "DatasetOut",
    "DatasetOutFormat",
    "DatasetPage",
    "EditOut",
    "EditOutRewardType0",
    "EditOutStatus",
    "EditOutTimings",
    "EditPage",
    "EditSizes",
    "EditUrls",
    "ErrorBody",
    "ErrorDetail",
    "EvalJobCreate",
    "EvalJobCreateSetting",
    "EvalJobOut",
    "EvalJobOutMetricsType0",
    "EvalJobOutStatus",
    "EvalJobPage",
    "HealthOut",
    "ImageSize",
    "JobError",
    "JobEventOut",
    "JobEventOutDataType0",
    "JobEventPage",
    "ListEditsStatusType0",
    "ListEvalJobsStatusType0",
    "ListTrainJobsStatusType0",
    "Progress",
    "ReadyOut",
    "ReadyOutChecks",
    "ReadyOutStatus",
    "TrainJobCreate",
    "TrainJobCreateConfig",
    "TrainJobOut",
    "TrainJobOutConfig",
    "TrainJobOutLatestMetricsType0",
    "TrainJobOutStatus",
    "TrainJobPage",
)
