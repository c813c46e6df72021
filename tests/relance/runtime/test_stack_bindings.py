"""Issue 17.6 / 17.7: what `relance run` starts listens on loopback only, Rasa behind its auth
token, and uvicorn leaves X-Forwarded-For to the app (relance/web/client_ip.py)."""

from __future__ import annotations

from pathlib import Path

from relance.runtime import stack


def _argv_value(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_rasa_listens_on_loopback_behind_its_token() -> None:
    service = stack.rasa_service(stack.Ports(), Path("m.tar.gz"), Path("e.yml"), "tok-123")
    assert _argv_value(service.argv, "--interface") == "127.0.0.1"
    assert _argv_value(service.argv, "--auth-token") == "tok-123"


def test_action_server_is_bound_to_loopback() -> None:
    assert stack.stack_env({}, stack.Ports())["SANIC_HOST"] == "127.0.0.1"


def test_api_listens_on_loopback_and_ignores_forwarded_headers_itself() -> None:
    argv = stack.api_service(stack.Ports()).argv
    assert _argv_value(argv, "--host") == "127.0.0.1"
    assert "--no-proxy-headers" in argv
