"""`python -m relance.runtime.celery_main <celery command> [options]`: the Celery command line on
the project's app, wired like every process (Twilio gateway, payments adapter).

For replicated workers, where beat must run exactly once: `... worker -Q relance` on every
replica, `... beat` in one process, `... inspect ping` as a health check. (`relance worker` runs
worker and beat together, which suits one machine only; `relance worker --no-beat` is the same
worker without beat.) Needs CELERY_BROKER_URL.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from relance.settings import get_settings
    from relance.wiring import wire
    from relance.worker.celery_app import make_celery

    wire()
    return make_celery(get_settings()).start(list(sys.argv[1:] if argv is None else argv)) or 0


if __name__ == "__main__":
    sys.exit(main())
