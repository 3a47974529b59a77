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
    # Serve a model's committed int8 copy (`.int8.onnx`) when ONNX Runtime runs on the CPU:
    # the detector's look takes about half the time (models/detector/MODEL_CARD.md).
    int8: bool = True
    # A card is kept from this detector score on the model's word alone; below it, down to
    # detector_unsure_conf, only when the refiner is sure of its corners. With those unsure cards
    # kept, 0.8 finds as many cards as 0.7 on synthetic scenes and fewer false ones on real
    # photos (models/detector/MODEL_CARD.md).
    detector_conf: float = 0.8
    # ... and from this refiner certainty of its second least certain corner (models.refiner):
    # a quad spanning two overlapping cards, or around something card-like, has two or more
    # diffuse corners. 0.65 drops a third of the false cards, and also some loosely found real
    # ones that identification would have named, so 0 (every quad) is the default
    # (models/detector/MODEL_CARD.md).
    detector_min_certainty: float = 0.0
    # From this score up to detector_conf, a card is kept only when the refiner is sure of it
    # (models.detector.UNSURE_MIN_CERTAINTY); detector_conf or more turns this off.
    detector_unsure_conf: float = 0.4
    # Also run the detector on the photo turned by 45 degrees, for the cards lying at 30-45
    # degrees that the upright look misses (one more model run per photo).
    detector_turn: bool = True
    # Two overlapping detector quads that come no nearer than this share of a card's height on
    # any side are two cards (a deck spread's title strips; `models.detector.quad_nms`); 0: off.
    detector_apart: float = 0.0
    # A found card whose orienter (models.orienter) gives it this probability or more of lying
    # upside down has its corner order turned; 1 or more: the orienter is off. Off by default:
    # at 0.99 it sets 5 more of 3,654 found cards upright and costs a 12 MP page 10 ms on the
    # CPU (models/orienter/MODEL_CARD.md).
    detector_upside_down: float = 1.0
    # Each card the NMS keeps becomes the score-weighted mean of the candidates it merged
    # (`models.detector.fuse`); off: the best-scored candidate's corners as they are.
    detector_fuse: bool = True
    # Read collector-number lines with the trained number reader (models/numreader) when one
    # is committed; off: rapidocr's general recogniser reads them.
    number_reader: bool = True
    # Decision thresholds on the calibrated confidence.
    auto_accept_threshold: float = 0.97
    review_threshold: float = 0.35
    top_k: int = 10
    # Threads verifying and reading a photo's crops side by side (OpenCV and OCR release the GIL
    # while they run; the Python around them does not). 0: one per core, at most 4. A host
    # running one worker process per core wants 1.
    match_threads: int = 0


settings = ModelSettings()
