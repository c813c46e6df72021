from __future__ import annotations

from datetime import UTC, datetime

import pytest

from voice.hours import parse_hours
from voice.speech import for_speech
from voice.twiml import gather, say_and_hang_up


def test_urls_are_not_read_aloud_and_are_returned_for_sms() -> None:
    spoken, urls = for_speech("Voici votre lien : https://pay.example/p/abc123. Il expire demain.")
    assert spoken == "Voici votre lien. Il expire demain."
    assert urls == ["https://pay.example/p/abc123"]
    assert for_speech("Payez ici (www.example.com/pay) merci") == (
        "Payez ici merci",
        ["www.example.com/pay"],
    )
    assert for_speech("**Montant** : 120,00 €") == ("Montant : 120,00 €", [])


def test_language_sets_voice_and_recognition_together() -> None:
    fr = gather(["Bonjour"], "fr", "http://x/g")
    en = say_and_hang_up(["Hello"], "en")
    assert 'language="fr-FR"' in fr and 'voice="Polly.Lea"' in fr
    assert 'voice="Polly.Joanna"' in en and 'language="en-US"' in en and "<Hangup />" in en


def test_opening_hours_weekdays_and_holidays() -> None:
    hours = parse_hours("mon-fri 09:00-18:00", "Europe/Paris")
    assert hours.is_open(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))  # Monday 09:00 Paris
    assert not hours.is_open(datetime(2026, 11, 23, 7, 59, tzinfo=UTC))
    assert not hours.is_open(datetime(2026, 11, 23, 17, 0, tzinfo=UTC))  # 18:00 Paris: closed
    assert not hours.is_open(datetime(2026, 11, 28, 10, 0, tzinfo=UTC))  # Saturday
    assert not hours.is_open(datetime(2026, 12, 25, 10, 0, tzinfo=UTC))  # Christmas
    # Thursday 24 Dec 19:00 → Christmas Friday closed → weekend → Monday 28 Dec 09:00 Paris.
    assert hours.next_opening(datetime(2026, 12, 24, 18, 0, tzinfo=UTC)) == datetime(
        2026, 12, 28, 8, 0, tzinfo=UTC
    )
    custom = parse_hours("mon,wed 10:00-12:30", "Europe/Paris")
    assert custom.days == frozenset({0, 2})


@pytest.mark.parametrize("spec", ["", "weekdays 9-18", "mon-fri 18:00-09:00", "xyz 09:00-10:00"])
def test_bad_opening_hours_are_rejected(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_hours(spec, "Europe/Paris")
