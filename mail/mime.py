"""The reminder's MIME bytes written directly with the stdlib codecs, not the `email` package.

`EmailMessage` with the default policy parses every header it is given into a tree and folds it
back on output: ~2 ms per reminder, more than the SMTP exchange it precedes (issue 19). The
e-mails the dunning engine sends always have the same shape, so they are written here as bytes:
quoted-printable text and HTML (`binascii.b2a_qp`), base64 attachments, RFC 2047 encoded-words
for a non-ASCII subject or sender name, folded at 78 columns. The `email` package parses the
result back to the same headers and parts as `compose.build` makes (tests/mail/test_mime.py);
what this writer does not handle (a non-ASCII address or file name) is left to `compose.build`.

What differs on the wire, not in what a reader gets: the boundaries, where long headers fold,
and `List-Unsubscribe`, which stays the `<https://…>, <mailto:…>` list RFC 2369 asks for (the
package wrote it as encoded-words, which some clients do not decode).
"""

from __future__ import annotations

import base64
import binascii
import random
import sys
from collections.abc import Iterable

CRLF = b"\r\n"
MAX_LINE = 78
# An encoded-word is at most 75 characters (RFC 2047 §2): "=?utf-8?b?" + base64 + "?=".
_WORD_PREFIX, _WORD_SUFFIX = "=?utf-8?b?", "?="
_WORD_ROOM = 75 - len(_WORD_PREFIX) - len(_WORD_SUFFIX)
_WORD_BYTES = _WORD_ROOM // 4 * 3  # the UTF-8 bytes whose base64 fits in a word


def is_ascii(*values: str | None) -> bool:
    """True when every value is plain ASCII (what this writer can put in a header as is)."""
    return all(v is None or v.isascii() for v in values)


def boundary() -> str:
    """A part boundary of the `email` package's shape; it cannot occur in QP or base64 text."""
    return f"==============={random.randrange(sys.maxsize):019d}=="


def header(name: str, value: str) -> bytes:
    """`Name: value`, folded at whitespace to 78 columns; encoded-words if not plain ASCII
    (or if it looks like one, which a reader would otherwise decode)."""
    if not value.isascii() or "=?" in value or "\r" in value or "\n" in value:
        return _encoded(name, value)
    return _fold(name, value)


def _fold(name: str, value: str) -> bytes:
    """Break before a space so that no line passes 78 columns where a space allows it (never
    right after the name: a reader would keep that space in the value); a reader unfolds
    CRLF + space back to the space."""
    line = f"{name}: {value}"
    if len(line) <= MAX_LINE:
        return line.encode("ascii") + CRLF
    words = value.split(" ")
    out: list[str] = []
    current = f"{name}: {words[0]}"
    for word in words[1:]:
        if len(current) + 1 + len(word) > MAX_LINE:
            out.append(current)
            current = " " + word
        else:
            current = f"{current} {word}"
    out.append(current)
    return "\r\n".join(out).encode("ascii") + CRLF


def _encoded(name: str, value: str) -> bytes:
    """The value as base64 encoded-words on successive lines (whitespace between two
    encoded-words is dropped by the reader, so the text comes back exact); a word never
    splits a character's UTF-8 bytes."""
    words: list[str] = []
    chunk: list[str] = []
    size = 0
    for char in value:
        width = len(char.encode("utf-8"))
        if size + width > _WORD_BYTES and chunk:
            words.append(_word("".join(chunk)))
            chunk, size = [], 0
        chunk.append(char)
        size += width
    if chunk:
        words.append(_word("".join(chunk)))
    return f"{name}: ".encode("ascii") + "\r\n ".join(words).encode("ascii") + CRLF


def _word(text: str) -> str:
    return _WORD_PREFIX + base64.b64encode(text.encode("utf-8")).decode("ascii") + _WORD_SUFFIX


def address(display_name: str, addr_spec: str) -> str:
    """`Name <addr>`; the name quoted when it holds specials, encoded if not ASCII."""
    if not display_name:
        return addr_spec
    if not display_name.isascii():
        return f"{_word(display_name)} <{addr_spec}>"
    if any(c in display_name for c in '()<>[]:;@\\,."'):
        quoted = display_name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{quoted}" <{addr_spec}>'
    return f"{display_name} <{addr_spec}>"


def text_part(content: str, subtype: str, *, mime_version: bool = False) -> bytes:
    """A UTF-8 text part with CRLF line ends, in the transfer encoding the `email` package
    picks for it (`contentmanager._encode_text` under the SMTP policy): as is when every line
    fits in 78 columns (7bit, or 8bit if not ASCII), else quoted-printable, or base64 when that
    is shorter (text mostly outside Latin script)."""
    lines = content.encode("utf-8").splitlines()
    if max((len(line) for line in lines), default=0) <= MAX_LINE:
        cte = "7bit" if content.isascii() else "8bit"
        payload = CRLF.join(lines) + CRLF
    else:
        sniff = b"\n".join(lines[:10]) + b"\n"
        qp_length = len(binascii.b2a_qp(sniff, istext=True)) + min(len(lines), 10)
        if qp_length > len(binascii.b2a_base64(sniff)):
            cte = "base64"
            payload = base64.encodebytes(CRLF.join(lines) + CRLF).replace(b"\n", CRLF)
        else:
            cte = "quoted-printable"
            encoded = binascii.b2a_qp(b"\n".join(lines) + b"\n", istext=True)
            payload = encoded.replace(b"\n", CRLF)
    head = f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: {cte}\r\n'
    if mime_version:
        head += "MIME-Version: 1.0\r\n"
    return head.encode("ascii") + CRLF + payload


def attachment_part(filename: str, data: bytes, content_type: str) -> bytes:
    """A base64 attachment (76-column lines), named in Content-Disposition."""
    head = (
        f"Content-Type: {content_type}\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        f'Content-Disposition: attachment; filename="{filename}"\r\n'
        "MIME-Version: 1.0\r\n"
    )
    return head.encode("ascii") + CRLF + base64.encodebytes(data).replace(b"\n", CRLF)


def multipart(subtype: str, parts: Iterable[bytes]) -> tuple[bytes, bytes]:
    """(Content-Type header, body) of a multipart of these parts, each followed by a blank
    line before the next boundary, as the `email` package writes them."""
    mark = boundary()
    content_type = f'Content-Type: multipart/{subtype}; boundary="{mark}"'
    if len(content_type) > MAX_LINE:
        content_type = f'Content-Type: multipart/{subtype};\r\n boundary="{mark}"'
    opening = b"--" + mark.encode("ascii") + CRLF
    body = b"".join(opening + part + CRLF for part in parts)
    body += b"--" + mark.encode("ascii") + b"--" + CRLF
    return content_type.encode("ascii") + CRLF, body
