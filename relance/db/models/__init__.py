"""All models, imported here so `Base.metadata` is complete for Alembic and tests."""

from relance.bank_statements.models import BankStatement, BankStatementEntry
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
from relance.db.models.conversations import (
    Conversation,
    Handoff,
    Message,
    ReplyRetry,
    WebhookEvent,
)
from relance.db.models.debtors import Contact, Debtor
from relance.db.models.dunning import DunningAction, DunningRun, DunningSkip
from relance.db.models.invoices import Invoice, Payment, PaymentAllocation
from relance.experiments.models import (  # kept by the experiments package (issue 21)
    Experiment,
    ExperimentArm,
    ExperimentExposure,
)
from relance.ledger.models import (  # kept by the ledger (payments work)
    InstallmentCharge,
    PaymentReview,
    SavedPaymentMethod,
)
from relance.outbox.models import (  # kept by the outbox (outbound webhooks, issue 22)
    OutboxEvent,
    WebhookDelivery,
    WebhookEndpoint,
)
from relance.portal.models import PortalAccess, PortalAttachment  # kept by the portal

__all__ = [
    "ApiToken",
    "AuditEvent",
    "BankStatement",
    "BankStatementEntry",
    "ConsoleSession",
    "Contact",
    "Conversation",
    "Debtor",
    "Dispute",
    "DunningAction",
    "DunningRun",
    "DunningSkip",
    "Experiment",
    "ExperimentArm",
    "ExperimentExposure",
    "Handoff",
    "Installment",
    "InstallmentCharge",
    "Invoice",
    "LatePaymentReason",
    "Letter",
    "LoginThrottle",
    "Message",
    "OutboxEvent",
    "Payment",
    "PaymentAllocation",
    "PaymentLink",
    "PaymentPlan",
    "PaymentReview",
    "PortalAccess",
    "PortalAttachment",
    "Promise",
    "ReplyRetry",
    "SavedPaymentMethod",
    "Task",
    "User",
    "VersionedDocument",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
]
