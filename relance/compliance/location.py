"""Where a debtor plausibly is: the time zones to respect and the regional holiday calendar.

Regulation F (12 CFR 1006.6(b)(1)(i) and its commentary) says that when a collector's
information about the consumer's location is conflicting or incomplete, a time is convenient
only if it is convenient in *every* location the information points to. The debtor record holds
three such hints, and they can disagree (a debtor recorded in New York with a 415 number may be
in California):

- the recorded time zone (`Debtor.timezone`);
- the postal address: a French postcode gives the department (overseas departments have their own
  zones), a US ZIP code gives the state, whose zones are all taken (several states span two);
- each phone number on file (not those known to belong to someone else), through libphonenumber's
  geographic time zones; non-geographic numbers (toll-free, VoIP...) locate nothing.

The address also picks the public-holiday calendar: Alsace-Moselle (departments 57, 67, 68) adds
Good Friday and 26 December to the French holidays, the overseas departments their own days.
"""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberType
from phonenumbers import timezone as phone_timezones

from relance.db.models import Debtor
from relance.db.models.enums import ContactStatus

PARIS = "Europe/Paris"
# A number tied to more zones than this (a mobile in a country spanning a continent) says
# nothing about where its holder is.
MAX_PHONE_ZONES = 4
_NON_GEOGRAPHIC = {
    PhoneNumberType.TOLL_FREE,
    PhoneNumberType.PREMIUM_RATE,
    PhoneNumberType.SHARED_COST,
    PhoneNumberType.VOIP,
    PhoneNumberType.PERSONAL_NUMBER,
    PhoneNumberType.UAN,
    PhoneNumberType.PAGER,
    PhoneNumberType.VOICEMAIL,
}

# French departments with their own holiday calendar (`holidays` subdivision codes) and zone.
_FR_REGIONS: dict[str, tuple[str, str, str]] = {  # department -> (subdiv, zone, label)
    "57": ("57", PARIS, "Alsace-Moselle (57)"),
    "67": ("6AE", PARIS, "Alsace-Moselle (67)"),
    "68": ("6AE", PARIS, "Alsace-Moselle (68)"),
    "971": ("971", "America/Guadeloupe", "Guadeloupe"),
    "972": ("972", "America/Martinique", "Martinique"),
    "973": ("973", "America/Cayenne", "Guyane"),
    "974": ("974", "Indian/Reunion", "La Réunion"),
    "976": ("976", "Indian/Mayotte", "Mayotte"),
}

# First three digits of a ZIP code -> state (USPS allocation; military and territories left out).
_ZIP3 = [
    (5, 5, "NY"),
    (10, 27, "MA"),
    (28, 29, "RI"),
    (30, 38, "NH"),
    (39, 49, "ME"),
    (50, 54, "VT"),
    (55, 55, "MA"),
    (56, 59, "VT"),
    (60, 69, "CT"),
    (70, 89, "NJ"),
    (100, 149, "NY"),
    (150, 196, "PA"),
    (197, 199, "DE"),
    (200, 200, "DC"),
    (201, 201, "VA"),
    (202, 205, "DC"),
    (206, 219, "MD"),
    (220, 246, "VA"),
    (247, 268, "WV"),
    (270, 289, "NC"),
    (290, 299, "SC"),
    (300, 319, "GA"),
    (320, 339, "FL"),
    (341, 349, "FL"),
    (350, 369, "AL"),
    (370, 385, "TN"),
    (386, 397, "MS"),
    (398, 399, "GA"),
    (400, 427, "KY"),
    (430, 459, "OH"),
    (460, 479, "IN"),
    (480, 499, "MI"),
    (500, 528, "IA"),
    (530, 549, "WI"),
    (550, 567, "MN"),
    (569, 569, "DC"),
    (570, 577, "SD"),
    (580, 588, "ND"),
    (590, 599, "MT"),
    (600, 629, "IL"),
    (630, 658, "MO"),
    (660, 679, "KS"),
    (680, 693, "NE"),
    (700, 715, "LA"),
    (716, 729, "AR"),
    (730, 732, "OK"),
    (733, 733, "TX"),
    (734, 749, "OK"),
    (750, 799, "TX"),
    (800, 816, "CO"),
    (820, 831, "WY"),
    (832, 838, "ID"),
    (840, 847, "UT"),
    (850, 865, "AZ"),
    (870, 884, "NM"),
    (885, 885, "TX"),
    (889, 898, "NV"),
    (900, 961, "CA"),
    (967, 968, "HI"),
    (970, 979, "OR"),
    (980, 994, "WA"),
    (995, 999, "AK"),
]
_E, _C, _M, _P = "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"
# Every zone in use somewhere in the state: a state spanning two zones makes both plausible.
_STATE_ZONES: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(
        (
            "CT",
            "DC",
            "DE",
            "GA",
            "MA",
            "MD",
            "ME",
            "NC",
            "NH",
            "NJ",
            "NY",
            "OH",
            "PA",
            "RI",
            "SC",
            "VA",
            "VT",
            "WV",
        ),
        (_E,),
    ),
    **dict.fromkeys(("AL", "AR", "IA", "IL", "LA", "MN", "MO", "MS", "OK", "WI"), (_C,)),
    **dict.fromkeys(("CO", "MT", "NM", "UT", "WY"), (_M,)),
    **dict.fromkeys(("CA", "NV", "WA"), (_P,)),
    "FL": (_E, _C),
    "IN": (_E, _C),
    "KY": (_E, _C),
    "MI": (_E, _C),
    "TN": (_E, _C),
    "KS": (_C, _M),
    "NE": (_C, _M),
    "ND": (_C, _M),
    "SD": (_C, _M),
    "TX": (_C, _M),
    "ID": (_M, _P),
    "OR": (_P, _M),
    "AZ": ("America/Phoenix", _M),
    "AK": ("America/Anchorage", "America/Adak"),
    "HI": ("Pacific/Honolulu",),
}


@dataclass(frozen=True)
class Place:
    """Plausible zones, each with where it comes from, and the holiday subdivision if any."""

    zones: tuple[tuple[str, str], ...]  # (IANA zone, source shown to collectors)
    holiday_subdiv: str | None = None  # `holidays` subdivision (FR: "57", "6AE", "974"...)
    region: str | None = None  # e.g. "Alsace-Moselle (67)", "US state CA"

    @classmethod
    def single(cls, tz_name: str | None) -> Place:
        """Only a recorded zone (callers that know nothing else about the debtor)."""
        return cls(zones=((tz_name or PARIS, "recorded time zone"),))

    def describe(self) -> str:
        return ", ".join(f"{name} ({source})" for name, source in self.zones)


def locate(debtor: Debtor) -> Place:
    """Every zone the debtor's record makes plausible, and the address's holiday calendar."""
    zones: dict[str, list[str]] = {}

    def add(name: str, source: str) -> None:
        zones.setdefault(name, []).append(source)

    add(debtor.timezone or PARIS, "recorded time zone")
    subdiv = region = None
    found = _address_zones(debtor)
    if found is not None:
        names, subdiv, region = found
        for name in names:
            add(name, f"address {debtor.postcode}")
    for contact in debtor.contacts:
        if contact.status == ContactStatus.WRONG_PERSON:
            continue  # someone else's number says nothing about the debtor
        number = contact.address.removeprefix("whatsapp:")
        for name in phone_zones(number):
            add(name, f"phone {_area(number)}")
    return Place(
        zones=tuple((name, ", ".join(dict.fromkeys(sources))) for name, sources in zones.items()),
        holiday_subdiv=subdiv,
        region=region,
    )


def phone_zones(number: str) -> tuple[str, ...]:
    """The zones a geographic phone number belongs to; () if it locates nothing."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return ()
    if phonenumbers.number_type(parsed) in _NON_GEOGRAPHIC:
        return ()
    found = tuple(z for z in phone_timezones.time_zones_for_number(parsed) if z != "Etc/Unknown")
    return found if len(found) <= MAX_PHONE_ZONES else ()


def fr_region(postcode: str | None) -> tuple[str, str, str] | None:
    """(holiday subdivision, zone, label) for a French postcode with its own calendar."""
    code = (postcode or "").strip().replace(" ", "")
    if len(code) != 5 or not code.isdigit():
        return None
    return _FR_REGIONS.get(code[:3]) or _FR_REGIONS.get(code[:2])


def us_state(zip_code: str | None) -> str | None:
    code = (zip_code or "").strip()[:5]
    if len(code) != 5 or not code.isdigit():
        return None
    prefix = int(code[:3])
    return next((state for lo, hi, state in _ZIP3 if lo <= prefix <= hi), None)


def _address_zones(debtor: Debtor) -> tuple[tuple[str, ...], str | None, str | None] | None:
    country = (debtor.country or "").upper()
    if country == "FR":
        region = fr_region(debtor.postcode)
        if region is not None:
            return (region[1],), region[0], region[2]
        code = (debtor.postcode or "").strip()
        return ((PARIS,), None, None) if len(code) == 5 and code.isdigit() else None
    if country == "US":
        state = us_state(debtor.postcode)
        if state is not None:
            return _STATE_ZONES[state], None, f"US state {state}"
    return None


def _area(number: str) -> str:
    """'+1 415' / '+33 6': enough to say which number, not the whole of it."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return number[:6]
    national = str(parsed.national_number)
    size = 3 if parsed.country_code == 1 else 1
    return f"+{parsed.country_code} {national[:size]}"
