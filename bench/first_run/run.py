"""First-run benchmark: a newcomer types `make run` on a machine that has never run Relance.

    python bench/first_run/run.py [--port-offset 300] [--warm-pip] [--append BENCHMARKS.md]

Clones the committed HEAD into a temporary folder, points RELANCE_CACHE_DIR at an empty folder (no
Rasa environment, no trained model) and runs `make run` there. It then measures, from the moment
`make run` starts:

- `first reply`: a demo debtor's "Bonjour", sent through the simulator (the signed Twilio
  webhook, as a person would), gets an answer from the assistant;
- `production model`: `/healthz` says the production model is serving;
- the phases in between, read from make's output (environments, quick model, services).

By default pip's download cache is off too (PIP_NO_CACHE_DIR=1), as on a fresh machine;
`--warm-pip` keeps it (a machine that has installed these packages before). Prints a Markdown
section (no machine paths) and appends it to `--append` if given. Stops the stack at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_SECONDS = 3 * 3600
READY = r"Ctrl-C stops everything"  # the last line of `relance run`'s banner


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()


class Output:
    """make's output, kept with the time each line arrived."""

    def __init__(self, process: subprocess.Popen[str], started: float) -> None:
        self.lines: list[tuple[float, str]] = []
        self._started = started
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append((time.monotonic() - self._started, line.rstrip()))

    def first(self, pattern: str) -> float | None:
        regex = re.compile(pattern)
        return next((t for t, line in self.lines if regex.search(line)), None)


def _first_reply(base: str, deadline: float) -> bool:
    """Send "Bonjour" as a French demo debtor until an assistant reply shows up."""
    with httpx.Client(base_url=base, timeout=60) as client:
        rows = re.findall(r"<tr>(.*?)</tr>", client.get("/simulator").text, flags=re.S)
        french = next(row for row in rows if 'class="pill fr"' in row)
        debtor_id = re.search(r'href="/simulator/(\d+)"', french).group(1)  # type: ignore[union-attr]
        while time.monotonic() < deadline:
            response = client.post(f"/simulator/{debtor_id}/send", data={"text": "Bonjour"})
            if response.status_code == 200 and _bot_answered_last(response.text):
                return True
            time.sleep(5)
    return False


def _bot_answered_last(transcript: str) -> bool:
    """The assistant spoke after the debtor's latest message (a reminder sent by the worker
    meanwhile does not count: its author is not the bot)."""
    messages = re.findall(
        r'class="msg (inbound|outbound)".*?class="meta">[^·]*·\s*(\w+)', transcript
    )
    last_inbound = max((i for i, (way, _) in enumerate(messages) if way == "inbound"), default=-1)
    return any(
        way == "outbound" and author == "bot" for way, author in messages[last_inbound + 1 :]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port-offset", type=int, default=300)
    parser.add_argument("--warm-pip", action="store_true", help="keep pip's download cache")
    parser.add_argument("--append", type=Path)
    args = parser.parse_args()

    commit = _git("rev-parse", "--short", "HEAD")
    with tempfile.TemporaryDirectory(prefix="relance-first-run-") as tmp:
        checkout = Path(tmp) / "relance"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(checkout)], check=True)
        env = {
            **os.environ,
            "RELANCE_CACHE_DIR": str(Path(tmp) / "cache"),
            "PORT_OFFSET": str(args.port_offset),
        }
        if not args.warm_pip:
            env["PIP_NO_CACHE_DIR"] = "1"
        base = f"http://127.0.0.1:{8000 + args.port_offset}"
        started = time.monotonic()
        process = subprocess.Popen(
            ["make", "run", f"PORT_OFFSET={args.port_offset}"],
            cwd=checkout,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        output = Output(process, started)
        deadline = started + TIMEOUT_SECONDS
        first_reply = production = None
        try:
            while time.monotonic() < deadline and process.poll() is None:
                ready = output.first(READY) is not None
                if first_reply is None and ready and _first_reply(base, deadline):
                    first_reply = time.monotonic() - started
                if first_reply is not None:
                    health = httpx.get(f"{base}/healthz", timeout=10).json()
                    model = health.get("assistant_model")
                    if model is None or model["production"] == "serving":
                        production = time.monotonic() - started
                        break
                    if model["production"] == "failed":
                        break
                time.sleep(5)
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=60)
        phases = {
            "environments ready": output.first(r"environments ready"),
            "quick model ready": output.first(r"model up to date|trained in"),
            "services running": output.first(READY),
        }
        if process.returncode not in (0, -signal.SIGTERM, None) and first_reply is None:
            print("\n".join(line for _, line in output.lines[-40:]), file=sys.stderr)
    section = _report(commit, args.warm_pip, phases, first_reply, production)
    print(section)
    if args.append:
        with args.append.open("a", encoding="utf-8") as handle:
            handle.write("\n" + section)
    return 0 if first_reply is not None else 1


def _minutes(seconds: float | None) -> str:
    return "not reached" if seconds is None else f"{seconds / 60:.1f} min"


def _report(
    commit: str,
    warm_pip: bool,
    phases: dict[str, float | None],
    first_reply: float | None,
    production: float | None,
) -> str:
    pip = "warm pip cache" if warm_pip else "no pip cache (PIP_NO_CACHE_DIR=1)"
    rows = [f"| {name} | {_minutes(at)} |" for name, at in phases.items()]
    return "\n".join(
        [
            f"## First run — `make run` on an empty Relance cache ({date.today()}, commit {commit})",
            "",
            f"`python bench/first_run/run.py` — a fresh clone, empty RELANCE_CACHE_DIR, {pip}; "
            f"{os.cpu_count()} cores. Times from the start of `make run`.",
            "",
            "| milestone | time |",
            "| --- | ---: |",
            *rows,
            f"| **first assistant reply in the simulator** | **{_minutes(first_reply)}** |",
            f"| production model serving | {_minutes(production)} |",
            "",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
