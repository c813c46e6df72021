"""What `relance run` does, in order, printing where to look."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from relance.runtime import stack
from relance.runtime.rasa_config import write_endpoints
from relance.runtime.training import ensure_model
from relance.settings import get_settings

console = Console()


def launch(*, demo: bool, config: Path, api_port: int, env: dict[str, str]) -> int:
    ports = stack.Ports(api=api_port)
    env = stack.stack_env(env, ports)
    for key in ("RASA_URL", "PUBLIC_BASE_URL", "TWILIO_API_BASE"):
        import os

        os.environ[key] = env[key]
    get_settings.cache_clear()
    settings = get_settings()

    console.rule("[bold]Relance")
    _step("database", _migrate_and_seed, demo)
    model = ensure_model(config)
    endpoints = write_endpoints(
        settings,
        api_url=f"http://127.0.0.1:{ports.api}",
        action_url=f"http://127.0.0.1:{ports.actions}/webhook",
        path=settings.var_dir / "endpoints.yml",
    )
    running = stack.Stack(env=env, log_dir=settings.var_dir / "logs")
    services = [
        stack.twilio_sandbox_service(ports),
        stack.api_service(ports),
        stack.actions_service(ports),
        stack.rasa_service(ports, model, endpoints, settings.rasa_auth_token),
        *stack.extra_services(ports),
    ]

    def ready() -> None:
        base = f"http://localhost:{ports.api}"
        console.rule("[green]running")
        console.print(f"Debtor simulator : {base}/simulator")
        console.print(f"Collector console: {base}/console")
        console.print(f"API docs         : {base}/docs  (OpenAPI: {base}/openapi.json)")
        console.print(f"Logs             : {settings.var_dir / 'logs'}")
        _print_demo_logins()
        console.print("Ctrl-C stops everything.")

    try:
        return running.supervise(
            services, starting=lambda s: console.print(f"starting {s.name}…"), ready=ready
        )
    except Exception as exc:  # every service started is already stopped
        console.print(f"[red]start-up failed:[/red] {exc}")
        return 1


def _step(name: str, fn, *args) -> None:  # type: ignore[no-untyped-def]
    console.print(f"{name}…")
    fn(*args)


def _migrate_and_seed(demo: bool) -> None:
    from datetime import date

    from relance.db.migrate import upgrade_to_head
    from relance.db.session import session_scope
    from relance.portfolio.demo import DEMO_CSV, demo_shift_days
    from relance.portfolio.importer import import_rows, read_csv

    upgrade_to_head()
    if not demo:
        return
    with session_scope() as session:
        report = import_rows(
            session,
            read_csv(DEMO_CSV.read_text(encoding="utf-8")),
            actor="demo",
            date_shift_days=demo_shift_days(date.today()),
        )
        if not report.ok:
            raise RuntimeError(f"demo portfolio rejected: {report.errors}")
    _ensure_demo_users()


def _ensure_demo_users() -> None:
    """Demo console accounts (development only), credentials printed at start-up."""
    from relance.auth.demo import ensure_demo_users

    ensure_demo_users()


def _print_demo_logins() -> None:
    from relance.auth.demo import demo_logins

    for email, password, role in demo_logins():
        console.print(f"  {role:<9} login: {email} / {password}")
