"""Runtime endpoints.yml for the Rasa server, generated from Settings (secrets never committed)."""

from __future__ import annotations

from pathlib import Path

import yaml

from relance.settings import Settings

NLG_GENERATOR = "bot.nlg.BoundedCallbackNLG"


def write_endpoints(settings: Settings, *, api_url: str, action_url: str, path: Path) -> Path:
    """Action server, NLG endpoint (with its token), tracker store and lock store."""
    endpoints: dict[str, object] = {
        "action_endpoint": {"url": action_url},
        # bot/nlg.py: Rasa's callback without the dialogue history, so that the request body does
        # not grow with the conversation (the stock one posts every event of the session).
        "nlg": {
            "type": NLG_GENERATOR,
            "url": f"{api_url.rstrip('/')}/nlg",
            "token": settings.nlg_token,
        },
    }
    if settings.rasa_tracker_store_url:
        endpoints["tracker_store"] = _sql_tracker_store(settings.rasa_tracker_store_url)
    else:
        # Rasa cannot create the folder, and silently falls back to a per-call in-memory store
        # (conversation state lost at every turn) when the SQLite file cannot be opened.
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        endpoints["tracker_store"] = {
            "type": "SQL",
            "dialect": "sqlite",
            "db": str(settings.var_dir / "rasa_tracker.db"),
        }
    if settings.redis_url:
        # Several Rasa instances need one lock store so that two of them never run turns of the
        # same conversation at once (the worker's trigger_intent races the api's turns).
        endpoints["lock_store"] = _redis_lock_store(settings.redis_url)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(endpoints, sort_keys=False), encoding="utf-8")
    return path


def _sql_tracker_store(url: str) -> dict[str, object]:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    store: dict[str, object] = {
        "type": "SQL",
        "dialect": "postgresql",
        "url": parsed.host or "localhost",
        "port": parsed.port or 5432,
        "username": parsed.username or "postgres",
        "password": parsed.password or "",
        "db": parsed.database or "rasa",
    }
    if parsed.query:  # e.g. sslmode=require; Rasa adds it to its connection URL
        store["query"] = dict(parsed.query)
    return store


def _redis_lock_store(url: str) -> dict[str, object]:
    """Rasa 3.6 `RedisLockStore` keywords from a `redis://[:password@]host[:port][/db]` URL.

    Without a db in the URL, Rasa's own default (db 1) applies. `rediss://` turns on TLS.
    """
    from urllib.parse import unquote, urlparse

    parsed = urlparse(url)
    store: dict[str, object] = {
        "type": "redis",
        "url": parsed.hostname or "localhost",
        "port": parsed.port or 6379,
    }
    db = parsed.path.strip("/")
    if db:
        store["db"] = int(db)
    if parsed.username and parsed.username != "default":
        store["username"] = unquote(parsed.username)
    if parsed.password:
        store["password"] = unquote(parsed.password)
    if parsed.scheme == "rediss":
        store["use_ssl"] = True
    return store
