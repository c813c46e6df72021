"""The generated endpoints.yml uses Rasa 3.6's keywords for a replicated set-up: a SQL tracker store
on PostgreSQL and a Redis lock store (checked against Rasa 3.6's `SQLTrackerStore` and
`RedisLockStore` constructor arguments)."""

from __future__ import annotations

from pathlib import Path

import yaml

from relance.runtime.rasa_config import write_endpoints
from relance.settings import Settings


def _endpoints(tmp_path: Path, **values: str) -> dict:
    settings = Settings(_env_file=None, var_dir=tmp_path / "var", nlg_token="nlg-tok", **values)
    path = write_endpoints(
        settings,
        api_url="http://api:8000/",
        action_url="http://actions:5055/webhook",
        path=tmp_path / "endpoints.yml",
    )
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_single_machine_default_sqlite_tracker_no_lock_store(tmp_path: Path) -> None:
    endpoints = _endpoints(tmp_path)
    assert endpoints["action_endpoint"] == {"url": "http://actions:5055/webhook"}
    assert endpoints["nlg"] == {
        "type": "bot.nlg.BoundedCallbackNLG",
        "url": "http://api:8000/nlg",
        "token": "nlg-tok",
    }
    assert endpoints["tracker_store"] == {
        "type": "SQL",
        "dialect": "sqlite",
        "db": str(tmp_path / "var" / "rasa_tracker.db"),
    }
    assert "lock_store" not in endpoints  # one Rasa process: the in-memory lock store is right


def test_replicated_postgres_tracker_store_and_redis_lock_store(tmp_path: Path) -> None:
    endpoints = _endpoints(
        tmp_path,
        rasa_tracker_store_url="postgresql+psycopg://rasa:s%40cret@db.internal:6543/tracker?sslmode=require",
        redis_url="redis://:p%40ss@redis.internal:6380/4",
    )
    assert endpoints["tracker_store"] == {
        "type": "SQL",
        "dialect": "postgresql",  # Rasa's env has psycopg2: the app's +psycopg driver is dropped
        "url": "db.internal",
        "port": 6543,
        "username": "rasa",
        "password": "s@cret",
        "db": "tracker",
        "query": {"sslmode": "require"},
    }
    assert endpoints["lock_store"] == {
        "type": "redis",
        "url": "redis.internal",
        "port": 6380,
        "db": 4,
        "password": "p@ss",
    }


def test_redis_defaults_and_tls(tmp_path: Path) -> None:
    plain = _endpoints(tmp_path, redis_url="redis://localhost")["lock_store"]
    assert plain == {"type": "redis", "url": "localhost", "port": 6379}  # Rasa's default db 1
    tls = _endpoints(tmp_path, redis_url="rediss://user:pw@cache:6390/0")["lock_store"]
    assert tls == {
        "type": "redis",
        "url": "cache",
        "port": 6390,
        "db": 0,
        "username": "user",
        "password": "pw",
        "use_ssl": True,
    }
