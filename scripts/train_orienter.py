"""Train the card orienter (is this card upside down?) on synthetic scenes and export it to ONNX.

One command reproduces the committed model (run it in the training venv, `.venv-train`):

    .venv-train/bin/python -m scripts.train_orienter --minutes 15 --scenes 3600

The detector's corners come in the card's printed order (TL, TR, BR, BL), which the model reads
from the card's face; now and then it reads a card upside down, and the crop then shows it so.
The orienter looks at the small upright window of a found card (`models.orienter.WINDOW`) and
says whether it is upside down. Windows are cut around jittered true quads of scenes made only
from the train split of the catalog (cached under var/orienter/data); half of each batch is
turned by 180 degrees and labelled so. The result is exported to
models/orienter/card-orienter-<version>.onnx and measured on scenes of held-out printings.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import cv2
import numpy as np

from models.orienter import WINDOW, windows
from models.refiner import window_blob
from scripts.train_refiner import export_windows_net, onnx_difference, perturb
from vision import geometry
from vision.synth import SceneGenerator, load_catalog, split_catalog

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "orienter"
MODEL_DIR = ROOT / "models" / "orienter"
SIZES = (640, 960, 1280)  # scene long sides
CHUNK = 100  # scenes per cached file
TRAIN_SEED = 40_000_000  # apart from the detector's, refiner's and identification's seeds
HELD_SEED = 41_000_000
SEVERITY = 0.7  # of the refiner's rough-quad errors (`scripts.train_refiner.perturb`)


def build_chunk(path: Path, cards: list, first_seed: int, per_card: int) -> None:
    """Cache CHUNK scenes' upright windows (N, h, w, 3) uint8 BGR."""
    gens = {size: SceneGenerator(cards, size) for size in SIZES}
    crops: list[np.ndarray] = []
    for seed in range(first_seed, first_seed + CHUNK):
        rng = np.random.default_rng(seed)
        scene = gens[int(rng.choice(SIZES))].generate(seed)
        quads = [c.quad for c in scene.cards if c.should_detect]
        rough = [perturb(q, rng, SEVERITY) for q in quads for _ in range(per_card)]
        crops += windows(scene.image, [q for q in rough if geometry.is_convex(q)])
    w, h = WINDOW
    np.save(path, np.stack(crops) if crops else np.zeros((0, h, w, 3), np.uint8))


def load_data(n_scenes: int, per_card: int) -> np.ndarray:
    """The cached training windows, building missing chunks first."""
    train_cards, _ = split_catalog(load_catalog())
    folder = VAR / "data"
    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    for i in range(math.ceil(n_scenes / CHUNK)):
        path = folder / f"train_{i:04d}_x{per_card}.npy"
        if not path.exists():
            started = time.time()
            build_chunk(path, train_cards, TRAIN_SEED + i * CHUNK, per_card)
            print(f"built {path.name} in {time.time() - started:.0f} s", flush=True)
        parts.append(np.load(path))
    return np.concatenate(parts)


def make_net():  # noqa: ANN201 - torch is imported lazily (the serving venv has none)
    """(N, 3, 88, 64) RGB 0-1 -> (N,) probability that the card is upside down.

    Four strided convolutions to a 6 x 4 map, then one linear layer over the whole map: where the
    title bar, the art and the text box lie is the evidence, so the map is not pooled away.
    """
    import torch
    from torch import nn

    def conv(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
        )

    class OrienterNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(conv(3, 16), conv(16, 32), conv(32, 64), conv(64, 64))
            w, h = WINDOW
            self.head = nn.Linear(64 * math.ceil(h / 16) * math.ceil(w / 16), 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            f = self.features((x - 0.5) / 0.25)
            return torch.sigmoid(self.head(f.flatten(1)))[:, 0]

    return OrienterNet()


def batch(crops: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Half the windows turned by 180 degrees (label 1); brightness / colour jitter."""
    x = window_blob(list(crops))
    turned = rng.random(len(x)) < 0.5
    x[turned] = x[turned][..., ::-1, ::-1]
    gain = rng.uniform(0.7, 1.3, (len(x), 1, 1, 1)).astype(np.float32)
    bias = rng.uniform(-0.15, 0.15, (len(x), 1, 1, 1)).astype(np.float32)
    tint = rng.uniform(0.9, 1.1, (len(x), 3, 1, 1)).astype(np.float32)
    x = np.clip(x * gain * tint + bias, 0, 1)
    return np.ascontiguousarray(x), turned.astype(np.float32)


def train(args: argparse.Namespace, crops: np.ndarray):  # noqa: ANN201
    """Train for the time budget (binary cross-entropy, AdamW, cosine); the net and its steps."""
    import torch

    torch.set_num_threads(1)  # the other core belongs to whatever else trains
    torch.manual_seed(args.seed)
    net = make_net()
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    rng = np.random.default_rng(args.seed)
    budget, started, step, losses = args.minutes * 60, time.time(), 0, []
    net.train()
    while (spent := time.time() - started) < budget:
        for g in opt.param_groups:
            g["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * spent / budget))
        x, y = batch(crops[rng.integers(0, len(crops), args.batch)], rng)
        loss = torch.nn.functional.binary_cross_entropy(
            net(torch.from_numpy(x)), torch.from_numpy(y)
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        step += 1
        if step % 200 == 0:
            print(f"step {step} {spent / 60:.1f} min loss {np.mean(losses):.4f}", flush=True)
            losses = []
    net.eval()
    return net, step


def export(net, out: Path, crops: np.ndarray) -> float:  # noqa: ANN001
    """ONNX at `out`; the max |onnx - torch| on real windows."""
    export_windows_net(net, out, WINDOW, "upside_down")
    return onnx_difference(net, out, window_blob(list(crops[:64])))


def evaluate(out: Path, n_scenes: int) -> dict:
    """Held-out scenes (held-out printings): every card's jittered true quad, upright and turned;
    how often the exported model calls each upside down, by threshold."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    _, held = split_catalog(load_catalog())
    gens = {size: SceneGenerator(held, size) for size in (960, 1280)}
    upright, turned = [], []
    for i in range(n_scenes):
        seed = HELD_SEED + i
        rng = np.random.default_rng(seed)
        scene = gens[(960, 1280)[i % 2]].generate(seed)
        quads = [perturb(c.quad, rng, SEVERITY) for c in scene.cards if c.should_detect]
        quads = [q for q in quads if geometry.is_convex(q)]
        if not quads:
            continue
        for store, order in ((upright, [0, 1, 2, 3]), (turned, [2, 3, 0, 1])):
            blob = window_blob(windows(scene.image, [q[order] for q in quads]))
            store += list(session.run(None, {"windows": blob})[0])
    up, down = np.asarray(upright), np.asarray(turned)
    return {
        "scenes": n_scenes,
        "cards": len(up),
        "thresholds": {
            f"{t:g}": {
                "upright_called_upside_down": round(float(np.mean(up >= t)), 4),
                "upside_down_found": round(float(np.mean(down >= t)), 4),
            }
            for t in (0.5, 0.8, 0.9, 0.95, 0.99)
        },
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=15.0, help="training time budget")
    p.add_argument("--scenes", type=int, default=3600, help="training scenes (cached)")
    p.add_argument("--per-card", type=int, default=2, help="jittered quads per card")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-scenes", type=int, default=300)
    p.add_argument("--version", default="v1")
    args = p.parse_args()
    cv2.setNumThreads(1)
    crops = load_data(args.scenes, args.per_card)
    print(f"{len(crops)} windows", flush=True)
    net, steps = train(args, crops)
    out = MODEL_DIR / f"card-orienter-{args.version}.onnx"
    diff = export(net, out, crops)
    print(f"exported {out} ({out.stat().st_size / 1e6:.2f} MB), max |onnx - torch| {diff:.2e}")
    report = {
        "version": args.version,
        "file": out.name,
        "mb": round(out.stat().st_size / 1e6, 3),
        "params": sum(p.numel() for p in net.parameters()),
        "onnx_diff": diff,
        "windows": len(crops),
        "steps": steps,
        "command": f".venv-train/bin/python -m scripts.train_orienter --minutes {args.minutes:g}"
        f" --scenes {args.scenes} --per-card {args.per_card} --version {args.version}",
        "held_out": evaluate(out, args.eval_scenes),
    }
    print(json.dumps(report, indent=1), flush=True)
    (VAR / f"report-{args.version}.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
