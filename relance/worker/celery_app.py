"""Celery application, built only when a broker is configured (no import-time side effects).

Tasks wrap the plain jobs; beat triggers them on the same intervals as the embedded scheduler.
Two workers may run the dispatch at once: the claims in the dispatcher keep it exactly-once.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from relance.settings import Settings
from relance.worker import jobs

TASK_PREFIX = "relance."


def make_celery(settings: Settings, **overrides: Any) -> Celery:
    if not settings.celery_broker_url:
        raise RuntimeError("CELERY_BROKER_URL is empty: use the embedded scheduler")
    schedule = jobs.schedule(settings)
    app = Celery("relance", broker=settings.celery_broker_url)
    app.conf.update(
        task_acks_late=True,  # a job lost with its worker runs again; every job is idempotent
        worker_prefetch_multiplier=1,
        task_default_queue="relance",
        timezone="UTC",
        beat_schedule={
            name: {"task": TASK_PREFIX + name, "schedule": interval}
            for name, (interval, _job) in schedule.items()
        },
        **overrides,
    )
    for name, (_interval, job) in schedule.items():
        app.task(name=TASK_PREFIX + name, ignore_result=True)(_wrap(name, job))
    return app


def _wrap(name: str, job: Any) -> Any:
    def task() -> Any:
        return job()

    task.__name__ = name.replace(".", "_")  # Celery builds a signature from it
    task.__doc__ = job.__doc__
    return task
