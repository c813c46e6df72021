from __future__ import annotations

from twilio_edge.splitting import split_text


def test_short_text_is_one_message() -> None:
    assert split_text("  Bonjour  ") == ["Bonjour"]
    assert split_text("   ") == []


def test_paragraphs_are_kept_together_when_they_fit() -> None:
    first, second = "A" * 900, "B" * 900
    assert split_text(f"{first}\n\n{second}") == [first, second]


def test_sentences_then_words_then_hard_cuts() -> None:
    sentences = "Une phrase assez courte. " * 100
    chunks = split_text(sentences, limit=120)
    assert all(len(c) <= 120 and c.endswith(".") for c in chunks)
    assert " ".join(chunks) == sentences.strip()

    words = "mot " * 100
    chunks = split_text(words, limit=50)
    assert all(len(c) <= 50 for c in chunks) and " ".join(chunks) == words.strip()

    url = "https://example.com/" + "x" * 130
    chunks = split_text(url, limit=50)
    assert all(len(c) <= 50 for c in chunks) and "".join(chunks) == url
