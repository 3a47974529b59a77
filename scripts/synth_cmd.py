"""`cardscan synth OUT`: a labelled set of synthetic scenes that `cardscan eval` can score."""

from __future__ import annotations

from pathlib import Path

import typer

DEFAULT_CATALOG = Path(__file__).resolve().parents[2] / "shared" / "data" / "catalog"


def main(
    out: Path = typer.Argument(..., help="folder to write images/<layout>/, labels.csv into"),
    n: int = typer.Option(2000, help="scenes"),
    size: int = typer.Option(1280, help="long side of each scene, px"),
    seed: int = typer.Option(60_000_000, help="first scene's seed (training uses others)"),
    layout: str = typer.Option(
        None, help="one layout for every scene (vision.layouts; e.g. stack), else each draws one"
    ),
    held_out: bool = typer.Option(
        False, help="only printings the detector never trained on (vision.synth.split_catalog)"
    ),
    catalog: Path = typer.Option(DEFAULT_CATALOG, help="folder with cards.csv"),
) -> None:
    """Compose scenes from catalog images with exact ground truth (quads, printings)."""
    from vision.layouts import check_layouts
    from vision.synth import load_catalog, split_catalog, write_test_set

    cards = load_catalog(catalog / "cards.csv")
    if held_out:
        cards = split_catalog(cards)[1]
    if not cards:
        raise typer.BadParameter(f"no catalog images under {catalog}", param_hint="--catalog")
    if (out / "labels.csv").exists():
        raise typer.BadParameter(f"{out} already holds a set", param_hint="OUT")
    try:
        check_layouts([layout] if layout else [])
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--layout") from exc
    path = write_test_set(out, cards, n=n, seed=seed, size=size, layout=layout)
    typer.echo(f"{n} scenes of {len(cards)} printings -> {path.parent}; score a run with")
    typer.echo(f"  cardscan eval {out / 'labels.csv'}")
