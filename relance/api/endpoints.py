"""JSON API routers, assembled under /api/v1. Every route requires a bearer token (auth.py)."""

from fastapi import APIRouter

from relance.api import (
    cases,
    conversations,
    debtors,
    experiments,
    invoices,
    letters,
    policies,
    privacy,
)

router = APIRouter()
for _module in (
    debtors,
    invoices,
    conversations,
    cases,
    letters,
    policies,
    privacy,
    experiments,
):
    router.include_router(_module.router)
