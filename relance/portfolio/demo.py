"""The bundled demo portfolio: ~30 debtors (French and English, B2B and consumers) at varied stages.

Dates in the CSV are written as of DEMO_REFERENCE_DATE and shifted to today on load, so the demo
always shows the same mix of pre-due, late and very late invoices.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

DEMO_CSV = Path(__file__).parent / "demo" / "demo_portfolio.csv"
DEMO_REFERENCE_DATE = date(2026, 11, 23)


def demo_shift_days(today: date) -> int:
    return (today - DEMO_REFERENCE_DATE).days
