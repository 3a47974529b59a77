"""The annotator page at /review: server-rendered HTML plus one small script, no build step.

The page holds no data itself: it asks the review API with the annotator's bearer token (kept
in the browser's localStorage) and shows catalog images and crops through API routes.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.templating import Jinja2Templates

from db.inventory import Condition

HERE = Path(__file__).resolve().parent.parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)

CONDITION_LABELS = {
    Condition.NEAR_MINT: "Near Mint",
    Condition.LIGHTLY_PLAYED: "Lightly Played",
    Condition.MODERATELY_PLAYED: "Moderately Played",
    Condition.HEAVILY_PLAYED: "Heavily Played",
    Condition.DAMAGED: "Damaged",
}


@router.get("/review", response_class=HTMLResponse)
def review_page(request: Request) -> HTMLResponse:
    """The annotator page (it asks for the token itself)."""
    return templates.TemplateResponse(
        request, "review.html", {"conditions": CONDITION_LABELS, "max_candidates": 5}
    )


@router.get("/review/review.js")
def review_script() -> FileResponse:
    """The page's script."""
    return FileResponse(HERE / "static" / "review.js", media_type="text/javascript")


@router.get("/review/review.css")
def review_style() -> FileResponse:
    """The page's style sheet."""
    return FileResponse(HERE / "static" / "review.css", media_type="text/css")
