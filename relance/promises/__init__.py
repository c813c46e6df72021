"""Promises (conversation outcomes handled by the assistant's actions)."""
