"""Stopping the supervisor with SIGTERM (a process manager, `kill`) stops its services too.

The services run in their own sessions, so nothing but the supervisor can stop them; before
`interrupt_on_termination`, SIGTERM ended the supervisor at once and left them running.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

SUPERVISOR = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from relance.runtime import stack

    port, log_dir = int(sys.argv[1]), Path(sys.argv[2])
    service = stack.Service(
        name="dummy",
        argv=[sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        health_url=f"http://127.0.0.1:{port}/",
    )
    running = stack.Stack(env=dict(__import__("os").environ), log_dir=log_dir)
    with stack.interrupt_on_termination():
        running.start(service, timeout=30)
        print(service.process.pid, flush=True)
        sys.exit(running.wait())
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_termination_signal_stops_every_service(tmp_path: Path, sig: signal.Signals) -> None:
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, str(_free_port()), str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    child = 0
    try:
        assert supervisor.stdout is not None
        child = int(supervisor.stdout.readline())
        assert _alive(child)
        supervisor.send_signal(sig)
        assert supervisor.wait(timeout=30) == 0
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(child), "the service outlived its supervisor"
    finally:
        supervisor.kill()
        if child and _alive(child):  # a failed run must not leave the dummy server behind
            os.kill(child, signal.SIGKILL)
