"""Due e-mail reminders in batches: three transactions for a batch instead of four per e-mail.

Sending one e-mail reminder cost ~24 queries and 3–4 fsync'd commits, so the dispatcher could
never come near the SMTP server's own rate (issue 19). A batch of e-mail groups goes through:

1. one transaction: the groups claimed (one UPDATE ... RETURNING), their debtors, invoices and
   compliance facts read with a few IN-queries, each group re-checked in memory by the very
   functions the one-group path uses (`still_due`, `decide_contact`), the groups cancelled,
   deferred or blocked settled, the conversations and experiment exposures written; commit.
   Then the assistant's turns (Rasa reads and writes the database: no transaction is open);
2. one transaction: each e-mail composed and its outbound row (Message-ID) inserted, with what
   composing wrote (payment links); commit — before any byte leaves, so a link or unsubscribe
   token in an e-mail always exists, and the SQLite write lock is free during SMTP;
3. SMTP, one e-mail after the other over the reused connection, no transaction open;
4. one transaction: the proofs, the groups' outcomes and their audit trail; commit.

A crash after (2) leaves the whole batch's groups `sending` and its rows `queued`: never sent
again (a re-run does not find them due), reported failed by `release_stale`. At most one batch
(`Dispatcher.mail_batch` groups) is in doubt, against one e-mail on the one-group path.

Only groups whose current channel is e-mail come here, one group per debtor per batch (the
pressure rules judge a debtor's second contact after the first one's outcome); a group whose
e-mail is refused or fails for good goes on with its next channel on the one-group path.
"""

from __future__ import annotations

import gc
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from relance import audit
from relance.compliance.service import ContactFacts, Decision, decide_contact, load_contact_facts
from relance.conversations.ports import BatchMailGateway, DeliveryError, PreparedMail
from relance.conversations.reminder_purpose import DISCREET_TEMPLATE
from relance.db.models import Contact, Conversation, Debtor, DunningAction, Invoice
from relance.db.models.enums import Channel
from relance.dunning.context import DebtorContext, InvoiceRow, load_contexts
from relance.dunning.planner import INVOICE_COLUMNS, local_today
from relance.experiments.service import ArmChoice, expose_contact, withdraw
from relance.policy.schema import Policy, Stage
from relance.policy.service import active_policy

if TYPE_CHECKING:
    from relance.dunning.dispatcher import Dispatcher

log = logging.getLogger(__name__)


@dataclass
class _Group:
    """One claimed group on its way through the batch."""

    key: str
    actions: list[DunningAction]
    debtor: Debtor
    live: list[DunningAction] = field(default_factory=list)
    lead: Stage | None = None
    numbers: list[str] = field(default_factory=list)
    position: int = 0  # the e-mail's index in the stage's channels
    contact: Contact | None = None
    conversation: Conversation | None = None
    facts: ContactFacts = field(default_factory=ContactFacts)
    decision: Decision = field(default_factory=Decision)
    now: datetime | None = None
    choice: ArmChoice | None = None
    entities: dict[str, Any] = field(default_factory=dict)
    sender_id: str = ""
    texts: list[str] = field(default_factory=list)
    prepared: PreparedMail | None = None
    outcome: str | None = None
    reasons: list[str] = field(default_factory=list)  # for the next channel, if any
    carry_on: bool = False  # e-mail given up: the next channel on the one-group path


@dataclass
class Prepared:
    """A batch between its steps: claimed and composed (`EmailBatch.prepare`), then sent
    (`deliver`), then recorded (`finish`)."""

    groups: list[_Group]
    sending: list[_Group] = field(default_factory=list)
    ids: dict[str, list[int]] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)
    failed: bool = False  # settled as failed by `_give_up`: nothing more to do but count
    error: BaseException | None = None  # what stopped `deliver`, raised again by `finish`

    @property
    def debtor_ids(self) -> set[int]:
        return {g.debtor.id for g in self.groups}


def is_email_group(rows: list[tuple[str, str | None, list[str] | None]]) -> bool:
    """A group (its rows' kind, channel, channels, by id) whose current channel is e-mail."""
    _kind, channel, channels = rows[0]
    if any(r[0] != "message" for r in rows) or not channels:
        return False
    current = channel if channel in channels else channels[0]
    return current == Channel.EMAIL


class EmailBatch:
    """One batch of due e-mail groups (see the module docstring)."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        gateway: BatchMailGateway,
        clock: Callable[[], datetime],
    ) -> None:
        self._dispatcher = dispatcher
        self._gateway = gateway
        self._clock = clock
        self._policy: Policy | None = None

    def run(self, session: Session, keys: list[str]) -> Counter[str]:
        """Dispatch these groups; outcome counts as `Dispatcher.run` gives them."""
        prepared = self.prepare(session, keys)
        self.deliver(prepared)
        return self.finish(session, prepared)

    def prepare(self, session: Session, keys: list[str]) -> Prepared:
        """Steps 1 and 2: claimed, judged, composed, the outbound rows committed. Nothing is
        sent yet; an error after the claim's commit settles the batch as failed."""
        groups = self._claim_and_check(session, keys)
        prepared = Prepared(groups=groups)
        prepared.outcomes["taken"] += len(keys) - len(groups)
        prepared.sending = [g for g in groups if g.outcome is None]
        # The rows' ids, readable after a rollback.
        prepared.ids = {g.key: [a.id for a in g.actions] for g in prepared.sending}
        session.commit()  # claims, cancellations, deferrals, conversations, exposures
        try:
            for group in prepared.sending:
                assert group.lead is not None
                group.texts = self._dispatcher.ask_assistant(
                    group.sender_id, group.entities, group.lead
                )
            self._compose(session, prepared.sending)
            session.commit()  # the outbound rows (and links) before any SMTP exchange
        except Exception as exc:
            self._give_up(session, prepared, exc)
        return prepared

    def deliver(self, prepared: Prepared) -> None:
        """Step 3, with no database access: `MailPipeline` runs it on its sending thread while
        the next batch is prepared. An unexpected error is kept for `finish`."""
        if prepared.failed:
            return
        try:
            self._deliver(prepared.sending)
        except Exception as exc:
            prepared.error = exc

    def finish(self, session: Session, prepared: Prepared) -> Counter[str]:
        """Step 4: proofs and outcomes committed; the groups whose e-mail went nowhere go on
        with their next channel. Returns the outcome counts."""
        if not prepared.failed:
            try:
                if prepared.error is not None:
                    raise prepared.error
                self._record(session, prepared.sending)
                session.commit()
            except Exception as exc:
                self._give_up(session, prepared, exc)
        outcomes = prepared.outcomes
        for group in prepared.groups:
            if group.carry_on:
                group.outcome = self._carry_on(group)
            outcomes[group.outcome or "error"] += 1
        return +outcomes

    def _give_up(self, session: Session, prepared: Prepared, exc: BaseException) -> None:
        """Unknown state (the server may have accepted some): never retry blindly. The groups
        not settled yet are failed with the error, for a person to look at."""
        log.error("e-mail batch of %d groups failed", len(prepared.sending), exc_info=exc)
        prepared.failed = True
        session.rollback()
        unsettled = [i for g in prepared.sending if g.outcome is None for i in prepared.ids[g.key]]
        session.execute(
            update(DunningAction)
            .where(DunningAction.id.in_(unsettled), DunningAction.status == "sending")
            .values(status="failed", outcome="error", detail=str(exc)[:500])
        )
        session.commit()
        for group in prepared.sending:
            group.outcome = group.outcome or "error"

    # -- 1. claim, re-check, judge ----------------------------------------------------------
    def _claim_and_check(self, session: Session, keys: list[str]) -> list[_Group]:
        """Claim the groups and read what judging them needs, a query per kind of fact for
        the whole batch (never one per group); then judge each in memory."""
        from relance.dunning.dispatcher import _due, stage_for

        now = self._clock()
        claimed = session.scalars(
            update(DunningAction)
            .where(DunningAction.group_key.in_(keys), _due(now))
            .values(status="sending", claimed_by=self._dispatcher.worker_id, claimed_at=now)
            .returning(DunningAction),
            execution_options={"synchronize_session": False},
        ).all()
        by_key: dict[str, list[DunningAction]] = {}
        for action in sorted(claimed, key=lambda a: a.id):
            by_key.setdefault(action.group_key, []).append(action)
        if not by_key:
            return []
        debtor_ids = sorted({a[0].debtor_id for a in by_key.values()})
        debtors = {
            d.id: d
            for d in session.scalars(
                select(Debtor)
                .where(Debtor.id.in_(debtor_ids))
                .options(selectinload(Debtor.contacts))
            )
        }
        # In the order of `keys` (priority first), as the one-group path sends them.
        groups = [
            _Group(key, by_key[key], debtors[by_key[key][0].debtor_id])
            for key in keys
            if key in by_key
        ]
        policy = self._policy = self._dispatcher._policy or active_policy(session)
        todays = {g.debtor.id: local_today(now, g.debtor.timezone, {}) for g in groups}
        invoices = {
            r[0]: InvoiceRow._make(r)
            for r in session.execute(
                select(*INVOICE_COLUMNS).where(
                    Invoice.id.in_([a.invoice_id for g in groups for a in g.actions])
                )
            )
        }
        # The earliest local day of the batch: a promise still running there is read for all;
        # `skip_reason` then judges each debtor by their own day.
        contexts = load_contexts(session, min(todays.values()), debtor_ids=debtor_ids)
        facts = load_contact_facts(
            session, debtor_ids, since=now - timedelta(days=policy.contact.per_days)
        )
        from relance.dunning.dispatcher import still_due

        for group in groups:
            debtor = group.debtor
            group.live = still_due(
                group.actions,
                invoices,
                contexts.get(debtor.id) or DebtorContext(),
                todays[debtor.id],
            )
            if not group.live:
                group.outcome = "cancelled"
        # A conversation for each debtor still to contact (as `_contact` opens it), not for
        # one whose invoices were all cancelled.
        live = [g for g in groups if g.live]
        conversations = self._conversations(session, [g.debtor for g in live])
        for group in live:
            debtor = group.debtor
            stages = {a.stage: stage_for(policy, debtor, a.stage) for a in group.live}
            group.lead = max(stages.values(), key=lambda s: s.offset_days)
            group.numbers = [
                row.number
                for row in sorted(
                    (invoices[a.invoice_id] for a in group.live), key=lambda r: (r.due_date, r.id)
                )
            ]
            group.facts = facts[debtor.id]
            group.conversation = conversations[debtor.id]
            self._judge(session, group, policy)
        return groups

    def _conversations(self, session: Session, debtors: list[Debtor]) -> dict[int, Conversation]:
        """Each debtor's conversation, the missing ones created as `conversation_for_debtor`
        creates one, but with one multi-row INSERT and one SELECT for the batch; a race with
        another process's first message falls back to the one-at-a-time creation, which
        handles it."""
        from relance.conversations.repository import conversation_for_debtor

        if not debtors:
            return {}

        def read() -> dict[int | None, Conversation]:
            return {
                c.debtor_id: c
                for c in session.scalars(
                    select(Conversation).where(Conversation.debtor_id.in_([d.id for d in debtors]))
                )
            }

        found = read()
        missing = [d for d in debtors if d.id not in found]
        if missing:
            try:
                with session.begin_nested():
                    session.execute(
                        insert(Conversation),
                        [
                            {
                                "debtor_id": d.id,
                                "sender_id": f"debtor-{d.id}",
                                "language": d.language,
                            }
                            for d in missing
                        ],
                    )
                found = read()
            except IntegrityError:
                for debtor in missing:
                    found[debtor.id] = conversation_for_debtor(session, debtor)
        return {debtor_id: c for debtor_id, c in found.items() if debtor_id is not None}

    def _judge(self, session: Session, group: _Group, policy: Policy) -> None:
        """The compliance decision for the e-mail, by the one-group path's rules; a refusal is
        settled now (deferred, blocked, or on to the next channel)."""
        from relance.dunning.dispatcher import (
            NOTICE_SUFFIX,
            _contact_for,
            _defer,
            channel_index,
            reminder_entities,
            undeliverable,
        )

        assert group.lead is not None and group.conversation is not None
        lead, debtor, first = group.lead, group.debtor, group.live[0]
        group.position = channel_index(first, lead)
        group.contact = _contact_for(debtor, Channel.EMAIL)
        group.now = self._clock()
        group.decision = decide_contact(
            group.facts,
            debtor=debtor,
            contact=group.contact,
            channel=Channel.EMAIL,
            now=group.now,
            policy=policy,
        )
        decision = group.decision
        if not decision.allowed:
            if decision.retry_at is not None:
                _defer(session, debtor, group.live, Channel.EMAIL, decision)
                group.outcome = "deferred"
                return
            group.reasons.append(f"{Channel.EMAIL}: {decision.explain()}")
            if self._has_next_channel(group):
                group.outcome, group.carry_on = "carried", True
            else:
                group.outcome = undeliverable(session, debtor, group.live, 0, group.reasons)
            return
        conversation = group.conversation
        group.choice = expose_contact(
            session,
            self._dispatcher._running_experiments(session),
            debtor_id=debtor.id,
            template=(lead.template if decision.may_disclose_details else DISCREET_TEMPLATE),
            stage=lead.key,
            channel=Channel.EMAIL,
            segment=debtor.segment,
            language=conversation.language,
            group_key=first.group_key,
            invoice_ids=[a.invoice_id for a in group.live],
            now=group.now,
            kind="notice" if lead.key.endswith(NOTICE_SUFFIX) else lead.kind,
        )
        group.entities = reminder_entities(
            conversation, Channel.EMAIL, lead, group.numbers, decision
        )
        group.sender_id = conversation.sender_id

    @staticmethod
    def _has_next_channel(group: _Group) -> bool:
        """Whether the stage lists a channel after e-mail for this group (then it goes on)."""
        assert group.lead is not None
        channels = list(group.live[0].channels or group.lead.channels)
        return group.position + 1 < len(channels)

    # -- 2. compose, claim the outbound rows ------------------------------------------------
    def _compose(self, session: Session, groups: list[_Group]) -> None:
        """Each e-mail's text (the assistant's, else rendered here), then the gateway composes
        them and writes their outbound rows; a group whose e-mail cannot be made is settled."""
        from relance.dunning.dispatcher import reminder_mail

        ready = []
        for group in groups:
            assert group.lead is not None and group.conversation is not None
            if not group.texts:  # the assistant was unreachable: rendered here
                try:
                    group.texts = self._dispatcher.render_locally(
                        session,
                        group.conversation,
                        Channel.EMAIL,
                        group.lead,
                        group.numbers,
                        group.decision,
                        group.choice.variant_index if group.choice is not None else None,
                    )
                except DeliveryError as exc:
                    self._failed(session, group, exc)
                    continue
            ready.append(group)
        items = []
        for group in ready:
            assert group.lead is not None and group.contact is not None
            mail = reminder_mail(group.live, group.lead, group.contact, group.texts, group.decision)
            assert group.conversation is not None
            items.append((group.conversation, group.contact, mail))
        for group, result in zip(ready, self._gateway.prepare_mails(session, items), strict=True):
            if isinstance(result, DeliveryError):
                self._failed(session, group, result)
            elif isinstance(result, Exception):
                log.error("composing the e-mail of %s failed: %s", group.key, result)
                from relance.dunning.dispatcher import _set

                _set(group.live, status="failed", outcome="error", detail=str(result)[:500])
                group.outcome = "error"
            else:
                group.prepared = result

    # -- 3. SMTP ----------------------------------------------------------------------------
    def _deliver(self, groups: list[_Group]) -> None:
        """Each e-mail over the one connection, no transaction open. The dispatcher's own rate
        limiter is honoured as on the one-group path: after a wait, the send is judged again
        by the clock (the facts are in memory), and one that may no longer go is not sent."""
        from relance.dunning.dispatcher import sender_for

        limiter = self._dispatcher._limiter
        for group in groups:
            prepared = group.prepared
            if prepared is None or prepared.already_sent:
                continue
            if limiter is not None and limiter.acquire(sender_for(Channel.EMAIL)):
                assert group.now is not None
                group.now = self._clock()
                again = self._decide(group)
                if not again.allowed:
                    group.decision = again
                    prepared.error = DeliveryError(
                        f"not sent: {again.explain()}", retryable=True, code="not_sent"
                    )
                    continue
            try:
                self._gateway.deliver(prepared)
            except DeliveryError:
                continue  # kept on `prepared.error`

    def _decide(self, group: _Group) -> Decision:
        """The same rules again at the group's new `now` (after the limiter's wait)."""
        assert group.now is not None and self._policy is not None
        return decide_contact(
            group.facts,
            debtor=group.debtor,
            contact=group.contact,
            channel=Channel.EMAIL,
            now=group.now,
            policy=self._policy,
        )

    # -- 4. proofs and outcomes -------------------------------------------------------------
    def _record(self, session: Session, groups: list[_Group]) -> None:
        """The proofs (the gateway's), then each group's outcome as `_contact` sets it, and the
        `dunning.sent` events in one INSERT."""
        from relance.dunning.dispatcher import _defer, mark_sent

        prepared = [g.prepared for g in groups if g.prepared is not None]
        self._gateway.record_mails(session, prepared)
        events = []
        for group in groups:
            mail = group.prepared
            if mail is None or group.outcome is not None:
                continue
            assert group.lead is not None and group.now is not None
            if mail.error is not None and mail.error.code == "not_sent":
                # The window closed while the limiter waited: as on the one-group path, where
                # no exposure was recorded yet (here it was, before the assistant's turn).
                if group.choice is not None:
                    withdraw(session, group.choice)
                if group.decision.retry_at is not None:
                    _defer(session, group.debtor, group.live, Channel.EMAIL, group.decision)
                    group.outcome = "deferred"
                else:
                    self._refused(session, group)
                continue
            if mail.error is not None:
                self._failed(session, group, mail.error)
                continue
            events.append(
                mark_sent(
                    group.debtor,
                    group.live,
                    Channel.EMAIL,
                    group.now,
                    group.live[0].attempts,
                    mail.row_id,
                    group.lead,
                    group.numbers,
                    group.decision,
                    group.choice,
                )
            )
            group.outcome = "sent"
        audit.record_many(session, [audit.event_values(**e) for e in events])

    def _refused(self, session: Session, group: _Group) -> None:
        """Compliance refused the e-mail for good: the next channel, else undeliverable."""
        from relance.dunning.dispatcher import undeliverable

        group.reasons.append(f"{Channel.EMAIL}: {group.decision.explain()}")
        if self._has_next_channel(group):
            group.outcome, group.carry_on = "carried", True
        else:
            group.outcome = undeliverable(session, group.debtor, group.live, 0, group.reasons)

    def _failed(self, session: Session, group: _Group, exc: DeliveryError) -> None:
        """A failed e-mail, by the one-group path's rule: retry with backoff, else the next
        channel, else undeliverable."""
        from relance.dunning.dispatcher import failed_send, undeliverable

        assert group.lead is not None and group.now is not None
        if group.choice is not None:
            withdraw(session, group.choice)
        assert self._policy is not None
        attempts = group.live[0].attempts + 1
        if failed_send(
            group.live,
            Channel.EMAIL,
            exc,
            attempts,
            group.lead,
            self._policy,
            group.now,
            group.reasons,
        ):
            group.outcome = "retry"
        elif self._has_next_channel(group):
            group.outcome, group.carry_on = "carried", True
        else:
            group.outcome = undeliverable(session, group.debtor, group.live, 0, group.reasons)

    def _carry_on(self, group: _Group) -> str:
        """The next channels of a group whose e-mail went nowhere, on the one-group path (its
        rows are still `sending`, claimed by this worker)."""
        return self._dispatcher.continue_group(
            group.key, group.position, group.reasons, self._clock
        )


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while one batch runs, back on after.

    A batch holds a few thousand ORM objects, rows and strings at once; the collector's passes
    over them, triggered by every few hundred allocations, cost a fifth of the time of an e-mail
    (issue 19, measured with the bench's profile). Nothing is lost: reference counting still
    frees what is not cyclic at once, and the next pass after the batch finds the rest. The
    memory a batch can hold is bounded by `MAIL_BATCH`."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass
class _Flight:
    """A prepared batch whose e-mails are on their way over SMTP (on the sending thread)."""

    batch: EmailBatch
    session: Session
    prepared: Prepared
    sent: Future[None]


class MailPipeline:
    """Batches one after the other, each batch's SMTP exchanges overlapping the next batch's
    claim and composing and the previous batch's recording.

    An SMTP exchange is mostly waiting for the server's answers (four round trips an e-mail),
    while claiming, composing and recording are the process's own work: done one after the
    other, an e-mail cost both (issue 19's bench). Here batch k is sent by one sending thread
    (`EmailBatch.deliver`, no database access) while the dispatcher's thread prepares batch
    k+1; then k+1 is handed to the sending thread and k is recorded. One sending thread, one
    SMTP connection: the order of the e-mails and the per-domain cap are as before.

    What stays true: a debtor is never in two batches in flight (a batch that shares a debtor
    with the one in flight waits for it to be recorded, as the pressure rules judge a second
    contact after the first one's outcome), and `drain` records the batch in flight before the
    dispatcher does anything else (another channel's group, the end of the run, an error).
    What a crash can leave: the batch in flight and the one prepared after it, both `sending`
    with their rows `queued` — reported failed by `release_stale`, never re-sent.
    """

    def __init__(
        self,
        prepare: Callable[[list[str]], tuple[EmailBatch, Session, Prepared] | Counter[str]],
    ) -> None:
        self._prepare = prepare
        self._flight: _Flight | None = None
        self._sender: ThreadPoolExecutor | None = None
        self._paused = ExitStack()

    def submit(self, keys: list[str], debtor_ids: set[int]) -> Counter[str]:
        """Prepare these groups' batch, then send it while the previous one is recorded.
        Returns the outcomes settled meanwhile (the previous batch's)."""
        outcomes: Counter[str] = Counter()
        if self._flight is not None and not self._flight.prepared.debtor_ids.isdisjoint(debtor_ids):
            outcomes += self.drain()
        if self._flight is None:
            # The collector stays off while batches are in hand (see `collector_paused`).
            self._paused.enter_context(collector_paused())
        started = self._prepare(keys)
        if isinstance(started, Counter):  # settled without SMTP (failed or one by one)
            return outcomes + self.drain() + started
        batch, session, prepared = started
        previous, self._flight = self._flight, None
        if previous is not None:
            previous.sent.result()  # `deliver` keeps its errors for `finish`
        if self._sender is None:
            self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smtp")
        self._flight = _Flight(
            batch, session, prepared, self._sender.submit(batch.deliver, prepared)
        )
        if previous is not None:
            outcomes += self._finish(previous)
        return outcomes

    def drain(self) -> Counter[str]:
        """Record the batch in flight, if any (waiting for its last e-mail)."""
        flight, self._flight = self._flight, None
        outcomes: Counter[str] = Counter()
        try:
            if flight is not None:
                flight.sent.result()
                outcomes = self._finish(flight)
        finally:
            self._paused.close()
        return outcomes

    def close(self) -> Counter[str]:
        """The end of the run: the batch in flight recorded, the sending thread stopped."""
        try:
            return self.drain()
        finally:
            if self._sender is not None:
                self._sender.shutdown(wait=True)
                self._sender = None

    @staticmethod
    def _finish(flight: _Flight) -> Counter[str]:
        try:
            return flight.batch.finish(flight.session, flight.prepared)
        finally:
            flight.session.close()
