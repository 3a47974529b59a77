"""Benchmark of detection (prints medians; not a test).

    nice -n 10 .venv/bin/python -m scripts.bench_detect [--runs 20]

Figures: the ONNX model alone at its input size; the NMS of the photo's candidates (both looks);
detect (letterbox + model + NMS + refinement) on a 12-megapixel photo; decode + detect + warp of
a 12-megapixel JPEG with 9 cards (a synthetic 3x3 binder page rendered at 4000x3000, held-out
printings).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from models.detector import CardDetector, letterbox, quad_nms
from scripts.bench_cmd import machine
from vision.decode import decode_image
from vision.synth import SceneGenerator, load_catalog, split_catalog
from vision.warp import warp_card


def nine_card_jpeg(size: int = 4000) -> tuple[bytes, int]:
    """A 4000x3000 JPEG of a 9-card binder page (the first seed that gives 9 cards, landscape)."""
    _, held = split_catalog(load_catalog())
    gen = SceneGenerator(held, size)
    for seed in range(100):
        scene = gen.generate(seed, layout="binder")
        h, w = scene.image.shape[:2]
        if (
            len(scene.cards) == 9
            and w * h >= 11_000_000
            and all(c.should_detect for c in scene.cards)
        ):
            ok, buf = cv2.imencode(".jpg", scene.image, [cv2.IMWRITE_JPEG_QUALITY, 90])
            return buf.tobytes(), seed
    raise RuntimeError("no 9-card 12 MP scene in the first 100 seeds")


def median_ms(fn, runs: int) -> tuple[float, float]:  # noqa: ANN001
    """Median wall time and median CPU time of this process (the latter hides waiting for a core
    that other jobs hold; with several threads it can exceed wall time)."""
    wall, cpu = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=None)
    p.add_argument("--runs", type=int, default=20)
    args = p.parse_args()
    det = CardDetector(args.model)
    det.warmup()
    data, seed = nine_card_jpeg()
    image = decode_image(data)
    canvas, _, _ = letterbox(image, det.imgsz)
    blob = cv2.dnn.blobFromImage(canvas, 1 / 255.0, swapRB=True)
    session = det._session  # the bare model run is what "detector latency" means
    name = session.get_inputs()[0].name

    def full() -> int:
        img = decode_image(data)
        crops = [warp_card(img, d.quad) for d in det.predict(img)]
        return len(crops)

    found = len(det.predict(image))
    print(f"machine: {machine()}")
    print(
        f"model {det.version}, input {det.imgsz}x{det.imgsz}; "
        f"photo {image.shape[1]}x{image.shape[0]}, {len(data) / 1e6:.1f} MB JPEG, seed {seed}, "
        f"9 cards, {found} detected"
    )

    def report(label: str, fn) -> None:  # noqa: ANN001
        wall, cpu = median_ms(fn, args.runs)
        print(f"{label:<22} median {wall:7.1f} ms wall, {cpu:7.1f} ms cpu")

    report("onnx model run", lambda: session.run(None, {name: blob}))
    report("letterbox 12 MP", lambda: letterbox(image, det.imgsz))
    scores, quads, _ = det.candidates(image)
    boxes = np.concatenate([quads.min(1), quads.max(1)], 1)
    report(
        f"NMS, {len(scores)} candidates",
        lambda: quad_nms(quads, boxes, scores, det.iou, det.max_det, det.contain),
    )
    report("decode 12 MP JPEG", lambda: decode_image(data))
    det.refine = False
    report("detect (no refine)", lambda: det.predict(image))
    det.refine = True
    report("detect (refined)", lambda: det.predict(image))
    dets = det.predict(image)
    report(f"warp {len(dets)} cards", lambda: [warp_card(image, d.quad) for d in dets])
    report("decode+detect+warp", full)


if __name__ == "__main__":
    main()
