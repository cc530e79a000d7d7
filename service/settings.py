"""Configuration of the gateway and the workers, read from `RL4PIX_*` environment variables.

With no variables set, every value describes embedded mode: SQLite, a filesystem broker and
artifact storage, all under `data_dir` (./.rl4pix). The full stack (docker-compose.yml) sets
`RL4PIX_DATABASE_URL`, `RL4PIX_BROKER_URL` and `RL4PIX_STORAGE_BACKEND=s3` instead.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MIB = 1024 * 1024


class Settings(BaseSettings):
    """Every setting of the service; each field is read from `RL4PIX_<FIELD>` (case-insensitive)."""

    model_config = SettingsConfigDict(env_prefix="RL4PIX_", extra="ignore")

    # Locations.
    data_dir: Path = Field(
        Path(".rl4pix"), description="root of the embedded-mode database, broker and artifacts"
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default sqlite:///<data_dir>/rl4pix.db"
    )
    broker_url: str | None = Field(
        None, description="Celery broker URL; default filesystem:// under <data_dir>/broker"
    )
    broker_key_prefix: str = Field(
        "", description="prefix of every Redis key the broker writes (kombu global_keyprefix)"
    )
    broker_visibility_timeout_seconds: int = Field(
        3600, ge=60, description="Redis redelivery delay of unacked messages"
    )

    # Object storage.
    storage_backend: Literal["local", "s3"] = "local"
    storage_dir: Path | None = Field(None, description="local backend root; default <data_dir>/artifacts")
    s3_endpoint_url: str | None = Field(
        "http://localhost:9000", description="S3 API endpoint (MinIO default port)"
    )
    s3_bucket: str = "rl4pix"
    s3_region: str = "us-east-1"
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_path_style: bool = Field(True, description="path-style addressing, which MinIO needs")
    s3_use_credential_chain: bool = Field(
        False,
        description="let boto3 look for credentials (environment, profile, instance metadata) when no keys are set",
    )
    s3_multipart_threshold_bytes: int = Field(64 * MIB, ge=5 * MIB)
    s3_multipart_chunk_bytes: int = Field(16 * MIB, ge=5 * MIB)
    presign_expiry_seconds: int = Field(3600, ge=60, le=7 * 24 * 3600)
    signing_secret: SecretStr | None = Field(None, description="HMAC key of local-backend download links")

    # Request limits.
    max_upload_bytes: int = Field(20 * MIB, ge=1024, description="largest POST /edit body")
    max_dataset_bytes: int = Field(2048 * MIB, ge=1024, description="largest POST /datasets body")
    max_json_bytes: int = Field(1 * MIB, ge=1024, description="largest body of every other request")
    max_image_pixels: int = Field(
        4096 * 4096, ge=64 * 64, description="largest width * height of an uploaded image"
    )
    max_instruction_chars: int = Field(1000, ge=1)
    max_dataset_uncompressed_bytes: int = Field(8192 * MIB, ge=1024)
    max_dataset_members: int = Field(100_000, ge=1)
    max_compression_ratio: float = Field(
        200.0, ge=1.0, description="largest uncompressed/compressed size of a zip member"
    )
    default_wait_seconds: float = Field(
        10.0, ge=0.0, description="POST /edit wait when no `Prefer: wait=N` is sent"
    )
    max_wait_seconds: float = Field(60.0, ge=0.0, description="largest accepted `Prefer: wait=N`")
    wait_poll_seconds: float = Field(0.1, gt=0.0, description="database poll period while POST /edit waits")

    # Models and edits.
    allowed_models: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["timbrooks/instruct-pix2pix", "tiny"],
        description="models a request may name; comma-separated or a JSON list",
    )
    default_model: str = "timbrooks/instruct-pix2pix"
    default_steps: int = Field(20, ge=1)
    max_steps: int = Field(100, ge=1)
    edit_batch_size: int = Field(4, ge=1, description="max queued edits one worker runs as one batch")
    edit_batch_window_seconds: float = Field(
        0.05, ge=0.0, description="how long a worker waits for a batch to fill"
    )
    edit_timeout_seconds: float = Field(
        600.0, gt=0.0, description="running edits older than this are re-queued"
    )
    pipeline_cache_size: int = Field(
        2, ge=1, description="loaded (model, adapter) pipelines kept per worker process"
    )
    worker_device: str | None = Field(
        None, description="torch device of the workers; default CUDA when available"
    )
    worker_dtype: str | None = None
    eval_clip_model: str = Field(
        "openai/clip-vit-base-patch32",
        description="CLIP model of the CLIP-T metric ('tiny' for tests, '' to skip)",
    )
    work_dir: Path | None = Field(None, description="worker scratch space; default <data_dir>/work")

    # Training jobs.
    heartbeat_interval_seconds: float = Field(10.0, gt=0.0)
    heartbeat_timeout_seconds: float = Field(
        120.0, gt=0.0, description="a running job silent this long is re-queued"
    )
    reaper_interval_seconds: float = Field(30.0, gt=0.0)
    reaper_enabled: bool = True
    max_attempts: int = Field(3, ge=1, description="runs of one job before a stale heartbeat fails it")
    cancel_poll_seconds: float = Field(
        1.0, ge=0.0, description="how often the trainer's should_cancel reads the database"
    )

    log_format: Literal["json", "text"] = "json"
    log_level: str = "INFO"

    @field_validator("allowed_models", mode="before")
    @classmethod
    def _split_models(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [item.strip() for item in text.split(",") if item.strip()]
        return value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'rl4pix.db').resolve()}"

    @property
    def resolved_broker_url(self) -> str:
        return self.broker_url or "filesystem://"

    @property
    def resolved_storage_dir(self) -> Path:
        return (self.storage_dir or self.data_dir / "artifacts").resolve()

    @property
    def resolved_work_dir(self) -> Path:
        return (self.work_dir or self.data_dir / "work").resolve()

    @property
    def broker_folder(self) -> Path:
        return (self.data_dir / "broker").resolve()

    @property
    def is_embedded_broker(self) -> bool:
        return self.resolved_broker_url.startswith("filesystem://")

    def broker_transport_options(self) -> dict[str, Any]:
        """Return kombu transport options for the configured broker."""
        if self.is_embedded_broker:
            folder = self.broker_folder
            return {
                "data_folder_in": str(folder / "messages"),
                "data_folder_out": str(folder / "messages"),
                "control_folder": str(folder / "control"),
                "store_processed": False,
                "polling_interval": 0.1,
            }
        options: dict[str, Any] = {"visibility_timeout": self.broker_visibility_timeout_seconds}
        if self.broker_key_prefix:
            options["global_keyprefix"] = self.broker_key_prefix
        return options


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once from the environment."""
    return Settings()
