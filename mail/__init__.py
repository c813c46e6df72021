"""E-mail channel edge: outbound reminders over SMTP, inbound replies, one-click unsubscribe.

Replies come in one of two ways, both ending in `mail.inbound.handle_raw` (one raw RFC 5322
message in, at most one answer out, claimed by its Message-ID so a second delivery does nothing):
- `POST /mail/inbound` (`mail.endpoints`): an MTA pipe or a provider's inbound-parse webhook
  posts the raw message, signed with MAIL_INBOUND_SECRET;
- IMAP polling (`mail.imap`): with IMAP_HOST set, the worker (job `mail.poll`) or
  `relance mail poll` reads the unseen messages of IMAP_FOLDER and flags each `\\Seen` once it
  was handled and committed; one that fails stays unseen for the next poll.
"""
