"""`relance worker`: Celery worker + beat when a broker is configured, else the embedded loop."""

from __future__ import annotations

import logging

from relance.settings import Settings, get_settings
from relance.worker import jobs
from relance.worker.embedded import EmbeddedScheduler

log = logging.getLogger(__name__)


def _wire() -> None:
    wire = jobs.optional("relance.wiring", "wire")
    if wire is not None:
        wire()


def embedded_scheduler() -> EmbeddedScheduler:
    return EmbeddedScheduler(jobs.SCHEDULE)


def start_in_background(settings: Settings | None = None) -> EmbeddedScheduler | None:
    """For the api process in single-machine mode: run the jobs in a thread, unless Celery."""
    settings = settings or get_settings()
    if settings.celery_broker_url:
        return None
    _wire()
    return embedded_scheduler().start()


def run_worker(settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    _wire()
    if settings.celery_broker_url:
        from relance.worker.celery_app import make_celery

        app = make_celery(settings)
        log.info("celery worker with beat on %s", settings.celery_broker_url)
        app.worker_main(["worker", "--beat", "--loglevel=INFO", "-Q", "relance"])
        return
    log.info("embedded scheduler (no CELERY_BROKER_URL)")
    embedded_scheduler().run_forever()
