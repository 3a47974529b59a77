"""Evaluate the card detector on held-out synthetic scenes and on the real photos' card counts.

    .venv/bin/python -m scripts.eval_detect [--synthetic var/detector/test] [--n 1000]

Synthetic: a card that should be detected (>= 50 % visible) is found when a prediction overlaps it
with IoU >= 0.8; predictions on half-hidden cards (20-50 % visible, or less with the title strip
showing: `vision.synth.SceneCard.ignored`) are ignored; any other
prediction is a false positive. Corner error is the mean distance of corresponding corners (the
card's own order, so an upside-down answer counts as wrong) over the card's height. The cards
that show little but their whole title strip (a deck spread's) get a recall of their own. Real
photos:
count error |found - visible| / visible on the exactly counted photos of labels.csv, per group
(first folder under images/).
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from models.detector import CardDetector
from vision import geometry
from vision.decode import decode_path
from vision.synth import (
    TITLE_SHOWN,
    load_catalog,
    read_test_set,
    split_catalog,
    write_test_set,
)

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ROOT.parent / "shared" / "data" / "photos"


def evaluate_synthetic(
    detector: CardDetector,
    test_dir: Path,
    n: int,
    min_iou: float = 0.8,
    seed: int = 10_000_000,
    layout: str | None = None,
) -> dict:
    scenes_path = test_dir / "scenes.jsonl"
    if not scenes_path.exists():
        if (test_dir / "images").exists():
            raise SystemExit(f"{test_dir} has images but no scenes.jsonl (still being written?)")
        _, held = split_catalog(load_catalog())
        write_test_set(test_dir, held, n=n, seed=seed, layout=layout)
    records = read_test_set(scenes_path)[:n]
    tp = fp = fn = 0
    tp50 = fp50 = 0
    errors, free_errors, upright = [], [], []
    by_layout: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    count_errors = []
    strips = strips_found = strips_loose = 0
    for r in records:
        image = decode_path(test_dir / r["photo"])
        dets = detector.predict(image)
        pred = [d.quad for d in dets]
        must = [c for c in r["cards"] if c["should_detect"]]
        # Sets written before `ignored` was recorded: the visible share alone.
        maybe = [c for c in r["cards"] if c.get("ignored", 0.2 <= c["visible"] < 0.5)]
        matched = geometry.match_quads(pred, [c["quad"] for c in must], min_iou)
        # Found at all (IoU >= 0.5), to tell missing cards from loose corners.
        loose = geometry.match_quads(pred, [c["quad"] for c in must + maybe], 0.5)
        tp50 += sum(1 for _, j, _ in loose if j < len(must))
        fp50 += len(pred) - len(loose)
        used = {i for i, _, _ in matched}
        rest = [i for i in range(len(pred)) if i not in used]
        ignored = geometry.match_quads([pred[i] for i in rest], [c["quad"] for c in maybe], 0.5)
        n_fp = len(rest) - len(ignored)
        tp += len(matched)
        fn += len(must) - len(matched)
        fp += n_fp
        stats = by_layout[r["layout"]]
        stats[0] += len(matched)
        stats[1] += len(must) - len(matched)
        stats[2] += n_fp
        for i, j, _ in matched:
            truth = must[j]["quad"]
            errors.append(geometry.relative_corner_error(pred[i], truth))
            rolls = [
                geometry.relative_corner_error(np.roll(pred[i], k, 0), truth) for k in range(4)
            ]
            free_errors.append(min(rolls))
            upright.append(int(np.argmin(rolls) == 0))
        if must and not maybe:
            count_errors.append(abs(len(dets) - len(must)) / len(must))
        # Cards showing little but their whole title strip (a deck spread's): found at all?
        strip = [c["quad"] for c in maybe if c.get("title_visible", 0) >= TITLE_SHOWN]
        strips += len(strip)
        strips_found += len(geometry.match_quads(pred, strip, min_iou))
        strips_loose += len(geometry.match_quads(pred, strip, 0.5))
    return {
        "scenes": len(records),
        "cards": tp + fn,
        "recall": tp / max(tp + fn, 1),
        "precision": tp / max(tp + fp, 1),
        "recall_iou50": tp50 / max(tp + fn, 1),
        "precision_iou50": tp50 / max(tp50 + fp50, 1),
        "false_positives": fp,
        "missed": fn,
        "corner_error_pct": 100 * float(np.mean(errors)) if errors else None,
        "corner_error_pct_median": 100 * float(np.median(errors)) if errors else None,
        "corner_error_pct_any_order": 100 * float(np.mean(free_errors)) if free_errors else None,
        "orientation_right": float(np.mean(upright)) if upright else None,
        "count_error": float(np.mean(count_errors)) if count_errors else None,
        "title_strips": strips,
        "title_strip_recall": strips_found / strips if strips else None,
        "title_strip_recall_iou50": strips_loose / strips if strips else None,
        "by_layout": {
            k: {
                "recall": v[0] / max(v[0] + v[1], 1),
                "precision": v[0] / max(v[0] + v[2], 1),
                "fp": v[2],
            }
            for k, v in sorted(by_layout.items())
        },
    }


def evaluate_photos(detector: CardDetector, photos: Path) -> dict:
    rows = list(csv.DictReader((photos / "labels.csv").open(newline="")))
    groups: dict[str, list[float]] = defaultdict(list)
    approx: dict[str, list[float]] = defaultdict(list)
    per_photo = []
    for row in rows:
        n = int(row["n_cards"])
        parts = Path(row["photo"]).parts
        group = parts[1] if len(parts) > 2 else parts[0]
        try:
            found = len(detector.predict(decode_path(photos / row["photo"])))
        except Exception as exc:  # noqa: BLE001 - report and go on
            per_photo.append({"photo": row["photo"], "error": str(exc)})
            continue
        per_photo.append(
            {
                "photo": row["photo"],
                "n_cards": n,
                "found": found,
                "exact": row["count_exact"] == "1",
            }
        )
        if n == 0:
            continue
        (groups if row["count_exact"] == "1" else approx)[group].append(abs(found - n) / n)
    exact = [e for v in groups.values() for e in v]
    return {
        "count_error": float(np.mean(exact)) if exact else None,
        "photos": len(exact),
        "by_group": {
            g: {"count_error": float(np.mean(v)), "photos": len(v)}
            for g, v in sorted(groups.items())
        },
        "approximate_counts": {
            g: {"count_error": float(np.mean(v)), "photos": len(v)}
            for g, v in sorted(approx.items())
        },
        "per_photo": per_photo,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=None)
    p.add_argument("--synthetic", type=Path, default=ROOT / "var" / "detector" / "test")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--seed", type=int, default=10_000_000, help="first seed of a new set")
    p.add_argument("--layout", default=None, help="a new set's one layout (default: drawn)")
    p.add_argument("--photos", type=Path, default=PHOTOS)
    p.add_argument("--conf", type=float, default=None, help="default: the detector's own")
    p.add_argument("--min-certainty", type=float, default=None, help="default: the detector's")
    p.add_argument("--no-refine", action="store_true")
    p.add_argument("--skip-synthetic", action="store_true")
    p.add_argument("--out", type=Path, default=ROOT / "var" / "detector" / "eval.json")
    args = p.parse_args()
    tuned = {"conf": args.conf} if args.conf is not None else {}
    if args.min_certainty is not None:
        tuned["min_certainty"] = args.min_certainty
    detector = CardDetector(args.model, refine=not args.no_refine, **tuned)
    detector.warmup()
    report: dict = {
        "model": detector.version,
        "conf": detector.conf,
        "min_certainty": detector.min_certainty,
        "refine": not args.no_refine,
    }
    started = time.time()
    if not args.skip_synthetic:
        report["synthetic"] = evaluate_synthetic(
            detector, args.synthetic, args.n, seed=args.seed, layout=args.layout
        )
    report["photos"] = evaluate_photos(detector, args.photos)
    report["seconds"] = round(time.time() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    brief = {k: v for k, v in report.items() if k != "photos"}
    brief["photos"] = {k: v for k, v in report["photos"].items() if k != "per_photo"}
    print(json.dumps(brief, indent=1))
    wrong = [
        x for x in report["photos"]["per_photo"] if x.get("exact") and x["found"] != x["n_cards"]
    ]
    print("miscounted exact photos:", len(wrong))
    for x in wrong:
        print(f"  {x['photo']}: {x['found']} found, {x['n_cards']} visible")


if __name__ == "__main__":
    main()
