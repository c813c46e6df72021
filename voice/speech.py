"""Make the bot's written replies fit for speech: no URLs read aloud, no markup.

A URL spoken by a text-to-speech voice is useless and sounds broken; the caller gets the link by
SMS instead, so we return the URLs alongside the cleaned text.
"""

from __future__ import annotations

import re

_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"]+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}»\"'"


def for_speech(text: str) -> tuple[str, list[str]]:
    urls = [m.group(0).rstrip(_TRAILING) for m in _URL.finditer(text)]
    # Drop the URL but keep the punctuation that followed it (the end of the sentence).
    spoken = _URL.sub(lambda m: " " + m.group(0)[len(m.group(0).rstrip(_TRAILING)) :], text)
    spoken = re.sub(r"\(\s*\)|\[\s*\]", " ", spoken)  # brackets that only held the URL
    spoken = re.sub(r"[*_`#>|]+", " ", spoken)  # markdown emphasis, headings, quotes
    spoken = re.sub(r"\s+", " ", spoken)
    spoken = re.sub(r"\s+([.,;!?])", r"\1", spoken)  # "lien : ." -> "lien :."
    spoken = re.sub(r"\s*:\s*([.!?]|$)", r"\1", spoken)  # a colon that introduced the URL
    spoken = re.sub(r"([.!?])[.,;]+", r"\1", spoken)
    return spoken.strip(), urls
