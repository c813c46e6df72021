"""TwiML for calls, built with twilio's VoiceResponse.

The language drives three things that must agree: the <Say> voice, its `language`, and the
<Gather> speech-recognition `language` (a French caller recognised as English is unusable).
"""

from __future__ import annotations

from twilio.twiml.voice_response import Gather, VoiceResponse

VOICES = {"fr": ("fr-FR", "Polly.Lea"), "en": ("en-US", "Polly.Joanna")}
# Speech hints: words the recogniser should expect in a debt conversation (amounts, dates, plans).
HINTS = {
    "fr": (
        "euros,centimes,aujourd'hui,demain,après-demain,lundi,mardi,mercredi,jeudi,vendredi,"
        "samedi,dimanche,janvier,février,mars,avril,mai,juin,juillet,août,septembre,octobre,"
        "novembre,décembre,fin du mois,semaine prochaine,mois prochain,en plusieurs fois,"
        "échéancier,mensualités,lien de paiement,déjà payé,conseiller,facture,code postal,"
        "$OOV_CLASS_DIGIT_SEQUENCE"
    ),
    "en": (
        "euros,cents,today,tomorrow,Monday,Tuesday,Wednesday,Thursday,Friday,Saturday,Sunday,"
        "January,February,March,April,May,June,July,August,September,October,November,December,"
        "end of the month,next week,next month,installments,payment plan,payment link,"
        "already paid,agent,invoice,postcode,$OOV_CLASS_DIGIT_SEQUENCE"
    ),
}
GATHER_TIMEOUT_SECONDS = 5  # silence (or pause between keys) before the gather posts its result
DIAL_TIMEOUT_SECONDS = 30


def voice_for(language: str) -> tuple[str, str]:
    return VOICES.get(language, VOICES["fr"])


def _say(target: VoiceResponse | Gather, texts: list[str], language: str) -> None:
    locale, voice = voice_for(language)
    for text in texts:
        if text:
            target.say(text, voice=voice, language=locale)


def gather(texts: list[str], language: str, action: str) -> str:
    """Speak (interruptible), then listen for speech or keypad; silence also posts to `action`."""
    locale, _voice = voice_for(language)
    response = VoiceResponse()
    listen = Gather(
        input="speech dtmf",
        language=locale,
        speech_timeout="auto",
        timeout=GATHER_TIMEOUT_SECONDS,
        hints=HINTS.get(language, HINTS["fr"]),
        action=action,
        method="POST",
        action_on_empty_result=True,
        finish_on_key="#",
    )
    _say(listen, texts, language)
    response.append(listen)
    return str(response)


def say_and_hang_up(texts: list[str], language: str) -> str:
    response = VoiceResponse()
    _say(response, texts, language)
    response.hangup()
    return str(response)


def transfer(texts: list[str], language: str, *, number: str, caller_id: str, action: str) -> str:
    """Announce, then bridge the caller to a collector; `action` learns whether someone answered."""
    response = VoiceResponse()
    _say(response, texts, language)
    dial = response.dial(
        caller_id=caller_id, timeout=DIAL_TIMEOUT_SECONDS, action=action, method="POST"
    )
    dial.number(number)
    return str(response)


def hang_up() -> str:
    response = VoiceResponse()
    response.hangup()
    return str(response)
