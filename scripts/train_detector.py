"""Train the card corner detector from scratch on synthetic scenes and export it to ONNX.

One command reproduces the committed model (run it in the training venv, `.venv-train`):

    YOLO_OFFLINE=1 .venv-train/bin/python -m scripts.train_detector --hours 1.5

It generates the seeded dataset under var/detector/data-s<seed>-<size>[-<extra>] (kept between
runs), trains a YOLO11n-pose model built from its yaml (4 keypoints: the card's TL, TR, BR, BL),
resumes from var/detector/runs/<version>/weights/last.pt when re-run, exports the best weights to
a static-shape ONNX file at models/detector/cards-pose-<version>.onnx and writes the run's card
(data, command, validation figures) to var/detector/runs/<version>/MODEL_CARD.md, for the
hand-kept models/detector/MODEL_CARD.md, which holds every version's history.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "detector"
MODEL_DIR = ROOT / "models" / "detector"


def _offline() -> None:
    """Ultralytics must never reach the network here: hub sync, fonts and weights all download."""
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ.setdefault("YOLO_CONFIG_DIR", str(ROOT / "var" / "ultralytics"))
    Path(os.environ["YOLO_CONFIG_DIR"]).mkdir(parents=True, exist_ok=True)
    from ultralytics import settings

    off = (
        "sync",
        "hub",
        "tensorboard",
        "wandb",
        "mlflow",
        "clearml",
        "comet",
        "dvc",
        "neptune",
        "raytune",
    )
    settings.update({k: False for k in off if k in settings})


def parse_extra(text: str) -> dict[str, float]:
    """`zoom=0.06,pile=0.1` -> {"zoom": 0.06, "pile": 0.1}: shares of scenes forced to a layout."""
    pairs = [part.split("=") for part in text.split(",") if part]
    return {name.strip(): float(share) for name, share in pairs}


def make_data(n_train: int, n_val: int, seed: int, size: int, extra: dict[str, float]) -> Path:
    from vision.synth import load_catalog, split_catalog, write_pose_dataset

    train_cards, _ = split_catalog(load_catalog())
    # One folder per recipe: the writer keeps the scenes it finds, which must be this recipe's.
    mix = "".join(f"-{k}{v:g}" for k, v in extra.items())
    return write_pose_dataset(
        VAR / f"data-s{seed}-{size}{mix}",
        train_cards,
        n_train=n_train,
        n_val=n_val,
        seed=seed,
        size=size,
        extra=extra,
    )


def weights_from_onnx(onnx_path: Path, model_yaml: str, images: list[Path], out: Path) -> Path:
    """Rebuild a trainable checkpoint from a committed ONNX detector (the .pt files are not kept).

    The export fused each BatchNorm into its convolution (`model.N...conv.weight/bias`). The
    fused convolution goes back in as is; its BatchNorm is set so that it adds the fused bias and
    otherwise passes through, with running statistics measured on training images, so that
    train-mode batch statistics do not upset the network when fine-tuning starts.
    """
    import cv2
    import onnx
    import torch
    from onnx import numpy_helper
    from ultralytics.nn.tasks import PoseModel

    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(onnx_path)).graph.initializer}
    model = PoseModel(model_yaml, nc=1, data_kpt_shape=(4, 3), verbose=False)
    state = model.state_dict()
    modules = dict(model.named_modules())
    fused: list[str] = []  # module paths whose BatchNorm was folded into the conv
    for key, value in state.items():
        if key in inits and tuple(inits[key].shape) == tuple(value.shape):
            state[key] = torch.from_numpy(inits[key].copy())
        if key.endswith(".conv.weight") and key[: -len("conv.weight")] + "bn.weight" in state:
            fused.append(key[: -len(".conv.weight")])
    missing = [b for b in fused if f"{b}.conv.bias" not in inits]
    if missing:
        raise SystemExit(f"{onnx_path} does not fit {model_yaml}: no fused bias for {missing[:3]}")
    for base in fused:  # identity BatchNorm + fused bias (exact in eval mode)
        bn = modules[f"{base}.bn"]
        state[f"{base}.bn.weight"] = torch.ones_like(state[f"{base}.bn.weight"])
        state[f"{base}.bn.bias"] = torch.from_numpy(inits[f"{base}.conv.bias"].copy())
        state[f"{base}.bn.running_mean"] = torch.zeros_like(state[f"{base}.bn.running_mean"])
        var = state[f"{base}.bn.running_var"]
        state[f"{base}.bn.running_var"] = torch.full_like(var, 1 - bn.eps)
    model.load_state_dict(state)
    model.eval()
    # Per-channel statistics of each fused conv's output on real inputs.
    stats: dict[str, list] = {b: [] for b in fused}
    hooks = [
        modules[f"{b}.conv"].register_forward_hook(
            lambda _m, _i, o, b=b: stats[b].append(o.detach().transpose(0, 1).flatten(1))
        )
        for b in fused
    ]
    with torch.no_grad():
        for path in images:
            img = cv2.resize(cv2.imread(str(path)), (320, 320))[:, :, ::-1] / 255.0
            model(torch.from_numpy(img.transpose(2, 0, 1).copy()).float()[None])
    for h in hooks:
        h.remove()
    for base in fused:
        out_ = torch.cat(stats[base], 1)
        mean, var = out_.mean(1), out_.var(1)
        bn = modules[f"{base}.bn"]
        # BN(x) = (x - mean) / sqrt(var + eps) * sqrt(var + eps) + mean + bias = x + bias
        bn.weight.data = torch.sqrt(var + bn.eps)
        bn.bias.data = mean + bn.bias.data
        bn.running_mean.data, bn.running_var.data = mean, var
    out.parent.mkdir(parents=True, exist_ok=True)
    model.args = {"task": "pose"}
    torch.save({"model": model, "train_args": {"task": "pose"}}, out)
    return out


def train(data: Path, args: argparse.Namespace) -> Path:
    from ultralytics import YOLO

    run = VAR / "runs" / args.version
    last = run / "weights" / "last.pt"
    if last.exists() and not (run / "weights" / "done").exists():
        print(f"resuming from {last}", flush=True)
        YOLO(str(last)).train(resume=True)
    elif not last.exists():
        # From the yaml: random init, nothing downloaded; or a previous stage's local weights.
        model = YOLO(args.init or args.model)
        tuned = {"optimizer": "AdamW", "lr0": args.lr0, "warmup_epochs": 0.5} if args.lr0 else {}
        model.train(
            **tuned,
            data=str(data),
            imgsz=args.imgsz,
            epochs=args.epochs,
            time=args.hours,
            batch=args.batch,
            workers=args.workers,
            device="cpu",
            project=str(VAR / "runs"),
            name=args.version,
            exist_ok=True,
            amp=False,
            plots=False,
            patience=1000,
            seed=args.seed,
            deterministic=False,
            cache="ram",
            # Synthetic scenes already rotate, tilt and degrade; a mirrored card is not a card.
            fliplr=0.0,
            degrees=0.0,
            mosaic=args.mosaic,
            close_mosaic=2,
            scale=0.4,
            translate=0.1,
            erasing=0.0,
        )
    (run / "weights" / "done").touch()
    return run


def export(run: Path, imgsz: int, version: str) -> Path:
    from ultralytics import YOLO

    weights = run / "weights" / ("best.pt" if (run / "weights" / "best.pt").exists() else "last.pt")
    onnx = Path(
        YOLO(str(weights)).export(
            format="onnx", imgsz=imgsz, opset=17, simplify=True, dynamic=False
        )
    )
    MODEL_DIR.mkdir(parents=True, exist_ok=True)
    target = MODEL_DIR / f"cards-pose-{version}.onnx"
    shutil.copy(onnx, target)
    return target


def _eval_lines() -> list[str]:
    """Figures of the last `scripts.eval_detect` run, if there is one."""
    path = VAR / "eval.json"
    if not path.exists():
        return ["(run `scripts/eval_detect.py` for held-out synthetic and real-photo figures)"]
    rep = json.loads(path.read_text())
    out = [f"Evaluation of `{rep['model']}` (conf {rep['conf']}, refine {rep['refine']}):"]
    syn = rep.get("synthetic")
    if syn:
        out.append(
            f"- {syn['scenes']} held-out synthetic scenes, {syn['cards']} cards: recall "
            f"{syn['recall']:.4f}, precision {syn['precision']:.4f} at IoU >= 0.8; mean "
            f"corner error {syn['corner_error_pct']:.2f} % of card height (any order: "
            f"{syn['corner_error_pct_any_order']:.2f} %), orientation right "
            f"{syn['orientation_right']:.3f}"
        )
    ph = rep["photos"]
    groups = ", ".join(
        f"{g} {v['count_error']:.3f} ({v['photos']})" for g, v in ph["by_group"].items()
    )
    out.append(
        f"- real photos, exact counts: count error {ph['count_error']:.3f} over {ph['photos']}"
    )
    out.append(f"  photos; per group (photos): {groups}")
    return out


def write_model_card(run: Path, target: Path, args: argparse.Namespace) -> None:
    results = run / "results.csv"
    rows = list(csv.DictReader(results.open())) if results.exists() else []
    last = {k.strip(): v.strip() for k, v in rows[-1].items()} if rows else {}
    minutes = float(last.get("time", 0) or 0) / 60
    command = (
        "YOLO_OFFLINE=1 .venv-train/bin/python -m scripts.train_detector "
        f"--version {args.version} --n-train {args.n_train} --n-val {args.n_val} "
        f"--imgsz {args.imgsz}"
        + (f" --hours {args.hours}" if args.hours else f" --epochs {args.epochs}")
        + (f" --init-onnx {args.init_onnx}" if args.init_onnx else "")
        + (f" --init {args.init}" if args.init and not args.init_onnx else "")
        + (f" --lr0 {args.lr0} --mosaic {args.mosaic}" if args.init else "")
        + (f" --seed {args.seed}" if args.seed else "")
        + (f" --extra {args.extra}" if args.extra else "")
    )
    lines = [
        f"# Card detector `{target.stem}`",
        "",
        "Four ordered corners per card (TL, TR, BR, BL of the card as printed) from a YOLO11n-pose",
        f"model (`{args.model}`, 4 keypoints, one class) trained from scratch on synthetic scenes;",
        "no pretrained weights.",
        "",
        f"- File: `{target.name}` ({target.stat().st_size / 1e6:.1f} MB), ONNX opset 17, static",
        f"  input 1x3x{args.imgsz}x{args.imgsz} (RGB 0-1, letterboxed with grey 114); output",
        "  1x17xN: cx, cy, w, h, score, then (x, y, visibility) for TL, TR, BR, BL.",
        f"- Data: {args.n_train} train + {args.n_val} val scenes from `vision/synth.py` (seed",
        f"  {args.seed}, {args.size} px long side) made from 90 % of the catalog printings (the",
        "  rest are held out for test scenes): 1-12 cards; closeups, scatter, grids, binder pages,",
        "  fans,"
        " piles; sleeves, toploaders, fingers, dice, non-card distractors, glare, shadow, blur,",
        "  noise, JPEG. A card is labelled when >= 35 % of it is visible.",
        f"- Command: `{command}` (re-running resumes from the last checkpoint).",
        f"- Training: {len(rows)} epochs, {minutes:.0f} min on a 2-core CPU shared with other",
        "  jobs.",
        "- Validation metrics of the last epoch (synthetic val scenes, ultralytics definitions):",
        "",
        "| metric | value |",
        "|---|---|",
        *(f"| {k} | {float(v):.4f} |" for k, v in last.items() if k.startswith("metrics/")),
        "",
        *_eval_lines(),
        "",
    ]
    (run / "MODEL_CARD.md").write_text("\n".join(lines))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--version", default="v1")
    p.add_argument("--model", default="yolo11n-pose.yaml")
    p.add_argument("--n-train", type=int, default=3000)
    p.add_argument("--n-val", type=int, default=200)
    p.add_argument("--size", type=int, default=640, help="long side of generated scenes")
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument(
        "--hours", type=float, default=None, help="stop after this many hours (overrides epochs)"
    )
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", default=None, help="start from these weights (a previous stage)")
    p.add_argument(
        "--init-onnx", type=Path, default=None, help="start from a committed ONNX detector"
    )
    p.add_argument("--lr0", type=float, default=None, help="AdamW learning rate (default: auto)")
    p.add_argument("--mosaic", type=float, default=0.5)
    p.add_argument(
        "--extra",
        default="",
        help="shares of scenes forced to a layout, e.g. zoom=0.06,pile=0.1 (default: none)",
    )
    p.add_argument("--export-only", action="store_true")
    args = p.parse_args()
    started = time.time()
    _offline()
    run = VAR / "runs" / args.version
    if not args.export_only:
        data = make_data(args.n_train, args.n_val, args.seed, args.size, parse_extra(args.extra))
        print(f"data ready in {time.time() - started:.0f} s: {data}", flush=True)
        if args.init_onnx and not args.init:
            images = sorted((data.parent / "images" / "train").glob("*.jpg"))[:64]
            ckpt = VAR / f"{args.init_onnx.stem}.pt"
            args.init = str(weights_from_onnx(args.init_onnx, args.model, images, ckpt))
            print(f"weights of {args.init_onnx} -> {args.init}", flush=True)
        run = train(data, args)
    target = export(run, args.imgsz, args.version)
    write_model_card(run, target, args)
    print(f"exported {target}", flush=True)


if __name__ == "__main__":
    main()
