"""Payer pages and provider webhooks (filled in by the payments work)."""

from fastapi import APIRouter

router = APIRouter(tags=["payments"])
