"""Turn what was handed over (files, folders, zip archives) into named documents, within limits.

A zip archive is opened without trusting its headers: each member is read through a bounded read
(a forged header can understate the size), and the archive is refused as a whole when it has too
many members, expands past the total limit, or one member compresses suspiciously well (a zip
bomb: a few kilobytes that inflate to gigabytes). Nested archives are not opened.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

MAX_FILE_BYTES = 10 * 1024 * 1024  # one invoice (a Factur-X PDF with images stays below)
MAX_MEMBERS = 2000
MAX_TOTAL_BYTES = 200 * 1024 * 1024
MAX_RATIO = 100  # XML compresses 10-30x; 100x and more is a bomb, not an invoice
SUFFIXES = (".xml", ".pdf", ".zip")


@dataclass(frozen=True)
class Source:
    """One document to import (`data`), or a file refused before reading (`problem`)."""

    name: str
    data: bytes = b""
    problem: str = ""


def kind(data: bytes) -> str:
    if data.startswith(b"%PDF"):
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        return "zip"
    if data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        return "xml"
    return "unknown"


def expand(name: str, data: bytes) -> Iterator[Source]:
    """The documents in one upload: itself, or the members of a zip archive."""
    if kind(data) != "zip":
        yield Source(name, data)
        return
    try:
        archive = zipfile.ZipFile(BytesIO(data))
        members = [m for m in archive.infolist() if not m.is_dir()]
    except (zipfile.BadZipFile, ValueError) as exc:
        yield Source(name, problem=f"not a readable zip archive: {exc}")
        return
    if len(members) > MAX_MEMBERS:
        yield Source(name, problem=f"the archive holds more than {MAX_MEMBERS} files")
        return
    total = 0
    found: list[Source] = []
    for member in members:
        label = f"{name}/{member.filename}"
        if member.flag_bits & 0x1:
            found.append(Source(label, problem="encrypted archive member"))
            continue
        try:
            with archive.open(member) as handle:
                content = handle.read(MAX_FILE_BYTES + 1)
        except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError) as exc:
            found.append(Source(label, problem=f"unreadable archive member: {exc}"))
            continue
        total += len(content)
        ratio = len(content) / max(member.compress_size, 1)
        if len(content) > MAX_FILE_BYTES or ratio > MAX_RATIO or total > MAX_TOTAL_BYTES:
            yield Source(
                name,
                problem=(
                    "refused as a zip bomb: a member expands past "
                    f"{MAX_FILE_BYTES // (1024 * 1024)} MB or {MAX_RATIO} times its compressed "
                    f"size, or the archive past {MAX_TOTAL_BYTES // (1024 * 1024)} MB"
                ),
            )
            return
        if kind(content) == "zip":
            found.append(Source(label, problem="archives inside archives are not opened"))
            continue
        found.append(Source(label, content))
    yield from found


def from_paths(paths: list[Path]) -> Iterator[Source]:
    """Files as given, folders walked (sorted, files with an e-invoice suffix only)."""
    for path in paths:
        files = (
            sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
            if path.is_dir()
            else [path]
        )
        for file in files:
            size = file.stat().st_size
            if size > MAX_FILE_BYTES * 20:
                yield Source(str(file), problem="file too large")
                continue
            yield from expand(str(file), file.read_bytes())
