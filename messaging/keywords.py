"""Carrier-style keywords (STOP, START, HELP and their French forms), matched on the whole message.

Only a message that *is* the keyword counts: "stop calling me at work" goes to the assistant, which
understands it as `stop_contact`. Accents, case and trailing punctuation are ignored.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum


class Keyword(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


_KEYWORDS: dict[str, tuple[Keyword, str | None]] = {
    # keyword -> (kind, language it implies; None = keep the debtor's language)
    "STOP": (Keyword.OPT_OUT, None),
    "STOPALL": (Keyword.OPT_OUT, "en"),
    "UNSUBSCRIBE": (Keyword.OPT_OUT, "en"),
    "CANCEL": (Keyword.OPT_OUT, "en"),
    "END": (Keyword.OPT_OUT, "en"),
    "QUIT": (Keyword.OPT_OUT, "en"),
    "ARRET": (Keyword.OPT_OUT, "fr"),
    "STOP SMS": (Keyword.OPT_OUT, "fr"),
    "START": (Keyword.OPT_IN, None),
    "UNSTOP": (Keyword.OPT_IN, "en"),
    "HELP": (Keyword.HELP, "en"),
    "INFO": (Keyword.HELP, None),
    "AIDE": (Keyword.HELP, "fr"),
}


def normalise(body: str) -> str:
    without_accents = "".join(
        c for c in unicodedata.normalize("NFKD", body) if not unicodedata.combining(c)
    )
    words = re.sub(r"[^A-Za-z0-9]+", " ", without_accents).split()
    return " ".join(words).upper()


def match(body: str) -> tuple[Keyword, str | None] | None:
    """The keyword kind and implied language, or None for an ordinary message."""
    return _KEYWORDS.get(normalise(body))
