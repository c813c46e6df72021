"""Dashboard for credit managers: portfolio health, collections and how well the bot converts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from fastapi import APIRouter, Request, Response

from console.web import ConsoleRoute, _money, render
from relance.auth.deps import CurrentUser
from relance.dashboard import charts, metrics
from relance.db.base import utcnow
from relance.experiments import best_time
from relance.web.deps import DbSession

router = APIRouter(route_class=ConsoleRoute)
PERIODS = (30, 90, 180, 365)


def _short_money(currency: str) -> Callable[[float], str]:
    def fmt(minor: float) -> str:
        major = minor / 100
        if major >= 1_000_000:
            return f"{major / 1_000_000:.1f}M"
        if major >= 10_000:
            return f"{major / 1000:.0f}k"
        if major >= 1000:
            return f"{major / 1000:.1f}k"
        return f"{major:.0f}"

    return fmt


@router.get("/dashboard", name="dashboard")
def dashboard_page(
    request: Request, db: DbSession, user: CurrentUser, currency: str = "", period: int = 90
) -> Response:
    available = metrics.currencies(db)
    currency = currency if currency in available else available[0]
    period = period if period in PERIODS else 90
    board = metrics.compute(db, currency=currency, period_days=period)
    fmt = _short_money(currency)
    promise_segments = [
        ("Kept", board.promises.get("kept", 0), charts.PALETTE["green"]),
        ("Broken", board.promises.get("broken", 0), charts.PALETTE["red"]),
        ("Pending", board.promises.get("pending", 0), charts.PALETTE["amber"]),
    ]
    containment = board.containment_rate
    return render(
        request,
        "dashboard.html",
        {
            "section": "dashboard",
            "board": board,
            "currencies": available,
            "currency": currency,
            "period": period,
            "periods": PERIODS,
            "money": lambda m: _money(m, currency),
            "aging_chart": charts.column_chart(
                board.aging, fmt, colours=charts.AGING_COLOURS, title="Aging of the balance"
            ),
            "collections_chart": charts.column_chart(
                [(d.strftime("%d %b"), v) for d, v in board.weekly_collections],
                fmt,
                title="Collections per week",
            ),
            "stage_chart": charts.progress_bars(
                [(s.stage.replace("_", " "), s.paid, s.contacted) for s in board.stages],
                title="Paid after each reminder stage",
            ),
            "promise_chart": charts.donut(
                promise_segments,
                centre=f"{board.promise_keep_rate:.0%}"
                if board.promise_keep_rate is not None
                else "—",
                caption="kept",
                title="Promises kept vs broken",
            ),
            "containment_chart": charts.donut(
                [
                    ("Bot only", board.contained, charts.PALETTE["blue"]),
                    (
                        "Needed a collector",
                        board.conversations - board.contained,
                        charts.PALETTE["grey"],
                    ),
                ],
                centre=f"{containment:.0%}" if containment is not None else "—",
                caption="bot only",
                title="Bot containment",
            ),
            "best_hours": best_time.learn(db, since=utcnow() - timedelta(days=period)),
            "today": date.today(),
        },
    )
