"""Train the collector-number reader (`models/numreader.py`) on catalog number lines; export ONNX.

One command reproduces the committed model (run it in the training venv, `.venv-train`):

    .venv-train/bin/python -m scripts.train_number_reader --minutes 25

1. Labels: rapidocr reads each reference's number line at the catalog's own resolution (the
   line's digits are ~10 px high there); a read is kept when it shows the printing's number
   (`models.reader.shows_number`), reduced to the reader's characters (`CHARSET`).
2. Samples: the reference shrunk to the height a card has in a photo (140-900 px), degraded
   as scenes are (`vision.degrade`), and its line cut where the matcher's homography would put
   it, give or take its errors (`jittered_line`), exactly as `models.reader.line_image` cuts it.
   Where the digits are too small or blurred to see, or the window has slid off the line, the
   label is empty: the reader learns to say nothing rather than guess.
3. Only the catalog's train split (`vision.synth.split_catalog`) is used; held-out printings
   measure it, with the same-name printings of the catalog as the confusions that matter.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import time
from collections import Counter, defaultdict
from multiprocessing import Pool
from pathlib import Path

import cv2
import numpy as np

from models.numreader import CHARSET, INPUT_HW, line_blob
from models.reader import line_image, number_line, prints_number, shows_number
from vision import degrade
from vision.synth import DEFAULT_CATALOG, load_catalog, split_catalog

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "numreader"
MODEL_DIR = ROOT / "models" / "numreader"
DIGIT_HEIGHT = 0.0128  # of a card's height: the printed digits' cap height (M15 frames)
MIN_DIGIT_PX = 2.6  # smaller digits are not labelled (nothing can be read)
EVAL_HEIGHTS = (160, 200, 250, 300, 400, 600)
FOOT = 0.8  # of the card's height: the number lines lie below it


def catalog_lines(catalog: Path = DEFAULT_CATALOG) -> list[dict]:
    """Printings whose frame prints their number on a known line: key, image, number, box."""
    rows = []
    with catalog.open(newline="") as f:
        for r in csv.DictReader(f):
            box = number_line(r["game"], r["set_code"])
            image = catalog.parent / r["image"]
            if box and prints_number(r["game"], r["set_code"], r["number"]) and image.exists():
                rows.append(
                    {
                        "card_key": r["card_key"],
                        "name": r["name"],
                        "image": str(image),
                        "number": r["number"],
                        "box": box,
                    }
                )
    return rows


def box_quad(box: tuple[float, float, float, float], w: int, h: int) -> np.ndarray:
    y0, y1, x0, x1 = box
    return np.array([[x0 * w, y0 * h], [x1 * w, y0 * h], [x1 * w, y1 * h], [x0 * w, y1 * h]])


def reduce(text: str) -> str:
    """The reader's view of a text: its characters kept, every other run one space."""
    out = "".join(c if c in CHARSET else " " for c in text)
    return " ".join(out.split())


def make_labels(lines: list[dict]) -> dict[str, str]:
    """rapidocr's reads of the references' lines that show their number (cached)."""
    path = VAR / "labels.json"
    if path.exists():
        return json.loads(path.read_text())
    from rapidocr_onnxruntime import RapidOCR

    engine = RapidOCR(print_verbose=False)
    labels: dict[str, str] = {}
    for row in lines:
        ref = cv2.imread(row["image"])
        h, w = ref.shape[:2]
        quad = box_quad(row["box"], w, h).astype(np.float32)
        res, _ = engine(line_image(ref, quad), use_det=False, use_cls=False, use_rec=True)
        text = reduce(str(res[0][0])) if res else ""
        if text and shows_number(text, row["number"]):
            labels[row["card_key"]] = text
    labels = tidy_labels(labels, {r["card_key"]: r["number"] for r in lines})
    VAR.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(labels, indent=0))
    return labels


def tidy_labels(labels: dict[str, str], numbers: dict[str, str]) -> dict[str, str]:
    """Reads in their set's printed form: "NUMBER" or "NUMBER/TOTAL" with the set's usual total
    and zero padding. rapidocr shows the number but misreads a total now and then ("141/204",
    "85221" for 85/274, a set symbol read as a digit: "363 5"); those are written out again."""
    totals: dict[str, Counter] = defaultdict(Counter)
    pads: dict[str, Counter] = defaultdict(Counter)
    for key, text in labels.items():
        if m := re.fullmatch(r"(\d+)(?:/(\d+))?", text):
            totals[_set(key)][m.group(2)] += 1
            if len(numbers[key].lstrip("0")) == 1:
                pads[_set(key)][len(m.group(1))] += 1
    out = {}
    for key, text in labels.items():
        number = numbers[key].lstrip("0") or "0"
        m = re.fullmatch(r"(\d+)(?:/(\d+))?", text)
        total = totals[_set(key)].most_common(1)[0][0] if totals[_set(key)] else None
        if m and m.group(1).lstrip("0") == number and m.group(2) in (None, total):
            out[key] = text
            continue
        pad = pads[_set(key)].most_common(1)[0][0] if pads[_set(key)] else 1
        printed = number.zfill(pad)
        out[key] = f"{printed}/{total}" if total and int(number) <= int(total) else printed
    return out


def _set(card_key: str) -> str:
    return card_key.rsplit("-", 1)[0]


def jittered_line(quad: np.ndarray, rng: np.random.Generator, far: bool) -> np.ndarray:
    """The line's quad as a homography fitted on the art places it: shifted, scaled, tilted."""
    lh = float(np.linalg.norm(quad[3] - quad[0]))
    lw = float(np.linalg.norm(quad[1] - quad[0]))
    centre = quad.mean(0)
    angle = np.deg2rad(rng.uniform(-2.5, 2.5))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    scale = rng.uniform(0.92, 1.1, 2)
    out = (quad - centre) * scale @ rot.T + centre
    dy = rng.uniform(0.9, 2.0) * rng.choice([-1, 1]) if far else rng.uniform(-0.35, 0.35)
    out += [rng.uniform(-0.06, 0.06) * lw, dy * lh]
    return (out + rng.normal(0, 0.04 * lh, (4, 2))).astype(np.float32)


def sample(ref: np.ndarray, box: tuple, label: str, rng: np.random.Generator) -> tuple:
    """One training line (grey, INPUT_HW) and its label from a reference image."""
    h, w = ref.shape[:2]
    height = rng.uniform(140, 420) if rng.random() < 0.6 else rng.uniform(420, 900)
    f = min(1.0, height / h)
    # Only the card's foot is shrunk and degraded (the line and two lines around it): 8x cheaper.
    top = int(FOOT * h)
    foot = ref[top:, : int(0.75 * w)]
    small = cv2.resize(
        foot, (round(foot.shape[1] * f), round(foot.shape[0] * f)), interpolation=cv2.INTER_AREA
    )
    digit = DIGIT_HEIGHT * height
    legible = digit >= MIN_DIGIT_PX
    if rng.random() < 0.8:
        small = degrade.color_cast(small, rng)
    if rng.random() < 0.25:
        small = degrade.sleeve_tint(small, rng)
    if rng.random() < 0.15:
        small = degrade.glare(small, rng)
    if rng.random() < 0.5:
        sigma = rng.uniform(0.2, 1.4)
        small = cv2.GaussianBlur(small, (0, 0), sigma)
        legible &= sigma <= 0.25 * digit
    if rng.random() < 0.15:
        small = degrade.motion_blur(small, rng, max_len=5)  # 3-4 px long
        legible &= digit >= 4.5
    if rng.random() < 0.4:
        small = degrade.noise(small, rng, max_sigma=10)
    if rng.random() < 0.6:
        small = degrade.jpeg(small, rng, min_quality=30)
    far = rng.random() < 0.06
    quad = jittered_line((box_quad(box, w, h) - [0, top]) * f, rng, far)
    line = line_image(small, quad)
    grey = line_blob([line])[0, 0]
    return (grey * 255).astype(np.uint8), label if legible and not far else ""


def _make_chunk(job: tuple) -> tuple[np.ndarray, list[str]]:
    rows, labels, seed, n = job
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    while len(xs) < n:
        row = rows[int(rng.integers(len(rows)))]
        ref = cv2.imread(row["image"])  # decoding costs more than a sample: 8 from each
        for _ in range(8):
            x, y = sample(ref, row["box"], labels[row["card_key"]], rng)
            xs.append(x)
            ys.append(y)
    return np.stack(xs[:n]), ys[:n]


def make_data(rows: list[dict], labels: dict, n: int, seed: int) -> tuple[np.ndarray, list[str]]:
    path = VAR / f"data-{seed}-{n}.npz"
    if path.exists():
        z = np.load(path)
        return z["x"], json.loads(str(z["y"]))
    chunk = 2000
    jobs = [(rows, labels, seed + i, chunk) for i in range(n // chunk)]
    with Pool(2) as pool:
        parts = pool.map(_make_chunk, jobs)
    x = np.concatenate([p[0] for p in parts])
    y = [label for p in parts for label in p[1]]
    np.savez(path, x=x, y=json.dumps(y))
    return x, y


def make_net():  # noqa: ANN201 - torch is imported lazily (the serving venv has none)
    import torch
    from torch import nn

    def conv(cin: int, cout: int, kernel: tuple = (3, 3)) -> nn.Sequential:
        pad = (kernel[0] // 2, kernel[1] // 2)
        return nn.Sequential(
            nn.Conv2d(cin, cout, kernel, padding=pad), nn.BatchNorm2d(cout), nn.ReLU()
        )

    class NumberNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(
                conv(1, 32), nn.MaxPool2d(2),  # 16 x 72
                conv(32, 48), nn.MaxPool2d(2),  # 8 x 36
                conv(48, 64), conv(64, 64), nn.MaxPool2d((2, 1)),  # 4 x 36
                conv(64, 96), nn.Conv2d(96, 128, (4, 1)), nn.ReLU(),  # 1 x 36
                conv(128, 128, (1, 3)), conv(128, 128, (1, 3)),
                nn.Conv2d(128, len(CHARSET) + 1, 1),
            )  # fmt: skip

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body((x - 0.5) / 0.25)[:, :, 0].permute(0, 2, 1)  # (N, T, C)

    return NumberNet()


def encode(labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    flat = [CHARSET.index(c) + 1 for s in labels for c in s]
    return np.asarray(flat, np.int64), np.asarray([len(s) for s in labels], np.int64)


def train(args: argparse.Namespace, x: np.ndarray, y: list[str]):  # noqa: ANN201
    """CTC, AdamW with a cosine schedule over the time budget; the net and its steps."""
    import torch

    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    net = make_net()
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    ctc = torch.nn.CTCLoss(zero_infinity=True)
    rng = np.random.default_rng(args.seed)
    budget, started, step, losses = args.minutes * 60, time.time(), 0, []
    net.train()
    while (spent := time.time() - started) < budget:
        for g in opt.param_groups:
            g["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * spent / budget))
        idx = rng.integers(0, len(x), args.batch)
        xb = x[idx].astype(np.float32)[:, None] / 255.0
        gain = rng.uniform(0.75, 1.25, (len(xb), 1, 1, 1)).astype(np.float32)
        xb = np.clip((xb - 0.5) * gain + 0.5 + rng.uniform(-0.1, 0.1, gain.shape), 0, 1)
        targets, lengths = encode([y[i] for i in idx])
        logits = net(torch.from_numpy(xb.astype(np.float32)))
        log_probs = logits.log_softmax(-1).permute(1, 0, 2)  # (T, N, C)
        steps = torch.full((len(idx),), log_probs.shape[0], dtype=torch.long)
        loss = ctc(log_probs, torch.from_numpy(targets), steps, torch.from_numpy(lengths))
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


def export(net, out: Path) -> None:  # noqa: ANN001
    import torch

    out.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(1, 1, *INPUT_HW)
    torch.onnx.export(
        net,
        dummy,
        str(out),
        input_names=["lines"],
        output_names=["logits"],
        dynamic_axes={"lines": {0: "n"}, "logits": {0: "n"}},
        opset_version=17,
        dynamo=False,
    )


def evaluate(out: Path, min_conf: float, seed: int = 71_000_000) -> dict:
    """Reads of held-out printings' lines at each card height, clean-ish and degraded: right
    (the number among the digit groups), wrong (a confident read without it), and reads naming
    a same-name catalog printing's number (the confusion that would accept a wrong printing)."""
    from models.numreader import NumberReader

    reader = NumberReader(out)
    _, held = split_catalog(load_catalog())
    held_keys = {c.card_key for c in held}
    rows = catalog_lines()
    by_name: dict[str, list[dict]] = {}
    for r in rows:
        by_name.setdefault(r["name"].casefold(), []).append(r)
    test = [r for r in rows if r["card_key"] in held_keys]
    rng = np.random.default_rng(seed)
    report: dict = {"held_out_printings": len(test), "min_conf": min_conf, "by_height": {}}
    for height in EVAL_HEIGHTS:
        right = wrong = sibling = 0
        for r in test:
            ref = cv2.imread(r["image"])
            h, w = ref.shape[:2]
            small = cv2.resize(ref, (round(w * height / h), height), interpolation=cv2.INTER_AREA)
            small = degrade.jpeg(degrade.color_cast(small, rng), rng, min_quality=50)
            quad = jittered_line(box_quad(r["box"], *small.shape[1::-1]), rng, far=False)
            read = reader.predict([line_image(small, quad)])[0]
            if read.conf < min_conf or not read.text:
                continue
            if shows_number(read.text, r["number"]):
                right += 1
            else:
                wrong += 1
                twins = [s for s in by_name[r["name"].casefold()] if s is not r]
                sibling += any(shows_number(read.text, s["number"]) for s in twins)
        report["by_height"][height] = {
            "right": round(right / len(test), 3),
            "wrong": round(wrong / len(test), 3),
            "sibling_number": sibling,
        }
        print(height, report["by_height"][height], flush=True)
    return report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--samples", type=int, default=200_000)
    p.add_argument("--minutes", type=float, default=25)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=70_000_000)
    p.add_argument("--version", default="v1")
    p.add_argument("--min-conf", type=float, default=0.9)
    args = p.parse_args()
    rows = catalog_lines()
    train_keys = {c.card_key for c in split_catalog(load_catalog())[0]}
    labels = make_labels(rows)
    train_rows = [r for r in rows if r["card_key"] in train_keys and r["card_key"] in labels]
    print(
        f"{len(rows)} printings with a number line, {len(labels)} labelled, "
        f"{len(train_rows)} to train on",
        flush=True,
    )
    t0 = time.time()
    x, y = make_data(train_rows, labels, args.samples, args.seed)
    print(
        f"{len(x)} samples ({sum(1 for s in y if s)} labelled) in {time.time() - t0:.0f} s",
        flush=True,
    )
    net, steps = train(args, x, y)
    out = MODEL_DIR / f"number-reader-{args.version}.onnx"
    import torch

    torch.save(net.state_dict(), VAR / f"{args.version}.pt")
    export(net, out)
    report = evaluate(out, args.min_conf) | {"steps": steps, "args": vars(args)}
    (VAR / f"{args.version}.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
