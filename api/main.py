"""The FastAPI app. Routers come from ROUTERS, one line per resource module."""

from __future__ import annotations

import importlib
import logging

from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse

from api.errors import ErrorPublic, install_error_handlers
from api.settings import settings
from pipeline.settings import settings as pipeline_settings

log = logging.getLogger(__name__)

# Each module defines `router`; a module not written yet is skipped.
ROUTERS: list[str] = [
    "api.routes.health",
    "api.routes.scans",
    "api.routes.review",
    "api.routes.inventory",
    "api.routes.cards",
    "api.routes.review_page",
]


class UploadLimit:
    """Refuse a body over the upload limit: at once when its declared length says so, else as
    soon as the bytes received pass it (chunked uploads declare no length)."""

    def __init__(self, app) -> None:  # noqa: ANN001
        self.app = app

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        limit = pipeline_settings.max_upload_bytes + settings.multipart_overhead_bytes
        detail = f"the upload is over the {pipeline_settings.max_upload_bytes}-byte limit"
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            body = ErrorPublic(detail=detail, code="image_too_large").model_dump()
            await JSONResponse(body, status_code=413)(scope, receive, send)
            return
        seen = 0

        async def counted_receive() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                # FastAPI passes an HTTPException raised while reading the body through as is.
                raise HTTPException(413, detail)
            return message

        await self.app(scope, counted_receive, send)


def create_app() -> FastAPI:
    """The API: every router in ROUTERS, the error mapping, the upload limit."""
    app = FastAPI(
        title="cardscan",
        version="1.0.0",
        description="Photos of trading cards in, identified cards out.",
    )
    install_error_handlers(app)
    for module_name in ROUTERS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        app.include_router(module.router)
    app.add_middleware(UploadLimit)
    return app


app = create_app()
