"""Channel-order experiments: the planner tries a stage's channels in the debtor's arm's order.

Each arm names channels in order (SMS then e-mail, or e-mail then SMS), refused when the
experiment is defined if a channel is unknown or the stage (or, for the whole sequence, every
message stage) does not send by it (`service.policy_problems`). When a planning run has written
its contacts, the groups whose lead message stage an experiment covers get their candidate
channels reordered: the arm's channels the stage may use first, in the arm's order, then the
others in the policy's order; the debtor's own preferred channel (portal) still comes first.
Only channels the planner found usable are ever listed, and the dispatcher checks each one at
the send (windows, caps, opt-outs, holidays), falling back to the next as for every contact.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from relance.dunning.planner import preferred_first
from relance.experiments.planned import covered_groups
from relance.experiments.service import CHANNEL_ORDER
from relance.policy.schema import Policy


def in_arm_order(usable: list[str], order: tuple[str, ...]) -> list[str]:
    """`usable` with the arm's channels first, in the arm's order; nothing added or dropped."""
    return [c for c in order if c in usable] + [c for c in usable if c not in order]


def order_channels(session: Session, run_id: int, *, policy: Policy) -> int:
    """Reorder this run's new contacts covered by a channel-order experiment. Returns the groups
    whose arm was applied."""
    ordered = 0
    for experiment, group in covered_groups(session, run_id, policy=policy, factor=CHANNEL_ORDER):
        order = experiment.channel_orders[group.arm]
        if order is None:
            continue
        channels = preferred_first(
            in_arm_order(list(group.actions[0].channels), order), group.preferred_channel
        )
        for action in group.actions:
            action.channels = channels
            action.channel = channels[0] if channels else None
        ordered += 1
    return ordered
