"""Structured editing of the policy document: plan-limit bands and contact caps.

Forms post strings; these helpers turn them into a candidate document (money in major units on
screen, minor units in the document) and list the problems the policy validator reports.
"""

from __future__ import annotations

import copy
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.datastructures import FormData

from relance.errors import InvalidContent

FREQUENCIES = ("weekly", "biweekly", "monthly")
SEGMENTS = ("consumer", "b2b", "*")
CONTACT_FIELDS = (
    ("max_contacts", "Max dunning contacts", int),
    ("per_days", "… per this many days", int),
    ("min_gap_hours", "Min gap between contacts (hours)", float),
    ("sender_rate_per_minute", "Sending rate per number (per minute)", float),
)


class FormProblems(InvalidContent):
    """The form was refused; `problems` are readable lines the editor shows next to it.
    An InvalidContent (invalid_form, 422) with the lines as `problems`: the editors re-render them,
    and anything else that lets it through answers like every other refusal."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid_form", "; ".join(problems), problems=problems)
        self.problems = problems


def to_major(minor: object) -> str:
    """Minor units as '1234.50' for a form field; anything else (unset, new row) is blank."""
    if not isinstance(minor, int) or isinstance(minor, bool):
        return ""
    return str((Decimal(minor) / 100).quantize(Decimal("0.01")))


def _minor(text: str, label: str, problems: list[str], *, optional: bool = False) -> int | None:
    text = text.strip().replace(" ", "").replace(",", ".")
    if not text:
        if optional:
            return None
        problems.append(f"{label}: required")
        return 0
    try:
        value = Decimal(text) * 100
    except InvalidOperation:
        problems.append(f"{label}: '{text}' is not an amount")
        return 0
    if value != value.to_integral_value():
        problems.append(f"{label}: at most two decimals")
    return int(value)


def _number(text: str, label: str, kind: type, problems: list[str]) -> Any:
    try:
        return kind(text.strip())
    except ValueError:
        problems.append(f"{label}: '{text}' is not a number")
        return 0


def plan_limits_from_form(form: FormData, document: dict[str, Any]) -> dict[str, Any]:
    """A copy of `document` whose `plan_limits` come from the band rows of the form.

    Rows are `band-<i>-<field>`; a row with `band-<i>-remove` is dropped; the blank "new band" row
    is ignored unless its installments field is filled.
    """
    problems: list[str] = []
    bands: list[dict[str, Any]] = []
    original = [b if isinstance(b, dict) else {} for b in document.get("plan_limits") or []]
    raw_count = form.get("band_count") or "0"  # a hidden field: only a forged form gets it wrong
    count: int = _number(
        raw_count if isinstance(raw_count, str) else "", "band count", int, problems
    )
    for i in range(min(count, 50)):

        def field(name: str, i: int = i) -> str:
            value = form.get(f"band-{i}-{name}")
            return value if isinstance(value, str) else ""

        if field("remove") or (field("new") and not field("max_installments").strip()):
            continue
        label = f"band {len(bands) + 1}"
        bands.append(
            {
                "segment": field("segment") or "*",
                "max_amount_minor": _minor(
                    field("max_amount"), f"{label} up to amount", problems, optional=True
                ),
                "max_installments": _number(
                    field("max_installments"), f"{label} installments", int, problems
                ),
                "max_duration_days": _number(
                    field("max_duration_days"), f"{label} duration", int, problems
                ),
                "min_first_payment_pct": _number(
                    field("min_first_payment_pct") or "0",
                    f"{label} first payment %",
                    float,
                    problems,
                ),
                "min_first_payment_minor": _minor(
                    field("min_first_payment") or "0", f"{label} first payment floor", problems
                ),
                "min_installment_minor": _minor(
                    field("min_installment") or "0", f"{label} min installment", problems
                ),
                "allowed_frequencies": [f for f in FREQUENCIES if form.get(f"band-{i}-freq-{f}")],
            }
        )
        _keep_shape(bands[-1], original[i] if i < len(original) else {})
    if problems:
        raise FormProblems(problems)
    candidate = copy.deepcopy(document)
    candidate["plan_limits"] = bands
    return candidate


def _keep_shape(band: dict[str, Any], original: dict[str, Any]) -> None:
    """Write numbers as the document had them, so an untouched field never shows in the diff:
    15.0 stays 15, and an optional floor left at 0 stays absent."""
    for key, value in list(band.items()):
        before = original.get(key)
        if isinstance(value, float) and value.is_integer() and not isinstance(before, float):
            band[key] = int(value)
        if isinstance(value, list) and not any(isinstance(v, float) for v in before or []):
            band[key] = [int(v) if isinstance(v, float) and v.is_integer() else v for v in value]
        if key in _OPTIONAL_ZERO and band[key] == 0 and key not in original:
            del band[key]


_OPTIONAL_ZERO = ("min_first_payment_pct", "min_first_payment_minor", "min_installment_minor")


def contact_from_form(form: FormData, document: dict[str, Any]) -> dict[str, Any]:
    problems: list[str] = []
    contact = dict(document.get("contact") or {})
    for name, label, kind in CONTACT_FIELDS:
        value = form.get(name)
        contact[name] = _number(value if isinstance(value, str) else "", label, kind, problems)
    backoff = form.get("retry_backoff_minutes")
    if isinstance(backoff, str):
        contact["retry_backoff_minutes"] = [
            _number(part, "Retry back-off", float, problems)
            for part in backoff.replace(";", ",").split(",")
            if part.strip()
        ]
    if problems:
        raise FormProblems(problems)
    _keep_shape(contact, dict(document.get("contact") or {}))
    candidate = copy.deepcopy(document)
    candidate["contact"] = contact
    return candidate
