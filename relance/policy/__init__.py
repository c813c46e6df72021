"""Dunning policy: stages per segment and risk class, plan limits, contact pressure, letters."""

from relance.policy.service import PlanLimits, active_policy, plan_limits_for

__all__ = ["PlanLimits", "active_policy", "plan_limits_for"]
