"""Twilio SMS + WhatsApp: inbound webhook, outbound send, STOP/HELP, status callbacks."""
