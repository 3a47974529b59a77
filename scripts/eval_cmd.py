"""`cardscan eval LABELS.csv [--results results.jsonl]`: EVAL.md's metrics, overall and per group.

`score_photo` and `summarize` are pure: label rows and scan records in, numbers out.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import typer


@dataclass
class PhotoScore:
    group: str
    catalog_cards: int = 0  # labelled catalog tokens
    top1_right: int = 0  # ... claimed by a prediction's top card (any decision)
    auto_right: int = 0  # ... claimed by an auto-accepted prediction
    auto: int = 0  # auto-accepted predictions
    needs_review: int = 0
    no_match: int = 0
    found: int = 0
    count_error: float | None = None  # only on exactly counted photos
    elapsed_ms: float | None = None
    failed: bool = False
    wrong: list[str] = field(default_factory=list)  # auto-accepted keys that claimed nothing


def parse_tokens(cards: str) -> list[set[str] | None]:
    """`a;b|c;?Name` -> [{a}, {b, c}, None]; None is a card that is not in the catalog."""
    out: list[set[str] | None] = []
    for token in (t.strip() for t in (cards or "").split(";")):
        if not token:
            continue
        out.append(None if token.startswith("?") else {k.strip().lower() for k in token.split("|")})
    return out


def group_of(photo: str) -> str:
    """First folder under images/ (`images/dsk_x/1.jpg` -> `dsk_x`); `images` when there is none."""
    parts = Path(photo).parts
    if "images" in parts:
        rest = parts[parts.index("images") + 1 :]
        return rest[0] if len(rest) > 1 else "images"
    return parts[0] if len(parts) > 1 else "."


def _predicted_key(card: dict) -> str | None:
    """The prediction's top card: its key, or its best candidate's when it was not identified."""
    if card.get("card_key"):
        return str(card["card_key"]).lower()
    cands = card.get("candidates") or []
    return str(cands[0]["card_key"]).lower() if cands and cands[0].get("card_key") else None


def score_photo(label: dict, record: dict | None) -> PhotoScore:
    """Predictions claim label tokens in order of confidence; each token is claimed once."""
    tokens = parse_tokens(label.get("cards", ""))
    s = PhotoScore(group=group_of(label["photo"]), catalog_cards=sum(t is not None for t in tokens))
    cards = [] if record is None else record.get("cards") or []
    s.failed = record is None or record.get("status") != "completed"
    if record is not None and record.get("elapsed_ms") is not None:
        s.elapsed_ms = float(record["elapsed_ms"])
    s.found = len(cards)
    claimed = [False] * len(tokens)
    for card in sorted(cards, key=lambda c: -float(c.get("confidence") or 0.0)):
        decision = card.get("decision")
        s.auto += decision == "auto_accepted"
        s.needs_review += decision == "needs_review"
        s.no_match += decision == "no_match"
        key = _predicted_key(card)
        hit = next(
            (i for i, t in enumerate(tokens) if t is not None and not claimed[i] and key in t), None
        )
        if hit is not None:
            claimed[hit] = True
            s.top1_right += 1
            s.auto_right += decision == "auto_accepted"
        elif decision == "auto_accepted":
            s.wrong.append(key or "?")
    if str(label.get("count_exact", "1")).strip() == "1":
        n = int(label.get("n_cards") or 0)
        s.count_error = abs(s.found - n) / max(n, 1)
    return s


def summarize(scores: list[PhotoScore]) -> dict:
    """EVAL.md's metrics over a set of photo scores."""
    cat = sum(s.catalog_cards for s in scores)
    auto = sum(s.auto for s in scores)
    auto_right = sum(s.auto_right for s in scores)
    counted = [s.count_error for s in scores if s.count_error is not None]
    ms = [s.elapsed_ms for s in scores if s.elapsed_ms is not None]
    return {
        "photos": len(scores),
        "failed": sum(s.failed for s in scores),
        "catalog_cards": cat,
        "top1_recall": round(sum(s.top1_right for s in scores) / cat, 4) if cat else None,
        "auto_coverage": round(auto_right / cat, 4) if cat else None,
        "auto_precision": round(auto_right / auto, 4) if auto else None,
        "false_accepts": auto - auto_right,
        "count_error": round(float(np.mean(counted)), 4) if counted else None,
        "p50_ms": round(float(np.percentile(ms, 50)), 1) if ms else None,
        "p95_ms": round(float(np.percentile(ms, 95)), 1) if ms else None,
        "needs_review": sum(s.needs_review for s in scores),
        "no_match": sum(s.no_match for s in scores),
    }


def score_run(labels: list[dict], records: list[dict], base: Path | None = None) -> dict:
    """{"overall": metrics, "groups": {group: metrics}} for label rows and scan records."""
    by_photo = {}
    for r in records:
        by_photo[r["photo"]] = r
        if base is not None:
            by_photo[str((Path(r["photo"])).resolve())] = r
    scores = []
    for label in labels:
        rec = by_photo.get(label["photo"])
        if rec is None and base is not None:
            rec = by_photo.get(str((base / label["photo"]).resolve()))
        scores.append(score_photo(label, rec))
    groups = sorted({s.group for s in scores})
    return {
        "overall": summarize(scores),
        "groups": {g: summarize([s for s in scores if s.group == g]) for g in groups},
        "false_accepts": [
            {"photo": lab["photo"], "accepted": s.wrong}
            for lab, s in zip(labels, scores, strict=True)
            if s.wrong
        ],
    }


COLUMNS = (
    "photos",
    "catalog_cards",
    "top1_recall",
    "auto_coverage",
    "auto_precision",
    "false_accepts",
    "needs_review",
    "no_match",
    "count_error",
    "p50_ms",
    "p95_ms",
)


def main(
    labels: Path = typer.Argument(..., help="labels.csv (EVAL.md format)"),
    results: Path = typer.Option(
        None, "--results", exists=True, dir_okay=False, help="a finished run; default: scan now"
    ),
    out: Path = typer.Option(None, "--out", help="where a new run is written"),
    json_out: Path = typer.Option(None, "--json", help="also write the metrics as JSON"),
) -> None:
    """Score a scan run against labels: overall and per group (first folder under images/)."""
    if not labels.is_file():
        raise typer.BadParameter(f"{labels} is not a file", param_hint="LABELS")
    with labels.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    base = labels.parent
    if results is None:
        from scripts.scan_cmd import scan_photos

        results = out or Path("var/eval") / f"{labels.parent.name}-results.jsonl"
        scan_photos([(base / r["photo"], r["photo"]) for r in rows], results)
    records = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    report = score_run(rows, records, base)
    width = max(len(g) for g in [*report["groups"], "overall"]) + 2
    typer.echo("group".ljust(width) + " ".join(c[:13].rjust(13) for c in COLUMNS))
    for name, m in [*report["groups"].items(), ("overall", report["overall"])]:
        typer.echo(
            name.ljust(width)
            + " ".join(("-" if m[c] is None else str(m[c]))[:13].rjust(13) for c in COLUMNS)
        )
    for fa in report["false_accepts"]:
        typer.echo(f"false accept: {fa['photo']}: {', '.join(fa['accepted'])}")
    if json_out:
        json_out.write_text(json.dumps(report, indent=1), encoding="utf-8")
