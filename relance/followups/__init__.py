"""Follow-ups the worker runs daily: promise and installment reminders, broken promises, missed
installments, and off-session charges of saved cards (`run_followups(session, today)`)."""
