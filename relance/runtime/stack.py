"""Start and supervise the processes of one Relance machine.

`relance run` and the end-to-end tests use the same code, so the tests exercise what people run:
Rasa server (own venv), action server, api (uvicorn) and the Twilio sandbox, each a real process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import httpx

from relance.runtime.paths import ACTIONS_PACKAGE, BOT_DIR, PROJECT_ROOT, RASA_BIN


@dataclass
class Ports:
    api: int = 8000
    rasa: int = 5005
    actions: int = 5055
    twilio_sandbox: int = 8099
    smtp_sink: int = 8025  # the sandbox's SMTP mailbox (SMTP_PORT's default)

    @classmethod
    def offset(cls, by: int, *, api: int = 8000) -> Ports:
        """Every port moved by `by` (`relance run --port-offset`): two stacks side by side."""
        base = cls()
        return cls(
            api=api + by,
            rasa=base.rasa + by,
            actions=base.actions + by,
            twilio_sandbox=base.twilio_sandbox + by,
            smtp_sink=base.smtp_sink + by,
        )

    def all(self) -> dict[str, int]:
        return {
            "api": self.api,
            "rasa": self.rasa,
            "actions": self.actions,
            "twilio-sandbox": self.twilio_sandbox,
            "smtp-sink": self.smtp_sink,
        }


@dataclass
class Service:
    name: str
    argv: list[str]
    health_url: str
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    # How long `relance run` waits for the health URL before giving up. Rasa loads TensorFlow
    # and the model: minutes on a busy 2-core machine.
    start_timeout: float = 180.0


@dataclass
class Stack:
    """A set of running services sharing one environment (settings via env vars)."""

    env: dict[str, str]
    log_dir: Path
    services: list[Service] = field(default_factory=list)

    def start(self, service: Service, timeout: float = 180.0) -> None:
        self._launch(service)
        self._wait_healthy(service, timeout)

    def start_all(self, services: list[Service], timeout: float = 180.0) -> None:
        """Launch several services at once, then wait for each: replicas (two Rasa instances
        loading their model) start side by side instead of one after the other."""
        for service in services:
            self._launch(service)
        for service in services:
            self._wait_healthy(service, timeout)

    def _launch(self, service: Service) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        service.log_path = self.log_dir / f"{service.name}.log"
        log = service.log_path.open("ab")
        service.process = subprocess.Popen(
            service.argv,
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.services.append(service)

    def _wait_healthy(self, service: Service, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert service.process is not None
            if service.process.poll() is not None:
                raise RuntimeError(
                    f"{service.name} exited with {service.process.returncode}; see {service.log_path}"
                )
            try:
                if httpx.get(service.health_url, timeout=2).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError(
            f"{service.name} not healthy after {timeout:.0f}s; see {service.log_path}"
        )

    def supervise(
        self,
        services: list[Service],
        *,
        starting: Callable[[Service], None] = lambda service: None,
        ready: Callable[[], None] = lambda: None,
        timeout: float | None = None,
        tick: Callable[[], None] = lambda: None,
    ) -> int:
        """Start `services` in order, call `ready`, then block until one dies (exit 1) or the
        stack is told to stop: Ctrl-C, SIGTERM or SIGHUP (exit 0). Every service started is
        stopped on the way out, whatever happens, start-up failures included (re-raised).
        `tick` runs about once a second while the stack runs (progress displays)."""
        with interrupt_on_termination():
            try:
                for service in services:
                    starting(service)
                    self.start(service, timeout or service.start_timeout)
                ready()
                return self.wait(tick)
            except KeyboardInterrupt:
                return 0
            finally:
                self.stop()

    def stop(self, name: str | None = None) -> None:
        for service in reversed(self.services):
            if name and service.name != name:
                continue
            _terminate(service)
        self.services = [s for s in self.services if name and s.name != name]

    def wait(self, tick: Callable[[], None] = lambda: None) -> int:
        """Block until a service dies (exit 1); `supervise` stops the rest."""
        while True:
            tick()
            for service in self.services:
                if service.process and service.process.poll() is not None:
                    print(
                        f"{service.name} stopped (exit {service.process.returncode}); "
                        f"see {service.log_path}"
                    )
                    return 1
            time.sleep(1)


TERMINATION_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


@contextmanager
def interrupt_on_termination() -> Iterator[None]:
    """Make SIGTERM and SIGHUP behave like Ctrl-C while the stack runs.

    Each service runs in its own session, out of reach of the terminal's signals, and Python's
    default SIGTERM ends the supervisor without running `finally`: a process manager stopping
    `relance run` (or a closed terminal) used to leave Rasa, the api and the worker running,
    holding their ports. Raising KeyboardInterrupt instead takes the Ctrl-C path, which stops
    every service.
    """

    def interrupt(signum: int, frame: FrameType | None) -> None:
        for sig in TERMINATION_SIGNALS:  # a repeated signal must not cut the shutdown short
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, interrupt) for sig in TERMINATION_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _terminate(service: Service) -> None:
    process = service.process
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def python_bin() -> str:
    return sys.executable


def rasa_service(ports: Ports, model: Path, endpoints: Path, auth_token: str) -> Service:
    return Service(
        name="rasa",
        argv=[
            str(RASA_BIN),
            "run",
            "--enable-api",
            "--auth-token",
            auth_token,
            "--model",
            str(model),
            "--endpoints",
            str(endpoints),
            "--credentials",
            str(BOT_DIR / "credentials.yml"),
            "--port",
            str(ports.rasa),
            "--interface",
            "127.0.0.1",
        ],
        health_url=f"http://127.0.0.1:{ports.rasa}/",
        start_timeout=900.0,
    )


def actions_service(ports: Ports) -> Service:
    return Service(
        name="actions",
        argv=[
            python_bin(),
            "-m",
            "rasa_sdk",
            "--actions",
            ACTIONS_PACKAGE,
            "--port",
            str(ports.actions),
        ],
        health_url=f"http://127.0.0.1:{ports.actions}/health",
    )


def api_service(ports: Ports) -> Service:
    return Service(
        name="api",
        argv=[
            python_bin(),
            "-m",
            "uvicorn",
            "relance.app:create_wired_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(ports.api),
            "--workers",
            "1",
            # X-Forwarded-For is believed only from TRUSTED_PROXIES (relance/web/client_ip.py);
            # uvicorn's own handling would believe any local peer and rewrite the address first.
            "--no-proxy-headers",
        ],
        health_url=f"http://127.0.0.1:{ports.api}/healthz",
    )


def twilio_sandbox_service(ports: Ports, mailbox: Path | None = None) -> Service:
    """The local Twilio stand-in and, given `mailbox`, the SMTP mailbox the simulator shows."""
    mail = ["--smtp-port", str(ports.smtp_sink), "--mailbox", str(mailbox)] if mailbox else []
    return Service(
        name="twilio-sandbox",
        argv=[
            python_bin(),
            "-m",
            "relance.sandbox.twilio_sandbox",
            "--port",
            str(ports.twilio_sandbox),
            *mail,
        ],
        health_url=f"http://127.0.0.1:{ports.twilio_sandbox}/health",
    )


def stack_env(
    base: dict[str, str], ports: Ports, extra: dict[str, str] | None = None
) -> dict[str, str]:
    env = dict(base)
    env.update(
        {
            "RASA_URL": f"http://127.0.0.1:{ports.rasa}",
            "ACTION_SERVER_URL": f"http://127.0.0.1:{ports.actions}",
            "PUBLIC_BASE_URL": env.get("PUBLIC_BASE_URL", f"http://localhost:{ports.api}"),
            "TWILIO_API_BASE": env.get(
                "TWILIO_API_BASE", f"http://127.0.0.1:{ports.twilio_sandbox}"
            ),
            "PYTHONUNBUFFERED": "1",
            # rasa-sdk binds 0.0.0.0 unless told otherwise, and its endpoint has no auth.
            "SANIC_HOST": env.get("SANIC_HOST", "127.0.0.1"),
        }
    )
    env.update(extra or {})
    return env


def extra_services(ports: Ports) -> list[Service]:
    """The worker (dunning planner, dispatcher, replay, follow-ups)."""
    return [
        Service(
            name="worker",
            argv=[python_bin(), "-m", "relance.cli", "worker"],
            health_url=f"http://127.0.0.1:{ports.api}/healthz",
        )
    ]


def celery_worker_service(name: str, health_url: str, *, concurrency: int = 1) -> Service:
    """One Celery worker replica consuming the `relance` queue (needs CELERY_BROKER_URL), without
    beat (like `relance worker --no-beat`): exactly one `celery_main beat` runs beside them.

    Celery has no HTTP health endpoint: `health_url` only gates start-up on a service it needs
    (the api, say); check the worker itself with `celery inspect ping` / `app.control.ping()`.
    """
    return Service(
        name=name,
        argv=[
            python_bin(),
            "-m",
            "relance.runtime.celery_main",
            "worker",
            "-Q",
            "relance",
            "-n",
            f"{name}@%h",
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
        ],
        health_url=health_url,
    )
