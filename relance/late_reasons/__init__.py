"""Why a debtor pays late: categorised from their words, kept on the case, used by the policy."""

from typing import Literal, get_args

# The closed list of categories, in the order the keyword lists are tried (categories.yml).
# `hardship` is general financial difficulty; `other` is a difficulty stated without a cue.
Category = Literal[
    "insolvency",
    "job_loss",
    "illness",
    "not_received",
    "oversight",
    "dispute",
    "cash_flow",
    "hardship",
    "other",
]
CATEGORIES: tuple[str, ...] = get_args(Category)
