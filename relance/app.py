"""Assembles the FastAPI application: the one place where `relance` imports the edge packages."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import FastAPI

from relance.runtime.model_status import read_status
from relance.settings import Settings, get_settings
from relance.web.errors import install_error_handlers
from relance.web.limits import BodySizeLimitMiddleware
from relance.web.security_headers import SecurityHeadersMiddleware


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the api process: Twilio and Stripe webhooks, payer pages, debtor portal, console, NLG,
    JSON API."""
    from console.endpoints import router as console_router
    from mail.endpoints import MAX_INBOUND_BYTES
    from mail.endpoints import router as mail_router
    from messaging.endpoints import router as messaging_router
    from messaging.status import handle_status_callback as on_message_status
    from payment_links.endpoints import router as payments_router
    from portal.endpoints import DISPUTE_MAX_BODY_BYTES, DISPUTE_PATH, dispute_too_large
    from portal.endpoints import router as portal_router
    from relance.api.einvoices import EINVOICE_MAX_BODY_BYTES, EINVOICE_PATH
    from relance.api.endpoints import router as api_router
    from relance.nlg.endpoints import NLG_MAX_BODY_BYTES
    from relance.nlg.endpoints import router as nlg_router
    from relance.simulator.endpoints import router as simulator_router
    from twilio_edge.status_routes import status_router
    from voice.endpoints import router as voice_router
    from voice.status import handle_call_status as on_call_status

    settings = settings or get_settings()
    app = FastAPI(
        title="Relance",
        version="0.1.0",
        description="Conversational debt-collection assistant: webhooks, console and JSON API.",
        # The schema maps every route and parameter for an attacker too: off in production
        # unless API_DOCS=true.
        docs_url="/docs" if settings.api_docs_enabled else None,
        redoc_url="/redoc" if settings.api_docs_enabled else None,
        openapi_url="/openapi.json" if settings.api_docs_enabled else None,
    )
    app.state.settings = settings
    # /nlg: Rasa posts the dialogue state; that route checks its token before reading the body.
    # Bank statements (API and console upload) are files of several megabytes by nature.
    statement_bytes = settings.bank_statement_max_bytes + 64 * 1024  # multipart envelope
    # E-invoice uploads (PDFs, zip archives) get their own ceiling; the portal's dispute form
    # carries attachments (a few files of at most 5 MB).
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=256 * 1024,
        per_path={
            "/nlg": NLG_MAX_BODY_BYTES,
            "/mail/inbound": MAX_INBOUND_BYTES,
            "/api/v1/payments/bank-statements": statement_bytes,
            "/console/payments/bank-statements": statement_bytes,
            EINVOICE_PATH: EINVOICE_MAX_BODY_BYTES,
            "/console/admin/einvoices": EINVOICE_MAX_BODY_BYTES,
        },
        per_pattern=[(DISPUTE_PATH, DISPUTE_MAX_BODY_BYTES)],
        on_too_large=[(DISPUTE_PATH, dispute_too_large)],
    )
    app.add_middleware(SecurityHeadersMiddleware)
    install_error_handlers(app)
    app.include_router(messaging_router)
    app.include_router(voice_router)
    # One status URL for Twilio: the edge routes message and call statuses to their channel.
    app.include_router(status_router(on_message=on_message_status, on_call=on_call_status))
    app.include_router(mail_router)
    app.include_router(payments_router)
    app.include_router(portal_router)
    app.include_router(nlg_router)
    app.include_router(api_router, prefix="/api/v1")
    app.include_router(simulator_router)
    app.include_router(console_router)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, object]:
        """Liveness, plus which assistant model serves when `relance run` started a quick one
        (relance/runtime/model_status.py): a newcomer sees the production model arrive."""
        body: dict[str, object] = {"status": "ok"}
        status = read_status(settings.var_dir)
        if status is not None:
            body["assistant_model"] = asdict(status)
        return body

    return app


def create_wired_app() -> FastAPI:
    """Entry point for uvicorn in real processes: ports wired to Twilio and the payment provider.

    Tests call `create_app()` and install their own fakes instead.
    """
    from relance.wiring import wire

    wire()
    return create_app()
