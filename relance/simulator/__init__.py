"""Debtor simulator: chat as a demo debtor in a browser, over the same signed path as Twilio."""
