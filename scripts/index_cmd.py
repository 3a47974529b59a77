"""`cardscan index`: build the catalog index; calibrate and benchmark on synthetic crops.

cardscan index build [--catalog DIR]     embed every catalog printing, write a new index version
cardscan index calibrate                 fit the matcher's confidence on synthetic crops
cardscan index bench                     top-1 / auto-accept figures on other synthetic crops
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import typer

app = typer.Typer(help="Catalog index: build, calibrate, benchmark.", no_args_is_help=True)

DEFAULT_CATALOG = Path(__file__).resolve().parents[2] / "shared" / "data" / "catalog"
CALIBRATE_SEED = 20_000_000  # scene seeds: detector test set uses 10M+, the benchmark 30M+
BENCH_SEED = 30_000_000


def read_entries(catalog: Path):  # noqa: ANN201
    """Catalog printings to index: from `cards.csv` today; the one place to read the database."""
    from models.index import CatalogEntry

    with (catalog / "cards.csv").open(newline="", encoding="utf-8") as f:
        return [
            CatalogEntry(
                card_key=r["card_key"],
                name=r["name"],
                set_code=r["set_code"],
                number=r["number"],
                game=r["game"],
                variant=r.get("variant") or "",
                image=str((catalog / r["image"]).resolve()),
            )
            for r in csv.DictReader(f)
        ]


def embed_entries(embedder, entries, batch: int = 32) -> np.ndarray:  # noqa: ANN001
    """(N, D) embeddings of the reference images, resized to the 626x448 crop size."""
    import cv2

    out = []
    for i in range(0, len(entries), batch):
        imgs = []
        for e in entries[i : i + batch]:
            img = cv2.imread(e.image, cv2.IMREAD_COLOR)
            if img is None:
                raise typer.BadParameter(f"unreadable reference image {e.image}")
            imgs.append(cv2.resize(img, (448, 626), interpolation=cv2.INTER_AREA))
        out.append(embedder.predict(imgs))
    return np.concatenate(out)


def reference_features(entries) -> list:  # noqa: ANN001
    """ORB features of every reference image at crop size, so verification never recomputes them."""
    import cv2

    from models.verify import CROP_HW, ORB_FEATURES, orb_features

    orb = cv2.ORB_create(nfeatures=ORB_FEATURES)
    out = []
    for e in entries:
        img = cv2.resize(cv2.imread(e.image), CROP_HW[::-1], interpolation=cv2.INTER_AREA)
        out.append(orb_features(img, orb))
    return out


@app.command()
def build(
    catalog: Path = typer.Option(DEFAULT_CATALOG, help="folder with cards.csv"),
    embedder_path: Path = typer.Option(None, "--embedder", help="ONNX file (default: newest)"),
    index_dir: Path = typer.Option(None, help="default: settings.index_dir"),
) -> None:
    """Embed every catalog printing and write a new index version (LATEST points at it)."""
    from models.embedder import CardEmbedder
    from models.index import build_index, save_reference_features

    t0 = time.perf_counter()
    entries = read_entries(catalog)
    embedder = CardEmbedder(embedder_path)
    vectors = embed_entries(embedder, entries)
    features = reference_features(entries)
    out = build_index(
        vectors,
        entries,
        embedder_version=embedder.version,
        index_dir=index_dir,
        source=str(catalog),
    )
    save_reference_features(out, features)
    typer.echo(
        f"index {out.name}: {len(entries)} printings, dim {vectors.shape[1]}, "
        f"{time.perf_counter() - t0:.1f} s -> {out}"
    )


def held_out_keys(keys: list[str]) -> list[str]:
    """Printings the embedder never trained on (same rule as scripts/train_embedder.is_held_out)."""
    return [k for k in keys if int(hashlib.sha1(k.encode()).hexdigest(), 16) % 25 == 0]


def unknown_split(keys: list[str], part: int) -> set[str]:
    """Cards to treat as missing from the catalog: half the never-trained ones (0 or 1)."""
    held = held_out_keys(keys)
    return {k for k in held if int(hashlib.md5(k.encode()).hexdigest(), 16) % 2 == part}


def synthetic_crops(
    keys: set[str] | None,
    n_scenes: int,
    seed: int,
    jitter: float = 0.012,
    size: int = 1024,
) -> Iterator[tuple[list, list[str], str]]:
    """Per scene: crops warped from jittered true corners (a detector's error), keys, layout.

    `size` is the scene's long side: at 1024 px most cards are 150-400 px tall and their small
    print is unreadable; at 2048 px they are about as sharp as the catalog images allow (a phone
    photo is sharper still)."""
    from vision.synth import SceneGenerator, load_catalog
    from vision.warp import warp_card

    cards = [c for c in load_catalog() if keys is None or c.card_key in keys]
    gen = SceneGenerator(cards, size=size)
    for s in range(n_scenes):
        try:
            scene = gen.generate(seed + s)
        except ValueError as exc:  # a generator bug must not sink a long benchmark; say so
            typer.echo(f"scene {seed + s} skipped: {exc}", err=True)
            continue
        rng = np.random.default_rng(seed + s)
        crops, truth = [], []
        for c in scene.cards:
            if not c.should_detect:
                continue
            side = float(np.linalg.norm(c.quad[3] - c.quad[0]))
            quad = c.quad + rng.normal(0, jitter * side, (4, 2)).astype(np.float32)
            crops.append(warp_card(scene.image, quad))
            truth.append(c.card_key)
        if crops:
            yield crops, truth, scene.layout


def catalog_crops(
    keys: set[str] | None,
    n_batches: int,
    seed: int,
    catalog: Path = DEFAULT_CATALOG,
    size: int = 0,  # unused: the crops are the catalog images themselves
) -> Iterator[tuple[list, list[str], str]]:
    """Batches of 3 crops made straight from catalog images (when scenes are unavailable): a card
    photographed small (down- then up-sampled), re-warped through a wrong quad, degraded."""
    import cv2

    from vision.augment import augment_crop

    entries = [e for e in read_entries(catalog) if keys is None or e.card_key in keys]
    rng = np.random.default_rng(seed)
    for _ in range(n_batches):
        crops, truth = [], []
        for e in rng.choice(len(entries), 3, replace=False):
            img = cv2.resize(cv2.imread(entries[e].image), (448, 626), interpolation=cv2.INTER_AREA)
            h = int(rng.uniform(140, 626))
            small = cv2.resize(img, (round(h * 448 / 626), h), interpolation=cv2.INTER_AREA)
            img = cv2.resize(small, (448, 626), interpolation=cv2.INTER_LINEAR)
            crops.append(augment_crop(img, rng))
            truth.append(entries[e].card_key)
        yield crops, truth, "catalog"


def crop_source(source: str):  # noqa: ANN201
    if source not in ("scenes", "catalog"):
        raise typer.BadParameter("source is 'scenes' or 'catalog'")
    return synthetic_crops if source == "scenes" else catalog_crops


SOURCE_OPTION = typer.Option("scenes", help="scenes (vision.synth) or catalog (augmented images)")
SIZE_OPTION = typer.Option(1024, help="long side of the synthetic scenes, px")


def _matcher(embedder_path: Path | None = None, index=None):  # noqa: ANN001, ANN202
    from models.embedder import CardEmbedder
    from models.matcher import Matcher

    m = Matcher(embedder=CardEmbedder(embedder_path) if embedder_path else None, index=index)
    m.load()
    return m


EMBEDDER_OPTION = typer.Option(None, "--embedder", help="ONNX file (default: the index's)")


@app.command()
def calibrate(
    scenes: int = typer.Option(250, help="scenes of catalog cards"),
    unknown_scenes: int = typer.Option(120, help="scenes of cards left out of the index"),
    embedder_path: Path = EMBEDDER_OPTION,
    source: str = SOURCE_OPTION,
    size: int = SIZE_OPTION,
) -> None:
    """Fit P(candidate is right | evidence) on synthetic crops; write it beside the embedder."""
    from models.calibration import FEATURES, Calibration, calibration_path

    known = _matcher(embedder_path)
    keys = [e.card_key for e in known.index.entries]
    rng = np.random.default_rng(7)
    trained = sorted(set(keys) - set(held_out_keys(keys)))
    # Unknown cards: half the never-trained printings plus trained ones removed from the index
    # (the real photos are full of cards that look like catalog cards but are not in it).
    missing = unknown_split(keys, 0) | set(rng.choice(trained, 150, replace=False).tolist())
    unknown = _matcher(embedder_path, known.index.without(missing))
    unknown.embedder, unknown.reader = known.embedder, known.reader
    xs, ys, groups = [], [], []
    for matcher, pool, n, seed in (
        (known, None, scenes, CALIBRATE_SEED),
        (unknown, missing, unknown_scenes, CALIBRATE_SEED + 500_000),
    ):
        for crops, truth, _ in crop_source(source)(pool, n, seed, size=size):
            hits = matcher.index.search(matcher.embedder.predict(crops))
            for crop, key, h in zip(crops, truth, hits, strict=True):
                cands, feats, _ = matcher.evidence_table(crop, h)
                xs.append(feats)
                ys.append(np.array([c.card_key == key for c in cands], float))
                groups.append(len(groups))
    n = len(xs)
    fit_idx = [i for i in range(n) if i % 10 < 7]
    cal = Calibration.fit(
        np.vstack([xs[i] for i in fit_idx]), np.concatenate([ys[i] for i in fit_idx])
    )
    curve = reliability(
        cal, [xs[i] for i in range(n) if i % 10 >= 7], [ys[i] for i in range(n) if i % 10 >= 7]
    )
    final = Calibration.fit(np.vstack(xs), np.concatenate(ys))
    final.info = {
        "crops": n,
        "unknown_cards": len(missing),
        "features": list(FEATURES),
        "reliability_heldout_30pct": curve,
        "embedder": known.embedder.version,
        "fitted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path = calibration_path(known.embedder)
    final.write(path)
    typer.echo(f"{n} crops; weights {np.round(final.weights, 3).tolist()} bias {final.bias:.3f}")
    typer.echo("reliability of the top candidate (held-out 30 %): bin, n, mean p, accuracy")
    for row in curve:
        typer.echo(f"  {row['bin']:>11}  {row['n']:>5}  {row['mean_p']:.3f}  {row['accuracy']:.3f}")
    typer.echo(f"-> {path}")


def reliability(cal, xs: list[np.ndarray], ys: list[np.ndarray]) -> list[dict]:  # noqa: ANN001
    """Top-candidate confidence vs. how often it is right, in bins."""
    edges = [0.0, 0.1, 0.2, 0.35, 0.5, 0.7, 0.9, 0.97, 0.99, 1.0001]
    p_top, ok = [], []
    for x, y in zip(xs, ys, strict=True):
        p = cal.prob(x)
        p_top.append(float(p.max()))
        ok.append(bool(y[int(p.argmax())]))
    p_arr, ok_arr = np.array(p_top), np.array(ok)
    rows = []
    for lo, hi in zip(edges, edges[1:], strict=False):
        sel = (p_arr >= lo) & (p_arr < hi)
        if sel.any():
            rows.append(
                {
                    "bin": f"{lo:.2f}-{min(hi, 1):.2f}",
                    "n": int(sel.sum()),
                    "mean_p": round(float(p_arr[sel].mean()), 3),
                    "accuracy": round(float(ok_arr[sel].mean()), 3),
                }
            )
    return rows


@app.command()
def bench(
    scenes: int = typer.Option(300, help="scenes of catalog cards"),
    unknown_scenes: int = typer.Option(
        150, help="scenes of never-trained cards left out of the index"
    ),
    out: Path = typer.Option(Path("var/bench_identify.json")),
    embedder_path: Path = EMBEDDER_OPTION,
    source: str = SOURCE_OPTION,
    size: int = SIZE_OPTION,
) -> None:
    """Identification of synthetic crops (true corners + jitter): top-1, auto-accepts, ms."""
    known = _matcher(embedder_path)
    keys = [e.card_key for e in known.index.entries]
    missing = unknown_split(keys, 1)
    unknown = _matcher(embedder_path, known.index.without(missing))
    unknown.embedder, unknown.reader = known.embedder, known.reader
    report: dict = {}
    for name, matcher, pool, n, seed in (
        ("catalog", known, None, scenes, BENCH_SEED),
        ("not_in_catalog", unknown, missing, unknown_scenes, BENCH_SEED + 500_000),
    ):
        stats = {"crops": 0, "top1": 0, "auto": 0, "auto_right": 0, "review": 0, "no_match": 0}
        per_card_ms, failures = [], []
        held_back: Counter[str] = Counter()  # why right top-1 answers were not auto-accepted
        for crops, truth, layout in crop_source(source)(pool, n, seed, size=size):
            t0 = time.perf_counter()
            matches = matcher.predict(crops)
            per_card_ms.append((time.perf_counter() - t0) * 1000 / len(crops))
            for m, key in zip(matches, truth, strict=True):
                stats["crops"] += 1
                top = m.candidates[0]["card_key"] if m.candidates else None
                stats["top1"] += top == key
                stats["auto"] += m.decision == "auto_accepted"
                stats["auto_right"] += m.decision == "auto_accepted" and m.card_key == key
                stats["review"] += m.decision == "needs_review"
                stats["no_match"] += m.decision == "no_match"
                if top == key and m.decision != "auto_accepted":
                    held_back.update(m.evidence.get("gates") or ["low_confidence"])
                if (
                    m.decision == "auto_accepted"
                    and m.card_key != key
                    or (pool is None and top != key)
                ):
                    failures.append(
                        {
                            "truth": key,
                            "top": top,
                            "decision": str(m.decision),
                            "conf": m.confidence,
                            "layout": layout,
                            "gates": m.evidence.get("gates"),
                        }
                    )
        c = max(1, stats["crops"])
        stats |= {
            "top1_rate": round(stats["top1"] / c, 4),
            "auto_coverage": round(stats["auto_right"] / c, 4),
            "auto_precision": round(stats["auto_right"] / max(1, stats["auto"]), 4),
            "false_accepts": stats["auto"] - stats["auto_right"],
            "ms_per_card_p50": round(float(np.median(per_card_ms)), 1) if per_card_ms else None,
            "held_back_by": dict(held_back.most_common()),
            "failures": failures[:40],
        }
        report[name] = stats
        typer.echo(f"{name}: " + json.dumps({k: v for k, v in stats.items() if k != "failures"}))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    typer.echo(f"-> {out}")
