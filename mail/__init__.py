"""E-mail channel edge: outbound reminders over SMTP, inbound replies, one-click unsubscribe."""
