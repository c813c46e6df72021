"""vulture's whitelist: names only something outside the Python call graph uses.

Read by `vulture` (configured in pyproject.toml, run by scripts/test.sh). Route handlers, CLI
commands, validators and Rasa actions are skipped by decorator or name pattern there; what is left
here is read by a framework or a template (ORM columns, pydantic response fields, Jinja context,
Alembic revision ids, cookie attributes), kept as a test seam (dispatch_group, start_all,
instances_up, payment_links.wiring.install), or read from the environment (settings fields).
A new entry needs the same kind of reason: anything else vulture reports is dead code to delete.
"""

# ruff: noqa
# type: ignore
entered  # unused variable (console/letters.py:36)
_.entered  # unused attribute (console/letters.py:161)
unread  # unused variable (console/queries.py:40)
last_text  # unused variable (console/queries.py:41)
balance_by_currency  # unused variable (console/queries.py:158)
overdue_by_currency  # unused variable (console/queries.py:159)
CALL_FAILED  # unused variable (messaging/statuses.py:43)
_.processed_at  # unused attribute (messaging/webhooks.py:66)
_.processed_at  # unused attribute (payment_links/webhooks.py:180)
install  # unused function (payment_links/wiring.py:74)
indemnity  # unused variable (relance/api/schemas.py:246)
interest  # unused variable (relance/api/schemas.py:249): LetterOut, the letter's interest (a local of that name in actions/balance.py hid it)
has_pdf  # unused variable (relance/api/schemas.py:249)
payment_plans  # unused variable (relance/api/schemas.py:298)
late_payment_reason  # unused variable (relance/api/schemas.py:301)
late_payment_reasons  # unused variable (relance/api/schemas.py:304)
create_wired_app  # unused function (relance/app.py:66)
httponly  # unused variable (relance/auth/sessions.py:144)
samesite  # unused variable (relance/auth/sessions.py:145)
secure  # unused variable (relance/auth/sessions.py:146)
max_age  # unused variable (relance/auth/sessions.py:147)
outstanding_minor  # unused variable (relance/dashboard/metrics.py:59)
overdue_minor  # unused variable (relance/dashboard/metrics.py:60)
overdue_invoices  # unused variable (relance/dashboard/metrics.py:61)
recovery_rate  # unused variable (relance/dashboard/metrics.py:64)
recovered_minor  # unused variable (relance/dashboard/metrics.py:65)
fell_due_minor  # unused variable (relance/dashboard/metrics.py:66)
disputed_minor  # unused variable (relance/dashboard/metrics.py:70)
_.late_reasons_total  # unused property (relance/dashboard/metrics.py:77)
impl  # unused variable (relance/db/base.py:36)
cache_ok  # unused variable (relance/db/base.py:37)
type_annotation_map  # unused variable (relance/db/base.py:56)
ended_reason  # unused variable (relance/db/models/admin.py:39)
posted_by  # unused variable (relance/db/models/admin.py:104)
due_at  # unused variable (relance/db/models/cases.py:96)
processed_at  # unused variable (relance/db/models/conversations.py:100)
started_at  # unused variable (relance/db/models/dunning.py:26)
finished_at  # unused variable (relance/db/models/dunning.py:27)
policy_version  # unused variable (relance/db/models/dunning.py:29)
planned_at  # unused variable (relance/db/models/dunning.py:57)
_.isolation_level  # unused attribute (relance/db/session.py:29)
SKIP_REASONS  # unused variable (relance/dunning/context.py:37)
_.dispatch_group  # unused method (relance/dunning/dispatcher.py:161)
_.finished_at  # unused attribute (relance/dunning/planner.py:193)
deferred_debtor_ids  # unused variable (relance/followups/service.py:71)
_.deferred_debtor_ids  # unused attribute (relance/followups/service.py:88)
expected_minor  # unused variable (relance/ledger/models.py:49)
expected_debtor_id  # unused variable (relance/ledger/models.py:51)
credited_minor  # unused variable (relance/ledger/service.py:52)
_.credited_minor  # unused attribute (relance/ledger/service.py:277)
_.posted_by  # unused attribute (relance/letters/service.py:247)
buttons  # unused variable (relance/nlg/endpoints.py:57)
band_max_amount_minor  # unused variable (relance/policy/service.py:49)
COLUMNS  # unused variable (relance/portfolio/rows.py:25)
_.instances_up  # unused method (relance/rasa_client.py:227)
_.start_all  # unused method (relance/runtime/stack.py:76)
celery_worker_service  # unused function (relance/runtime/stack.py:315)
api_tokens  # unused variable (relance/settings.py:72)
action_server_port  # unused variable (relance/settings.py:84)

# Added with the e-mail, portal, e-invoice, bank-statement, outbox and experiment features: ORM
# columns and response fields read by templates/JSON, Jinja context, test seams of the seeded
# population simulator and the SMTP transport, settings read from the environment.
_.connections_opened  # unused attribute (mail/transport.py:60)
_.connections_opened  # unused attribute (mail/transport.py:117)
_.route_class  # unused attribute (portal/endpoints.py:84)
matched_by_rule  # unused variable (relance/api/bank_statements.py:39)
suggested_debtor_id  # unused variable (relance/api/bank_statements.py:54)
updated  # unused variable (relance/api/einvoices.py:49)
unchanged  # unused variable (relance/api/einvoices.py:50)
credited  # unused variable (relance/api/einvoices.py:51)
amount_recovered_minor  # unused variable (relance/api/experiments.py:119)
traffic_share  # unused variable (relance/api/experiments.py:124)
wording_version  # unused variable (relance/api/experiments.py:146)
imported_by  # unused variable (relance/bank_statements/models.py:34)
_.self_service_rate  # unused property (relance/dashboard/metrics.py:92)
last_status_code  # unused variable (relance/outbox/models.py:62)
last_error  # unused variable (relance/outbox/models.py:63)
delivered_at  # unused variable (relance/outbox/models.py:64)
_.last_error  # unused attribute (relance/outbox/service.py:194)
_.last_status_code  # unused attribute (relance/outbox/service.py:194)
_.delivered_at  # unused attribute (relance/outbox/service.py:196)
size_bytes  # unused variable (relance/portal/models.py:49)
payable_ids  # unused variable (relance/portal/service.py:97)
thompson  # unused function (relance/simulator/population.py:36)
lift_covered  # unused function (relance/simulator/population.py:66)
reply_hours  # unused function (relance/simulator/population.py:73)
# Response fields read from the ORM row by pydantic's from_attributes (relance/api/schemas.py):
resolution_note  # DisputeOut
resolved_by  # DisputeOut; the payment reviews page shows it; bank statement rows keep it as a record
_.resolution_note  # set by relance/disputes/service.py, read through DisputeOut
_.resolved_by  # set by the dispute, bank statement and ledger review services
last_inbound_at  # ConversationOut
_.last_inbound_at  # set by relance/conversations/service.py, read through ConversationOut
_.required_slots  # unused method (actions/plans.py): rasa_sdk's FormValidationAction calls it
_.handle_DATA  # unused method (relance/sandbox/mail_sink.py): aiosmtpd calls it by name
direct_debit_plan_ids  # unused variable (relance/portal/service.py: read by portal/templates/overview.html)
reversal_reason  # unused variable (relance/db/models/invoices.py: ORM column, evidence of why a payment was reversed)
_.reversal_reason  # unused attribute (relance/ledger/reversal.py: the ORM column above)
failed_at  # unused variable (relance/ledger/models.py: ORM column, when a charge failed, for collectors)
_.failed_at  # unused attribute (relance/followups/charges.py: the ORM column above)
_.plan_completion_rate  # unused property (relance/dashboard/metrics.py: read by console/templates/dashboard.html)
_.debit_failure_rate  # unused property (relance/dashboard/metrics.py: read by console/templates/dashboard.html)
card_plan_ids  # unused variable (relance/portal/service.py: read by portal/templates/overview.html)
live_plan_id  # unused variable (relance/portal/service.py: read by portal/templates/overview.html)
reinstated_ref  # unused variable (relance/ledger/models.py: ORM column, the dispute whose `won` brought a failed debit's money back; read by console/templates/conversation.html)
reinstated_at  # unused variable (relance/ledger/models.py: ORM column, when; read by console/templates/conversation.html)
_.reinstated_ref  # unused attribute (relance/followups/charges.py: the ORM column above)
_.reinstated_at  # unused attribute (relance/followups/charges.py: the ORM column above)
_.grouped  # unused property (payment_links/providers/sandbox_cards.py: read by payment_links/templates/sandbox.html)
reversed_ref  # unused variable (relance/ledger/models.py: ORM column, the dispute lost or the refund that took a succeeded charge's money back; read by console/templates/conversation.html)
_.reversed_ref  # unused attribute (relance/followups/charges.py: the ORM column above)
refund_holds  # unused variable (relance/portal/service.py: Overview field, read by portal/templates/overview.html)
held_installments  # unused variable (relance/portal/service.py: Overview field, read by portal/templates/overview.html)
intercepted_binops  # unused variable (relance/nlg/renderer.py: read by Jinja's sandbox, which routes these operators to call_binop)
