"""Train the learned corner refiner (the detector's second stage) on synthetic scenes, export ONNX.

One command reproduces the committed model (run it in the training venv, `.venv-train`):

    .venv-train/bin/python -m scripts.train_refiner --minutes 30

Card windows are cut around perturbed true quads of scenes made only from the train split of the
catalog and cached under var/refiner/data (kept between runs). A small CNN learns the true corners
(L1, AdamW, cosine schedule over the time budget); re-running resumes from var/refiner/last.pt.
The result is exported to models/refiner/card-refiner-<version>.onnx, measured on held-out scenes
(held-out printings) and described in models/refiner/MODEL_CARD.md.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from models.refiner import refine_quads, window_blob
from vision import geometry
from vision.synth import SceneGenerator, load_catalog, split_catalog
from vision.warp import WINDOW_MARGIN, WINDOW_SIZE, card_window

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "refiner"
MODEL_DIR = ROOT / "models" / "refiner"
SIZES = (640, 800, 960, 1120, 1280)  # scene long sides
CHUNK = 100  # scenes per cached file
TRAIN_SEED = 20_000_000  # apart from the detector's train (0...) and test (10_000_000...) seeds
HELD_SEED = 30_000_000
# `--large-errors` makes that share of the rough quads far off (severity 2.5: up to 8.6 deg, 20 %
# zoom, 15 % shift). Tried at 0.3 for v2: it scored the same as v1 (MODEL_CARD.md), so 0 stays.
LARGE_SEVERITY = 2.5


def perturb(quad: np.ndarray, rng: np.random.Generator, severity: float = 1.0) -> np.ndarray:
    """A rough copy of a true quad, as a detector might give it (errors in % of card height)."""
    h = geometry.card_height(quad)
    centre = quad.mean(0)
    s = severity * rng.uniform(0.1, 1.0)  # small errors too: the second pass starts close
    angle = rng.uniform(-0.06, 0.06) * s
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    zoom = 1 + rng.uniform(-0.08, 0.08) * s
    shift = rng.uniform(-0.06, 0.06, 2) * s * h
    out = (quad - centre) @ rot.T * zoom + centre + shift
    out = out + rng.normal(0, 0.04 * h * severity * rng.uniform(0.1, 1.3), (4, 2))
    if rng.random() < 0.1:  # now and then one corner far off
        out[rng.integers(4)] += rng.normal(0, 0.12 * h * severity, 2)
    return out.astype(np.float32)


def card_samples(
    image: np.ndarray,
    quads: list[np.ndarray],
    rng: np.random.Generator,
    per_card: int,
    large_errors: float = 0.0,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Windows (h, w, 3) BGR around perturbed quads; targets (8,) true corners in window units."""
    crops, targets = [], []
    scale = np.array(WINDOW_SIZE, np.float32)
    for quad in quads:
        made = 0
        for _ in range(4 * per_card):
            if made == per_card:
                break
            rough = perturb(quad, rng, LARGE_SEVERITY if rng.random() < large_errors else 1.0)
            if not geometry.is_convex(rough):
                continue
            crop, hom = card_window(image, rough)
            crops.append(crop)
            targets.append((geometry.map_points(quad, hom) / scale).ravel())
            made += 1
    return crops, targets


def build_chunk(
    path: Path, cards: list, first_seed: int, per_card: int, large_errors: float
) -> None:
    """Cache CHUNK scenes' windows: crops (N, h, w, 3) uint8 BGR, targets (N, 8) float32."""
    gens = {size: SceneGenerator(cards, size) for size in SIZES}
    crops, targets = [], []
    for seed in range(first_seed, first_seed + CHUNK):
        rng = np.random.default_rng(seed)
        scene = gens[int(rng.choice(SIZES))].generate(seed)
        quads = [c.quad for c in scene.cards if c.should_detect]
        c, t = card_samples(scene.image, quads, rng, per_card, large_errors)
        crops += c
        targets += t
    w, h = WINDOW_SIZE
    np.savez(
        path,
        crops=np.stack(crops) if crops else np.zeros((0, h, w, 3), np.uint8),
        targets=np.stack(targets).astype(np.float32) if targets else np.zeros((0, 8), np.float32),
    )


def load_data(
    n_scenes: int, per_card: int, large_errors: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """The cached training windows, building missing chunks first."""
    train_cards, _ = split_catalog(load_catalog())
    folder = VAR / "data"
    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    for i in range(math.ceil(n_scenes / CHUNK)):
        far = f"_large{large_errors:g}" if large_errors else ""
        path = folder / f"train_{i:04d}_x{per_card}{far}.npz"
        if not path.exists():
            started = time.time()
            build_chunk(path, train_cards, TRAIN_SEED + i * CHUNK, per_card, large_errors)
            print(f"built {path.name} in {time.time() - started:.0f} s", flush=True)
        parts.append(np.load(path))
    return np.concatenate([p["crops"] for p in parts]), np.concatenate(
        [p["targets"] for p in parts]
    )


def make_net():  # noqa: ANN201 - torch is imported lazily (the serving venv has none)
    """The refiner CNN: (N, 3, 176, 128) RGB 0-1 -> (N, 8) corners in window units.

    A small encoder-decoder gives one heatmap per corner at 1/4 of the window (44 x 32); the
    corner is the heatmap's soft-argmax (its expected position), which learns far faster and
    more precisely than regressing coordinates from a flattened feature map.
    """
    import torch
    from torch import nn

    def conv(cin: int, cout: int, stride: int = 1, k: int = 3) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(cin, cout, k, stride, k // 2, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )

    class RefinerNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.s4 = nn.Sequential(conv(3, 16, 2), conv(16, 32, 2), conv(32, 32))  # 44 x 32
            self.s8 = nn.Sequential(conv(32, 64, 2), conv(64, 64))  # 22 x 16
            self.s16 = nn.Sequential(conv(64, 96, 2), conv(96, 96), conv(96, 96))  # 11 x 8
            self.up8 = conv(96 + 64, 64, k=1)
            self.up4 = conv(64 + 32 + 2, 32)  # + (x, y) coordinate planes: which corner is where
            self.heat = nn.Conv2d(32, 4, 1)  # TL, TR, BR, BL
            w, h = WINDOW_SIZE
            gy, gx = torch.meshgrid(
                (torch.arange(h // 4) * 4 + 1.5) / h,
                (torch.arange(w // 4) * 4 + 1.5) / w,
                indexing="ij",
            )
            self.register_buffer("grid", torch.stack([gx, gy]).unsqueeze(0))  # (1, 2, 44, 32)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            f4 = self.s4((x - 0.5) / 0.25)
            f8 = self.s8(f4)
            f16 = self.s16(f8)
            up = nn.functional.interpolate(f16, scale_factor=2.0, mode="nearest")
            f8 = self.up8(torch.cat([up, f8], 1))
            up = nn.functional.interpolate(f8, scale_factor=2.0, mode="nearest")
            grid = self.grid.expand(x.shape[0], -1, -1, -1)
            logits = self.heat(self.up4(torch.cat([up, f4, grid], 1)))  # (N, 4, 44, 32)
            prob = torch.softmax(logits.flatten(2), -1)  # (N, 4, 1408)
            xy = prob @ self.grid.flatten(2).transpose(1, 2)  # (N, 4, 2) window units
            return xy.flatten(1)

    return RefinerNet()


def augment(crops: np.ndarray, targets: np.ndarray, rng: np.random.Generator):  # noqa: ANN201
    """A batch (N, 3, h, w) float32 RGB 0-1 and targets (N, 8): mirrored halves, light jitter."""
    x = window_blob(list(crops))
    t = targets.reshape(-1, 4, 2).copy()
    flip = rng.random(len(x)) < 0.5
    # Mirrored, the window's TL is the card's TR: the corners swap pairwise (TL<->TR, BR<->BL).
    x[flip] = x[flip][..., ::-1]
    t[flip] = t[flip][:, [1, 0, 3, 2]]
    t[flip, :, 0] = 1 - t[flip, :, 0]
    gain = rng.uniform(0.7, 1.3, (len(x), 1, 1, 1)).astype(np.float32)
    bias = rng.uniform(-0.15, 0.15, (len(x), 1, 1, 1)).astype(np.float32)
    tint = rng.uniform(0.9, 1.1, (len(x), 3, 1, 1)).astype(np.float32)
    x = np.clip(x * gain * tint + bias, 0, 1)
    return np.ascontiguousarray(x), t.reshape(-1, 8)


def train(args: argparse.Namespace, crops: np.ndarray, targets: np.ndarray):  # noqa: ANN201
    """Train until the time budget is spent (resuming from var/refiner/last.pt); the net."""
    import torch

    torch.set_num_threads(1)  # the other core belongs to whatever else trains
    torch.manual_seed(args.seed)
    net = make_net()
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    last = VAR / "last.pt"
    spent, step = 0.0, 0
    if last.exists() and not args.fresh:
        state = torch.load(last, weights_only=False)
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        spent, step = state["spent"], state["step"]
        print(f"resumed from {last}: {spent / 60:.1f} min, step {step}", flush=True)
    budget = args.minutes * 60
    rng = np.random.default_rng(args.seed + step)
    net.train()
    started, saved, losses = time.time() - spent, time.time(), []
    while (spent := time.time() - started) < budget:
        # Cosine over the time budget, so a resumed or cut-short run follows the same curve.
        lr = args.lr * 0.5 * (1 + math.cos(math.pi * spent / budget))
        for g in opt.param_groups:
            g["lr"] = lr
        idx = rng.integers(0, len(crops), args.batch)
        x, t = augment(crops[idx], targets[idx], rng)
        loss = torch.nn.functional.l1_loss(net(torch.from_numpy(x)), torch.from_numpy(t))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        step += 1
        if step % 100 == 0:
            print(
                f"step {step} {spent / 60:.1f} min lr {lr:.2e} loss {np.mean(losses):.5f}",
                flush=True,
            )
            losses = []
        if time.time() - saved > 120:
            _save(last, net, opt, spent, step)
            saved = time.time()
    _save(last, net, opt, budget, step)
    net.eval()
    return net, step


def _save(path: Path, net, opt, spent: float, step: int) -> None:  # noqa: ANN001
    import torch

    torch.save(
        {"net": net.state_dict(), "opt": opt.state_dict(), "spent": spent, "step": step}, path
    )


def add_certainty(path: Path) -> bool:
    """Give the ONNX refiner at `path` its `certainty` output (N, 4): each corner's heatmap mass
    in its best 3x3 cells, computed in the graph from the corner softmax. False: it had one.

    Added to the exported graph rather than to the network, so that the committed v1 (whose
    checkpoint was not kept) gets it from the same code: `--add-certainty FILE`.
    """
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(path))
    graph = model.graph
    if any(o.name == "certainty" for o in graph.output):
        return False
    (softmax,) = (n for n in graph.node if n.op_type == "Softmax")  # (N, 4, h/4 * w/4)
    w, h = WINDOW_SIZE
    graph.initializer.extend(
        [
            helper.make_tensor(
                "certainty_maps_shape", TensorProto.INT64, [4], [0, 4, h // 4, w // 4]
            ),
            helper.make_tensor("certainty_cells", TensorProto.FLOAT, [], [9.0]),
        ]
    )
    graph.node.extend(
        [
            helper.make_node(
                "Reshape", [softmax.output[0], "certainty_maps_shape"], ["certainty_maps"]
            ),
            helper.make_node(
                "AveragePool",
                ["certainty_maps"],
                ["certainty_mean3"],
                kernel_shape=[3, 3],
                pads=[1, 1, 1, 1],
                count_include_pad=1,
            ),
            helper.make_node(
                "ReduceMax", ["certainty_mean3"], ["certainty_best3"], axes=[2, 3], keepdims=0
            ),
            helper.make_node("Mul", ["certainty_best3", "certainty_cells"], ["certainty"]),
        ]
    )
    graph.output.append(helper.make_tensor_value_info("certainty", TensorProto.FLOAT, ["n", 4]))
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return True


def export_windows_net(net, out: Path, size: tuple[int, int], output: str) -> None:  # noqa: ANN001
    """ONNX (opset 17, dynamic batch) at `out` of a net over (N, 3, h, w) windows `windows`."""
    import torch

    w, h = size
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        net,
        (torch.zeros(1, 3, h, w),),
        str(out),
        input_names=["windows"],
        output_names=[output],
        dynamic_axes={"windows": {0: "n"}, output: {0: "n"}},
        opset_version=17,
        dynamo=False,
    )


def onnx_difference(net, out: Path, x: np.ndarray) -> float:  # noqa: ANN001
    """The max |onnx - torch| of the first output on the windows blob `x`."""
    import onnxruntime as ort
    import torch

    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    return float(np.abs(session.run(None, {"windows": x})[0] - ref).max())


def export(net, out: Path, crops: np.ndarray) -> float:  # noqa: ANN001
    """ONNX at `out` with its `certainty` output; the max |onnx - torch| of the corners on real
    windows."""
    export_windows_net(net, out, WINDOW_SIZE, "corners")
    add_certainty(out)
    return onnx_difference(net, out, window_blob(list(crops[:32])))


def evaluate(net, n_scenes: int) -> dict:  # noqa: ANN001
    """Corner error before / after refinement of jittered true quads on held-out scenes."""
    import torch

    _, held = split_catalog(load_catalog())
    gens = {size: SceneGenerator(held, size) for size in (960, 1280)}

    def run(blob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            corners = net(torch.from_numpy(blob)).numpy()
        return corners, np.ones((len(blob), 4), np.float32)  # certainty: unused here

    errors: dict[str, list[float]] = {"rough": [], "pass1": [], "pass2": [], "passes": []}
    ious: dict[str, list[float]] = {k: [] for k in errors}
    for i in range(n_scenes):
        seed = HELD_SEED + i
        rng = np.random.default_rng(seed)
        scene = gens[(960, 1280)[i % 2]].generate(seed)
        truth = [c.quad for c in scene.cards if c.should_detect]
        # Detector-like errors: about 4 % of the card's height per corner, no outliers.
        rough = [
            q + rng.normal(0, 0.035 * geometry.card_height(q), (4, 2)).astype(np.float32)
            for q in truth
        ]
        answers = {
            "rough": rough,
            "pass1": [r.quad for r in refine_quads(scene.image, rough, run, iterations=1)],
            "pass2": [r.quad for r in refine_quads(scene.image, rough, run, iterations=2)],
            "passes": [r.quad for r in refine_quads(scene.image, rough, run)],
        }
        for key, quads in answers.items():
            for q, t in zip(quads, truth, strict=True):
                errors[key].append(geometry.relative_corner_error(q, t))
                ious[key].append(geometry.quad_iou(q, t))
    return {
        "scenes": n_scenes,
        "cards": len(errors["rough"]),
        **{
            key: {
                "corner_error_pct": round(100 * float(np.mean(errors[key])), 2),
                "corner_error_pct_median": round(100 * float(np.median(errors[key])), 2),
                "iou_0.8": round(float(np.mean(np.array(ious[key]) >= 0.8)), 4),
                "iou_0.9": round(float(np.mean(np.array(ious[key]) >= 0.9)), 4),
            }
            for key in errors
        },
    }


SPEED_SCRIPT = """
import sys, time
import numpy as np, onnxruntime as ort
options = ort.SessionOptions()
options.intra_op_num_threads = 1
session = ort.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"])
x = np.random.default_rng(0).random((int(sys.argv[2]), 3, 176, 128), np.float32)
times = []
for _ in range(50):
    t0 = time.perf_counter()
    session.run(None, {"windows": x})
    times.append((time.perf_counter() - t0) * 1000)
print(float(np.median(times[5:])))
"""


def speed(path: Path, n_cards: int) -> float:
    """Median ms of one ONNX Runtime run (one thread) on `n_cards` windows, in its own process.

    torch in the same process slows ONNX Runtime several times (DESIGN.md), hence the child.
    """
    out = subprocess.run(
        [sys.executable, "-c", SPEED_SCRIPT, str(path), str(n_cards)],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.strip())


def write_card(path: Path, report: dict) -> None:
    """models/refiner/MODEL_CARD.md from the training report (and detector evals when present)."""
    ev = report["held_out"]
    lines = [
        f"# Corner refiner `{report['version']}`",
        "",
        "Second stage of the card detector: given a rough quad (TL, TR, BR, BL as printed), a",
        "small encoder-decoder CNN trained from scratch (no pretrained weights) re-finds the",
        "card's four corners, each the soft-argmax of its own heatmap at 1/4 resolution, in a",
        "window cut around the quad",
        "(`vision.warp.card_window`: the quad's unit square grown by "
        f"{WINDOW_MARGIN:.0%} per side, {WINDOW_SIZE[0]}x{WINDOW_SIZE[1]} px, area-downscaled",
        "first when the card is large). `models/refiner.py` runs it up to 4 times (each pass",
        "starts from the last one's answer; after two, only cards that still moved go again), all",
        "cards of a photo in one batch per pass.",
        "",
        f"- File: `{report['file']}` ({report['mb']:.2f} MB), ONNX opset 17, input `windows`",
        f"  (N, 3, {WINDOW_SIZE[1]}, {WINDOW_SIZE[0]}) float32 RGB 0-1, output `corners` (N, 8):",
        "  x / width, y / height of TL, TR, BR, BL in the window. "
        f"{report['params']:,} parameters; max |onnx - torch| = {report['onnx_diff']:.1e}.",
        "  Second output `certainty` (N, 4): each corner's heatmap mass in its best 3x3 cells,",
        "  added to the exported graph by `add_certainty` (`--add-certainty FILE`). The detector",
        "  can drop a card whose second least certain corner is under",
        "  `CARDSCAN_DETECTOR_MIN_CERTAINTY` (default 0: off; see the detector's card).",
        f"- Data: {report['windows']:,} windows from {report['scenes']} `vision/synth.py` scenes "
        f"(seeds {TRAIN_SEED}+, long side {', '.join(map(str, SIZES))} px) made only from",
        "  the train split of the catalog (`split_catalog(...)[0]`); every card with",
        f"  `should_detect`, {report['per_card']} rough quads each: the true quad turned / scaled /"
        " shifted (up to",
        "  3.4 deg / 8 % / 6 % of the card's height, times a random severity; in "
        f"{report.get('large_errors', 0):.0%} of them",
        f"  {LARGE_SEVERITY:g} times that), per-corner Gaussian noise (sigma up to 5 % of the "
        "height, times the",
        "  same factor), one corner far off in 10 % of them. Targets: the",
        "  true corners in the window. Training adds mirrored windows and brightness / colour "
        "jitter.",
        f"- Command: `{report['command']}` (re-running resumes from var/refiner/last.pt; the",
        "  windows are cached in var/refiner/data).",
        f"- Training: {report['steps']:,} steps of {report['batch']} (L1 loss, AdamW, lr "
        f"{report['lr']} cosine to 0 over the budget), {report['minutes']:.0f} min on one CPU",
        "  thread (the other core was training the detector).",
        f"- Speed (ONNX Runtime, one thread): {report['ms_1']:.2f} ms for 1 window, "
        f"{report['ms_9']:.2f} ms for a batch of 9 (per pass; cutting a window adds ~0.2 ms).",
        "- It replaced the classical edge snapping of `vision/refine.py` (since deleted), which",
        "  on the same 300 held-out scenes with `cards-pose-v1` gave recall 0.622, precision",
        "  0.614 at IoU >= 0.8 and a mean corner error of 4.70 % (it snapped to the printed",
        "  frame's inner edges).",
        "",
        f"Held-out check: {ev['scenes']} scenes (960 / 1280 px) of held-out printings, "
        f"{ev['cards']} cards,",
        "true quads jittered by 3.5 % of the card's height per corner and axis:",
        "",
        "| quads | mean corner error (% of height) | median | IoU >= 0.8 | IoU >= 0.9 |",
        "|---|---|---|---|---|",
    ]
    for key, label in (
        ("rough", "jittered"),
        ("pass1", "refined, 1 pass"),
        ("pass2", "2 passes"),
        ("passes", "up to 4 passes (the default)"),
    ):
        e = ev[key]
        lines.append(
            f"| {label} | {e['corner_error_pct']:.2f} | {e['corner_error_pct_median']:.2f} | "
            f"{e['iou_0.8']:.3f} | {e['iou_0.9']:.3f} |"
        )
    for name, title in (
        ("eval_detect.json", "with the refiner"),
        ("eval_detect_norefine.json", "detector alone (`--no-refine`)"),
    ):
        det = VAR / name
        if det.exists():
            rep = json.loads(det.read_text())
            s, ph = rep["synthetic"], rep["photos"]
            lines += [
                "",
                f"`python -m scripts.eval_detect --n {s['scenes']}` with `{rep['model']}`, "
                f"{title}:",
                f"{s['cards']} cards on held-out scenes: recall {s['recall']:.4f}, precision "
                f"{s['precision']:.4f} at IoU >= 0.8; mean corner error "
                f"{s['corner_error_pct']:.2f} % of card height (median "
                f"{s['corner_error_pct_median']:.2f} %); real photos' count error "
                f"{ph['count_error']:.3f} over {ph['photos']} photos.",
            ]
    lines += [
        "",
        "Limits: a window sees 12 % of the card around the rough quad, so a card whose detector",
        "corners are off by more than ~10 % of its height is pulled in only over several passes;",
        "an answer that moves a corner by more than 40 % of the height is dropped for the input.",
        "A quad turned 45 deg (corners on the card's edge midpoints) cannot be recovered: the",
        "true corners lie outside its window.",
    ]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=30.0, help="training time budget")
    p.add_argument("--scenes", type=int, default=2400, help="training scenes (cached)")
    p.add_argument("--per-card", type=int, default=4, help="rough quads per card")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-scenes", type=int, default=100)
    p.add_argument("--version", default="v1")
    p.add_argument(
        "--large-errors", type=float, default=0.0, help="share of rough quads 2.5x as far off"
    )
    p.add_argument("--fresh", action="store_true", help="ignore var/refiner/last.pt")
    p.add_argument("--card-only", action="store_true", help="rewrite MODEL_CARD.md and stop")
    p.add_argument(
        "--add-certainty", type=Path, default=None, help="give this ONNX file its certainty output"
    )
    args = p.parse_args()
    if args.add_certainty:
        added = add_certainty(args.add_certainty)
        print(f"{args.add_certainty}: " + ("certainty added" if added else "has it already"))
        return
    cv2.setNumThreads(1)
    report_path = VAR / f"report-{args.version}.json"
    if args.card_only:
        report = json.loads(report_path.read_text())
        out = MODEL_DIR / report["file"]
        report["ms_1"], report["ms_9"] = speed(out, 1), speed(out, 9)
        report_path.write_text(json.dumps(report, indent=1))
        write_card(MODEL_DIR / "MODEL_CARD.md", report)
        return
    crops, targets = load_data(args.scenes, args.per_card, args.large_errors)
    print(f"{len(crops)} windows", flush=True)
    net, steps = train(args, crops, targets)
    out = MODEL_DIR / f"card-refiner-{args.version}.onnx"
    diff = export(net, out, crops)
    print(f"exported {out} ({out.stat().st_size / 1e6:.2f} MB), max |onnx - torch| {diff:.2e}")
    held = evaluate(net, args.eval_scenes)
    print(json.dumps(held, indent=1), flush=True)
    report = {
        "version": args.version,
        "file": out.name,
        "mb": out.stat().st_size / 1e6,
        "params": sum(p.numel() for p in net.parameters()),
        "onnx_diff": diff,
        "windows": len(crops),
        "scenes": args.scenes,
        "per_card": args.per_card,
        "large_errors": args.large_errors,
        "steps": steps,
        "batch": args.batch,
        "lr": args.lr,
        "minutes": args.minutes,
        "command": f".venv-train/bin/python -m scripts.train_refiner --minutes {args.minutes:g}"
        f" --scenes {args.scenes} --per-card {args.per_card} --version {args.version}"
        + (f" --large-errors {args.large_errors:g}" if args.large_errors else ""),
        "ms_1": speed(out, 1),
        "ms_9": speed(out, 9),
        "held_out": held,
    }
    report_path.write_text(json.dumps(report, indent=1))
    write_card(MODEL_DIR / "MODEL_CARD.md", report)


if __name__ == "__main__":
    main()
