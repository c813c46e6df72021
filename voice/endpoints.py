"""Voice webhooks (filled in by the voice channel work)."""

from fastapi import APIRouter

router = APIRouter(tags=["voice"])
