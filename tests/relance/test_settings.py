"""Production refuses to start on unsafe settings; development runs on the embedded defaults."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from relance.settings import OWN_SECRETS, PROVIDER_SECRETS, Settings, normalise_database_url

SAFE = {
    "environment": "production",
    "database_url": "postgresql://relance@db/relance",
    "secret_key": "Qm3vX8kZp1Lr7Tg2Wc9Yh4Nd6Bs0Fj5a",
    "twilio_auth_token": "3f9a1c7e5b2d4086a9e1f3c5b7d9e2a4",
    "stripe_webhook_secret": "whsec_8Hq2Zt5Lm9Xc3Vb7Nk1Pd4Rf",
    "rasa_auth_token": "r7Kp2Xv9Lm4Qz8Tc1Wn6Yb3Hd5Fs0Gj2",
    "nlg_token": "n4Jw8Zq1Xc6Vm3Lp9Tk2Rb7Yh5Dg0Fs3",
    "mail_inbound_secret": "m2Hx7Rk4Wq9Lc1Vz6Tb3Np8Yf5Dj0Gs4",
}


def _settings(**overrides: object) -> Settings:
    return Settings(_env_file=None, **{**SAFE, **overrides})  # type: ignore[arg-type]


def test_a_fully_configured_production_starts() -> None:
    settings = _settings()
    assert settings.effective_database_url == "postgresql+psycopg://relance@db/relance"


def test_placeholder_secrets_are_refused_in_production() -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY is a placeholder"):
        _settings(secret_key="dev-secret-key-change-me")


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        # Issue 17.2: each of these started in production.
        ("twilio_auth_token", "", "empty"),
        ("nlg_token", "", "empty"),
        ("nlg_token", "   ", "empty"),
        ("secret_key", "DEV-x" + "y" * 40, "a placeholder"),
        ("stripe_webhook_secret", "x", "shorter than 16"),
        ("rasa_auth_token", " " + SAFE["rasa_auth_token"], "contains spaces"),
        ("twilio_auth_token", SAFE["twilio_auth_token"] + "\n", "contains spaces"),
        ("nlg_token", "n4Jw8Zq1Xc6Vm3Lp", "shorter than 32"),  # ours: 32 characters at least
        ("secret_key", "k" * 40, "too repetitive"),
        ("secret_key", "please-change-me-" + "Qm3vX8kZp1Lr7Tg2", "a placeholder"),
        ("stripe_webhook_secret", "test-" + "s8Hq2Zt5Lm9Xc3Vb7Nk1", "a placeholder"),
        ("stripe_api_key", "   ", "empty"),
    ],
)
def test_empty_short_or_placeholder_secrets_are_refused_in_production(
    name: str, value: str, problem: str
) -> None:
    with pytest.raises(ValidationError, match=f"{name.upper()} is {problem}"):
        _settings(**{name: value})


def test_every_problem_is_listed_at_once() -> None:
    with pytest.raises(ValidationError) as raised:
        _settings(twilio_auth_token="", nlg_token="DEV-x")
    assert "NLG_TOKEN is a placeholder" in str(raised.value)
    assert "TWILIO_AUTH_TOKEN is empty" in str(raised.value)


def test_production_needs_a_database_url() -> None:
    with pytest.raises(ValidationError, match="DATABASE_URL"):
        _settings(database_url="")


def test_unsigned_twilio_webhooks_are_refused_in_production() -> None:
    with pytest.raises(ValidationError, match="TWILIO_VALIDATE_SIGNATURES"):
        _settings(twilio_validate_signatures=False)


def test_development_runs_on_embedded_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("DATABASE_URL", "ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None, var_dir=tmp_path)
    assert settings.effective_database_url.startswith("sqlite:///")


def test_development_replaces_public_default_secrets_with_per_install_ones(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The defaults are in the source: in development they never sign or check anything."""
    for name in ("ENVIRONMENT", *(n.upper() for n in (*OWN_SECRETS, *PROVIDER_SECRETS))):
        monkeypatch.delenv(name, raising=False)
    first = Settings(_env_file=None, var_dir=tmp_path, nlg_token="")
    again = Settings(_env_file=None, var_dir=tmp_path)
    other_install = Settings(_env_file=None, var_dir=tmp_path / "other")
    for name in (*OWN_SECRETS, *PROVIDER_SECRETS):
        value = getattr(first, name)
        assert value != Settings.model_fields[name].default and len(value) >= 32, name
        assert getattr(again, name) == value  # every process of the install agrees
        assert getattr(other_install, name) != value
    assert stat.S_IMODE((tmp_path / "local-secrets.json").stat().st_mode) == 0o600
    mine = Settings(_env_file=None, var_dir=tmp_path, stripe_webhook_secret="whsec_from_stripe_cli")
    assert mine.stripe_webhook_secret == "whsec_from_stripe_cli"  # a value one sets is kept


def test_test_environment_writes_no_secret_file(tmp_path: Path) -> None:
    Settings(_env_file=None, environment="test", var_dir=tmp_path)
    assert not (tmp_path / "local-secrets.json").exists()


def test_postgres_urls_use_psycopg3() -> None:
    assert normalise_database_url("postgres://u@h/d") == "postgresql+psycopg://u@h/d"


def test_an_unknown_default_time_zone_stops_start_up() -> None:
    """Refused when read, not discovered later as contacts failing debtor by debtor."""
    with pytest.raises(ValidationError, match="DEFAULT_TIMEZONE 'Europe/Pariss' is not a known"):
        _settings(default_timezone="Europe/Pariss")


IMAP = {
    "imap_host": "imap.creancier.example",
    "imap_username": "relances@creancier.example",
    "imap_password": "p9Lk2Xw7Qz4Rt1Vc",
}


def test_a_configured_mailbox_over_tls_starts_in_production() -> None:
    assert _settings(**IMAP, imap_security="starttls").imap_enabled
    assert not _settings().imap_enabled  # off unless IMAP_HOST is set


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"imap_security": "none"}, "IMAP_SECURITY=none is refused in production"),
        ({"imap_password": "secret"}, "IMAP_PASSWORD is shorter than 16"),
        ({"imap_password": "changeme-imap-password"}, "IMAP_PASSWORD is a placeholder"),
        ({"imap_password": ""}, "IMAP_USERNAME and IMAP_PASSWORD are required"),
        ({"imap_username": ""}, "IMAP_USERNAME and IMAP_PASSWORD are required"),
    ],
)
def test_production_refuses_a_mailbox_without_tls_or_with_a_weak_password(
    overrides: dict[str, str], problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        _settings(**{**IMAP, **overrides})


def test_a_local_imap_server_may_be_plain_text_in_production() -> None:
    """As for SMTP: a connection to the same machine never crosses a network."""
    assert _settings(**{**IMAP, "imap_host": "127.0.0.1", "imap_security": "none"}).imap_enabled


def test_a_mailbox_without_an_account_is_refused_in_every_environment() -> None:
    with pytest.raises(ValidationError, match="IMAP_USERNAME and IMAP_PASSWORD are required"):
        Settings(_env_file=None, environment="test", imap_host="imap.creancier.example")  # type: ignore[call-arg]


def test_the_portal_address_limit_defaults_to_20_failures_an_hour() -> None:
    settings = _settings()
    assert (settings.portal_address_max_failures, settings.portal_address_window_minutes) == (
        20,
        60,
    )


def test_the_console_address_limit_defaults_to_20_failures_an_hour() -> None:
    settings = _settings()
    assert (settings.console_address_max_failures, settings.console_address_window_minutes) == (
        20,
        60,
    )


def test_the_console_address_limit_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONSOLE_ADDRESS_MAX_FAILURES", "8")
    monkeypatch.setenv("CONSOLE_ADDRESS_WINDOW_MINUTES", "1440")
    settings = _settings()
    assert (settings.console_address_max_failures, settings.console_address_window_minutes) == (
        8,
        1440,
    )
    assert settings.portal_address_max_failures == 20  # each form has its own


def test_the_portal_address_limit_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PORTAL_ADDRESS_MAX_FAILURES", "50")
    monkeypatch.setenv("PORTAL_ADDRESS_WINDOW_MINUTES", "15")
    settings = _settings()
    assert (settings.portal_address_max_failures, settings.portal_address_window_minutes) == (
        50,
        15,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("portal_address_max_failures", 0),  # every visitor refused before any check
        ("portal_address_max_failures", -1),
        ("portal_address_max_failures", 10_001),
        ("portal_address_max_failures", "twenty"),
        ("portal_address_window_minutes", 0),  # no window: no limit at all
        ("portal_address_window_minutes", 7 * 24 * 60 + 1),  # past a week
        ("portal_address_window_minutes", 1.5),
        ("console_address_max_failures", 0),
        ("console_address_max_failures", -1),
        ("console_address_max_failures", 10_001),
        ("console_address_max_failures", "twenty"),
        ("console_address_window_minutes", 0),
        ("console_address_window_minutes", 7 * 24 * 60 + 1),
        ("console_address_window_minutes", 1.5),
    ],
)
def test_an_address_limit_out_of_bounds_stops_start_up(name: str, value: object) -> None:
    with pytest.raises(ValidationError, match=name):
        _settings(**{name: value})


@pytest.mark.parametrize(
    ("failures", "minutes"), [(1, 1), (10_000, 7 * 24 * 60)], ids=["lowest", "highest"]
)
def test_the_console_address_limit_accepts_its_bounds(failures: int, minutes: int) -> None:
    settings = _settings(
        console_address_max_failures=failures, console_address_window_minutes=minutes
    )
    assert (settings.console_address_max_failures, settings.console_address_window_minutes) == (
        failures,
        minutes,
    )
