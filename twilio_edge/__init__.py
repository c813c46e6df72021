"""The Twilio edge every Twilio channel plugs into (messaging/ for SMS + WhatsApp, voice/ for calls).

What is Twilio's, once: the webhook signature check and typed forms (`signature`, `forms`), the
claim-first idempotency of webhooks (`claims`), status maps and the shared status route
(`statuses`, `status_routes`), address parsing (`addresses`), TwiML and its HTTP answer (`twiml`,
`responses`), and the REST gateway the core sends through (`gateway`, with `splitting`,
`withheld` and `twilio_http`). It imports the core, never a channel; channels import it, never
each other (`.importlinter`). See "Adding a channel" in docs/architecture.md.
"""
