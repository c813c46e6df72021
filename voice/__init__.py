"""Twilio Voice: inbound and outbound calls, TwiML with speech + DTMF gather, AMD, live transfer.

Contract with the assistant (each spoken turn is a normal `handle_inbound` turn, channel "voice"):
- call start sends `/greet` (inbound) or `/EXTERNAL_reminder{"stage": …}` for an outbound call
  placed with purpose `reminder:<stage>`; keypad 1 sends `/request_payment_link`, 0 `/request_human`;
- a custom payload `{"handoff": true}` (or the conversation switched to human mode, or a handoff
  opened during the turn) transfers the call to COLLECTOR_PHONE in COLLECTOR_HOURS, else a
  callback task is created; `{"end_call": true}` says the replies then hangs up;
- URLs in replies (or `payment_url`/`url`/`link` in a custom payload) are never read aloud: they go
  by SMS (`utter_link_sms`) and the caller hears `utter_voice_link_sent`.
"""
