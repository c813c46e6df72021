"""Turn what debtors type or say into values the services can use.

Rasa hands us raw entity text ("deux cents euros", "fin du mois", "en trois fois", "the 15th",
"sept cinq zéro un un" from a voice transcript). Normalising here, in the app env, keeps the
actions thin and lets the rules be unit-tested without Rasa. French and English only.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Literal

import dateparser
from text_to_num import alpha2digit

Direction = Literal["future", "past"]

_FULL_AMOUNT = (
    "tout",
    "la totalite",
    "totalite",
    "l'integralite",
    "integralite",
    "le tout",
    "la somme totale",
    "everything",
    "all of it",
    "the full amount",
    "full amount",
    "the whole amount",
    "the total",
    "in full",
    "en totalite",
    "le solde",
    "the balance",
    "all",
)
_UNKNOWN = (
    "je n'ai pas",
    "je n'en ai pas",
    "j'en ai pas",
    "je l'ai pas",
    "j'ai pas",
    "pas de reference",
    "je ne sais pas",
    "je sais pas",
    "aucune",
    "je ne connais pas",
    "don't have",
    "dont have",
    "do not have",
    "no reference",
    "i don't know",
    "i dont know",
    "not sure",
    "none",
    "no idea",
    "jsp",
)
_FREQUENCIES = {
    "biweekly": (
        "deux semaines",
        "2 semaines",
        "quinze jours",
        "15 jours",
        "quinzaine",
        "two weeks",
        "2 weeks",
        "fortnight",
        "every other week",
        "biweekly",
        "bi-weekly",
    ),
    "weekly": ("semaine", "hebdo", "week", "weekly"),
    "monthly": ("mois", "mensu", "month", "monthly"),
}
_WEEKDAYS = {
    "lundi": 0,
    "mardi": 1,
    "mercredi": 2,
    "jeudi": 3,
    "vendredi": 4,
    "samedi": 5,
    "dimanche": 6,
    "monday": 0,
    "tuesday": 1,
    "wednesday": 2,
    "thursday": 3,
    "friday": 4,
    "saturday": 5,
    "sunday": 6,
    "mon": 0,
    "tue": 1,
    "wed": 2,
    "thu": 3,
    "fri": 4,
    "sat": 5,
    "sun": 6,
}
_ABBREVIATIONS = {
    r"\bdm1\b": "demain",
    r"\bdemin\b": "demain",
    r"\btmrw\b": "tomorrow",
    r"\btmr\b": "tomorrow",
    r"\bajd\b": "aujourd'hui",
    r"\bauj\b": "aujourd'hui",
    r"\btdy\b": "today",
}
_CURRENCY_WORDS = {
    "€": "EUR",
    "eur": "EUR",
    "euro": "EUR",
    "euros": "EUR",
    "$": "USD",
    "dollar": "USD",
    "dollars": "USD",
    "£": "GBP",
    "pound": "GBP",
    "pounds": "GBP",
    "livres": "GBP",
}
_DIGITS = re.compile(r"\d+(?:[ \u202f\u00a0.,]\d{3})*(?:[.,]\d{1,2})?")


def fold(text: str) -> str:
    """Lower case without accents, apostrophes unified: 'Déjà réglé' -> 'deja regle'."""
    text = unicodedata.normalize("NFKD", text.replace("’", "'"))
    return "".join(c for c in text if not unicodedata.combining(c)).lower().strip()


def words_to_digits(text: str, language: str) -> str:
    """'deux cents euros' -> '200 euros'; small numbers too ('trois fois' -> '3 fois')."""
    lang = "fr" if language == "fr" else "en"
    try:
        converted: str = alpha2digit(text, lang, threshold=0)
    except Exception:  # text2num raises on odd inputs; the raw text is still usable
        converted = text
    other = "en" if lang == "fr" else "fr"
    if converted == text:
        try:
            converted = alpha2digit(text, other, threshold=0)
        except Exception:
            converted = text
    return converted


def wants_full_amount(text: str) -> bool:
    folded = fold(text)
    return any(re.search(rf"(^|\W){re.escape(p)}($|\W)", folded) for p in _FULL_AMOUNT)


def is_unknown_answer(text: str) -> bool:
    """'je n'ai pas la référence', "I don't have it": the debtor cannot give the value."""
    folded = fold(text)
    return any(p in folded for p in _UNKNOWN) or folded in ("non", "no", "nope", "nan")


def parse_amount(text: str, language: str = "fr") -> int | None:
    """Amount in minor units (cents) from '250 €', '€1,200.50', '1 200,50 eur', 'deux cents euros'.

    Returns None when no number is found. The currency is not checked: the debtor's account
    currency applies (accounts are single-currency in practice).
    """
    if not text:
        return None
    converted = words_to_digits(str(text), language)
    match = _DIGITS.search(converted)
    if not match:
        return None
    raw = match.group(0).replace("\u202f", " ").replace("\u00a0", " ")
    return _to_minor(raw)


def _to_minor(raw: str) -> int | None:
    # Decide the decimal separator: a final [.,] followed by 1-2 digits is decimal.
    decimal_part = ""
    m = re.search(r"[.,](\d{1,2})$", raw)
    if m:
        decimal_part = m.group(1)
        raw = raw[: m.start()]
    integer = re.sub(r"[ .,]", "", raw)
    try:
        value = Decimal(f"{integer}.{decimal_part or '0'}")
    except InvalidOperation:
        return None
    return int((value * 100).to_integral_value())


def currency_of(text: str) -> str | None:
    folded = fold(text)
    for token, code in _CURRENCY_WORDS.items():
        if token in ("€", "$", "£"):
            if token in text:
                return code
        elif re.search(rf"\b{token}\b", folded):
            return code
    return None


def parse_count(text: str | float | None, language: str = "fr") -> int | None:
    """Number of instalments from '3 fois', 'en trois fois', 'six payments', '3x', '12 mois'.

    A slot value: Rasa may hand over a number already, or nothing."""
    if text is None:
        return None
    if isinstance(text, int | float):
        return int(text) if text > 0 else None
    converted = words_to_digits(str(text), language)
    match = re.search(r"\d+", converted)
    if not match:
        return None
    value = int(match.group(0))
    return value if 0 < value <= 120 else None


# An amount with its currency, either side: "5 €", "5€/mois", "€5", "$50", "50 bucks", "5 eur".
_MONEY_AFTER = re.compile(
    rf"({_DIGITS.pattern})\s?(?:€|\$|£|euros?\b|eur\b|dollars?\b|bucks?\b|balles\b|usd\b|"
    r"pounds?\b|quid\b|livres?\b|gbp\b)"
)
_MONEY_BEFORE = re.compile(rf"(?:€|\$|£|\beur|\busd|\bgbp)\s?({_DIGITS.pattern})")
# "200 par mois", "200 a month", "150/mois": a figure without its currency, right before a
# period. Read as an amount per instalment only from 32 up: below, "15 par mois" may be a day of
# the month or a count, and stays ambiguous.
_BARE_PER_PERIOD = re.compile(
    rf"(?<![\d.,])({_DIGITS.pattern})\s?(?:(?:a|an|per|par|each|every|chaque|tous les|toutes les)"
    r"\s|/\s?)(?:month|mois|week|semaine|fortnight|quinzaine|2 weeks|2 semaines|15 jours)\b"
    rf"|(?<![\d.,])({_DIGITS.pattern})\s(?:monthly|weekly|mensuels?|hebdo(?:madaires?)?)\b"
)
_SMALLEST_BARE_AMOUNT_MINOR = 3200
# "en 3 fois", "3x", "six payments": the debtor gave a count, not an amount per instalment.
_EXPLICIT_COUNT = re.compile(
    r"\b\d+\s?(?:x\b|fois\b|times\b|payments?\b|paiements?\b|versements?\b|"
    r"mensualites?\b|echeances?\b|installments?\b|instalments?\b)"
)


def names_its_currency(text: str | None, language: str = "fr") -> bool:
    """The amount is written with its currency, in symbols, codes or words ("3 €", "$3", "200
    dollars", "50 balles", "a hundred quid"): what tells a sum of money from a bare "3", which
    may as well be a count, a day or an answer to another question."""
    if not text:
        return False
    converted = fold(words_to_digits(str(text), language))
    return bool(
        currency_of(str(text)) or _MONEY_AFTER.search(converted) or _MONEY_BEFORE.search(converted)
    )


# What a number in a promise may be besides an amount: a date or a delay ("le 15", "the 3rd of
# next month", "15/01", "in 10 days", "dans 2 semaines", "a 14h"), taken out before reading one.
_NOT_AN_AMOUNT = re.compile(
    r"\b\d{1,2}[/.-]\d{1,2}(?:[/.-]\d{2,4})?\b"
    r"|\b\d+\s?(?:jours?|days?|semaines?|weeks?|mois|months?|ans?|years?|h|heures?|hours?|"
    r"minutes?|min|am|pm|fois|x|times|payments?|paiements?|versements?)\b"
    r"|\b(?:le|the|on|du|au|avant le|by the|on the|before the)\s+\d{1,2}(?:st|nd|rd|th|er|eme|e)?\b"
    r"|\b\d{1,2}(?:st|nd|rd|th|er|eme)\b"
)


def amount_in_message(text: str | None, language: str = "fr") -> int | None:
    """The amount of a whole message, in minor units, when the NLU took a piece of it or none:
    "deux mille cinq cents euros" ('deux'), "150 balles vendredi", "100 quid", "ill pay 200 on
    friday" ('200' taken as a date), "deux cent cinquante fin du mois". An amount with its
    currency (words, slang or symbols) first; else the one figure left once dates and delays
    are taken out. None when there is none, or more than one such figure."""
    if not text:
        return None
    converted = fold(words_to_digits(str(text), language))
    match = _MONEY_AFTER.search(converted) or _MONEY_BEFORE.search(converted)
    if match:
        said = next(g for g in match.groups() if g is not None)
        return _to_minor(said.replace("\u202f", " ").replace("\u00a0", " ").strip()) or None
    left = _NOT_AN_AMOUNT.sub(" ", _anchored_pieces(converted))
    figures = _DIGITS.findall(left)
    if len(figures) != 1:
        return None
    return _to_minor(figures[0].replace("\u202f", " ").replace("\u00a0", " ").strip()) or None


def _anchored_pieces(folded: str) -> str:
    for pattern in (_DAY_NEXT_MONTH, _DAY_MONTH, _MONTH_DAY):
        folded = pattern.sub(" ", folded)
    return folded


@dataclass(frozen=True)
class InstallmentAmount:
    """What a debtor offers to pay each time ("5 euros par mois"), and how often if they said."""

    amount_minor: int
    frequency: str | None


def parse_installment_amount(text: str | None, language: str = "fr") -> InstallmentAmount | None:
    """'5 euros par mois', '5€/mois', 'cinq euros par mois', '50 bucks a month', '$50 monthly',
    '200 par mois', 'could I pay 200 a month'.

    An amount written with its currency counts; a bare figure only right before a period and
    from 32 up ('15 par mois' may be a day of the month or a count; 'en 3 fois par mois' is a
    count): a plan asked for as an amount per instalment. None otherwise, and when the text also
    gives an explicit number of instalments.
    """
    if not text:
        return None
    converted = fold(words_to_digits(str(text), language))
    if _EXPLICIT_COUNT.search(converted):
        return None
    match = _MONEY_AFTER.search(converted) or _MONEY_BEFORE.search(converted)
    smallest = 1
    if match is None:
        match = _BARE_PER_PERIOD.search(converted)
        smallest = _SMALLEST_BARE_AMOUNT_MINOR
    if match is None:
        return None
    said = next(g for g in match.groups() if g is not None)
    raw = said.replace("\u202f", " ").replace("\u00a0", " ").strip()
    amount = _to_minor(raw)
    if not amount or amount < smallest:
        return None
    return InstallmentAmount(amount, parse_frequency(converted))


def installments_for(total_minor: int, per_installment_minor: int, *, cap: int = 120) -> int:
    """How many instalments of at most that amount settle the balance: balance / amount, rounded
    up; at least 2 (a plan), at most `cap` (the bound `parse_count` applies to a spoken count;
    any policy allows far fewer, so the request still gets the counter-offer)."""
    count = -(-total_minor // max(per_installment_minor, 1))
    return min(max(count, 2), cap)


def parse_frequency(text: str | None) -> str | None:
    """monthly | biweekly | weekly, whatever the wording; None if nothing recognisable."""
    if not text:
        return None
    folded = fold(str(text))
    if folded in ("monthly", "biweekly", "weekly"):
        return folded
    for value, markers in _FREQUENCIES.items():
        if any(m in folded for m in markers):
            return value
    return None


# A plan named ("my plan", "mon échéancier", "the instalments")...
_PLAN_NOUN = re.compile(
    r"\b(?:plan|(?:payment )?schedule|instal+ments?|echeanciers?|echeances?|mensualites?)\b"
)
# ...with a change to it ("change", "modifier", "étaler sur 6 mois au lieu de 3", "reporter").
_PLAN_CHANGE = re.compile(
    r"\b(?:chang|modif|adjust|alter|extend|spread|reschedul|renegotiat|adapt|etal|rallong|"
    r"prolong|redui|baiss|decal|report|revoir|renegoci)\w*|\b(?:instead|au lieu)\b"
)


def asks_to_change_plan(text: str | None) -> bool:
    """The words ask to change a payment plan ("can I change my plan", "je voudrais modifier mon
    échéancier"): a plan named, and a change of it. French and English, accents folded."""
    folded = fold(text or "")
    return bool(_PLAN_NOUN.search(folded) and _PLAN_CHANGE.search(folded))


def parse_date(
    text: str | None, language: str = "fr", *, today: date, direction: Direction = "future"
) -> date | None:
    """A calendar date from relative or absolute wording, resolved against `today`.

    `direction` says which way an ambiguous date goes: a promise is in the future ('le 15' is the
    next 15th), a payment already made is in the past ('vendredi' is last Friday).
    """
    if not text:
        return None
    folded = fold(str(text))
    for pattern, replacement in _ABBREVIATIONS.items():
        folded = re.sub(pattern, replacement, folded)
    folded = re.sub(
        r"^(on|by|d'ici|avant|before|pour|for|au plus tard|until|jusqu'au)\s+", "", folded
    )
    folded = re.sub(r"^(le|the)\s+(?=\d)", "", folded)
    special = _special_dates(folded, today, direction)
    if special is None:  # a day in words: "le trois du mois prochain"
        special = _anchored_date(fold(words_to_digits(folded, language)), today, direction)
    if special is not None:
        return special
    numeric = re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})(?:[/.-](\d{2,4}))?", folded)
    if numeric:
        return _numeric_date(numeric, today, direction)
    words = words_to_digits(folded, language)
    bare_day = re.fullmatch(
        r"(?:le\s+|the\s+)?(\d{1,2})(?:st|nd|rd|th|er|eme|e)?(?:\s+du mois)?", words
    )
    if bare_day:
        return _next_day_of_month(int(bare_day.group(1)), today, direction)
    weekday = _weekday(folded, today, direction)
    if weekday is not None:
        return weekday
    settings = {
        "PREFER_DATES_FROM": direction,
        "RELATIVE_BASE": datetime(today.year, today.month, today.day),
        "DATE_ORDER": "DMY",
    }
    parsed = dateparser.parse(words, languages=["fr", "en"], settings=settings)
    return parsed.date() if parsed else None


_MONTHS = {
    "janvier": 1,
    "fevrier": 2,
    "mars": 3,
    "avril": 4,
    "mai": 5,
    "juin": 6,
    "juillet": 7,
    "aout": 8,
    "septembre": 9,
    "octobre": 10,
    "novembre": 11,
    "decembre": 12,
    "january": 1,
    "february": 2,
    "march": 3,
    "april": 4,
    "may": 5,
    "june": 6,
    "july": 7,
    "august": 8,
    "september": 9,
    "october": 10,
    "november": 11,
    "december": 12,
    "janv": 1,
    "jan": 1,
    "feb": 2,
    "fev": 2,
    "apr": 4,
    "avr": 4,
    "jun": 6,
    "jul": 7,
    "juil": 7,
    "aug": 8,
    "sept": 9,
    "sep": 9,
    "oct": 10,
    "nov": 11,
    "dec": 12,
}
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DAY = r"(?<![\d.,])\b(\d{1,2})(?:st|nd|rd|th|er|eme|e)?"
# "the 15th of january", "le 15 janvier 2027", "15 jan"; "january 15th", "jan the 3rd".
_DAY_MONTH = re.compile(rf"{_DAY}\s+(?:of\s+|de\s+)?({_MONTH})\b\.?(?:\s+(\d{{4}})\b)?")
_MONTH_DAY = re.compile(rf"\b({_MONTH})\.?\s+(?:the\s+)?{_DAY}\b(?:,?\s+(\d{{4}})\b)?")
# "the 3rd of next month", "le 3 du mois prochain".
_DAY_NEXT_MONTH = re.compile(
    rf"{_DAY}\s+(?:of\s+|du\s+|de\s+)?(?:the\s+)?"
    r"(?:next month|following month|mois prochain|mois suivant)\b"
)
_END_OF_NEXT_MONTH = r"fin du mois (prochain|suivant)|end of (the )?next month"
_START_OF_NEXT_MONTH = r"debut du mois prochain|start of next month|beginning of next month"
_END_OF_MONTH = r"fin (du|de ce|de) mois|end of (the )?month|month end"


def _first_of_next_month(today: date) -> date:
    return (today.replace(day=1) + timedelta(days=32)).replace(day=1)


def _special_dates(folded: str, today: date, direction: Direction) -> date | None:
    anchored = _anchored_date(folded, today, direction)
    if anchored is not None:
        return anchored
    if re.search(r"(aujourd'hui|today|maintenant|now|tout de suite|right now)", folded):
        return today
    return None


def _anchored_date(folded: str, today: date, direction: Direction) -> date | None:
    """A date said whole somewhere in the text: a day with its month named ("le 15 janvier",
    "the 15th of january"), a day of next month, the end of (next) month. Searched for anywhere:
    "100 bucks the 3rd of next month", "and the rest on the 15th of january"."""
    # Before "fin du mois": "fin du mois prochain" was read as the end of this month.
    if re.search(_END_OF_NEXT_MONTH, folded):
        first_next = _first_of_next_month(today)
        return first_next.replace(day=calendar.monthrange(first_next.year, first_next.month)[1])
    if re.search(_START_OF_NEXT_MONTH, folded):
        return _first_of_next_month(today)
    if re.search(_END_OF_MONTH, folded):
        return today.replace(day=calendar.monthrange(today.year, today.month)[1])
    next_month = _DAY_NEXT_MONTH.search(folded)
    if next_month:
        first_next = _first_of_next_month(today)
        day = int(next_month.group(1))
        if not 1 <= day <= calendar.monthrange(first_next.year, first_next.month)[1]:
            return None
        return first_next.replace(day=day)
    day_month = _DAY_MONTH.search(folded)
    if day_month:
        day_said, month_said = day_month.group(1), day_month.group(2)
        return _day_of_month_named(
            int(day_said), _MONTHS[month_said], day_month.group(3), today, direction
        )
    month_day = _MONTH_DAY.search(folded)
    if month_day:
        month_said, day_said = month_day.group(1), month_day.group(2)
        return _day_of_month_named(
            int(day_said), _MONTHS[month_said], month_day.group(3), today, direction
        )
    return None


def _day_of_month_named(
    day: int, month: int, year: str | None, today: date, direction: Direction
) -> date | None:
    try:
        candidate = date(int(year) if year else today.year, month, day)
    except ValueError:
        return None
    if year is None:
        if direction == "future" and candidate < today:
            candidate = candidate.replace(year=candidate.year + 1)
        elif direction == "past" and candidate > today:
            candidate = candidate.replace(year=candidate.year - 1)
    return candidate


def anchored_date(
    text: str | None, language: str = "fr", *, today: date, direction: Direction = "future"
) -> date | None:
    """The date of `text` when it says one whole, anywhere in it (see `_anchored_date`); None
    when it says none or only a part ("the 3rd of", "on the 15th", "next month")."""
    if not text:
        return None
    return _anchored_date(fold(words_to_digits(fold(str(text)), language)), today, direction)


def _weekday(folded: str, today: date, direction: Direction) -> date | None:
    tokens = re.findall(r"[a-z]+", folded)
    days = [_WEEKDAYS[t] for t in tokens if t in _WEEKDAYS]
    if len(days) != 1:
        return None
    target = days[0]
    past = direction == "past" or any(t in ("dernier", "derniere", "last", "passe") for t in tokens)
    if past:
        delta = (today.weekday() - target) % 7 or 7
        return today - timedelta(days=delta)
    delta = (target - today.weekday()) % 7 or 7
    return today + timedelta(days=delta)


def _next_day_of_month(day: int, today: date, direction: Direction) -> date | None:
    if not 1 <= day <= 31:
        return None
    year, month = today.year, today.month
    for _ in range(3):
        if day <= calendar.monthrange(year, month)[1]:
            candidate = date(year, month, day)
            if direction == "future" and candidate >= today:
                return candidate
            if direction == "past" and candidate <= today:
                return candidate
        if direction == "future":
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        else:
            year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return None


def _numeric_date(match: re.Match[str], today: date, direction: Direction) -> date | None:
    day, month = int(match.group(1)), int(match.group(2))
    year = int(match.group(3)) if match.group(3) else today.year
    if year < 100:
        year += 2000
    try:
        candidate = date(year, month, day)
    except ValueError:
        return None
    if match.group(3) is None:
        if direction == "future" and candidate < today:
            candidate = candidate.replace(year=year + 1)
        elif direction == "past" and candidate > today:
            candidate = candidate.replace(year=year - 1)
    return candidate


def digits_only(text: str, language: str = "fr") -> str:
    """'sept cinq zéro un un' -> '75011', 'C-104 233' -> 'C104233': for identity answers."""
    converted = words_to_digits(text, language)
    return re.sub(r"[^0-9A-Za-z]", "", converted).upper()
