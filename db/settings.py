"""Database settings (CARDSCAN_ prefix)."""

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CARDSCAN_", extra="ignore")

    # Unset: the project starts its own PostgreSQL under `var_dir / "pg"` (pgserver).
    database_url: str | None = None
    var_dir: Path = PROJECT_ROOT / "var"
    pool_min_size: int = 1
    pool_max_size: int = 10
    connect_timeout_s: int = 5
    statement_timeout_ms: int = 30_000
    pool_timeout_s: float = 10.0


settings = DatabaseSettings()
