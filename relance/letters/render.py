"""HTML (Jinja2) → PDF (WeasyPrint) for formal letters, with a QR code to the payment page."""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path
from typing import Any

import qrcode
import qrcode.image.svg
from babel.dates import format_date
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from markupsafe import Markup

from relance.languages import LANGUAGES
from relance.nlg.formatting import locale_for, long_date, money

TEMPLATES = Path(__file__).with_name("templates")


@lru_cache(maxsize=2)
def _environment(language: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )

    @pass_context
    def _money(ctx: Any, minor: int, currency: str | None = None) -> str:
        return money(minor, currency or ctx.get("currency", "EUR"), language)

    env.filters["money"] = _money
    env.filters["date"] = lambda value: long_date(value, language)
    env.filters["shortdate"] = lambda value: format_date(
        value, format="dd/MM/yyyy", locale=locale_for(language)
    )
    return env


def qr_svg(url: str) -> Markup:
    """An inline SVG QR code (no image library needed); WeasyPrint draws it as vectors."""
    image = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=1)
    buffer = io.BytesIO()
    image.save(buffer)
    svg = buffer.getvalue().decode("utf-8")
    return Markup(svg[svg.index("<svg") :])  # drop the XML declaration


def render_html(kind: str, language: str, context: dict[str, Any]) -> str:
    language = language if language in LANGUAGES else "fr"
    env = _environment(language)
    template = env.get_template(f"{kind}.{language}.html")
    css = (TEMPLATES / "letter.css").read_text(encoding="utf-8")
    return template.render(css=Markup(css), **context)


def render_pdf(html: str) -> bytes:
    from weasyprint import HTML

    pdf: bytes = HTML(string=html, base_url=str(TEMPLATES)).write_pdf()  # no target: the bytes
    return pdf


def place_from_address(address: str) -> str:
    """'12 rue de la Paix, 75002 Paris, France' → 'Paris' (the place line of the letter)."""
    import re

    match = re.search(r"\b\d{4,5}\s+([^,]+)", address)
    return match.group(1).strip() if match else "Paris"
