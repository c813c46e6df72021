"""The demo's first policy sends pre-due reminders by e-mail first (the simulator's mailbox then
has something to read); a policy an admin stored is never replaced."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db.models import VersionedDocument
from relance.policy.service import active_policy, save_version, seed_document
from relance.runtime.launcher import _demo_policy


def test_fresh_demo_policy_puts_email_first_before_the_due_date(db: Session) -> None:
    _demo_policy(db)
    policy = active_policy(db)
    for track in policy.tracks:
        stages = {stage.key: stage for stage in track.stages}
        assert stages["pre_due"].channels[0] == "email"
        assert "email" not in stages["friendly"].channels  # later stages as seeded
    _demo_policy(db)  # a second start adds no version
    assert len(db.scalars(select(VersionedDocument)).all()) == 1


def test_an_admins_policy_is_kept(db: Session) -> None:
    """(Run after the test above, this also shows the cached seed was not edited in place.)"""
    save_version(db, seed_document(), actor="user:admin@example.test")
    _demo_policy(db)
    assert len(db.scalars(select(VersionedDocument)).all()) == 1
    for track in active_policy(db).tracks:
        assert "email" not in track.stages[0].channels
