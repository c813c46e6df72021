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


def test_the_local_mailbox_runs_only_for_the_default_local_smtp(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from relance.runtime.doctor import DEFAULT_PORTS
    from relance.runtime.launcher import local_mailbox
    from relance.settings import Settings

    moved = Ports.offset(10)
    assert moved.smtp_sink == 8035 and moved.all()["smtp-sink"] == 8035
    assert Ports().all() == DEFAULT_PORTS  # the doctor checks the ports the stack uses
    local = Settings(var_dir=tmp_path, smtp_host="localhost")
    assert local_mailbox(local, moved) == tmp_path / "mailbox"
    relay = Settings(var_dir=tmp_path, smtp_host="smtp.relay.example", smtp_port=587)
    assert local_mailbox(relay, moved) is None  # a real relay: nothing intercepted


def test_the_sandbox_runs_the_mailbox_when_given_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from relance.runtime.stack import twilio_sandbox_service

    argv = twilio_sandbox_service(Ports.offset(1), tmp_path / "mailbox").argv
    assert argv[-4:] == ["--smtp-port", "8026", "--mailbox", str(tmp_path / "mailbox")]
    assert "--smtp-port" not in twilio_sandbox_service(Ports()).argv
