"""JSON API routers, assembled under /api/v1."""

from fastapi import APIRouter

router = APIRouter(tags=["api"])
