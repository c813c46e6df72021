"""The languages Relance speaks with debtors, defined once.

Wording templates, letters, payment pages, portfolio imports, the console's previews and the
assistant's session slots all check against this; a new language starts here (then its
templates, NLU data and letter wording)."""

from __future__ import annotations

from typing import Literal, get_args

Language = Literal["fr", "en"]
LANGUAGES: tuple[str, ...] = get_args(Language)
