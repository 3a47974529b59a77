"""Model and decision settings (CARDSCAN_ prefix)."""

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ModelSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CARDSCAN_", extra="ignore")

    model_dir: Path = PROJECT_ROOT / "models"
    index_dir: Path = PROJECT_ROOT / "var" / "index"
    # ONNX Runtime execution providers in order of preference; the GPU image sets CUDA first.
    providers: list[str] = ["CPUExecutionProvider"]
    onnx_threads: int = 0  # 0: ONNX Runtime decides (all cores)
    # Decision thresholds on the calibrated confidence.
    auto_accept_threshold: float = 0.97
    review_threshold: float = 0.35
    top_k: int = 10


settings = ModelSettings()
