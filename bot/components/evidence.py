"""Is the evidence for an action with consequences strong enough to act without asking?

DIET is confident about messages it has never seen anything like: on public off-topic English
questions, 6 % were taken for a business intent at 0.7 or more ("when is the next full moon" ->
promise_to_pay). An opt-out, a dispute, a wrong-person mark, a promise, an "already paid" or a
plan acceptance changes the debtor's file, so the assistant acts at once only when the evidence
is strong: the intent's confidence reaches its threshold AND the message holds a cue of that
intent's domain (a word a debtor asking for it would use: "stop", "contest", "payé", "pas moi"…).
Otherwise the message is re-labelled CONFIRM_INTENT and the assistant asks first (see
actions/confirmation.py).

Kept free of Rasa imports (like ranking.py): the app's tests check it without the Rasa venv and
the off-topic benchmark replays it on raw rankings to tune the thresholds (bench/nlu/offtopic.py).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

CONFIRM_INTENT = "confirm_consequential"
# Marks a ranking entry the ConsequenceGuard put first by re-reading the message (a legitimacy
# question, a request behind a greeting), so DIET's own ranking can still be told apart from it
# (bench/nlu/offtopic.py measures DIET, then replays the guard itself).
RELABELLED = "relabelled"

# Word starts, matched on folded text (lower case, no accents, apostrophes as spaces). Informal
# spellings debtors type are included ("jai", "jpeux", "pk", "vs", "msg", "rembourse").
_CUES: dict[str, tuple[str, ...]] = {
    "stop_contact": (
        r"stop",
        r"arret",
        r"cesse",
        r"desinscri",
        r"desabonn",
        r"unsubscrib",
        r"opt ?out",
        r"harcel",
        r"harass",
        r"lache",
        r"fiche",
        r"foutez",
        r"laissez moi",
        r"laisse moi",
        r"leave me",
        r"contact",
        r"ecri",
        r"message",
        r"msg",
        r"sms",
        r"texto",
        r"text",
        r"txt",
        r"appel",
        r"call",
        r"rappel",
        r"spam",
        r"no more",
        r"plus de (message|msg|sms|appel)",
        r"ne plus",
        r"m envoy",
        r"n envoy",
        r"envoyez",
        r"sending",
        r"relanc",
        r"marre",
        r"tranquille",
        r"bloqu",
        r"block",
        # From the training data's own requests that held no cue (issue 24).
        r"recontact",
        r"(supprim|effac|retir)\w* (mon|mes) (numero|coordonnees|donnees)",
        r"retirez moi",
        r"votre (liste|fichier)",
        r"(remove|delete|erase) my (number|details|data)",
        r"take me off",
        r"your (mailing )?list",
        r"^quit$",
        r"quit messag",
        r"messag",
        r"courrier",
        r"by letter",
        r"letters? only",
        r"(pas de|no) whatsapp",
    ),
    "dispute_debt": (
        r"contest",
        r"dispute",
        r"disagree",
        r"desaccord",
        r"pas d ?accord",
        r"not agree",
        r"erreur",
        r"error",
        r"mistake",
        r"wrong",
        r"faux",
        r"fausse",
        r"incorrect",
        r"errone",
        r"arnaque",
        r"scam",
        r"fraud",
        r"escroq",
        r"jamais (recu|commande|eu|signe|utilise)",
        r"never (got|received|ordered|signed|used)",
        r"not (mine|my|received|owe)",
        r"pas (a moi|moi|recu|commande|le mien|la mienne)",
        r"defectu",
        r"defect",
        r"casse",
        r"facture",
        r"invoice",
        r"bill",
        r"montant",
        r"amount",
        r"dette",
        r"debt",
        r"dois",
        r"doi\b",
        r"owe",
        r"somme",
        r"frais",
        r"fee",
        r"rembours",
        r"refund",
        r"litige",
        r"reclam",
        r"complain",
        r"plainte",
        r"avocat",
        r"lawyer",
        r"justif",
        r"proof",
        r"preuve",
        r"n importe quoi",
        r"nonsense",
        r"rien a voir",
        r"nothing to do",
        # From the training data's own requests that held no cue (issue 24).
        r"surfactur",
        r"overcharg",
        r"charged",
        r"prix",
        r"price",
        r"devis",
        r"quote",
        r"doublon",
        r"duplicate",
        r"twice",
        r"jamais (arrive|livre|ete livre|ete fait|ete faits|ete termine|venu|inscrit|ete client)",
        r"never (arrived|came|done|finished|showed|provided|had)",
        r"was never",
        r"abim",
        r"broken",
        r"damaged",
        r"faulty",
        r"retourne",
        r"renvoye",
        r"returned",
        r"back",
        r"annule",
        r"resili",
        r"cancelled",
        r"canceled",
        r"mine\b",
        r"my details",
        r"mes coordonnees",
        r"prestation",
        r"marchandise",
        r"goods",
        r"avoir n",
        r"credit note",
        r"remise",
        r"mal fait",
        r"badly",
        r"refuse",
        r"paierai pas",
        r"payerai pas",
        r"won ?t pay",
        r"incomplet",
        r"manque",
        r"missing",
        r"trop cher",
        r"rien commande",
        r"didn ?t order",
        r"insurance",
        r"assurance",
    ),
    "already_paid": (
        r"pay",
        r"paie",
        r"paye",
        r"paid",
        r"regl",
        r"solde",
        r"settled",
        r"virement",
        r"vire",
        r"transfer",
        r"wire",
        r"cheque",
        r"prelev",
        r"deja",
        r"already",
        r"c est fait",
        r"done",
        r"envoy",
        r"sent",
        r"rembours",
        r"recu",
        r"receipt",
        r"preuve",
        r"proof",
        r"facture",
        r"invoice",
        r"bill",
        r"dette",
        r"debt",
        r"owe",
        r"dois",
        r"a jour",
        r"up to date",
        r"c est bon",
        r"all good",
        r"plus rien",
        r"nothing left",
        # From the training data's own requests that held no cue (issue 24).
        r"recev",
        r"receiv",
        r"debit",
        r"mon compte",
        r"my account",
        r"went out",
        r"went through",
        r"sorted",
        r"cleared",
    ),
    "wrong_person": (
        # "pas moi", but not the filler "je sais pas moi" ("jsais pas moi en 4 fois ?", a plan
        # request, was taken for a confident wrong person and the number was dropped at once)
        r"(?<!sais )(?<!chais )pas moi",
        r"not me",
        r"c est pas (moi|lui|elle|mon|ma)",
        r"ce n est pas",
        r"wrong",
        r"mauvais",
        r"erreur",
        r"mistake",
        r"connais pas",
        r"connait pas",
        r"(don ?t|dont) know",
        r"never heard",
        r"personne",
        r"nobody",
        r"no one",
        r"ce nom",
        r"that name",
        r"this name",
        r"m appelle",
        r"my name",
        r"je suis pas",
        r"je ne suis pas",
        r"i am not",
        r"i m not",
        r"im not",
        r"chui pas",
        r"suis pas",
        r"not (him|her|them|the person)",
        r"ne vit",
        r"doesn ?t live",
        r"no longer",
        r"moved",
        r"demenag",
        r"ancien",
        r"previous owner",
        r"deced",
        r"died",
        r"dead",
        r"passed away",
        r"homonym",
        r"same name",
        r"plus (ce|son) (numero|num)",
        r"numero",
        r"number",
        # From the training data's own requests that held no cue (issue 24).
        r"jamais entendu",
        r"tromp",
        r"confond",
        r"mixed me up",
        r"habite plus",
        r"travaille plus",
        r"il n y a pas de",
        r"pa moi",
        r"ici c est",
        r"plus la meme",
        r"compte client",
        r"ete client",
        r"pas connue?",
        r"ni cette",
        r"fait plus partie",
        r"particulier",
        r"sais pas qui",
        r"pas mon nom",
        r"colocataire",
        r"pas pour moi",
        r"cette adresse",
        r"isn ?t me",
        r"customer",
        r"live here",
        r"work here",
        r"left the company",
        r"right person",
        r"there s no",
        r"dunno who",
        r"ain ?t (them|him|her)",
        r"looking for",
    ),
    "promise_to_pay": (
        r"pay",
        r"paie",
        r"paye",
        r"regl",
        r"vir",
        r"transfer",
        r"send",
        r"envoi",
        r"envoy",
        r"rembours",
        r"solde",
        r"settle",
        r"cheque",
        r"argent",
        r"money",
        r"thune",
        r"fric",
        r"sous\b",
        r"ble\b",
        r"oseille",
        r"cash",
        r"euro",
        r"eur\b",
        r"dollar",
        r"bucks",
        r"quid",
        r"\d",
        r"demain",
        r"dm1",
        r"tomorrow",
        r"tmr",
        r"lundi",
        r"mardi",
        r"mercredi",
        r"jeudi",
        r"vendredi",
        r"samedi",
        r"dimanche",
        r"monday",
        r"tuesday",
        r"wednesday",
        r"thursday",
        r"friday",
        r"saturday",
        r"sunday",
        r"semaine",
        r"week",
        r"mois",
        r"month",
        r"fin du",
        r"end of",
        r"debut",
        r"salaire",
        r"salary",
        r"paycheck",
        r"wages",
        r"chomage",
        r"caf\b",
        r"allocation",
        r"pension",
        r"retraite",
        r"rsa\b",
        r"janvier",
        r"fevrier",
        r"avril",
        r"juin",
        r"juillet",
        r"aout",
        r"septembre",
        r"octobre",
        r"novembre",
        r"decembre",
        r"january",
        r"february",
        r"april",
        r"june",
        r"july",
        r"august",
        r"september",
        r"october",
        r"november",
        r"december",
        r"bientot",
        r"soon",
        r"promi",
        r"promise",
        r"engage",
        r"dette",
        r"debt",
        r"dois",
        r"owe",
        r"facture",
        r"invoice",
        r"bill",
        r"versement",
        r"ce soir",
        r"tonight",
        r"aujourd",
        r"today",
        r"ajd",
        r"auj\b",
        # From the training data's own requests that held no cue (issue 24).
        r"noel",
        r"christmas",
        r"paques",
        r"easter",
        r"vous aurez",
        r"you ll (have|get)",
    ),
    "affirm": (
        r"oui",
        r"ouais",
        r"ouai",
        r"ouep",
        r"wi\b",
        r"yes",
        r"yeah",
        r"yep",
        r"yup",
        r"ya\b",
        r"ok",
        r"oki",
        r"d ?accord",
        r"dac",
        r"entendu",
        r"ca marche",
        r"ca me va",
        r"ca va",
        r"parfait",
        r"perfect",
        r"vas y",
        r"allez",
        r"go\b",
        r"sure",
        r"fine",
        r"good",
        r"great",
        r"bien",
        r"accept",
        r"agree",
        r"deal",
        r"volontiers",
        r"of course",
        r"absolument",
        r"absolutely",
        r"exact",
        r"correct",
        r"right",
        r"c est bon",
        r"let s",
        r"lets",
        r"sounds",
        r"why not",
        r"pourquoi pas",
        r"carrement",
        r"grave",
        r"certain",
        r"confirm",
        r"valid",
        r"top\b",
        r"nickel",
        r"super",
        r"cool",
        r"alright",
        r"aight",
        r"k\b",
        r"kk\b",
        r"y\b",
        r"\U0001f44d",
    ),
}
CUES: dict[str, re.Pattern[str]] = {
    intent: re.compile(r"(^|[^a-z0-9])(" + "|".join(words) + ")") for intent, words in _CUES.items()
}
# The intents whose action changes the debtor's file (plan acceptance is "affirm" answering a
# plan offer; in any other context actions/confirmation.py lets affirm through at once).
CONSEQUENTIAL = frozenset(CUES)


def fold(text: str) -> str:
    """Lower case, no accents, apostrophes and hyphens as spaces, SMS "j" contractions split:
    "J'ai déjà réglé" -> "j ai deja regle", "jdois" -> "j dois" (the cues match word starts)."""
    text = unicodedata.normalize("NFKD", text.replace("’", "'"))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = re.sub(r"['`\-]", " ", text)
    text = re.sub(r"\bj(?=[bcdfghklmnpqrstvwxz][aeiouy])", "j ", text)  # "jdois", "jpaye", "jvous"
    return re.sub(r"\s+", " ", text).strip()


def has_cue(intent: str, text: str) -> bool:
    """Whether the message holds a word of `intent`'s domain (True for intents without cues)."""
    pattern = CUES.get(intent)
    return pattern is None or pattern.search(fold(text)) is not None


def is_weak(
    intent: str,
    confidence: float,
    text: str,
    thresholds: Mapping[str, float],
    default_threshold: float,
) -> bool:
    """True when a consequential intent must be confirmed before its action runs."""
    if intent not in CONSEQUENTIAL:
        return False
    if intent == STOP_INTENT and asks_about_stopping(text):
        return True
    threshold = float(thresholds.get(intent, default_threshold))
    return confidence < threshold or not has_cue(intent, text)


# "ok et du coup vous arretez les relances?" asks what happens next (after a promise, a plan):
# DIET reads stop_contact at 0.94, with its cue, and the debtor was opted out of every SMS for a
# question. A question about stopping is confirmed first; a request put as a question ("can you
# stop texting me?", "pouvez-vous arrêter les sms ?") is a request and acts at once.
STOP_INTENT = "stop_contact"
_POLITE_REQUEST = re.compile(
    r"(^|[^a-z0-9])(can you|could you|would you|will you please|can u|could u|pls|please"
    r"|pouvez vous|pourriez vous|peux tu|pourrais tu|tu peux|vous pouvez|merci de|svp|stp)\b"
)


def asks_about_stopping(text: str) -> bool:
    """A question ending in "?" that is not a polite request (see the comment above)."""
    stripped = text.strip()
    return stripped.endswith("?") and _POLITE_REQUEST.search(fold(stripped)) is None


# "Is this a scam?" asks whether the message is genuine; "this is a scam" contests the debt.
# Bag-of-words DIET cannot tell them apart (the training data has both), so a question about
# the message's legitimacy is read as `bot_challenge` here: the assistant says who it works for
# and how to check, instead of opening a dispute and asking for the debtor's identity.
LEGITIMACY_INTENT = "bot_challenge"
_LEGITIMACY = re.compile(
    r"(^|[^a-z0-9])(scam|arnaque|fraud|escroq|phishing|hame[cs]onn|legit|genuine|fake|spam"
    r"|authenti|vrai (message|sms)|real (message|text|sms))"
)
_ASKED = re.compile(
    r"^(is|are|r|how (do|can|would) i (know|tell|check|be sure)|can i trust|est ce"
    r"|comment (savoir|etre sur|verifier|je (peux|sais))|qui me dit|c est vraiment)\b"
)
# What a debtor who contests says besides "scam": then it is a dispute with a rhetorical question.
_GRIEVANCE = re.compile(
    r"(^|[^a-z0-9])(contest|dispute|disagree|desaccord|erreur|error|mistake|wrong|faux|fausse"
    r"|incorrect|errone|jamais (recu|commande|eu|signe|utilise)|never (got|received|ordered|signed"
    r"|used)|not (mine|received)|don ?t owe|do not owe|pas (a moi|recu|commande|le mien|la mienne)"
    r"|dois rien|defect|casse|rembours|refund|litige|reclam|complain|plainte|avocat|lawyer"
    r"|pa(y|i)\w* pas|won ?t pay|not pay|ne pa(y|i))"
)


# Intents that say more than a doubt about the sender and keep their meaning ("is this spam?
# stop texting me" is an opt-out; "scam? wrong number" a wrong person).
_STRONGER = frozenset({"stop_contact", "wrong_person", "request_human", LEGITIMACY_INTENT})


def legitimacy_relabel(intent: str | None, text: str) -> str | None:
    """`bot_challenge` when `text` asks whether the message is genuine and `intent` (the
    prediction so far, fallback included) says nothing stronger; else None (keep it)."""
    if intent in _STRONGER or not is_legitimacy_question(text):
        return None
    return LEGITIMACY_INTENT


def is_legitimacy_question(text: str) -> bool:
    """Whether the message asks if the assistant's message is genuine (see `_LEGITIMACY`)."""
    folded = fold(text)
    if not _LEGITIMACY.search(folded) or _GRIEVANCE.search(folded):
        return False
    return "?" in folded or _ASKED.search(folded) is not None


# "Bonjour, combien je dois ?" is a balance question said politely. DIET weighs the greeting's
# words as much as the request's, so such messages came out as `greet` ("Hello! How can I help
# you today?", the question ignored) or, split between the two, as nlu_fallback. When the
# message holds a request after its greeting and DIET's next reading is a business intent, that
# reading is the message's intent (consequential ones still go through `is_weak`).
GREET_INTENT = "greet"
_GREETING = re.compile(
    r"^((bonjour|bonsoir|bjr|bsr|salut|slt|coucou|allo|hello|hi|hey|hiya|yo|good (morning"
    r"|afternoon|evening)|dear)( (madame|monsieur|mme|mr|mrs|ms|miss|sir|there|all|a vous))?"
    r"[\s,.!:;]*)+"
)
_NOT_A_REQUEST = frozenset(
    {GREET_INTENT, "nlu_fallback", "out_of_scope", "goodbye", "thank", "affirm", "deny", "inform"}
)
# Below this DIET's next reading is noise, not a second reading of the message.
REQUEST_BEHIND_GREETING_FLOOR = 0.2


def request_behind_greeting(
    ranking: list[tuple[str, float]], text: str
) -> tuple[str, float] | None:
    """The request a greeting opens ("hello, how much do I owe?"), as (intent, confidence), when
    DIET's two first readings are the greeting and a business intent of some weight, in either
    order (the FallbackClassifier calls the pair ambiguous); else None. A bare greeting, or one
    followed by a single word, stays a greeting."""
    folded = fold(text)
    greeting = _GREETING.match(folded)
    if greeting is None or len(folded[greeting.end() :].split()) < 2:
        return None
    readings = [(name, conf) for name, conf in ranking if name != "nlu_fallback"][:2]
    if GREET_INTENT not in (name for name, _ in readings):
        return None
    following = next((r for r in readings if r[0] != GREET_INTENT), None)
    if following is None or following[0] in _NOT_A_REQUEST:
        return None
    return following if following[1] >= REQUEST_BEHIND_GREETING_FLOOR else None


# Answers that only fit one kind of message. DIET reads "thats a lot" as goodbye (0.45: "Thank
# you, goodbye"), "c'est beaucoup" as thanks ("merci beaucoup": "Avec plaisir"), "whats the
# oldest invoice" as a request for a copy (a task for the team to send one) and "c quoi la
# facture la plus vieille" as a question about the late fees. None holds a word of the intent it
# was given. Below TOPIC_CONFIDENT such a reading is dropped for DIET's next one that is a
# request of some weight and holds its own word, else for nlu_fallback: "could you say it
# differently?" costs a turn, a wrong answer costs the debtor's trust (or sends a copy nobody
# asked for).
FALLBACK_INTENT = "nlu_fallback"
TOPIC_CONFIDENT = 0.9
_TOPIC_CUES: dict[str, tuple[str, ...]] = {
    "thank": (
        r"merci",
        r"mci\b",
        r"mrc\b",
        r"remerci",
        r"thank",
        r"thx",
        r"thnx",
        r"thnks",
        r"thanx",
        r"tks\b",
        r"ty\b",
        r"tyvm",
        r"ta\b",
        r"cheers",
        r"appreciat",
        r"aimable",
        r"gentil",
        r"cimer",
        r"grateful",
        r"reconnaissant",
        r"kind",
    ),
    "goodbye": (
        r"bye",
        r"revoir",
        r"bientot",
        r"plus tard",
        r"a plus",
        r"a\+",
        r"ciao",
        r"tchao",
        r"bonne",
        r"bon (week|we\b|apres|dimanche|samedi)",
        r"salut",
        r"later",
        r"cya",
        r"see (you|ya|u)\b",
        r"take care",
        r"ttyl",
        r"bisou",
        r"adieu",
        r"farewell",
        r"go\b",
        r"gotta",
        r"dois (y aller|vous laisser|partir|filer|raccrocher)",
        r"je (vous )?laisse",
        r"raccroch",
        r"hang up",
        r"soon",
        r"done",
        r"that ?s (all|everything|it)",
        r"will be all",
        r"c est tout",
        r"ce sera tout",
        r"rien d autre",
        r"nothing else",
        r"fin\b",
        r"end\b",
        r"until",
        r"prochaine",
        r"continuation",
        r"demain",
        r"m arrete",
        r"good (night|day|evening|weekend)",
        r"(great|nice|good) (day|one|weekend|evening)",
        r"have a",
        r"journee",
        r"soiree",
        r"nuit",
    ),
    "ask_fees": (
        r"frais",
        r"fee",
        r"penal",
        r"interet",
        r"interest",
        r"indemn",
        r"charge",
        r"surcharge",
        r"major",
        r"suppl",
        r"extra",
        r"retard",
        r"late",
        r"40",
        r"compensation",
        r"cost",
        r"cout",
        r"augment",
        r"increas",
        r"plus (que|eleve|cher|haut)",
        r"en plus",
        r"payer plus",
        r"more than",
        r"higher",
        r"(go|went|gone|going) up",
    ),
    "request_invoice_copy": (
        r"cop",
        r"envo",
        r"renvo",
        r"send",
        r"sent",
        r"resend",
        r"pdf",
        r"duplicat",
        r"exemplaire",
        r"mail",
        r"get",
        r"receiv",
        r"recev",
        r"recu",
        r"transmet",
        r"forward",
        r"again",
        r"nouveau",
        r"lost",
        r"perdu",
        r"never got",
        r"jamais eu",
        r"voir",
        r"see",
        r"show",
        r"montr",
        r"need",
        r"besoin",
        r"want",
        r"veux",
        r"voudrais",
        r"aimerais",
        r"can i have",
        r"peux avoir",
        r"avoir la facture",
    ),
}
TOPIC_CUES: dict[str, re.Pattern[str]] = {
    intent: re.compile(r"(^|[^a-z0-9])(" + "|".join(words) + ")")
    for intent, words in _TOPIC_CUES.items()
}
# A second reading worth taking instead: a request, not another pleasantry or a bare yes/no (a
# "yes" read into "thats a lot" would send the payment link it was a complaint about).
# Nor an answer that fits only its own question ("are you a bot?", "why my postcode?").
_NOT_A_SECOND_READING = frozenset(
    {
        FALLBACK_INTENT,
        GREET_INTENT,
        "goodbye",
        "thank",
        "affirm",
        "deny",
        "inform",
        CONFIRM_INTENT,
        LEGITIMACY_INTENT,
        "ask_why_identity",
    }
)
TOPIC_SECOND_READING_FLOOR = 0.1


def topic_relabel(ranking: list[tuple[str, float]], text: str) -> tuple[str, float] | None:
    """The reading to use instead of DIET's first when that one is an intent whose answer only
    fits messages holding its word (`TOPIC_CUES`), is not confident, and the message holds no
    such word; None when DIET's first reading stands. See the comment above TOPIC_CUES."""
    readings = [(name, conf) for name, conf in ranking if name != FALLBACK_INTENT]
    if not readings:
        return None
    name, confidence = readings[0]
    pattern = TOPIC_CUES.get(name)
    folded = fold(text)
    if pattern is None or confidence >= TOPIC_CONFIDENT or pattern.search(folded):
        return None
    for other, weight in readings[1:3]:
        if other in _NOT_A_SECOND_READING or weight < TOPIC_SECOND_READING_FLOOR:
            continue
        cue = TOPIC_CUES.get(other)
        if cue is None or cue.search(folded):
            return other, weight
    return FALLBACK_INTENT, confidence


# "when is the first payment?", "c'est quand le prochain paiement" hold a payment word and a
# date-like phrase ("the first", "le prochain"): DIET reads them as promises, at full
# confidence, and the promise form started on a question (seen right after a plan was agreed).
# A message that opens by asking *when* asks for a date; it promises none. It is the question
# about the debt's dates (the invoices' due dates and the plan's next instalment).
PROMISE_INTENT = "promise_to_pay"
DATES_QUESTION_INTENT = "ask_debt_details"
# Up to three words may lead in: "great, when is the first payment?", "ok merci, c'est quand…".
_WHEN_QUESTION = re.compile(
    r"^([a-z]+[,.!]*\s+){0,3}?"
    r"(when (is|are|was|does|do|did|will|would|should|can|must|s)|whens"
    r"|quand (est|sera|dois|doit|faut|tombe|commence|passe|aura|vais|vont|partira)"
    r"|c est quand|cest quand|what date|what day|which day|on what date|by when|until when"
    r"|quel jour|quelle date|a quelle date|jusqu a quand|pour quand|a partir de quand)\b"
)


# ... about the debt's money: "c'est quand la prochaine pleine lune" keeps the promise reading,
# which the guard then confirms for want of a cue, as before.
_DEBT_MONEY = re.compile(
    r"(^|[^a-z0-9])(pay|paie|paye|paiement|regl|echeanc|instal|versement|prelev|debit|due\b"
    r"|money|argent|sous\b|mensualit|plan\b|charge|facture|invoice|bill|one\b)"
)


def when_question_relabel(intent: str | None, text: str) -> str | None:
    """ask_debt_details for a promise reading of a message that opens by asking when about the
    debt's money; else None."""
    folded = fold(text)
    if intent != PROMISE_INTENT or _WHEN_QUESTION.match(folded) is None:
        return None
    return DATES_QUESTION_INTENT if _DEBT_MONEY.search(folded) else None


# "c quoi la facture la plus ancienne", "which bill is that": DIET splits them between the fees,
# the copy and the details questions and the FallbackClassifier calls it ambiguous; two such
# misunderstandings in a row hand the debtor to a collector. A question that names an invoice,
# when DIET's first reading is no action with consequences, is the details question (the list
# of invoices, their amounts and dates, behind the identity check).
INVOICE_QUESTION_INTENT = "ask_debt_details"
_NAMES_AN_INVOICE = re.compile(r"(^|[^a-z0-9])(factures?|invoices?|bills?)\b")
_ASKS = re.compile(
    r"(^|[^a-z0-9])(c quoi|c est quoi|cest quoi|quel|quelle|quels|quelles|laquelle|lesquelles"
    r"|what|which|when|quand|combien|how|where|ou en est|show me|montrez)\b|\?\s*$"
)


def invoice_question(ranking: list[tuple[str, float]], text: str) -> str | None:
    """ask_debt_details for a message that asks about an invoice when DIET's first reading is
    no action with consequences (the caller asks only for a message read as nlu_fallback);
    else None. "je conteste la facture ?" stays the guard's to weigh."""
    readings = [name for name, _ in ranking if name not in (FALLBACK_INTENT, CONFIRM_INTENT)]
    if readings and readings[0] in CONSEQUENTIAL:
        return None
    folded = fold(text)
    if _NAMES_AN_INVOICE.search(folded) and _ASKS.search(folded):
        return INVOICE_QUESTION_INTENT
    return None
