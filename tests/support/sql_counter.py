"""Count what a piece of code asks of the database: queries, and commits that wrote something.

A commit that wrote is what costs on a real database (SQLite in WAL mode with synchronous=FULL,
PostgreSQL with synchronous_commit=on: one fsync each); a commit of a transaction that only read
writes nothing to the log. The dispatcher's cost tests and the e-mail benchmark pin and report
these per message.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, event

QUERY_VERBS = ("SELECT", "INSERT", "UPDATE", "DELETE")
WRITE_VERBS = ("INSERT", "UPDATE", "DELETE")


@dataclass
class SqlCount:
    queries: int = 0
    commits: int = 0
    writing_commits: int = 0
    by_statement: Counter[str] = field(default_factory=Counter)
    _wrote: set[int] = field(default_factory=set)

    def per(self, n: int) -> dict[str, float]:
        """Queries, commits and writing commits per unit of work (per message sent)."""
        return {
            "queries": self.queries / n,
            "commits": self.commits / n,
            "writing_commits": self.writing_commits / n,
        }


@contextmanager
def counting(engine: Engine) -> Iterator[SqlCount]:
    """Count on every connection of `engine` while the block runs."""
    count = SqlCount()

    def before(conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        verb = statement.lstrip().split(None, 1)[0].upper()
        if verb not in QUERY_VERBS:
            return
        count.queries += 1
        count.by_statement[" ".join(statement.split())[:100]] += 1
        if verb in WRITE_VERBS:
            count._wrote.add(id(conn))

    def committed(conn: Connection) -> None:
        count.commits += 1
        if id(conn) in count._wrote:
            count.writing_commits += 1
            count._wrote.discard(id(conn))

    def rolled_back(conn: Connection) -> None:
        count._wrote.discard(id(conn))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "commit", committed)
    event.listen(engine, "rollback", rolled_back)
    try:
        yield count
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "commit", committed)
        event.remove(engine, "rollback", rolled_back)
