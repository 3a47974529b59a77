"""Quantize the detector and the corner refiner to int8 for the CPU, calibrated on what they see.

One command reproduces the committed files (run it in the training venv, `.venv-train`):

    .venv-train/bin/python -m scripts.quantize_models

The float detector, with its refiner, runs over synthetic scenes made from the train split of the
catalog (seeds 70,000,000 on, apart from every test set), and each model's inputs are recorded on
the way: the letterboxed and the turned looks, and the refiner's windows of every pass. ONNX
Runtime's static quantization (QDQ, int8 weights per channel in 7 bits, uint8 activations, min-max
ranges) then writes `<model>.int8.onnx` beside each float model, which the CPU serves instead
(`models.base.newest_model`). The refiner's ranges come from the windows of the newest detector,
so a new detector means quantizing both again. The layers that write the outputs stay float:
the detector's last convolutions and box/keypoint decoding put scores (0-1) and pixel
coordinates (0-416) in one tensor, which one uint8 scale cannot hold, and the refiner's heatmaps
are its corners.

The weights keep to 7 bits (`reduce_range`) because x86 CPUs without VNNI (AVX2, AVX-512F)
multiply uint8 activations by int8 weights in 16-bit sums that saturate: on such a CPU the
full-range copies moved the detector's corners about 2 px of its 416 px canvas and the refiner's
0.7 % of a card's height, and lost 2 points of recall (models/detector/MODEL_CARD.md). With 7-bit
weights the sums cannot overflow, and CPUs with VNNI run the same fast kernels.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from models.base import INT8
from models.detector import CardDetector
from models.refiner import CornerRefiner
from models.settings import settings
from vision.synth import SceneGenerator, load_catalog, split_catalog

CALIBRATION_SEED = 70_000_000
SCENE_SIZE = 1280  # long side, as the test scenes


class Recorder:
    """An ONNX Runtime session that keeps a copy of every input it is given."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.feeds: list[dict[str, np.ndarray]] = []

    def run(self, outputs: Any, feeds: dict[str, np.ndarray]) -> Any:
        self.feeds.append({k: v.copy() for k, v in feeds.items()})
        return self.session.run(outputs, feeds)

    def get_inputs(self) -> Any:
        return self.session.get_inputs()


def record(scenes: int) -> tuple[CardDetector, Recorder, Recorder]:
    """The float detector and refiner, and what they were given over `scenes` scenes."""
    settings.int8 = False  # the float files: they are calibrated and quantized
    detector = CardDetector(refiner=CornerRefiner())
    detector.load()
    assert detector.refiner is not None
    looks = detector._session = Recorder(detector._session)
    windows = detector.refiner._session = Recorder(detector.refiner._session)
    train, _ = split_catalog(load_catalog())
    gen = SceneGenerator(train, SCENE_SIZE)
    for i in range(scenes):
        detector.predict(gen.generate(CALIBRATION_SEED + i).image)
    return detector, looks, windows


def detector_outputs(graph: Any) -> list[str]:
    """The YOLO pose head's output convolutions and its decoding (`/model.23/`, all but the
    inner convolutions and their activations)."""
    return [
        n.name
        for n in graph.node
        if n.name.startswith("/model.23/")
        and ("/dfl/" in n.name or not ("/conv/Conv" in n.name or "/act/" in n.name))
    ]


def refiner_outputs(graph: Any) -> list[str]:
    """The heatmap convolution and everything after it (soft-argmax, certainty)."""
    names = [n.name for n in graph.node]
    first = next(i for i, n in enumerate(graph.node) if n.name.startswith("/heat/"))
    return names[first:]


def quantize(
    source: Path, feeds: list[dict[str, np.ndarray]], keep_float: Callable[[Any], list[str]]
) -> Path:
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Feeds(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.it, None)

    target = source.with_suffix(INT8)
    prepared = target.with_suffix(".pre.onnx")
    quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
    try:
        quantize_static(
            str(prepared),
            str(target),
            Feeds(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            reduce_range=True,  # no saturated uint8 x int8 sums on CPUs without VNNI
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=keep_float(onnx.load(str(prepared)).graph),
        )
    finally:
        prepared.unlink(missing_ok=True)
    return target


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenes", type=int, default=48, help="calibration scenes")
    args = p.parse_args()
    started = time.time()
    detector, looks, windows = record(args.scenes)
    assert detector.path is not None and detector.refiner is not None
    assert detector.refiner.path is not None
    print(f"recorded {len(looks.feeds)} looks and {len(windows.feeds)} refiner batches")
    for source, feeds, keep_float in (
        (detector.path, looks.feeds, detector_outputs),
        (detector.refiner.path, windows.feeds, refiner_outputs),
    ):
        target = quantize(source, feeds, keep_float)
        print(f"{source.name} -> {target.name} ({target.stat().st_size / 1e6:.1f} MB)")
    print(f"{time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
