"""A small, realistic portfolio for the browser tests and the screenshots."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy.orm import Session

from relance import audit
from relance.auth.users import create_user
from relance.db.models import (
    Contact,
    Conversation,
    Debtor,
    Dispute,
    Handoff,
    Invoice,
    Letter,
    Message,
    Payment,
    PaymentPlan,
    Promise,
)

PASSWORD = "browser test password"
ADMIN = "admin@relance.test"
COLLECTOR = "collector@relance.test"


def _now() -> datetime:
    return datetime.now(UTC)


def seed(session: Session) -> dict[str, int]:
    """Users, debtors, invoices, conversations and handoffs; returns ids the tests need."""
    create_user(session, ADMIN, PASSWORD, role="admin", display_name="Alice Admin")
    create_user(session, COLLECTOR, PASSWORD, role="collector", display_name="Claire Collector")
    today = date.today()
    now = _now()
    ids: dict[str, int] = {}

    people = [
        ("C-1001", "Camille Petit", None, "consumer", "fr", 32_000, 18, "sms"),
        (
            "B-2002",
            "Marc Lefèvre",
            "Boulangerie Lefèvre SARL",
            "b2b",
            "fr",
            845_000,
            52,
            "whatsapp",
        ),
        ("C-1003", "John Miller", None, "consumer", "en", 129_900, 95, "voice"),
        ("B-2004", "Sophie Bernard", "Atelier Bernard", "b2b", "fr", 56_700, 9, "sms"),
        ("C-1005", "Lucas Moreau", None, "consumer", "fr", 24_500, -4, "sms"),
    ]
    for n, (number, name, company, segment, lang, amount, late, channel) in enumerate(people):
        debtor = Debtor(
            customer_number=number,
            name=name,
            company=company,
            segment=segment,
            language=lang,
            postcode="75011",
            city="Paris",
        )
        session.add(debtor)
        session.flush()
        ids[number] = debtor.id
        phone = f"+3361234{n:04d}"
        session.add(Contact(debtor_id=debtor.id, channel="sms", address=phone))
        session.add(Contact(debtor_id=debtor.id, channel="voice", address=phone))
        if channel == "whatsapp":
            session.add(
                Contact(debtor_id=debtor.id, channel="whatsapp", address=f"whatsapp:{phone}")
            )
        due = today - timedelta(days=late)
        invoice = Invoice(
            debtor_id=debtor.id,
            number=f"F-2026-{4100 + n}",
            amount_minor=amount,
            issue_date=due - timedelta(days=30),
            due_date=due,
            description="Prestations",
        )
        session.add(invoice)
        session.add(
            Invoice(
                debtor_id=debtor.id,
                number=f"F-2026-{4200 + n}",
                amount_minor=amount // 3,
                paid_minor=amount // 3,
                status="paid",
                issue_date=due - timedelta(days=70),
                due_date=due - timedelta(days=40),
                paid_at=now - timedelta(days=30 + n),
            )
        )
        session.add(
            Payment(
                debtor_id=debtor.id,
                amount_minor=amount // 3,
                currency="EUR",
                method="card",
                provider="sandbox",
                provider_ref=f"seed-{n}",
                received_at=now - timedelta(days=7 * n + 2),
            )
        )
        session.flush()
        conversation = Conversation(
            debtor_id=debtor.id,
            sender_id=f"debtor-{debtor.id}",
            language=lang,
            last_channel=channel,
        )
        session.add(conversation)
        session.flush()
        ids[f"conv-{number}"] = conversation.id
        for stage, days in (("friendly", 20), ("firm", 12)):
            audit.record(
                session,
                actor="system",
                action="dunning.sent",
                debtor_id=debtor.id,
                stage=stage,
                channel="sms",
            ).at = now - timedelta(days=days + n)

    def say(conv_key: str, rows: list[tuple[str, str, str, str, int]]) -> None:
        conversation = session.get(Conversation, ids[conv_key])
        assert conversation is not None
        for direction, author, channel, body, minutes_ago in rows:
            created = now - timedelta(minutes=minutes_ago)
            session.add(
                Message(
                    conversation_id=conversation.id,
                    direction=direction,
                    author=author,
                    channel=channel,
                    body=body,
                    created_at=created,
                    status="received" if direction == "inbound" else "delivered",
                )
            )
            conversation.last_message_at = created
            if direction == "inbound":
                conversation.last_inbound_at = created

    say(
        "conv-C-1001",
        [
            (
                "outbound",
                "bot",
                "sms",
                "Bonjour Camille, votre facture F-2026-4100 de 320,00 € est "
                "échue depuis le "
                + (today - timedelta(days=18)).strftime("%d/%m")
                + ". Pouvez-vous la "
                "régler ? Répondez à ce message si besoin.",
                300,
            ),
            ("inbound", "debtor", "sms", "Bonjour, je ne peux pas tout payer ce mois-ci.", 45),
            (
                "outbound",
                "bot",
                "sms",
                "Je comprends. Je peux vous proposer un paiement en 3 fois. "
                "Cela vous conviendrait-il ?",
                44,
            ),
            ("inbound", "debtor", "sms", "Je voudrais parler à quelqu'un s'il vous plaît.", 12),
        ],
    )
    say(
        "conv-B-2002",
        [
            (
                "outbound",
                "bot",
                "whatsapp",
                "Bonjour, Relance Demo SAS vous contacte au sujet de la "
                "facture F-2026-4101 (8 450,00 €).",
                900,
            ),
            (
                "inbound",
                "debtor",
                "whatsapp",
                "La livraison du 12 était incomplète, je conteste cette facture.",
                200,
            ),
            (
                "outbound",
                "bot",
                "whatsapp",
                "Merci, j'ai enregistré votre contestation (D-7781). "
                "Les relances sont suspendues le temps de l'examen.",
                199,
            ),
        ],
    )
    say(
        "conv-C-1003",
        [
            (
                "outbound",
                "bot",
                "voice",
                "(call) Hello, this is an automated call from Relance Demo "
                "SAS about invoice F-2026-4102.",
                2000,
            ),
            ("inbound", "debtor", "voice", "(speech) I lost my job, I need more time.", 1998),
            ("outbound", "bot", "voice", "(call) I am putting you through to an advisor.", 1997),
            ("inbound", "debtor", "sms", "Hi, still waiting for someone to call me back.", 95),
        ],
    )
    say(
        "conv-B-2004",
        [
            ("inbound", "debtor", "sms", "Je paierai vendredi.", 30),
            ("outbound", "bot", "sms", "Merci, c'est noté pour vendredi.", 29),
        ],
    )

    handoffs = [
        ("conv-C-1001", "requested", 1, 12),
        ("conv-B-2002", "plan_approval", 2, 190),
        ("conv-C-1003", "vulnerability", 3, 1997),
    ]
    for key, reason, priority, minutes in handoffs:
        handoff = Handoff(
            conversation_id=ids[key],
            reason=reason,
            priority=priority,
            created_at=now - timedelta(minutes=minutes),
        )
        session.add(handoff)
    session.flush()

    marc = ids["B-2002"]
    invoice_id = (
        session.query(Invoice.id)
        .filter(Invoice.debtor_id == marc, Invoice.status == "open")
        .scalar()
    )
    session.add(
        Dispute(
            reference="D-7781",
            debtor_id=marc,
            invoice_id=invoice_id,
            reason="incomplete_delivery",
            details="Livraison du 12 incomplète",
        )
    )
    session.add(
        PaymentPlan(
            debtor_id=marc,
            total_minor=845_000,
            currency="EUR",
            installments_count=10,
            frequency="monthly",
            status="pending_approval",
            note="Above the 6-installment limit",
        )
    )
    camille = ids["C-1001"]
    session.add(
        Promise(
            debtor_id=camille,
            amount_minor=10_000,
            currency="EUR",
            promised_date=today - timedelta(days=20),
            status="kept",
        )
    )
    session.add(
        Promise(
            debtor_id=camille,
            amount_minor=12_000,
            currency="EUR",
            promised_date=today - timedelta(days=5),
            status="broken",
        )
    )
    session.add(
        Promise(
            debtor_id=ids["B-2004"],
            amount_minor=56_700,
            currency="EUR",
            promised_date=today + timedelta(days=3),
            status="pending",
        )
    )
    session.add(
        Letter(
            debtor_id=ids["C-1003"],
            language="en",
            principal_minor=129_900,
            currency="EUR",
            deadline=today + timedelta(days=8),
        )
    )
    session.flush()
    return ids
