"""Split long texts into Twilio-sized messages at natural boundaries.

Twilio concatenates SMS segments itself up to 1,600 characters per message, so only longer texts
are split: at paragraph breaks first, then sentence ends, then spaces; never inside a word or URL
unless a single token is longer than the limit.
"""

from __future__ import annotations

import re

TWILIO_MAX_BODY = 1600
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


def split_text(text: str, limit: int = TWILIO_MAX_BODY) -> list[str]:
    text = text.strip()
    if len(text) <= limit:
        return [text] if text else []
    parts: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        parts.extend(_split_paragraph(paragraph.strip(), limit))
    return _pack([p for p in parts if p], limit, "\n\n")


def _split_paragraph(paragraph: str, limit: int) -> list[str]:
    if len(paragraph) <= limit:
        return [paragraph]
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(paragraph):
        if len(sentence) <= limit:
            pieces.append(sentence)
        else:
            pieces.extend(_pack(_words(sentence, limit), limit, " "))
    return _pack(pieces, limit, " ")


def _words(sentence: str, limit: int) -> list[str]:
    words: list[str] = []
    for word in sentence.split():
        while len(word) > limit:  # a token longer than a whole message: cut it, nothing else works
            words.append(word[:limit])
            word = word[limit:]
        words.append(word)
    return words


def _pack(pieces: list[str], limit: int, joiner: str) -> list[str]:
    """Greedily join consecutive pieces while they fit."""
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current}{joiner}{piece}" if current else piece
        if len(candidate) <= limit:
            current = candidate
        else:
            if current:
                chunks.append(current)
            current = piece
    if current:
        chunks.append(current)
    return chunks
