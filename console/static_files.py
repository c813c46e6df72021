"""The console's two static files (htmx and the stylesheet), served from the package directory."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from console.web import STATIC_DIR
from relance.errors import NotFound

router = APIRouter()
_TYPES = {".js": "text/javascript", ".css": "text/css"}


@router.get("/static/{name}", include_in_schema=False)
def static_file(name: str) -> FileResponse:
    path = (STATIC_DIR / name).resolve()
    if path.parent != STATIC_DIR.resolve() or path.suffix not in _TYPES or not path.is_file():
        raise NotFound("static_file_not_found", f"no static file named {name[:80]}")
    return FileResponse(
        path, media_type=_TYPES[path.suffix], headers={"Cache-Control": "public, max-age=3600"}
    )
