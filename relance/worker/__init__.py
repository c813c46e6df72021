"""The worker: periodic jobs (plan + dispatch, replay of kept messages, follow-ups).

Celery with a Redis broker when `CELERY_BROKER_URL` is set; otherwise an in-process scheduler
thread, so `make run` needs nothing extra.
"""
