"""`relance worker`: Celery worker (+ beat unless told not to) with a broker, else the embedded loop.

Beat must run exactly once in a replicated set-up: every replica but one runs
`relance worker --no-beat` (or the Celery command lines of relance.runtime.celery_main).
"""

from __future__ import annotations

import logging

from relance.settings import Settings, get_settings
from relance.wiring import wire
from relance.worker import jobs
from relance.worker.embedded import EmbeddedScheduler

log = logging.getLogger(__name__)


def _wire() -> None:
    wire()


def embedded_scheduler(settings: Settings) -> EmbeddedScheduler:
    return EmbeddedScheduler(jobs.schedule(settings))


class WorkerConfigError(RuntimeError):
    """A worker set-up that cannot do what was asked (said before anything starts).

    A start-up configuration error for the `relance worker` command, never raised while serving
    a request, so not a RelanceError; the CLI prints it and exits."""


def celery_worker_argv(beat: bool) -> list[str]:
    return ["worker", *(["--beat"] if beat else []), "--loglevel=INFO", "-Q", "relance"]


def run_worker(settings: Settings | None = None, *, beat: bool = True) -> None:
    settings = settings or get_settings()
    if not beat and not settings.celery_broker_url:
        raise WorkerConfigError(
            "--no-beat needs CELERY_BROKER_URL: without a broker the worker runs the jobs itself"
            " (embedded scheduler), so it would have nothing to do"
        )
    _wire()
    if settings.celery_broker_url:
        from relance.worker.celery_app import make_celery

        app = make_celery(settings)
        log.info(
            "celery worker %s beat on %s", "with" if beat else "without", settings.celery_broker_url
        )
        app.worker_main(celery_worker_argv(beat))
        return
    log.info("embedded scheduler (no CELERY_BROKER_URL)")
    embedded_scheduler(settings).run_forever()
