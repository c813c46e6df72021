"""JSON API routers, assembled under /api/v1. Every route requires a bearer token (auth.py)."""

from fastapi import APIRouter

from relance.api import (
    accounting,
    bank_statements,
    cases,
    conversations,
    debtors,
    einvoices,
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
    einvoices,
    conversations,
    cases,
    letters,
    policies,
    privacy,
    bank_statements,
    accounting,
    experiments,
):
    router.include_router(_module.router)
