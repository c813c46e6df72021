"""The processes `relance run` starts listen on loopback unless told otherwise."""

from __future__ import annotations

from relance.runtime.stack import Ports, stack_env


def _ports() -> Ports:
    return Ports(api=8000, rasa=5005, actions=5055, twilio_sandbox=8099)


def test_action_server_binds_loopback_by_default() -> None:
    # rasa-sdk's endpoint has no authentication; it listens on 0.0.0.0 unless SANIC_HOST says.
    assert stack_env({}, _ports())["SANIC_HOST"] == "127.0.0.1"


def test_an_explicit_bind_address_is_kept() -> None:
    assert stack_env({"SANIC_HOST": "0.0.0.0"}, _ports())["SANIC_HOST"] == "0.0.0.0"
