"""Reminders wait for the assistant when the worker starts.

A reminder is primed in Rasa (the reply then lands in the conversation's context). A worker that
starts with the stack, or restarts while Rasa loads its model, used to dispatch at once: the
first reminders timed out on the assistant and went out rendered locally, out of context. The
gate stays closed until the assistant is ready (Rasa's `/status`: model loaded; the action
server's `/health`), then stays open: a later outage is handled per reminder by the dispatcher
(local rendering). If the assistant is still not ready after `patience` seconds the gate opens
anyway, with an error in the log, so a broken Rasa never silently stops dunning.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class AssistantGate:
    def __init__(
        self,
        is_ready: Callable[[], bool],
        patience: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._is_ready = is_ready
        self._patience = patience
        self._clock = clock
        self._since = clock()
        self._open = False

    def is_open(self) -> bool:
        """Checks the assistant while closed (once per call): True once it was seen ready."""
        if self._open:
            return True
        if self._is_ready():
            log.info("assistant ready: reminders are dispatched")
            self._open = True
        elif self._clock() - self._since >= self._patience:
            log.error(
                "assistant still not ready %.0f s after start-up: reminders are dispatched"
                " anyway and rendered locally while it stays down",
                self._patience,
            )
            self._open = True
        else:
            log.info("waiting for the assistant before dispatching reminders")
        return self._open


def assistant_is_ready() -> bool:
    """Rasa has its model loaded (`/status`) and, when configured, the action server is up."""
    from relance.conversations.assistant_turn import probe_from_settings
    from relance.rasa_client import client_from_settings

    rasa = client_from_settings()
    try:
        if not rasa.is_up():
            return False
    finally:
        rasa.close()
    probe = probe_from_settings()
    return probe is None or probe.is_up()
