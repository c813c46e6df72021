"""The NLG callback Rasa uses (endpoints.yml `nlg.type`): the stock one without the history.

Rasa 3.6's `CallbackNaturalLanguageGenerator` posts `tracker.current_state(EventVerbosity.ALL)`,
every event of the session, with each response it asks the api for: the body grows with every turn
(about 2.5 KiB a turn), and a long conversation passed the api's body limit and went mute. The api
renders a response from its name, its arguments, the slots and the latest user message only
(relance/nlg/endpoints.py), so this one sends exactly that: the same request format, the tracker
state without its events, a body whose size does not depend on the length of the conversation.

Runs inside the Rasa venv (Python 3.10); not part of the trained model.
"""

from __future__ import annotations

from typing import Any

from rasa.core.constants import DEFAULT_REQUEST_TIMEOUT
from rasa.core.nlg.callback import CallbackNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity
from rasa.shared.exceptions import RasaException
from rasa.utils.endpoints import EndpointConfig


def bounded_request(
    utter_action: str, state: dict[str, Any], output_channel: str, **kwargs: Any
) -> dict[str, Any]:
    """Rasa's NLG request body (`nlg_request_format`), with a tracker state carrying no events."""
    response_id = kwargs.pop("response_id", None)
    return {
        "response": utter_action,
        "id": response_id,
        "arguments": kwargs,
        "tracker": {key: value for key, value in state.items() if key != "events"},
        "channel": {"name": output_channel},
    }


class BoundedCallbackNLG(CallbackNaturalLanguageGenerator):
    def __init__(self, endpoint_config: EndpointConfig, domain: Domain | None = None) -> None:
        super().__init__(endpoint_config)

    async def generate(
        self,
        utter_action: str,
        tracker: DialogueStateTracker,
        output_channel: str,
        **kwargs: Any,
    ) -> dict[str, Any]:
        domain_responses = kwargs.pop("domain_responses", None)
        kwargs["response_id"] = self.fetch_response_id(
            utter_action, tracker, output_channel, domain_responses
        )
        body = bounded_request(
            utter_action, tracker.current_state(EventVerbosity.NONE), output_channel, **kwargs
        )
        response = await self.nlg_endpoint.request(
            method="post", json=body, timeout=DEFAULT_REQUEST_TIMEOUT
        )
        if isinstance(response, dict) and self.validate_response(response):
            return response
        raise RasaException("NLG web endpoint returned an invalid response.")
