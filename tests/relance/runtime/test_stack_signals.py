"""Stopping the supervisor with SIGTERM or SIGHUP (a process manager, `kill`, a closed terminal)
stops its services too.

The services run in their own sessions, so nothing but the supervisor can stop them; before
`Stack.supervise`, SIGTERM ended the supervisor at once and left them running.
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

# A web server that takes a second to shut down, as Rasa does: a second signal arrives while the
# supervisor is still waiting for it.
SLOW_SERVER = textwrap.dedent(
    """
    import signal, sys, threading, time
    from http.server import HTTPServer, SimpleHTTPRequestHandler

    def slow_exit(signum, frame):
        time.sleep(1)
        sys.exit(0)

    signal.signal(signal.SIGTERM, slow_exit)
    server = HTTPServer(("127.0.0.1", int(sys.argv[1])), SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    while True:
        time.sleep(0.1)
    """
)

SUPERVISOR = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from relance.runtime import stack

    fast_port, slow_port, log_dir, slow_server = sys.argv[1:5]
    fast = stack.Service(
        name="fast",
        argv=[sys.executable, "-m", "http.server", fast_port, "--bind", "127.0.0.1"],
        health_url=f"http://127.0.0.1:{fast_port}/",
    )
    slow = stack.Service(
        name="slow",
        argv=[sys.executable, "-c", slow_server, slow_port],
        health_url=f"http://127.0.0.1:{slow_port}/",
    )
    running = stack.Stack(env=dict(os.environ), log_dir=Path(log_dir))
    ready = lambda: print(fast.process.pid, slow.process.pid, flush=True)
    sys.exit(running.supervise([fast, slow], ready=ready, timeout=30))
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


@pytest.mark.parametrize(
    ("sig", "times"),
    [(signal.SIGTERM, 1), (signal.SIGHUP, 1), (signal.SIGTERM, 2)],
    ids=["SIGTERM", "SIGHUP", "SIGTERM-twice"],
)
def test_termination_signal_stops_every_service(
    tmp_path: Path, sig: signal.Signals, times: int
) -> None:
    supervisor = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SUPERVISOR,
            str(_free_port()),
            str(_free_port()),
            str(tmp_path),
            SLOW_SERVER,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    children: list[int] = []
    try:
        assert supervisor.stdout is not None
        children = [int(pid) for pid in supervisor.stdout.readline().split()]
        assert len(children) == 2 and all(_alive(pid) for pid in children)
        for _ in range(times):
            supervisor.send_signal(sig)
            time.sleep(0.3)  # the second one lands while the slow service is stopping
        assert supervisor.wait(timeout=30) == 0
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in children), "a service outlived its supervisor"
    finally:
        supervisor.kill()
        for pid in children:  # a failed run must not leave the servers behind
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
