"""Simulator routes."""

from fastapi import APIRouter

router = APIRouter(tags=["simulator"])
