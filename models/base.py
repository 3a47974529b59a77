"""Load-once lifecycle shared by every learned or indexed part (after immich's ML `base.py`).

`load()` is idempotent under a lock and runs lazily in the process that predicts (after fork);
`predict()` loads on first use. Subclasses implement `_load()` and `_predict()`.
"""

from __future__ import annotations

import re
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from models.settings import settings
from vision.errors import ModelNotReadyError

INT8 = ".int8.onnx"  # a model's int8 copy for the CPU, beside its float file


class Model(ABC):
    """One instance per process; never shared across threads while predicting."""

    name: str = "model"
    # Given no path, load() serves the newest model under <model_dir>/<folder> (`newest_model`).
    folder: str | None = None

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._loaded = False

    @property
    def loaded(self) -> bool:
        return self._loaded

    @property
    def version(self) -> str:
        """Version string recorded with every stored result (file stem by default)."""
        return self.path.stem if self.path is not None else self.name

    def load(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            if self.path is None and self.folder:
                self.path = newest_model(settings.model_dir / self.folder)
                if self.path is None:
                    raise ModelNotReadyError(
                        f"{self.name}: no .onnx file in {settings.model_dir / self.folder}"
                    )
            if self.path is not None and not self.path.exists():
                raise ModelNotReadyError(f"{self.name}: model file {self.path} is missing")
            self._load()
            self._loaded = True

    def warmup(self) -> None:
        """Run one prediction at the serving shape so the first real request is not slow."""
        self.load()

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        self.load()
        return self._predict(*args, **kwargs)

    @abstractmethod
    def _load(self) -> None: ...

    @abstractmethod
    def _predict(self, *args: Any, **kwargs: Any) -> Any: ...


def onnx_session(path: Path, providers: list[str] | None = None, threads: int = 0):  # noqa: ANN201
    """An ONNX Runtime session with the configured execution providers (CPU unless told)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # ONNX Runtime's pool threads spin after each run, and a photo runs the detector, the
    # refiner and the embedder in turn, with OpenCV and OCR work between them: on 2 cores the
    # spinning took the CPU from the next stage (a 1-card photo: 213 ms with, 117 ms without).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    available = set(ort.get_available_providers())
    wanted = [p for p in (providers or ["CPUExecutionProvider"]) if p in available]
    return ort.InferenceSession(str(path), options, providers=wanted or ["CPUExecutionProvider"])


def _serves_on_cpu(providers: list[str]) -> bool:
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    return next((p for p in providers if p in available), "CPUExecutionProvider") == (
        "CPUExecutionProvider"
    )


def _version_order(path: Path) -> list[tuple[int, str]]:
    """A file name's sort key with its numbers as numbers: v10 comes after v9."""
    return [
        (int(part), "") if part.isdigit() else (-1, part) for part in re.split(r"(\d+)", path.name)
    ]


def newest_model(folder: Path) -> Path | None:
    """The newest model in `folder` (by version number: v10 after v9), or None: its int8 copy
    (`scripts.quantize_models`) when there is one and ONNX Runtime runs it on the CPU
    (`CARDSCAN_INT8`), else its float file. A GPU runs the float file faster."""
    files = sorted(
        (p for p in folder.glob("*.onnx") if not p.name.endswith(INT8)), key=_version_order
    )
    if not files:
        return None
    int8 = files[-1].with_suffix(INT8)
    if settings.int8 and int8.exists() and _serves_on_cpu(settings.providers):
        return int8
    return files[-1]
