"""Tiny French/English guess so a debtor who answers in the other language is answered in it.

Deliberately conservative: it only switches on clear evidence (several marker words), because a
wrong switch is worse than staying in the debtor's recorded language.
"""

from __future__ import annotations

import re

_FR = set(
    [
        "je",
        "j",
        "jai",
        "j'ai",
        "vous",
        "votre",
        "vos",
        "nous",
        "est",
        "pas",
        "le",
        "la",
        "les",
        "des",
        "une",
        "un",
        "du",
        "suis",
        "payer",
        "paye",
        "payé",
        "facture",
        "bonjour",
        "merci",
        "oui",
        "non",
        "pourquoi",
        "quand",
        "combien",
        "mois",
        "fin",
        "semaine",
        "demain",
        "peux",
        "veux",
        "dois",
        "c'est",
        "cest",
        "deja",
        "déjà",
        "svp",
        "stp",
        "rappeler",
        "montant",
    ]
)
_EN = set(
    [
        "i",
        "i'm",
        "im",
        "you",
        "your",
        "we",
        "is",
        "not",
        "the",
        "a",
        "an",
        "of",
        "am",
        "pay",
        "paid",
        "invoice",
        "hello",
        "hi",
        "thanks",
        "thank",
        "yes",
        "no",
        "why",
        "when",
        "how",
        "much",
        "month",
        "end",
        "week",
        "tomorrow",
        "can",
        "want",
        "must",
        "it's",
        "its",
        "already",
        "please",
        "call",
        "amount",
    ]
)
_WORD = re.compile(r"[a-zàâçéèêëîïôûùüÿœ']+", re.IGNORECASE)


def guess_language(text: str) -> str | None:
    """'fr', 'en', or None when unsure."""
    words = [w.lower() for w in _WORD.findall(text)]
    fr = sum(w in _FR for w in words) + (2 if re.search(r"[éèàçùêâô]", text) else 0)
    en = sum(w in _EN for w in words)
    if fr >= 2 and fr >= 2 * max(en, 1):
        return "fr"
    if en >= 2 and en >= 2 * max(fr, 1):
        return "en"
    return None
