"""Right of access / portability: one ZIP with everything held about one debtor.

`export.json` is the machine-readable whole (every row of every table that refers to the debtor,
found from the schema by `repository.debtor_rows`); beside it, one CSV per table, the
conversation as a plain-text transcript and the letters' PDFs, for a person to read. Like the
evidence pack, a manifest gives each file's SHA-256, and the export itself is audited.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from relance import audit
from relance.archive import zip_with_manifest
from relance.csv_export import csv_bytes
from relance.db.base import utcnow
from relance.db.models import Debtor
from relance.privacy import repository
from relance.settings import get_settings

FORMAT = "relance-debtor-export/1"


def _csv(rows: list[dict[str, Any]]) -> bytes:
    columns = list(rows[0])
    return csv_bytes(
        columns,
        (
            [
                json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else v
                for v in (row.get(c) for c in columns)
            ]
            for row in rows
        ),
    )


def _transcript(rows: list[dict[str, Any]]) -> bytes:
    lines = []
    for m in rows:
        when = str(m["created_at"])[:19].replace("T", " ")
        lines.append(
            f"{when} UTC | {m['channel']} | {m['direction']} | {m['author']} | "
            f"{m['status']}\n{m['body']}\n"
        )
    return "\n".join(lines).encode("utf-8")


def export_data(session: Session, debtor: Debtor, *, actor: str) -> dict[str, Any]:
    """The machine-readable document (also the body of the API's JSON answer)."""
    settings = get_settings()
    return {
        "format": FORMAT,
        "generated_at": utcnow().isoformat(),
        "generated_by": actor,
        "controller": {"name": settings.creditor_name, "address": settings.creditor_address},
        "debtor_id": debtor.id,
        "customer_number": debtor.customer_number,
        "tables": repository.debtor_rows(session, debtor.id),
    }


def build_export(session: Session, debtor: Debtor, *, actor: str) -> bytes:
    """The ZIP as bytes; an audit event records who produced it and its digest (the caller
    commits)."""
    document = export_data(session, debtor, actor=actor)
    tables: dict[str, list[dict[str, Any]]] = document["tables"]
    files: dict[str, bytes] = {
        "export.json": json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8"),
    }
    for name, rows in tables.items():
        if rows:
            files[f"tables/{name}.csv"] = _csv(rows)
    if tables.get("messages"):
        files["conversation.txt"] = _transcript(tables["messages"])
    for letter in tables.get("letters", []):
        path = Path(letter["pdf_path"]) if letter.get("pdf_path") else None
        if path is not None and path.is_file():
            files[f"letters/{path.name}"] = path.read_bytes()
    manifest = {
        "format": FORMAT,
        "customer_number": debtor.customer_number,
        "generated_at": document["generated_at"],
        "counts": {name: len(rows) for name, rows in tables.items()},
    }
    pack = zip_with_manifest(files, manifest)
    record_export(
        session,
        debtor,
        actor=actor,
        sha256=hashlib.sha256(pack).hexdigest(),
        counts=manifest["counts"],
        form="zip",
    )
    return pack


def record_export(
    session: Session,
    debtor: Debtor,
    *,
    actor: str,
    sha256: str,
    counts: dict[str, int],
    form: str,
) -> None:
    audit.record(
        session,
        actor=actor,
        action="privacy.exported",
        entity=debtor,
        debtor_id=debtor.id,
        sha256=sha256,
        form=form,
        rows=sum(counts.values()),
    )
