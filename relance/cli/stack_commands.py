"""`relance run` (the whole stack on one machine) and `relance bot ...` (train, validate, test)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import typer
from rich.console import Console

from relance.runtime.paths import BOT_DIR, NLU_DIR, PROJECT_ROOT, RASA_BIN

console = Console()
bot_app = typer.Typer(no_args_is_help=True, help="Train, validate and test the Rasa assistant.")


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("doctor")(doctor)
    app.add_typer(bot_app, name="bot")


def _config(ci: bool) -> Path:
    return BOT_DIR / ("config.ci.yml" if ci else "config.yml")


@bot_app.command("train")
def train(
    ci: bool = typer.Option(False, help="Use the faster CI training config"),
    force: bool = typer.Option(False, help="Retrain even if the bot data did not change"),
) -> None:
    """Train the model unless an identical one is cached. Prints its path."""
    from relance.runtime.training import ensure_model

    console.print(str(ensure_model(_config(ci), force=force)))


@bot_app.command("test")
def test(ci: bool = typer.Option(True, help="Use the CI training config")) -> None:
    """`rasa data validate` then the test stories with --fail-on-prediction-errors."""
    from relance.runtime.training import ensure_model

    data = ["--data", str(BOT_DIR / "data"), str(NLU_DIR)]
    subprocess.run(
        [
            str(RASA_BIN),
            "data",
            "validate",
            "--fail-on-warnings",
            "--config",
            str(_config(ci)),
            "--domain",
            str(BOT_DIR / "domain"),
            *data,
        ],
        cwd=PROJECT_ROOT,
        check=True,
    )
    model = ensure_model(_config(ci))
    out = PROJECT_ROOT / "var" / "rasa-test-results"
    subprocess.run(
        [
            str(RASA_BIN),
            "test",
            "core",
            "--model",
            str(model),
            "--stories",
            str(BOT_DIR / "tests"),
            "--fail-on-prediction-errors",
            "--out",
            str(out),
        ],
        cwd=PROJECT_ROOT,
        check=True,
    )
    console.print("[green]test stories passed[/green]")


def run(
    demo: bool = typer.Option(True, help="Load the demo portfolio"),
    ci_model: bool = typer.Option(False, help="Serve the CI model only (no production training)"),
    quick: bool = typer.Option(
        True,
        help="If the production model is not trained yet, serve the CI model at once and "
        "train the production model in the background (loaded without a restart)",
    ),
    port: int = typer.Option(8000, help="api port (before --port-offset)"),
    port_offset: int = typer.Option(
        0, help="Move every port (api 8000, Rasa 5005, actions 5055, sandbox 8099) by this much"
    ),
) -> None:
    """Start the whole stack: migrate, load the demo, train if needed, run every process."""
    from relance.runtime.launcher import launch

    raise typer.Exit(
        launch(
            demo=demo,
            config=_config(ci_model),
            api_port=port,
            env=dict(os.environ),
            port_offset=port_offset,
            quick_first=quick,
        )
    )


def doctor(
    purpose: str = typer.Option("test", "--for", help="run or test (test checks everything)"),
    port_offset: int = typer.Option(0, help="Check the ports of a stack moved by this much"),
) -> None:
    """Check this machine's prerequisites (Pythons, disk, ports, PostgreSQL, Chromium)."""
    from relance.runtime.doctor import main

    raise typer.Exit(main(["--for", purpose, "--port-offset", str(port_offset)]))
