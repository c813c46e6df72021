"""What `relance run` does, in order, printing where to look."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVarTuple

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relance.db.models import VersionedDocument
from relance.runtime import stack
from relance.runtime.background_training import BackgroundTraining, load_model
from relance.runtime.model_status import ModelStatus, clear_status, write_status
from relance.runtime.paths import BOT_DIR
from relance.runtime.rasa_config import write_endpoints
from relance.runtime.training import cached_model, ensure_model
from relance.sandbox.mail_sink import mailbox_dir
from relance.settings import Settings, get_settings

console = Console()

# Serves while the production model trains: the CI config, which CI keeps trained and cached.
Args = TypeVarTuple("Args")
QUICK_CONFIG = BOT_DIR / "config.ci.yml"


def launch(
    *,
    demo: bool,
    config: Path,
    api_port: int,
    env: dict[str, str],
    port_offset: int = 0,
    quick_first: bool = True,
) -> int:
    """Run the stack until Ctrl-C. `config` is the model to end up serving; when it is not
    trained yet and `quick_first`, the CI model serves first and `config` trains behind it."""
    ports = stack.Ports.offset(port_offset, api=api_port)
    env = stack.stack_env(env, ports)
    for key in ("RASA_URL", "PUBLIC_BASE_URL", "TWILIO_API_BASE"):
        os.environ[key] = env[key]
    get_settings.cache_clear()
    mailbox = local_mailbox(get_settings(), ports)
    if mailbox is not None:
        env["SMTP_HOST"] = os.environ["SMTP_HOST"] = "127.0.0.1"
        env["SMTP_PORT"] = os.environ["SMTP_PORT"] = str(ports.smtp_sink)
        get_settings.cache_clear()
    settings = get_settings()

    console.rule("[bold]Relance")
    _step("database", _migrate_and_seed, demo)
    serving = choose_serving_config(config, quick_first=quick_first)
    model = ensure_model(serving)
    write_status(
        settings.var_dir,
        ModelStatus(
            serving=serving.name,
            production="serving" if serving == config else "training",
            progress=None if serving == config else 0.0,
        ),
    )
    endpoints = write_endpoints(
        settings,
        api_url=f"http://127.0.0.1:{ports.api}",
        action_url=f"http://127.0.0.1:{ports.actions}/webhook",
        path=settings.var_dir / "endpoints.yml",
    )
    running = stack.Stack(env=env, log_dir=settings.var_dir / "logs")
    services = [
        stack.twilio_sandbox_service(ports, mailbox),
        stack.api_service(ports),
        stack.actions_service(ports),
        stack.rasa_service(ports, model, endpoints, settings.rasa_auth_token),
        *stack.extra_services(ports),
    ]
    background = (
        None
        if serving == config
        else _production_training(config, settings.var_dir, env["RASA_URL"], settings)
    )
    display = _TrainingDisplay(background)

    def ready() -> None:
        base = f"http://localhost:{ports.api}"
        console.rule("[green]running")
        console.print(f"Debtor simulator : {base}/simulator")
        console.print(f"Collector console: {base}/console")
        console.print(f"API docs         : {base}/docs  (OpenAPI: {base}/openapi.json)")
        if mailbox is not None:
            console.print(f"E-mails sent     : {base}/simulator (each debtor's mailbox)")
        console.print(f"Logs             : {settings.var_dir / 'logs'}")
        _print_demo_logins()
        console.print("Ctrl-C stops everything.")
        if background is not None:
            console.print(
                f"[yellow]Serving the quick model ({serving.name}) while the production model "
                f"({config.name}) trains in the background; it is loaded without a restart.[/yellow]"
            )
            background.start()
            display.start()

    try:
        return running.supervise(
            services,
            starting=lambda s: console.print(f"starting {s.name}…"),
            ready=ready,
            tick=display.tick,
        )
    except Exception as exc:  # every service started is already stopped
        console.print(f"[red]start-up failed:[/red] {exc}")
        return 1
    finally:
        display.stop()
        if background is not None:
            background.stop()
        clear_status(settings.var_dir)  # no stale "training" for an api started on its own later


def local_mailbox(settings: Settings, ports: stack.Ports) -> Path | None:
    """The folder of the local SMTP mailbox when e-mail goes to the default local port (no relay
    configured): the sandbox then listens there, moved with --port-offset, and the simulator
    shows what arrives. None when SMTP points at a real relay: nothing is intercepted."""
    default = settings.model_fields["smtp_port"].default
    local = settings.smtp_host in ("localhost", "127.0.0.1") and settings.smtp_port == default
    return mailbox_dir(settings.var_dir) if local else None


def choose_serving_config(config: Path, *, quick_first: bool) -> Path:
    """The production model when it is cached (or asked for without a quick start), else the
    quick CI model, which trains in minutes instead of a quarter of an hour."""
    if not quick_first or config == QUICK_CONFIG or cached_model(config) is not None:
        return config
    return QUICK_CONFIG


def _production_training(
    config: Path, var_dir: Path, rasa_url: str, settings: Settings
) -> BackgroundTraining:
    def on_state(state: str, detail: str) -> None:
        if state == "failed":
            write_status(var_dir, ModelStatus(QUICK_CONFIG.name, "failed", detail=detail))
            console.print(f"[red]production model: training or loading failed[/red] ({detail})")
        elif state == "loading":
            write_status(var_dir, ModelStatus(QUICK_CONFIG.name, "loading", progress=1.0))
            console.print(f"production model trained ({detail}); loading it into Rasa…")
        else:
            write_status(var_dir, ModelStatus(config.name, "serving"))
            console.print(f"[green]production model serving[/green] ({detail})")

    return BackgroundTraining(
        config,
        log_path=var_dir / "logs" / "training-production.log",
        swap=lambda model: load_model(rasa_url, settings.rasa_auth_token, model),
        on_state=on_state,
    )


class _TrainingDisplay:
    """A Rich progress bar for the background training, refreshed from the supervisor's loop;
    the status file (read by /healthz and the simulator) follows it."""

    def __init__(self, background: BackgroundTraining | None) -> None:
        self._background = background
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._last_written = -1.0

    def start(self) -> None:
        if self._background is None:
            return
        self._progress = Progress(
            TextColumn("production model"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}% (estimate)"),
            TimeElapsedColumn(),
            console=console,
        )
        self._task = self._progress.add_task("training", total=100)
        self._progress.start()

    def tick(self) -> None:
        background = self._background
        if background is None or self._progress is None or self._task is None:
            return
        if background.state != "training":
            self.stop()
            return
        share = background.progress()
        self._progress.update(self._task, completed=round(share * 100))
        if share - self._last_written >= 0.01:
            self._last_written = share
            write_status(
                get_settings().var_dir,
                ModelStatus(QUICK_CONFIG.name, "training", progress=round(share, 3)),
            )

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _step(name: str, fn: Callable[[*Args], object], *args: *Args) -> None:
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
        _demo_policy(session)
    _ensure_demo_users()


def _demo_policy(session: Session) -> None:
    """On a fresh demo database, a policy whose pre-due reminders go by e-mail first, as creditors
    start their sequences: the simulator's mailbox then has something to read and answer. An
    admin's own policy (any stored version) is never touched."""
    from relance.policy.service import POLICY_KIND, save_version, seed_document

    stored = session.scalar(
        select(func.count())
        .select_from(VersionedDocument)
        .where(VersionedDocument.kind == POLICY_KIND)
    )
    if stored:
        return
    document = copy.deepcopy(seed_document())  # the seed is cached and shared: never edit it
    for track in document["tracks"]:
        for stage in track["stages"]:
            if stage["key"] == "pre_due" and "email" not in stage["channels"]:
                stage["channels"] = ["email", *stage["channels"]]
    save_version(session, document, actor="demo", comment="demo: pre-due reminders by e-mail first")


def _ensure_demo_users() -> None:
    """Demo console accounts (development only), credentials printed at start-up."""
    from relance.auth.demo import ensure_demo_users

    ensure_demo_users()


def _print_demo_logins() -> None:
    from relance.auth.demo import demo_logins

    for email, password, role in demo_logins():
        console.print(f"  {role:<9} login: {email} / {password}")
