"""One typed settings object for every process (api, action server, worker, CLI).

Values come from the environment (or a `.env` file). Defaults run the whole stack on one machine
with no set-up: SQLite file, in-process worker, sandbox payment provider, a local Twilio recorder.
The secrets' defaults are public: in development each one left at its default is replaced by a
per-installation random value (`relance/local_secrets.py`); in production the app refuses to start
on a secret that is empty, short, padded with spaces or a placeholder (issue 17.2).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from relance import local_secrets
from relance.languages import Language

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Secrets we choose ourselves: at least 32 characters (e.g. `python -c "import secrets;
# print(secrets.token_urlsafe(32))"`). Secrets issued by Twilio and Stripe have their own formats;
# for them the floor only catches typos and placeholders.
OWN_SECRETS = ("secret_key", "rasa_auth_token", "nlg_token", "mail_inbound_secret")
PROVIDER_SECRETS = ("twilio_auth_token", "stripe_webhook_secret")
MIN_OWN_SECRET_LENGTH = 32
MIN_PROVIDER_SECRET_LENGTH = 16
_PLACEHOLDER_PREFIXES = ("dev-", "dev_", "test-", "test_", "e2e-", "demo-", "demo_", "example")
_PLACEHOLDER_WORDS = (
    "change-me",
    "changeme",
    "change_me",
    "placeholder",
    "replace-me",
    "your-",
    "your_",
    "xxxx",
)
_MIN_DISTINCT_CHARACTERS = 8
# Hosts a plain-text SMTP or IMAP connection may reach in production: it never leaves the machine.
_LOOPBACK = ("localhost", "127.0.0.1", "::1")
# The bounds of every per-address limit (relance/address_limit.py): at least one failure (0 would
# refuse every visitor before any check) and one minute (no window is no limit), at most a week.
AddressMaxFailures = Annotated[int, Field(ge=1, le=10_000)]
AddressWindowMinutes = Annotated[int, Field(ge=1, le=7 * 24 * 60)]


def secret_problem(value: str, *, minimum: int) -> str | None:
    """Why this value cannot be a production secret, or None when it can."""
    if not value or not value.strip():
        return "empty"
    if any(c.isspace() for c in value):
        return "contains spaces"
    lowered = value.lower()
    if lowered.startswith(_PLACEHOLDER_PREFIXES) or any(w in lowered for w in _PLACEHOLDER_WORDS):
        return "a placeholder"
    if len(value) < minimum:
        return f"shorter than {minimum} characters"
    if len(set(value)) < _MIN_DISTINCT_CHARACTERS:
        return "too repetitive to be random"
    return None


class Settings(BaseSettings):
    """Runtime configuration. Field names map to upper-case environment variables."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    var_dir: Path = PROJECT_ROOT / "var"
    database_url: str = ""
    public_base_url: str = "http://localhost:8000"
    secret_key: str = "dev-secret-key-change-me"
    api_tokens: list[str] = Field(default_factory=list)
    # Reverse proxies whose X-Forwarded-For is believed (addresses or CIDR networks, JSON list).
    # Empty: the header is ignored and the peer address is the client (relance/web/client_ip.py).
    trusted_proxies: list[str] = Field(default_factory=list)
    # /docs, /redoc and /openapi.json; unset: on in development and test, off in production.
    api_docs: bool | None = None

    # Rasa (own venv, reached over HTTP only)
    rasa_url: str = "http://localhost:5005"
    rasa_timeout_seconds: float = 10.0
    rasa_auth_token: str = "dev-rasa-token"  # protects Rasa's HTTP API (trigger_intent, events)
    nlg_token: str = "dev-nlg-token"  # Rasa sends it as ?token= to our NLG endpoint
    action_server_port: int = 5055
    # The action server as the api reaches it (its /health is checked around each turn: Rasa 3.6
    # answers 200 with an empty or half-done reply when it cannot reach it). Empty: no check.
    action_server_url: str = ""
    rasa_tracker_store_url: str = ""  # empty: SQLite file under var/; PostgreSQL when replicated
    # The worker holds reminders back until the assistant answers its status (model loaded,
    # action server up), at most this long after it starts; then it renders them locally.
    assistant_startup_wait_seconds: float = 300.0

    # Twilio
    twilio_account_sid: str = "ACdevaccount00000000000000000000"
    twilio_auth_token: str = "dev-twilio-auth-token"
    twilio_api_base: str = "http://localhost:8099"
    twilio_sms_from: str = "+33757000000"
    twilio_whatsapp_from: str = "whatsapp:+33757000001"
    twilio_voice_from: str = "+33757000002"
    twilio_whatsapp_template_sid: str = "HXdevtemplate"
    twilio_validate_signatures: bool = True
    # Live transfer of a call to a person: E.164 number (empty: always a callback task instead)
    # and opening hours in DEFAULT_TIMEZONE, French public holidays closed.
    collector_phone: str = ""
    collector_hours: str = "mon-fri 09:00-18:00"

    # Stripe (empty key: the local sandbox provider is used)
    stripe_api_key: str = ""
    stripe_webhook_secret: str = "dev-stripe-webhook-secret"
    stripe_api_base: str = "https://api.stripe.com"
    payment_link_ttl_days: int = 7
    # Personal self-service portal links (portal/): how long one works before a new one is sent.
    portal_link_ttl_days: int = Field(default=30, ge=1, le=365)

    # E-mail (mail/). SMTP relay for outbound; `smtp_security`: "starttls" (587), "tls"
    # (implicit TLS, 465) or "none" (a local relay or the development sink only).
    smtp_host: str = "localhost"
    smtp_port: int = 8025
    smtp_security: Literal["starttls", "tls", "none"] = "none"
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_timeout_seconds: float = 30.0
    # Sends per second to one recipient domain (big providers throttle bursts; 0: no cap).
    smtp_domain_rate_per_second: float = Field(default=20.0, ge=0)
    # The creditor's sending address and domain: Message-IDs are minted on this domain.
    mail_from: str = "relances@relance-demo.example"
    mail_reply_to: str = ""  # empty: replies go to mail_from (which the inbound route receives)
    # DKIM: a PEM private key file and selector; empty path: messages go unsigned.
    dkim_private_key_path: str = ""
    dkim_selector: str = "relance"
    # Answers to one address not on file per 24 hours (the identity-check answer): a sender's
    # address can be forged, and without a cap a flood of forged messages made Relance mail the
    # same stranger again and again (backscatter). 0: never answer unknown senders.
    mail_unknown_sender_answers_per_day: int = Field(default=3, ge=0)
    # Shared secret of POST /mail/inbound (HMAC-SHA256 of the raw message, X-Relance-Signature).
    mail_inbound_secret: str = "dev-mail-inbound-secret"
    # IMAP polling (mail/imap.py), the other way replies come in: the worker reads the unseen
    # messages of IMAP_FOLDER every IMAP_POLL_SECONDS. Empty IMAP_HOST: no polling. Give it a
    # mailbox (or folder) of its own: a message someone opens in a mail client is marked seen
    # and the poller no longer takes it. `imap_security` as for SMTP: "tls" (implicit, 993),
    # "starttls" (143) or "none" (a local server only).
    imap_host: str = ""
    imap_port: int = Field(default=993, ge=1, le=65535)
    imap_security: Literal["tls", "starttls", "none"] = "tls"
    imap_username: str = ""
    imap_password: str = ""
    imap_folder: str = Field(default="INBOX", pattern=r"^[^\r\n]+$")
    imap_poll_seconds: float = Field(default=60.0, ge=5)
    imap_timeout_seconds: float = Field(default=30.0, gt=0)

    # Worker
    celery_broker_url: str = ""  # empty: tasks run in-process
    # A reply to a debtor whose send failed for a transient reason (SMTP 4xx, Twilio 429/5xx, a
    # network error) is sent again by the worker after BASE seconds, doubled after each failed
    # attempt up to MAX seconds, at most MAX_ATTEMPTS sends in all (the first one included);
    # then a collector answers (relance/conversations/reply_retry.py).
    reply_retry_base_seconds: float = Field(default=60.0, gt=0)
    reply_retry_max_seconds: float = Field(default=30 * 60.0, gt=0)
    reply_retry_max_attempts: int = Field(default=8, ge=1, le=50)
    redis_url: str = ""

    # Creditor identity (letters, HELP replies). Name and phone are never blank: the wording
    # prints them (relance/nlg/renderer.py refuses to send "please call ." instead).
    creditor_name: str = Field(default="Relance Demo SAS", pattern=r"\S")
    creditor_address: str = "12 rue de la Paix, 75002 Paris, France"
    creditor_phone: str = Field(default="+33 1 84 00 00 00", pattern=r"\S")
    creditor_siren: str = "000 000 000"
    # The creditor's bank accounts (IBANs, comma-separated): a statement for any other account is
    # refused (relance/bank_statements). The default is the demo account.
    creditor_ibans: str = "FR7630006000011234567890189"
    bank_statement_max_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    bank_statement_max_lines: int = Field(default=100_000, ge=1)

    # Privacy: conversation content of settled debtors is purged this many days after the
    # account went quiet (0 switches the job off); accounting records are kept regardless.
    retention_conversation_days: int = Field(default=730, ge=0)
    # Outbox events whose every webhook delivery succeeded are deleted this many days after they
    # were emitted (0 keeps them forever); failed or pending ones stay for the delivery log.
    retention_webhook_days: int = Field(default=90, ge=0)

    # Conversation rules
    identity_check: Literal["postcode", "customer_number"] = "postcode"
    identity_max_attempts: int = 3
    # The portal's unauthenticated identity checks (sign-in with a customer number, the question
    # on a personal link) from one client address: at this many failures within the sliding
    # window, that address gets a 429 and no check at all until the oldest failure ages out
    # (relance/portal/client_limit.py). The per-number and per-debtor limits above stop guessing
    # one debtor; this one stops one client trying a few postcodes on every customer number.
    # An IPv6 client counts per /64. People behind one office or carrier-grade NAT address share
    # the count: 20 an hour is far more than honest typing errors.
    portal_address_max_failures: AddressMaxFailures = 20
    portal_address_window_minutes: AddressWindowMinutes = 60
    # The console's login from one client address (relance/auth/ratelimit.py): the per address
    # + e-mail and per-account limits stop guessing one account; this one stops one client
    # trying a common password on every staff e-mail in turn (password spraying). Colleagues
    # behind one office address share the count: 20 an hour is far more than their typos.
    console_address_max_failures: AddressMaxFailures = 20
    console_address_window_minutes: AddressWindowMinutes = 60
    default_language: Language = "fr"
    default_timezone: str = "Europe/Paris"

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        """A typo here would otherwise surface as a failed contact, debtor by debtor."""
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"DEFAULT_TIMEZONE '{value}' is not a known IANA time zone") from exc
        return value

    @property
    def effective_database_url(self) -> str:
        """SQLite file under var/ unless DATABASE_URL says otherwise."""
        if self.database_url:
            return normalise_database_url(self.database_url)
        return f"sqlite:///{self.var_dir / 'relance.db'}"

    @property
    def creditor_iban_list(self) -> list[str]:
        """The configured accounts, compact and upper-case (as statements write them)."""
        return [i.replace(" ", "").upper() for i in self.creditor_ibans.split(",") if i.strip()]

    @property
    def api_docs_enabled(self) -> bool:
        return self.api_docs if self.api_docs is not None else self.environment != "production"

    @property
    def uses_stripe(self) -> bool:
        return bool(self.stripe_api_key)

    @property
    def imap_enabled(self) -> bool:
        return bool(self.imap_host)

    @model_validator(mode="after")
    def _imap_complete(self) -> Settings:
        """In every environment: a host with no account would fail at each poll, every minute."""
        if self.imap_enabled and not (self.imap_username and self.imap_password):
            raise ValueError("IMAP_HOST is set: IMAP_USERNAME and IMAP_PASSWORD are required too")
        return self

    @model_validator(mode="after")
    def _secure_secrets(self) -> Settings:
        if self.environment == "development":
            self._use_local_secrets()
        if self.environment != "production":
            return self
        problems = [
            f"{name.upper()} is {problem}"
            for names, minimum in (
                (OWN_SECRETS, MIN_OWN_SECRET_LENGTH),
                (PROVIDER_SECRETS, MIN_PROVIDER_SECRET_LENGTH),
            )
            for name in names
            if (problem := secret_problem(str(getattr(self, name)), minimum=minimum))
        ]
        if self.stripe_api_key and (
            problem := secret_problem(self.stripe_api_key, minimum=MIN_PROVIDER_SECRET_LENGTH)
        ):
            problems.append(f"STRIPE_API_KEY is {problem}")
        if self.imap_enabled and (
            problem := secret_problem(self.imap_password, minimum=MIN_PROVIDER_SECRET_LENGTH)
        ):
            problems.append(f"IMAP_PASSWORD is {problem}")
        if problems:
            raise ValueError("refusing to start in production: " + "; ".join(sorted(problems)))
        if not self.database_url:
            raise ValueError("DATABASE_URL is required in production")
        if not self.twilio_validate_signatures:
            raise ValueError("TWILIO_VALIDATE_SIGNATURES=false is refused in production")
        if self.smtp_security == "none" and self.smtp_host not in _LOOPBACK:
            raise ValueError("SMTP_SECURITY=none is refused in production for a remote SMTP host")
        if self.imap_enabled and self.imap_security == "none" and self.imap_host not in _LOOPBACK:
            raise ValueError("IMAP_SECURITY=none is refused in production for a remote IMAP host")
        return self

    def _use_local_secrets(self) -> None:
        """Secrets left at their public default (or empty) get this installation's own value."""
        unset = [
            name
            for name in (*OWN_SECRETS, *PROVIDER_SECRETS)
            if not str(getattr(self, name)).strip()
            or getattr(self, name) == type(self).model_fields[name].default
        ]
        if unset:
            generated = local_secrets.load_or_create(self.var_dir, unset)
            for name in unset:
                setattr(self, name, generated[name])


def normalise_database_url(url: str) -> str:
    """Accept the usual `postgres://` / `postgresql://` forms and use the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


@lru_cache
def get_settings() -> Settings:
    """Process-wide settings, read once. Tests call `get_settings.cache_clear()` after monkeypatching env."""
    return Settings()
