"""The identity-check attacks of issue 17.1, shared by the action tests and the end-to-end ones."""

from __future__ import annotations

# The attacker's list (issue 17.1): 240 French postcodes (departments, Paris, Lyon and Marseille
# districts), the demo debtors' among them, sent as one SMS.
_CITY_POSTCODES = (
    [f"{dept:02d}000" for dept in range(1, 96)]
    + [f"750{arrondissement:02d}" for arrondissement in range(1, 21)]
    + [f"{dept:02d}100" for dept in range(1, 96)]
    + [f"130{n:02d}" for n in range(1, 17)]
    + [f"690{n:02d}" for n in range(1, 10)]
    + ["20167", "20090", "20200", "20600", "97100"]
)


def postcode_list_sms(separator: str) -> str:
    postcodes = sorted(set(_CITY_POSTCODES))
    assert len(postcodes) == 240 and "75011" in postcodes
    return separator.join(postcodes)
