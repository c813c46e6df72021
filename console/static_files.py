"""The console's two static files (htmx and the stylesheet), served from the package directory."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from console.web import STATIC_DIR

router = APIRouter()
_TYPES = {".js": "text/javascript", ".css": "text/css"}


@router.get("/static/{name}", include_in_schema=False)
def static_file(name: str) -> FileResponse:
    path = (STATIC_DIR / name).resolve()
    if path.parent != STATIC_DIR.resolve() or path.suffix not in _TYPES or not path.is_file():
        raise HTTPException(status_code=404)
    return FileResponse(
        path, media_type=_TYPES[path.suffix], headers={"Cache-Control": "public, max-age=3600"}
    )
