"""ZIP files that carry their own SHA-256 manifest (evidence packs, personal-data exports).

A recipient (a collection agency, a court, the debtor) can check that no file was altered or
dropped since the pack was built.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from typing import Any


def zip_with_manifest(files: dict[str, bytes], manifest: dict[str, Any]) -> bytes:
    """`files` plus `manifest.json` (`manifest` with a SHA-256 per file added under "files")."""
    manifest = {
        **manifest,
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }
    contents = {
        **files,
        "manifest.json": json.dumps(manifest, ensure_ascii=False, indent=2).encode("utf-8"),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
    return buffer.getvalue()
