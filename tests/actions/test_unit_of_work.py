"""An action's unit of work is never opened inside another one.

On SQLite the inner one waits for the write lock its own thread holds until the busy timeout:
the assistant answered "briefly unavailable" to "by bank transfer" after a payment report
(actions/payment_details.py read today's date through tracker_today inside its session). Tests
share one connection and never see that wait, so the nesting itself must fail.
"""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from actions._common import unit_of_work


def test_a_nested_unit_of_work_is_refused(db: Session) -> None:
    with (
        unit_of_work(),
        pytest.raises(RuntimeError, match="inside another one"),
        unit_of_work(),
    ):
        pass
    with unit_of_work():  # the refusal left nothing open: the next action runs as usual
        pass
