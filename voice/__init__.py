"""Twilio Voice: inbound and outbound calls, TwiML with speech + DTMF gather, AMD, live transfer."""
