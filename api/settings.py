"""API settings (CARDSCAN_ prefix); upload limits live in pipeline.settings beside the code
that enforces them."""

from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CARDSCAN_", extra="ignore")

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # Seconds a client is told to wait (Retry-After) when the database or queue is down.
    retry_after_s: int = 5
    page_size_max: int = 100
    # Headroom over max_upload_bytes for the multipart envelope when checking Content-Length.
    multipart_overhead_bytes: int = 64 * 1024


settings = ApiSettings()
