"""All models, imported here so `Base.metadata` is complete for Alembic and tests."""

from relance.db.models.admin import (
    ApiToken,
    AuditEvent,
    ConsoleSession,
    Letter,
    LoginThrottle,
    PaymentLink,
    User,
    VersionedDocument,
)
from relance.db.models.cases import (
    Dispute,
    Installment,
    LatePaymentReason,
    PaymentPlan,
    Promise,
    Task,
)
from relance.db.models.conversations import Conversation, Handoff, Message, WebhookEvent
from relance.db.models.debtors import Contact, Debtor
from relance.db.models.dunning import DunningAction, DunningRun, DunningSkip
from relance.db.models.invoices import Invoice, Payment, PaymentAllocation
from relance.ledger.models import (  # kept by the ledger (payments work)
    PaymentReview,
    SavedPaymentMethod,
)
from relance.portal.models import PortalAccess, PortalAttachment  # kept by the portal

__all__ = [
    "ApiToken",
    "AuditEvent",
    "ConsoleSession",
    "Contact",
    "Conversation",
    "Debtor",
    "Dispute",
    "DunningAction",
    "DunningRun",
    "DunningSkip",
    "Handoff",
    "Installment",
    "Invoice",
    "LatePaymentReason",
    "Letter",
    "LoginThrottle",
    "Message",
    "Payment",
    "PaymentAllocation",
    "PaymentLink",
    "PaymentPlan",
    "PaymentReview",
    "PortalAccess",
    "PortalAttachment",
    "Promise",
    "SavedPaymentMethod",
    "Task",
    "User",
    "VersionedDocument",
    "WebhookEvent",
]
