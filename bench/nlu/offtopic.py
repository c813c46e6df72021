"""How often an off-topic message would trigger an action with consequences (issue 24).

Sets: the CLINC150 out-of-scope sentences (English, `oos_train` to tune, `oos_val` to report;
`../shared/eval/clinc150_oos_train_val.json` from the checkout's root by default, --oos to point
elsewhere), the French off-topic set written for this benchmark (bench/nlu/offtopic_fr.yml, kept
apart from the training data: the script refuses to run if one of its messages is a training
example) to report, its French tuning counterpart (bench/nlu/offtopic_fr_tune.yml, written blind
to both; `--tune` lists the tuning messages the dialogue would act on, so fresh training examples
of those shapes can be written), and the blind held-out set (bench/nlu_heldout) for the in-scope side, counts only.

Every message is parsed once by the model; DIET's own ranking (the FallbackClassifier's and the
ConsequenceGuard's labels removed) is then replayed through the thresholds of --config (the
FallbackClassifier's, the ConsequenceGuard's per intent, bot/components/evidence.py), so the same
parse serves tuning and reporting. Figures per set:

- false accept: the message ends on a consequential intent (opt-out, dispute, already paid,
  wrong person, promise, "yes" to a plan offer) with strong evidence: the action would run
  without confirmation. Target ≤ 2 %.
- business: the message ends on any business intent the bot would act on (a consequential one
  without confirmation, or balance, link, plan request, "yes"…), and how many of those at a
  confidence of 0.7 or more (the measure of issue 24: 6.3 % before);
- asked: a confirmation question instead; fallback: "please rephrase".

On the held-out set: intent accuracy of DIET's top intent (what `rasa test nlu` scores, fallback
and confirmation labels ignored), how many messages would act at once on the right intent, how
many genuine consequential requests get a confirmation question (needless, one more turn), and
how many wrong consequential actions would run at once.

--tune (oos_train only) prints the ConsequenceGuard threshold (the lowest value above every
oos_train message taken for a consequential intent, cues ignored) to put in bot/config.yml and
bot/config.ci.yml, and how many oos_train messages each FallbackClassifier setting leaves taken
for a business intent (see tune()). Runs in the Rasa venv, from the checkout's root; Rasa's
output goes to /dev/null (its debug log prints the parsed texts, and the held-out set is blind):

    .venv-rasa/bin/python bench/nlu/offtopic.py MODEL.tar.gz --tune
    .venv-rasa/bin/python bench/nlu/offtopic.py MODEL.tar.gz --append BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT_ROOT))  # bot.components, as `rasa` does with its working directory

from bot.components.evidence import (  # noqa: E402
    CONFIRM_INTENT,
    CONSEQUENTIAL,
    RELABELLED,
    fold,
    invoice_question,
    is_weak,
    legitimacy_relabel,
    request_behind_greeting,
    topic_relabel,
    when_question_relabel,
)

HELDOUT = PROJECT_ROOT / "bench" / "nlu_heldout"
OFFTOPIC_FR = PROJECT_ROOT / "bench" / "nlu" / "offtopic_fr.yml"
# The French counterpart of oos_train: written blind to the training data and to offtopic_fr.yml,
# read to find the shapes the model misreads (--tune lists them); offtopic_fr reports.
OFFTOPIC_FR_TUNE = PROJECT_ROOT / "bench" / "nlu" / "offtopic_fr_tune.yml"
DEFAULT_OOS = Path("../shared/eval/clinc150_oos_train_val.json")
FALLBACK = "nlu_fallback"
# Intents on which the bot takes no business step (answers, small talk, rephrase).
NOT_BUSINESS = {
    "out_of_scope",
    FALLBACK,
    CONFIRM_INTENT,
    "greet",
    "goodbye",
    "thank",
    "bot_challenge",
    "deny",
    "inform",
}
GUARD = "bot.components.consequence_guard.ConsequenceGuard"
TARGET = 0.02
GRID = [round(0.30 + 0.05 * i, 2) for i in range(14)] + [0.97, 0.99, 0.995, 1.01]
AMBIGUITY_GRID = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3]


@dataclass(frozen=True)
class Parsed:
    text: str
    ranking: list[tuple[str, float]]  # DIET's, best first, without fallback/confirm labels
    gold: str | None = None


@dataclass(frozen=True)
class Thresholds:
    fallback: float
    ambiguity: float
    default: float
    per_intent: dict[str, float]
    guarded: bool = True  # False: a config without the ConsequenceGuard (as before issue 24)

    @classmethod
    def from_config(cls, config: Path) -> Thresholds:
        pipeline = yaml.safe_load(config.read_text(encoding="utf-8"))["pipeline"]
        by_name = {c["name"]: c for c in pipeline}
        fallback, guard = by_name.get("FallbackClassifier", {}), by_name.get(GUARD, {})
        return cls(
            float(fallback.get("threshold", 0.3)),
            float(fallback.get("ambiguity_threshold", 0.1)),
            float(guard.get("default_threshold", 0.9)),
            {k: float(v) for k, v in (guard.get("thresholds") or {}).items()},
            guarded=GUARD in by_name,
        )


def outcome(message: Parsed, t: Thresholds) -> str:
    """The intent the dialogue would see: nlu_fallback, CONFIRM_INTENT or DIET's top intent."""
    if not message.ranking:
        return FALLBACK
    top, confidence = message.ranking[0]
    second = message.ranking[1][1] if len(message.ranking) > 1 else 0.0
    fallback = confidence < t.fallback or confidence - second < t.ambiguity
    if t.guarded and (
        relabelled := legitimacy_relabel(FALLBACK if fallback else top, message.text)
    ):
        return relabelled
    if t.guarded and (request := request_behind_greeting(message.ranking, message.text)):
        top, confidence = request
    elif fallback:
        details = invoice_question(message.ranking, message.text) if t.guarded else None
        return details or FALLBACK
    elif t.guarded and (topic := topic_relabel(message.ranking, message.text)):
        top, confidence = topic
        if top == FALLBACK:
            return invoice_question(message.ranking, message.text) or FALLBACK
    if t.guarded and (question := when_question_relabel(top, message.text)):
        top = question
    if t.guarded and is_weak(top, confidence, message.text, t.per_intent, t.default):
        return CONFIRM_INTENT
    return top


def rates(messages: list[Parsed], t: Thresholds) -> dict[str, int]:
    counts = {
        "messages": len(messages),
        "false_accept": 0,
        "business": 0,
        "business_07": 0,
        "asked": 0,
        "fallback": 0,
    }
    for message in messages:
        final = outcome(message, t)
        counts["false_accept"] += final in CONSEQUENTIAL
        counts["business"] += final not in NOT_BUSINESS
        counts["business_07"] += final not in NOT_BUSINESS and message.ranking[0][1] >= 0.7
        counts["asked"] += final == CONFIRM_INTENT
        counts["fallback"] += final == FALLBACK
    return counts


def heldout_rates(messages: list[Parsed], t: Thresholds) -> dict[str, int]:
    counts = {
        "messages": len(messages),
        "top_right": 0,
        "acts_right": 0,
        "consequential": 0,
        "needless_question": 0,
        "wrong_action": 0,
        "fallback": 0,
    }
    for message in messages:
        final = outcome(message, t)
        top = message.ranking[0][0] if message.ranking else None
        counts["top_right"] += top == message.gold
        counts["acts_right"] += final == message.gold
        counts["fallback"] += final == FALLBACK
        if message.gold in CONSEQUENTIAL:
            counts["consequential"] += 1
            counts["needless_question"] += final == CONFIRM_INTENT and top == message.gold
        counts["wrong_action"] += final in CONSEQUENTIAL and final != message.gold
    return counts


def load_oos(path: Path) -> dict[str, list[str]]:
    if not path.is_file():
        raise SystemExit(
            f"{path}: the CLINC150 off-topic file is missing. It lives in the project's shared "
            "evaluation folder (shared/eval next to the checkout); pass its location with --oos."
        )
    data = json.loads(path.read_text(encoding="utf-8"))
    return {split: [str(text) for text in data[split]] for split in ("oos_train", "oos_val")}


def load_offtopic_fr(path: Path = OFFTOPIC_FR) -> list[str]:
    messages = [str(m) for m in yaml.safe_load(path.read_text(encoding="utf-8"))["messages"]]
    training = _training_texts()
    leaked = [m for m in messages if fold(m) in training]
    if leaked:
        raise SystemExit(
            f"{path.name}: {len(leaked)} message(s) are also training "
            f"examples, the set would no longer measure anything: {leaked[:3]}"
        )
    return messages


def _training_texts() -> set[str]:
    from rasa.shared.nlu.training_data.loading import load_data

    texts: set[str] = set()
    for path in sorted((PROJECT_ROOT / "data" / "nlu").rglob("*.yml")):
        texts.update(fold(str(e.get("text"))) for e in load_data(str(path)).intent_examples)
    return texts


async def parse_all(
    model: Path, sets: dict[str, Iterable[tuple[str, str | None]]]
) -> dict[str, list[Parsed]]:
    from rasa.core.agent import Agent

    agent = Agent.load(str(model))
    parsed: dict[str, list[Parsed]] = {}
    for name, messages in sets.items():
        parsed[name] = []
        for text, gold in messages:
            result = await agent.parse_message(text)
            ranking = [
                (str(r["name"]), float(r["confidence"]))
                for r in result.get("intent_ranking") or []
                if r["name"] not in (FALLBACK, CONFIRM_INTENT) and not r.get(RELABELLED)
            ]
            parsed[name].append(Parsed(text, ranking, gold))
    return parsed


def tune(train: list[Parsed], current: Thresholds) -> tuple[Thresholds, list[str]]:
    """The ConsequenceGuard's threshold from oos_train, and the FallbackClassifier's curve.

    Guard: the lowest grid value above every oos_train message whose top intent is
    consequential, on confidence alone (cues ignored): no off-topic message of the tuning split
    would act even if it held a cue. One threshold for all these intents: oos_train holds too few
    such misreadings to set them one by one. Fallback: how many oos_train messages each
    (threshold, ambiguity) leaves taken for a business intent; DIET gives most misreadings a
    confidence above 0.95, so it is printed to choose from, with the in-scope cost (rephrases)
    that oos_train cannot show in mind.
    """
    misread = [m.ranking[0][1] for m in train if m.ranking and m.ranking[0][0] in CONSEQUENTIAL]
    guard = next(value for value in GRID if value > max(misread, default=0.0))
    curve = [
        "| fallback threshold | " + " | ".join(f"ambiguity {a}" for a in AMBIGUITY_GRID) + " |",
        "| ---: |" + " ---: |" * len(AMBIGUITY_GRID),
    ]
    for candidate in GRID[:12]:
        cells = [
            rates(train, Thresholds(candidate, a, guard, {}))["business"] for a in AMBIGUITY_GRID
        ]
        curve.append(f"| {candidate} | " + " | ".join(str(c) for c in cells) + " |")
    return Thresholds(current.fallback, current.ambiguity, guard, {}), curve


def _pct(count: int, total: int) -> str:
    return f"{count} ({count / total:.1%})" if total else "0"


def report(parsed: dict[str, list[Parsed]], t: Thresholds, config: str, model: Path) -> list[str]:
    lines = [
        f"\n## Off-topic messages and actions with consequences ({date.today().isoformat()})\n",
        f"Command: `.venv-rasa/bin/python bench/nlu/offtopic.py <model> --config {config}`; "
        f"model `{model.name}`. Thresholds of {config}: FallbackClassifier {t.fallback} / "
        f"ambiguity {t.ambiguity}; "
        + (
            "ConsequenceGuard per intent "
            + ", ".join(f"{k} {v}" for k, v in sorted(t.per_intent.items()))
            + f", else {t.default}."
            if t.guarded
            else "no ConsequenceGuard."
        )
        + f" Target: false accepts ≤ {TARGET:.0%} on oos_val and offtopic_fr.\n",
        "| set | messages | false accepts (acts without asking) | business intent acted on "
        "| of which confidence ≥ 0.7 | confirmation asked | rephrase (fallback) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in ("oos_train", "offtopic_fr_tune", "oos_val", "offtopic_fr"):
        if name in parsed:
            r = rates(parsed[name], t)
            n = r["messages"]
            lines.append(
                f"| {name} | {n} | {_pct(r['false_accept'], n)} | "
                f"{_pct(r['business'], n)} | {_pct(r['business_07'], n)} | "
                f"{_pct(r['asked'], n)} | "
                f"{_pct(r['fallback'], n)} |"
            )
    heldout = [name for name in parsed if name.startswith("heldout_")]
    if heldout:
        lines += [
            "",
            "| held-out | messages | DIET top intent right | acts at once on the right intent "
            "| consequential requests | needless question | wrong consequential action "
            "| rephrase |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name in heldout:
            r = heldout_rates(parsed[name], t)
            n = r["messages"]
            lines.append(
                f"| {name.removeprefix('heldout_')} | {n} | {_pct(r['top_right'], n)} | "
                f"{_pct(r['acts_right'], n)} | {r['consequential']} | "
                f"{_pct(r['needless_question'], r['consequential'])} | "
                f"{r['wrong_action']} | {_pct(r['fallback'], n)} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", type=Path)
    parser.add_argument(
        "--config",
        default="bot/config.ci.yml",
        help="whose FallbackClassifier and ConsequenceGuard thresholds to apply",
    )
    parser.add_argument(
        "--oos",
        type=Path,
        default=DEFAULT_OOS,
        help="CLINC150 oos file, relative to the checkout's root",
    )
    parser.add_argument("--tune", action="store_true", help="print thresholds tuned on oos_train")
    parser.add_argument("--no-heldout", action="store_true", help="skip the blind held-out set")
    parser.add_argument("--append", help="append the results section to this Markdown file")
    args = parser.parse_args()
    oos = load_oos(args.oos if args.oos.is_absolute() else PROJECT_ROOT / args.oos)
    sets: dict[str, list[tuple[str, str | None]]] = {
        "oos_train": [(m, None) for m in oos["oos_train"]],
        "offtopic_fr_tune": [(m, None) for m in load_offtopic_fr(OFFTOPIC_FR_TUNE)],
    }
    if not args.tune:
        sets["oos_val"] = [(m, None) for m in oos["oos_val"]]
        sets["offtopic_fr"] = [(m, None) for m in load_offtopic_fr()]
        if not args.no_heldout:
            from rasa.shared.nlu.training_data.loading import load_data

            for language in ("fr", "en"):
                examples = load_data(str(HELDOUT / f"{language}.yml")).intent_examples
                sets[f"heldout_{language}"] = [(e.get("text"), e.get("intent")) for e in examples]
    from rasa.utils.log_utils import configure_structlog

    with (
        open(os.devnull, "w") as sink,
        contextlib.redirect_stdout(sink),
        contextlib.redirect_stderr(sink),
    ):
        configure_structlog(logging.WARNING)
        logging.disable(logging.WARNING)
        parsed = asyncio.run(parse_all(args.model, sets))
    current = Thresholds.from_config(PROJECT_ROOT / args.config)
    if args.tune:
        tuned, curve = tune(parsed["oos_train"], current)
        print(f"ConsequenceGuard default_threshold: {tuned.default}")
        print(
            f"oos_train messages (of {len(parsed['oos_train'])}) taken for a business intent, "
            "by FallbackClassifier setting:"
        )
        print("\n".join(curve))
        print("Tuning messages the dialogue would act on (business intent or false accept):")
        for name in ("oos_train", "offtopic_fr_tune"):
            for message in parsed[name]:
                final = outcome(message, current)
                if final not in NOT_BUSINESS:
                    confidence = message.ranking[0][1]
                    print(f"  {name}: {final} {confidence:.2f} {message.text}")
        print("\n".join(report(parsed, tuned, args.config + " (tuned values)", args.model)))
        return
    lines = report(parsed, current, args.config, args.model)
    print("\n".join(lines))
    if args.append:
        with (PROJECT_ROOT / args.append).open("a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
