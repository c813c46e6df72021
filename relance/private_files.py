"""Files holding personal data (letter PDFs, evidence packs, personal-data exports) are written
readable by their owner only.

`Path.write_bytes` creates files with the process umask, usually 0644: any local account could
read a debtor's name, address and debts. Here the file is created 0600 from the first byte (no
window in which it is world-readable) and an existing file is narrowed too; its folder, when
created here, is 0700.
"""

from __future__ import annotations

import os
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(folder: Path) -> Path:
    """Create `folder` (and parents) owner-only if missing; an existing folder is left as is."""
    folder.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    return folder


def write_private(path: Path, data: bytes) -> Path:
    """Write `data` to `path` with mode 0600, replacing any previous content."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # the file may have existed with a wider mode
        with os.fdopen(fd, "wb") as handle:
            fd = -1
            handle.write(data)
    finally:
        if fd != -1:
            os.close(fd)
    return path


def sent_mail_dir(var_dir: Path) -> Path:
    """Where the exact bytes of every e-mail sent are kept (`<sha256>.eml`): written by the mail
    gateway, read back into the evidence pack."""
    return var_dir / "mail" / "sent"


def einvoice_dir(var_dir: Path) -> Path:
    """Where the e-invoice import keeps each original document (`<sha256>.pdf|.xml`): the only
    folder the portal serves an invoice document from."""
    return var_dir / "einvoices"
