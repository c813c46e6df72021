"""Dispatcher: turns planned actions into contacts, exactly once per invoice and stage.

For each group (one debtor, one day) it
1. claims the rows with a conditional UPDATE (`status in (planned, retry)` → `sending`) and
   commits: a second worker's UPDATE then matches nothing, so it never sends the same thing; a
   crash leaves them `sending` (release_stale marks them failed, never re-queued);
2. re-checks each invoice (paid, disputed, promised... since planning) and cancels those rows;
3. asks compliance for each channel in the stage's order, at the moment of the send (after the
   rate limiter's wait, by the real clock); a time-based block (window, cap) defers the group,
   an opt-out moves to the next channel; letters go through the same check (pressure rules);
4. primes Rasa with EXTERNAL_reminder (stage + invoice refs) and sends the texts it returns;
5. retries provider errors with backoff, and falls back to the next channel on a hard failure.
"""

from __future__ import annotations

import logging
import socket
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import event, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from relance import audit
from relance.compliance.service import Decision, check_contact
from relance.conversations import whatsapp_window
from relance.conversations.assistant_turn import Triggerable, probe_from_settings, trigger_turn
from relance.conversations.ports import (
    BatchMailGateway,
    DeliveryError,
    MailGateway,
    OutboundGateway,
    OutboundMail,
    get_gateway,
    get_mail_gateway,
)
from relance.conversations.reminder_purpose import DISCREET_TEMPLATE, reminder_purpose
from relance.conversations.repository import conversation_for_debtor
from relance.conversations.service import turn_metadata
from relance.db.base import utcnow
from relance.db.models import (
    Contact,
    Conversation,
    Debtor,
    DunningAction,
    Invoice,
    Letter,
    Message,
    Task,
)
from relance.db.models.enums import Channel
from relance.dunning.context import DebtorContext, InvoiceRow, load_contexts, skip_reason
from relance.dunning.planner import INVOICE_COLUMNS, idempotency_key, local_today
from relance.dunning.ratelimit import RateLimiter
from relance.dunning.reminder_content import (
    reminder_invoices,
    reminder_link,
    reminder_variables,
)
from relance.dunning.writer import PENDING
from relance.experiments.service import (
    STAGE_OFFSET,
    ArmChoice,
    RunningExperiment,
    expose_contact,
    running_snapshot,
    withdraw,
)
from relance.outbox.service import emit
from relance.plans.repository import open_invoices
from relance.policy.schema import Policy, Stage
from relance.policy.service import active_policy
from relance.rasa_client import AssistantUnavailable

if TYPE_CHECKING:
    from relance.dunning.email_batch import EmailBatch, Prepared

log = logging.getLogger(__name__)

REMINDER_INTENT = "EXTERNAL_reminder"
NOTICE_SUFFIX = "_notice"
EXPERIMENTS_TTL_SECONDS = 60.0
# E-mail groups per batch: two batches are in hand at once (one on the wire, the next prepared,
# see email_batch.MailPipeline), so ~200 e-mails in doubt at most after a crash, for three
# commits and a few dozen queries per batch instead of four commits and ~24 queries each.
MAIL_BATCH = 100


class LetterMaker(Protocol):
    """Queues one formal notice for these invoices (default: letters.service.create_formal_notice)."""

    def __call__(
        self,
        session: Session,
        debtor: Debtor,
        invoice_ids: list[int] | None = None,
        *,
        now: datetime | None = None,
        policy: Policy | None = None,
    ) -> Letter: ...


def _default_assistant() -> Triggerable:
    """Rasa over REST: trigger_intent primes the reminder, append_events rewinds a half turn."""
    from relance.rasa_client import client_from_settings

    return client_from_settings()


def sender_for(channel: str) -> str:
    from relance.settings import get_settings

    settings = get_settings()
    senders: dict[str, str] = {
        Channel.WHATSAPP: settings.twilio_whatsapp_from,
        Channel.VOICE: settings.twilio_voice_from,
        Channel.EMAIL: settings.mail_from,
    }
    return senders.get(channel, settings.twilio_sms_from)


def stage_for(policy: Policy, debtor: Debtor, key: str) -> Stage:
    """The policy stage for an action; `<stage>_notice` is the SMS announcing a letter."""
    track = policy.track_for(debtor.segment, debtor.risk_class)
    stages = {s.key: s for s in track.stages}
    if key in stages:
        return stages[key]
    base = stages.get(key.removesuffix(NOTICE_SUFFIX))
    if base is None:  # stage removed from the policy since planning: keep its wording
        base = track.stages[0]
    if key.endswith(NOTICE_SUFFIX):
        return base.model_copy(
            update={
                "key": key,
                "kind": "message",
                "channels": ["sms", "whatsapp"],
                "max_attempts": 3,
            }
        )
    return base


class Dispatcher:
    def __init__(
        self,
        factory: Callable[[], Session] | sessionmaker[Session],
        *,
        gateway: OutboundGateway | None = None,
        mail_gateway: MailGateway | None = None,
        assistant: Triggerable | None = None,
        limiter: RateLimiter | None = None,
        policy: Policy | None = None,
        worker_id: str | None = None,
        letter_maker: LetterMaker | None = None,
        clock: Callable[[], datetime] = utcnow,
        mail_batch: int = MAIL_BATCH,
    ) -> None:
        self._factory = factory
        self._gateway = gateway
        self._mail_gateway = mail_gateway
        self._assistant = assistant
        self._limiter = limiter
        self._policy = policy
        self.worker_id = worker_id or f"{socket.gethostname()}:{id(self):x}"
        self._letter_maker = letter_maker
        # The real clock: a run lasts minutes (the rate limiter sleeps between sends), so the
        # contact window is checked against it at the moment of each send, never against the
        # instant the run started.
        self._clock = clock
        self._experiments: tuple[float, list[RunningExperiment]] | None = None
        # Due e-mail groups go in batches of this many (relance.dunning.email_batch); 0: one
        # at a time, as every other channel.
        self.mail_batch = mail_batch

    def _running_experiments(self, session: Session) -> list[RunningExperiment]:
        """The running experiments, read at most once a minute (not twice per contact): a new
        experiment or an arm stopped by the hourly job reaches the sends within a minute."""
        now = time.monotonic()
        if self._experiments is None or now - self._experiments[0] > EXPERIMENTS_TTL_SECONDS:
            self._experiments = (now, running_snapshot(session))
        return self._experiments[1]

    # -- public -----------------------------------------------------------------------------
    def run(self, *, now: datetime | None = None, limit: int = 500) -> Counter[str]:
        """Dispatch up to `limit` due groups, highest priority first. Returns outcome counts.

        `now` is when the run starts; each group then gets the time it is reached (`now` plus
        the time elapsed on the clock), so the last groups of a long run are not judged by the
        first group's time.
        """
        clock = self._clock_from(now)
        now = clock()
        with self._factory() as session:
            keys = list(
                session.scalars(
                    select(DunningAction.group_key)
                    .where(_due(now))
                    .group_by(DunningAction.group_key)
                    .order_by(func.max(DunningAction.priority).desc(), DunningAction.group_key)
                    .limit(limit)
                )
            )
        outcomes: Counter[str] = Counter()
        gateway = self._batch_gateway()
        emails = self._email_groups(keys, now) if gateway is not None else {}
        if not emails:
            for key in keys:
                outcomes[self._dispatch(key, clock)] += 1
            return outcomes
        from relance.dunning.email_batch import MailPipeline

        assert gateway is not None
        pipeline = MailPipeline(lambda batch_keys: self._prepare_emails(batch_keys, clock, gateway))
        batch: list[str] = []
        debtors: set[int] = set()
        try:
            for key in keys:
                debtor_id = emails.get(key)
                if debtor_id is None:
                    outcomes += pipeline.drain()  # its debtor may be in the batch in flight
                    outcomes[self._dispatch(key, clock)] += 1
                    continue
                # One group per debtor in a batch: the pressure rules judge a second contact
                # after the first one's outcome.
                if debtor_id in debtors or len(batch) >= self.mail_batch:
                    outcomes += pipeline.submit(batch, debtors)
                    batch, debtors = [], set()
                batch.append(key)
                debtors.add(debtor_id)
            if batch:
                outcomes += pipeline.submit(batch, debtors)
        finally:
            outcomes += pipeline.close()
        return outcomes

    def _batch_gateway(self) -> BatchMailGateway | None:
        """The mail gateway when it sends in batches and batches are on."""
        if self.mail_batch <= 0:
            return None
        try:
            gateway = self._mail_gateway or get_mail_gateway()
        except RuntimeError:  # no mail edge installed: no e-mail can go anyway
            return None
        return gateway if isinstance(gateway, BatchMailGateway) else None

    def _email_groups(self, keys: list[str], now: datetime) -> dict[str, int]:
        """The groups among `keys` whose current channel is e-mail, with their debtor (one
        query per 500 groups)."""
        from relance.dunning.email_batch import is_email_group

        rows: dict[str, list[Any]] = {}
        with self._factory() as session:
            for start in range(0, len(keys), 500):
                for row in session.execute(
                    select(
                        DunningAction.group_key,
                        DunningAction.debtor_id,
                        DunningAction.kind,
                        DunningAction.channel,
                        DunningAction.channels,
                    )
                    .where(DunningAction.group_key.in_(keys[start : start + 500]), _due(now))
                    .order_by(DunningAction.id)
                ):
                    rows.setdefault(row[0], []).append(row)
        return {
            key: group[0][1]
            for key, group in rows.items()
            if is_email_group([(r[2], r[3], r[4]) for r in group])
        }

    def _prepare_emails(
        self, keys: list[str], clock: Callable[[], datetime], gateway: BatchMailGateway
    ) -> tuple[EmailBatch, Session, Prepared] | Counter[str]:
        """One batch of e-mail groups claimed and composed, for `MailPipeline` to send; or, for
        an error before its first commit (nothing claimed, nothing sent), the groups' outcomes
        on the one-group path instead, where an error stays its group's. A batch that failed
        after its claim comes back settled, for `finish` to count."""
        from relance.dunning.email_batch import EmailBatch

        session = self._factory()
        committed = False

        def mark() -> None:
            nonlocal committed
            committed = True

        batch = EmailBatch(self, gateway, clock)
        try:
            event.listen(session, "after_commit", lambda _s: mark())
            return batch, session, batch.prepare(session, keys)
        except Exception:
            session.close()
            if committed:
                raise
            log.exception("e-mail batch of %d groups failed: dispatched one by one", len(keys))
        outcomes: Counter[str] = Counter()
        for key in keys:
            outcomes[self._dispatch(key, clock)] += 1
        return outcomes

    def continue_group(
        self, group_key: str, after: int, reasons: list[str], clock: Callable[[], datetime]
    ) -> str:
        """The channels after the `after`th for a group the e-mail batch claimed (still
        `sending`, by this worker) and could not send by e-mail; as `_dispatch` would have
        gone on."""
        session = self._factory()
        try:
            live = list(
                session.scalars(
                    select(DunningAction)
                    .where(
                        DunningAction.group_key == group_key,
                        DunningAction.status == "sending",
                        DunningAction.claimed_by == self.worker_id,
                    )
                    .order_by(DunningAction.id)
                )
            )
            if not live:
                return "taken"
            try:
                debtor = session.get(Debtor, live[0].debtor_id)
                assert debtor is not None
                policy = self._policy or active_policy(session)
                lead = max(
                    (stage_for(policy, debtor, a.stage) for a in live),
                    key=lambda s: s.offset_days,
                )
                numbers = list(
                    session.scalars(
                        select(Invoice.number)
                        .where(Invoice.id.in_([a.invoice_id for a in live]))
                        .order_by(Invoice.due_date, Invoice.id)
                    )
                )
                outcome = self._contact(
                    session,
                    debtor,
                    live,
                    numbers,
                    lead,
                    policy,
                    clock,
                    after=after,
                    reasons=reasons,
                )
                session.commit()
                return outcome
            except Exception as exc:
                log.exception("dispatch of %s failed", group_key)
                session.rollback()
                session.execute(
                    update(DunningAction)
                    .where(DunningAction.id.in_([a.id for a in live]))
                    .values(status="failed", outcome="error", detail=str(exc)[:500])
                )
                session.commit()
                return "error"
        finally:
            session.close()

    def dispatch_group(self, group_key: str, *, now: datetime | None = None) -> str:
        return self._dispatch(group_key, self._clock_from(now))

    def _clock_from(self, start: datetime | None) -> Callable[[], datetime]:
        """The clock, shifted so that it reads `start` now (unshifted without a start)."""
        if start is None:
            return self._clock
        offset = start - self._clock()
        return lambda: self._clock() + offset

    def _dispatch(self, group_key: str, clock: Callable[[], datetime]) -> str:
        now = clock()
        session = self._factory()
        try:
            actions = self._claim(session, group_key, now)
            if not actions:
                return "taken"
            ids = [a.id for a in actions]
            try:
                outcome = self._process(session, actions, now, clock)
                session.commit()
                return outcome
            except Exception as exc:
                # Unknown state (the provider may have accepted it): never retry blindly.
                log.exception("dispatch of %s failed", group_key)
                session.rollback()
                session.execute(
                    update(DunningAction)
                    .where(DunningAction.id.in_(ids))
                    .values(status="failed", outcome="error", detail=str(exc)[:500])
                )
                session.commit()
                return "error"
        finally:
            session.close()

    # -- steps ------------------------------------------------------------------------------
    def _claim(self, session: Session, group_key: str, now: datetime) -> list[DunningAction]:
        """The group's due rows, now `sending` and committed; RETURNING loads them in the same
        statement (they were read again by a second query before)."""
        actions = list(
            session.scalars(
                update(DunningAction)
                .where(DunningAction.group_key == group_key, _due(now))
                .values(status="sending", claimed_by=self.worker_id, claimed_at=now)
                .returning(DunningAction),
                execution_options={"synchronize_session": False},
            )
        )
        session.commit()
        return sorted(actions, key=lambda a: a.id)

    def _process(
        self,
        session: Session,
        actions: list[DunningAction],
        now: datetime,
        clock: Callable[[], datetime],
    ) -> str:
        debtor = session.get(Debtor, actions[0].debtor_id)
        assert debtor is not None
        policy = self._policy or active_policy(session)
        today = local_today(now, debtor.timezone, {})
        live, invoices = self._recheck(session, debtor, actions, today)
        if not live:
            return "cancelled"
        stages = {a.stage: stage_for(policy, debtor, a.stage) for a in live}
        lead = max(stages.values(), key=lambda s: s.offset_days)
        kind = live[0].kind
        if kind == "legal":
            return self._escalate(session, debtor, live, lead, now)
        if kind == "letter":
            return self._letter(session, debtor, live, lead, policy, now)
        # The invoice numbers the reminder names, from the rows the re-check just read.
        numbers = [
            row.number
            for row in sorted(
                (invoices[a.invoice_id] for a in live), key=lambda r: (r.due_date, r.id)
            )
        ]
        return self._contact(session, debtor, live, numbers, lead, policy, clock)

    def _recheck(
        self, session: Session, debtor: Debtor, actions: list[DunningAction], today: Any
    ) -> tuple[list[DunningAction], dict[int, InvoiceRow]]:
        """Drop invoices paid, disputed, promised... since the plan was made; the rows still due,
        and the invoices as read (by id)."""
        ctx = load_contexts(session, today, debtor_ids=[debtor.id]).get(debtor.id)
        rows = {
            r[0]: InvoiceRow._make(r)
            for r in session.execute(
                select(*INVOICE_COLUMNS).where(Invoice.id.in_([a.invoice_id for a in actions]))
            )
        }
        return still_due(actions, rows, ctx or DebtorContext(), today), rows

    def _contact(
        self,
        session: Session,
        debtor: Debtor,
        live: list[DunningAction],
        numbers: list[str],
        lead: Stage,
        policy: Policy,
        clock: Callable[[], datetime],
        *,
        after: int | None = None,
        reasons: list[str] | None = None,
    ) -> str:
        """Try the stage's channels in order from the group's current one; `after`: the index
        of a channel the batched e-mail path already tried (its `reasons`), to go on from."""
        first = live[0]
        channels = list(first.channels or lead.channels)
        start = channel_index(first, lead)
        conversation = conversation_for_debtor(session, debtor)
        reasons = list(reasons or [])
        attempts = first.attempts if after is None else 0
        if after is not None:
            start = after + 1
        for channel in channels[start:]:
            contact = _contact_for(debtor, channel)
            now = clock()
            decision = check_contact(
                session, debtor=debtor, contact=contact, channel=channel, now=now, policy=policy
            )
            waited = (
                self._limiter.acquire(sender_for(channel))
                if decision.allowed and self._limiter is not None
                else 0.0
            )
            if waited:
                # The limiter slept: the window may have closed meanwhile. Judge the send by
                # the time it actually goes out.
                now = clock()
                decision = check_contact(
                    session,
                    debtor=debtor,
                    contact=contact,
                    channel=channel,
                    now=now,
                    policy=policy,
                )
            if not decision.allowed:
                if decision.retry_at is not None:
                    _defer(session, debtor, live, channel, decision)
                    return "deferred"
                reasons.append(f"{channel}: {decision.explain()}")
                attempts = 0
                continue
            assert contact is not None
            # A running experiment on the template this text sends (the stage's, or the discreet
            # one before anyone answered from this number) gives the debtor an arm, kept for the
            # whole experiment, and records the exposure now: Rasa's /nlg reads it for the text.
            # A call speaks its own purpose and stays out of experiments.
            choice = (
                expose_contact(
                    session,
                    self._running_experiments(session),
                    debtor_id=debtor.id,
                    template=(
                        lead.template if decision.may_disclose_details else DISCREET_TEMPLATE
                    ),
                    stage=lead.key,
                    channel=channel,
                    segment=debtor.segment,
                    language=conversation.language,
                    group_key=first.group_key,
                    invoice_ids=[a.invoice_id for a in live],
                    now=now,
                    # A letter's announcement is no stage the planner ordered or moved.
                    kind="notice" if lead.key.endswith(NOTICE_SUFFIX) else lead.kind,
                )
                if channel != Channel.VOICE
                else None
            )
            try:
                message = self._send(
                    session, conversation, contact, channel, lead, numbers, decision, choice, live
                )
            except DeliveryError as exc:
                if choice is not None:
                    withdraw(session, choice)
                attempts += 1
                if failed_send(live, channel, exc, attempts, lead, policy, now, reasons):
                    return "retry"
                attempts = 0
                continue
            audit.record(
                session,
                **mark_sent(
                    debtor, live, channel, now, attempts, message, lead, numbers, decision, choice
                ),
            )
            return "sent"
        return undeliverable(session, debtor, live, attempts, reasons)

    def _send(
        self,
        session: Session,
        conversation: Conversation,
        contact: Contact,
        channel: str,
        lead: Stage,
        numbers: list[str],
        decision: Decision,
        choice: ArmChoice | None,
        live: list[DunningAction],
    ) -> Message | None:
        gateway = self._gateway or get_gateway()
        if channel == Channel.VOICE:
            return gateway.place_call(
                session,
                conversation=conversation,
                contact=contact,
                purpose=reminder_purpose(
                    lead.bot_stage, discreet=not decision.may_disclose_details
                ),
            )
        texts = self._reminder_texts(
            session,
            conversation,
            channel,
            lead,
            numbers,
            decision,
            choice.variant_index if choice is not None else None,
        )
        if channel == Channel.EMAIL:
            # One e-mail carries the whole reminder; its key makes a retried job send it once.
            mail = reminder_mail(live, lead, contact, texts, decision)
            return (self._mail_gateway or get_mail_gateway()).send_mail(
                session, conversation=conversation, contact=contact, mail=mail
            )
        first_message = None
        template = channel == Channel.WHATSAPP and not whatsapp_window.is_open(
            session, conversation.id, contact.address
        )
        for text in texts:
            message = gateway.send_text(
                session,
                conversation=conversation,
                contact=contact,
                text=text,
                author="bot",
                first_contact_template=template,
            )
            first_message = first_message or message
        return first_message

    def _reminder_texts(
        self,
        session: Session,
        conversation: Conversation,
        channel: str,
        lead: Stage,
        numbers: list[str],
        decision: Decision,
        variant_index: int | None,
    ) -> list[str]:
        """Prime Rasa so the reply lands in context; render locally if Rasa is unreachable.

        Rasa asks /nlg for the reminder's text, which finds the debtor's experiment arm in the
        database (committed below); the local rendering is given the same `variant_index`.
        """
        entities = reminder_entities(conversation, channel, lead, numbers, decision)
        sender_id = conversation.sender_id
        # No transaction may stay open while Rasa works: its actions and the api's /nlg read
        # and write the database during the turn, and on SQLite this transaction holds the
        # file's write lock. They used to wait for it until Rasa timed out (the reminder was
        # then rendered locally) and api requests queued behind it answered 503 "database is
        # locked". What is done so far (claim, re-check, conversation) is kept either way.
        session.commit()
        texts = self.ask_assistant(sender_id, entities, lead)
        if texts:
            return texts
        return self.render_locally(
            session, conversation, channel, lead, numbers, decision, variant_index
        )

    def ask_assistant(self, sender_id: str, entities: dict[str, Any], lead: Stage) -> list[str]:
        """The reminder's texts from Rasa, or none when it is unreachable (rendered locally
        then). Call it with no transaction open: Rasa's actions and /nlg use the database."""
        try:
            replies = trigger_turn(
                self._assistant or _default_assistant(),
                sender_id,
                REMINDER_INTENT,
                entities,
                probe_from_settings(),
            )
            return [m.text for m in replies if m.text]
        except AssistantUnavailable as exc:
            log.warning("assistant unavailable, rendering %s locally: %s", lead.template, exc)
            return []

    def render_locally(
        self,
        session: Session,
        conversation: Conversation,
        channel: str,
        lead: Stage,
        numbers: list[str],
        decision: Decision,
        variant_index: int | None,
    ) -> list[str]:
        """What the assistant would have said, rendered here from the wording; DeliveryError
        (retryable) when no template fits."""
        discreet = not decision.may_disclose_details
        from relance.nlg.renderer import UnknownResponse, render
        from relance.nlg.templates_store import active_templates
        from relance.settings import get_settings

        variables: dict[str, Any] = {
            "invoice_refs": numbers,
            "stage": lead.bot_stage,
            "first_contact": decision.disclose_ai,
            "creditor_name": get_settings().creditor_name,
        }
        debtor = conversation.debtor
        # The instalments still to come are not claimed; the named ones (pre-due) stay in.
        invoices = open_invoices(session, debtor.id, named=numbers)
        today = local_today(utcnow(), debtor.timezone, {})
        about = reminder_invoices(invoices, numbers, stage=lead.bot_stage, today=today)
        if not discreet and about:
            # What the assistant's action would have said: amount, due date, link, RF reference,
            # all of the invoices the reminder is about (never one not yet due, for a dunning stage).
            url = reminder_link(session, debtor, about)
            variables |= reminder_variables(debtor, about, numbers, today=today, pay_url=url)
        try:
            return [
                render(
                    active_templates(session),
                    DISCREET_TEMPLATE if discreet else lead.template,
                    language=conversation.language,
                    tone=lead.tone,
                    channel=channel,
                    variables=variables,
                    variant_index=variant_index,
                )
            ]
        except (UnknownResponse, FileNotFoundError) as exc:
            raise DeliveryError(
                "assistant unavailable and no local template",
                retryable=True,
                code="assistant_unavailable",
            ) from exc

    def _letter(
        self,
        session: Session,
        debtor: Debtor,
        live: list[DunningAction],
        lead: Stage,
        policy: Policy,
        now: datetime,
    ) -> str:
        """One mise en demeure for all of the debtor's invoices in this group (one per currency:
        a letter cannot add euros and pounds), then one SMS notice per letter.

        Invoices already claimed by a live letter (queued by hand, or by an earlier run) are
        linked to it, never claimed twice.
        """
        from relance.letters.service import claimed_invoices, create_formal_notice

        maker: LetterMaker = self._letter_maker or create_formal_notice
        claimed = claimed_invoices(session, debtor.id, [a.invoice_id for a in live])
        fresh = [a for a in live if a.invoice_id not in claimed]
        # A letter is a contact: the pressure rules (frequency cap, minimum gap, a collector
        # owning the case) apply to it as to a text; only the phone windows do not. Checked
        # before the rows of invoices already in a letter are linked (they become "sent" now
        # and would count as a contact just made).
        decision = check_contact(
            session, debtor=debtor, contact=None, channel=Channel.LETTER, now=now, policy=policy
        )
        for action in live:
            if action.invoice_id in claimed:
                letter_id = claimed[action.invoice_id]
                _set(
                    [action],
                    status="sent",
                    channel=Channel.LETTER,
                    sent_at=now,
                    attempts=1,
                    letter_id=letter_id,
                    outcome="already_in_letter",
                    detail=f"already claimed by letter {letter_id}",
                )
        if not fresh:
            return "letter_exists"
        if not decision.allowed:
            if decision.retry_at is not None:
                _defer(session, debtor, fresh, Channel.LETTER, decision)
                return "deferred"
            _set(
                fresh,
                status="blocked",
                outcome=f"blocked:{decision.codes[0]}",
                detail=decision.explain(),
            )
            audit.record(
                session,
                actor="system",
                action="dunning.undeliverable",
                debtor_id=debtor.id,
                group=fresh[0].group_key,
                why=decision.explain(),
            )
            return "blocked"
        currency_of: dict[int, str] = {
            invoice_id: currency
            for invoice_id, currency in session.execute(
                select(Invoice.id, Invoice.currency).where(
                    Invoice.id.in_([a.invoice_id for a in fresh])
                )
            )
        }
        by_currency: dict[str, list[DunningAction]] = {}
        for action in fresh:
            by_currency.setdefault(currency_of[action.invoice_id], []).append(action)
        # The notice goes by e-mail first (with the letter's PDF) when the stage lists e-mail.
        wanted = (
            ("email", "sms", "whatsapp") if Channel.EMAIL in lead.channels else ("sms", "whatsapp")
        )
        channels = [c for c in wanted if _contact_for(debtor, c) is not None]
        for actions in by_currency.values():
            letter = maker(session, debtor, [a.invoice_id for a in actions], now=now, policy=policy)
            _set(
                actions,
                status="sent",
                channel=Channel.LETTER,
                sent_at=now,
                attempts=1,
                letter_id=letter.id,
                detail=f"letter {letter.id} queued for registered mail",
            )
            # A stage-offset experiment on this letter stage: the letter is the contact its arm
            # timed, recorded as the exposure (written once the letter is queued).
            offsets = [e for e in self._running_experiments(session) if e.factor == STAGE_OFFSET]
            if offsets:
                expose_contact(
                    session,
                    offsets,
                    debtor_id=debtor.id,
                    template="",
                    stage=lead.key,
                    channel=Channel.LETTER,
                    segment=debtor.segment,
                    language=session.scalar(
                        select(Conversation.language).where(Conversation.debtor_id == debtor.id)
                    )
                    or debtor.language,
                    group_key=actions[0].group_key,
                    invoice_ids=[a.invoice_id for a in actions],
                    now=now,
                    kind="letter",
                )
            # Tell the debtor by SMS that a letter is on its way (compliance-checked like any
            # text): one notice per letter, its rows grouped under the letter.
            self._plan_notice(session, debtor, actions, lead, channels, letter.id, now)
            audit.record(
                session,
                actor="system",
                action="dunning.letter_queued",
                entity=letter,
                debtor_id=debtor.id,
                invoice_ids=[a.invoice_id for a in actions],
            )
        return "letter"

    @staticmethod
    def _plan_notice(
        session: Session,
        debtor: Debtor,
        actions: list[DunningAction],
        lead: Stage,
        channels: list[str],
        letter_id: int,
        now: datetime,
    ) -> None:
        if not channels:
            return
        notice_key = f"{lead.key}{NOTICE_SUFFIX}"
        keys = {a.invoice_id: idempotency_key(a.invoice_id, notice_key) for a in actions}
        existing = set(
            session.scalars(
                select(DunningAction.idempotency_key).where(
                    DunningAction.idempotency_key.in_(list(keys.values()))
                )
            )
        )
        for action in actions:
            if keys[action.invoice_id] in existing:
                continue  # an earlier notice for this invoice: a duplicate key would abort all
            session.add(
                DunningAction(
                    idempotency_key=keys[action.invoice_id],
                    invoice_id=action.invoice_id,
                    debtor_id=debtor.id,
                    stage=notice_key,
                    kind="message",
                    group_key=f"{debtor.id}:notice:letter-{letter_id}",
                    status="planned",
                    priority=action.priority,
                    channels=channels,
                    channel=channels[0],
                    planned_at=now,
                    letter_id=letter_id,
                )
            )

    def _escalate(
        self,
        session: Session,
        debtor: Debtor,
        live: list[DunningAction],
        lead: Stage,
        now: datetime,
    ) -> str:
        task = Task(
            kind="legal_escalation",
            debtor_id=debtor.id,
            due_at=now,
            details={"invoice_ids": [a.invoice_id for a in live], "stage": lead.key},
        )
        session.add(task)
        session.flush()
        _set(live, status="sent", sent_at=now, attempts=1, detail=f"task {task.id}")
        audit.record(
            session,
            actor="system",
            action="dunning.legal_escalation",
            entity=task,
            debtor_id=debtor.id,
        )
        emit(
            session,
            "escalation",
            debtor_id=debtor.id,
            kind="legal",
            invoice_ids=[a.invoice_id for a in live],
            stage=lead.key,
        )
        return "escalated"


def reminder_entities(
    conversation: Conversation, channel: str, lead: Stage, numbers: list[str], decision: Decision
) -> dict[str, Any]:
    """The EXTERNAL_reminder's entities: stage, invoices, first contact, discretion."""
    entities: dict[str, Any] = {"stage": lead.bot_stage, "invoice_refs": numbers}
    if decision.disclose_ai:
        entities["first_contact"] = True
    if not decision.may_disclose_details:
        entities["discreet"] = True
    # Who and where, as a debtor message's metadata says it: Rasa's trigger_intent carries no
    # metadata, and a conversation the reminder opens would otherwise have no debtor in its
    # slots (actions/session.py ActionSyncMessageSlots reads these entities).
    entities.update(turn_metadata(conversation, channel))
    return entities


def reminder_mail(
    live: list[DunningAction], lead: Stage, contact: Contact, texts: list[str], decision: Decision
) -> OutboundMail:
    """One e-mail carries the whole reminder; its key makes a retried job send it once."""
    return OutboundMail(
        idempotency_key=f"dunning:{live[0].group_key}:{lead.key}:{contact.address}",
        paragraphs=tuple(texts),
        stage=lead.bot_stage,
        tone=lead.tone,
        invoice_ids=tuple(a.invoice_id for a in live),
        letter_id=live[0].letter_id,
        discreet=not decision.may_disclose_details,
    )


def channel_index(first: DunningAction, lead: Stage) -> int:
    """Where in the stage's channels the group stands: its current channel, else the first."""
    channels = list(first.channels or lead.channels)
    return channels.index(first.channel) if first.channel in channels else 0


def mark_sent(
    debtor: Debtor,
    live: list[DunningAction],
    channel: str,
    now: datetime,
    attempts: int,
    message: Message | int | None,
    lead: Stage,
    numbers: list[str],
    decision: Decision,
    choice: ArmChoice | None,
) -> dict[str, Any]:
    """The group's rows sent; returns the `dunning.sent` audit event's fields (one path records
    it at once, the batched e-mail path in bulk with the batch's others)."""
    message_id = message.id if isinstance(message, Message) else message
    _set(
        live,
        status="sent",
        channel=channel,
        sent_at=now,
        attempts=attempts + 1,
        message_id=message_id,
        outcome=None,
        detail=f"stage {lead.key} via {channel}",
    )
    experiment: dict[str, int] = {}
    if choice is not None:
        experiment = {"experiment": choice.experiment_id, "arm": choice.arm_index}
    return {
        "actor": "system",
        "action": "dunning.sent",
        "debtor_id": debtor.id,
        "stage": lead.key,
        "channel": channel,
        "invoices": numbers,
        "group": live[0].group_key,
        "ai_disclosed": decision.disclose_ai,
        **experiment,
    }


def failed_send(
    live: list[DunningAction],
    channel: str,
    exc: DeliveryError,
    attempts: int,
    lead: Stage,
    policy: Policy,
    now: datetime,
    reasons: list[str],
) -> bool:
    """A send on `channel` failed (its `attempts`th): True when the group is set to retry with
    backoff; False when the channel is given up (the next one is tried). The reason is kept."""
    reasons.append(f"{channel}: {exc.code or ''} {exc}".strip())
    if exc.retryable and attempts < lead.max_attempts:
        _set(
            live,
            status="retry",
            channel=channel,
            attempts=attempts,
            next_attempt_at=now + _backoff(policy, attempts),
            outcome=exc.code or "retryable",
            detail=str(exc)[:500],
        )
        return True
    return False


def undeliverable(
    session: Session, debtor: Debtor, live: list[DunningAction], attempts: int, reasons: list[str]
) -> str:
    """No channel left: blocked when only the debtor's state stopped every channel (opt-out,
    wrong person, collector...), failed when a send failed; audited either way."""
    blocked_only = all(
        "opted_out" in r
        or "wrong_person" in r
        or "no_contact" in r
        or "handed_off" in r
        or "no_common_window" in r
        or "bounced" in r
        for r in reasons
    )
    _set(
        live,
        status="blocked" if blocked_only else "failed",
        attempts=attempts,
        outcome="no_channel_left",
        detail="; ".join(reasons)[:2000],
    )
    audit.record(
        session,
        actor="system",
        action="dunning.undeliverable",
        debtor_id=debtor.id,
        group=live[0].group_key,
        why=reasons,
    )
    return "blocked" if blocked_only else "failed"


def release_stale(session: Session, *, now: datetime, older_than: timedelta) -> int:
    """Claims left in `sending` by a worker that died mid-send are marked `failed`.

    Never re-queued automatically: the provider may have accepted the message before the crash,
    and a duplicate reminder is worse than a missed one. Collectors see them in the audit trail.
    """
    rows = list(
        session.scalars(
            select(DunningAction).where(
                DunningAction.status == "sending", DunningAction.claimed_at < now - older_than
            )
        )
    )
    for row in rows:
        row.status, row.outcome = "failed", "stale_claim"
        row.detail = f"claimed by {row.claimed_by} at {row.claimed_at}, never finished"
    if rows:
        audit.record(
            session,
            actor="system",
            action="dunning.stale_claims",
            count=len(rows),
            ids=[r.id for r in rows][:100],
        )
    return len(rows)


def still_due(
    actions: list[DunningAction], rows: dict[int, InvoiceRow], ctx: DebtorContext, today: Any
) -> list[DunningAction]:
    """The rows whose invoice may still be dunned today; the others cancelled with the reason."""
    live = []
    for action in actions:
        reason = skip_reason(rows[action.invoice_id], ctx, today)
        if reason is None:
            live.append(action)
        else:
            action.status, action.outcome, action.detail = "cancelled", reason[0], reason[1]
    return live


def _due(now: datetime) -> Any:
    return (DunningAction.status.in_(PENDING)) & or_(
        DunningAction.next_attempt_at.is_(None), DunningAction.next_attempt_at <= now
    )


def _defer(
    session: Session, debtor: Debtor, live: list[DunningAction], channel: str, decision: Decision
) -> None:
    """Back to `planned` until every time-based block lifts, the reason stored and audited."""
    _set(
        live,
        status="planned",
        channel=channel,
        next_attempt_at=decision.retry_at,
        outcome=f"deferred:{decision.codes[0]}",
        detail=decision.explain(),
    )
    audit.record(
        session,
        actor="system",
        action="dunning.deferred",
        debtor_id=debtor.id,
        group=live[0].group_key,
        channel=channel,
        why=decision.explain(),
        retry_at=decision.retry_at,
    )


def _set(actions: list[DunningAction], **values: Any) -> None:
    for action in actions:
        for name, value in values.items():
            setattr(action, name, value)


def _backoff(policy: Policy, attempts: int) -> timedelta:
    steps = policy.contact.retry_backoff_minutes or [5.0]
    return timedelta(minutes=steps[min(attempts, len(steps)) - 1])


def _contact_for(debtor: Debtor, channel: str) -> Contact | None:
    wanted = [channel] if channel != Channel.VOICE else [Channel.VOICE, Channel.SMS]
    for name in wanted:
        rows = [c for c in debtor.contacts if c.channel == name]
        reachable = [c for c in rows if c.reachable]
        if reachable or rows:
            return (reachable or rows)[0]
    return None
