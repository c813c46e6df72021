"""Several processes writing one SQLite file at once queue; none gets "database is locked".

The default set-up runs the api, the action server and the worker as separate processes on one
SQLite file. What keeps them from failing each other: WAL (readers never block the writer),
a busy timeout (a writer waits for the lock instead of failing at once) and BEGIN IMMEDIATE (a
transaction that reads then writes takes the write lock up front: upgrading a read snapshot to
a write fails at once in WAL mode, busy timeout or not).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from relance.db.session import make_engine

PROCESSES = 4
TRANSACTIONS = 25

# Each transaction reads the counter, then writes it: the pattern that fails without BEGIN
# IMMEDIATE, and that loses updates if two transactions interleave.
WRITER = """
import sys
from sqlalchemy import text
from relance.db.session import make_engine
engine = make_engine(sys.argv[1])
for _ in range(int(sys.argv[2])):
    with engine.begin() as connection:
        value = connection.scalar(text("SELECT value FROM counter"))
        connection.execute(text("UPDATE counter SET value = :v"), {"v": value + 1})
print("done")
"""


def test_concurrent_writer_processes_never_see_database_is_locked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'relance.db'}"
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE counter (value INTEGER NOT NULL)"))
        connection.execute(text("INSERT INTO counter VALUES (0)"))
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url, str(TRANSACTIONS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    results = [writer.communicate(timeout=300) for writer in writers]
    assert all("database is locked" not in err for _out, err in results), results
    assert [writer.returncode for writer in writers] == [0] * PROCESSES, results
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT value FROM counter")) == PROCESSES * TRANSACTIONS
    engine.dispose()
