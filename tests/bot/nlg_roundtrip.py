"""Run by test_nlg_callback.py inside the Rasa venv: the body bot.nlg.BoundedCallbackNLG posts
after a short and a long conversation, next to what Rasa's stock callback posts. Prints JSON."""

from __future__ import annotations

import asyncio
import json
import sys

from rasa.core.nlg.callback import nlg_request_format
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from bot.nlg import BoundedCallbackNLG


class Recorder(EndpointConfig):
    def __init__(self) -> None:
        super().__init__(url="http://api.invalid/nlg")
        self.bodies: list[dict] = []

    async def request(
        self,
        method: str = "post",
        subpath=None,
        content_type="application/json",
        compress=False,
        **kwargs,
    ):
        self.bodies.append(kwargs["json"])
        return {"text": "ok"}


def tracker(turns: int) -> DialogueStateTracker:
    domain = Domain.from_dict({"slots": {"language": {"type": "text", "mappings": []}}})
    events = [SlotSet("language", "fr")]
    for n in range(turns):
        events += [
            ActionExecuted("action_listen"),
            UserUttered(
                f"message {n}",
                {"name": "greet", "confidence": 1.0},
                metadata={"language": "en", "message_id": str(n)},
            ),
            ActionExecuted("utter_greet"),
            BotUttered("Bonjour ! " * 20),
        ]
    return DialogueStateTracker.from_events("debtor-1", events, domain.slots)


async def main() -> None:
    endpoint = Recorder()
    nlg = BoundedCallbackNLG(endpoint_config=endpoint, domain=Domain.empty())
    sizes = {}
    for turns in (1, 300):
        t = tracker(turns)
        await nlg.generate("utter_greet", t, "rest", creditor_name="Demo")
        sizes[turns] = {
            "bounded": len(json.dumps(endpoint.bodies[-1])),
            "stock": len(json.dumps(nlg_request_format("utter_greet", t, "rest"))),
        }
    print(json.dumps({"sizes": sizes, "body": endpoint.bodies[-1]}))


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
