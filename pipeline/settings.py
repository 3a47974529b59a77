"""Pipeline settings: queue, storage, upload limits (CARDSCAN_ prefix)."""

from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class PipelineSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CARDSCAN_", extra="ignore")

    # Unset: Celery's filesystem transport under var/broker (embedded, zero set-up).
    broker_url: str | None = None
    var_dir: Path = PROJECT_ROOT / "var"
    # file:///abs/path or s3://bucket/prefix; unset: file://var/objects
    storage_url: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    presign_expiry_s: int = 3600
    data_dir: Path = PROJECT_ROOT.parent / "shared" / "data"
    max_upload_bytes: int = 15 * 1024 * 1024
    max_pixels: int = 50_000_000
    task_max_retries: int = 5
    # A scan still recognising after this is failed with a reason (Celery's soft time limit); the
    # pool kills the process `scan_kill_grace_s` later if it does not stop (a stuck native call).
    scan_time_limit_s: float = 120.0
    scan_kill_grace_s: float = 30.0
    # A photo whose processing started this often without finishing (its worker died or was
    # killed each time) is failed instead of being re-enqueued again. Retries count too.
    max_scan_attempts: int = 10
    processing_timeout_s: int = 600  # a scan stuck in processing longer than this is re-enqueued
    # The worker's recognizer: the real models, or a deterministic stand-in that still decodes
    # the photo (for tests that need a real worker process but not real models).
    recognizer: Literal["onnx", "fake"] = "onnx"
    fake_recognizer_delay_s: float = 0.0
    # Redis redelivers an unacknowledged message after this long; longer than any scan.
    broker_visibility_timeout_s: int = 3600
    broker_key_prefix: str = ""  # Redis only: lets several deployments share one server
    reaper_interval_s: float = 30.0

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or "filesystem://"

    @property
    def effective_storage_url(self) -> str:
        return self.storage_url or f"file://{(self.var_dir / 'objects').resolve()}"


settings = PipelineSettings()
