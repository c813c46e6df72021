"""Debtor turn latency: raw Rasa REST channel vs the full path, same Rasa process and model.

Full path: signed Twilio webhook → api (signature, idempotency claim, conversation path, turn lock)
→ Rasa → action server → DB → TwiML. Raw path: `POST {rasa}/webhooks/rest/webhook` on the same
Rasa process, with the metadata the api would send, so the actions and the NLG endpoint do the same
work (raw Rasa still calls them: that is how the bot answers).

Both paths play the same debtor conversations (FR and EN: greet → ask balance → identity answer,
which then gives the balance), each conversation with a debtor never seen before (fresh Rasa sender
id), sequentially and with 16 concurrent debtors, in alternating raw/full blocks so load drift on a
shared machine cancels out. Same for voice (call start, then gather callbacks → TwiML).

    .venv/bin/python bench/turn_latency/run.py --append BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import signal
import socket
import sys
import tempfile
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import httpx
from twilio.request_validator import RequestValidator

PROJECT_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT_ROOT))

from relance.runtime import stack  # noqa: E402
from relance.runtime.rasa_config import write_endpoints  # noqa: E402
from relance.settings import Settings  # noqa: E402

AUTH_TOKEN = "bench-twilio-auth-token"
DEFAULT_DB = "postgresql://postgres@localhost:5432/relance_bench_turn_latency"
CI_MODEL_POINTER = Path("/tmp/ci-model.path")

# One debtor turn sequence per language; the postcode is the identity answer (CSV below).
TURNS = {
    "fr": ["Bonjour", "Combien je dois ?", "75011"],
    "en": ["Hello", "How much do I owe?", "60601"],
}
VOICE_OPENING = "/greet"  # what voice.service sends to the assistant when a call starts
COLUMNS = (
    "customer_number,name,language,timezone,jurisdiction,phone,postcode,city,country,"
    "invoice_number,description,amount,paid_amount,currency,issue_date,due_date"
)


# -- the stack ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Bench:
    api: str
    public: str
    rasa: str
    env: dict[str, str]
    database_url: str


@dataclass
class Debtor:
    id: int
    conversation_id: int | None
    phone: str
    language: str
    sender_id: str


def start_stack(tmp: Path, database_url: str, model: Path) -> tuple[stack.Stack, Bench]:
    """The e2e stack (tests/e2e/conftest.py): same launcher code, processes and settings."""
    ports = stack.Ports(
        api=_free_port(), rasa=_free_port(), actions=_free_port(), twilio_sandbox=_free_port()
    )
    public = f"http://localhost:{ports.api}"
    env = stack.stack_env(
        {k: v for k, v in os.environ.items() if k != "TEST_DATABASE_URL"},
        ports,
        {
            "ENVIRONMENT": "test",
            "DATABASE_URL": database_url,
            "VAR_DIR": str(tmp / "var"),
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "PUBLIC_BASE_URL": public,
            "RASA_AUTH_TOKEN": "bench-rasa-token",
            "RASA_TIMEOUT_SECONDS": "30",
            "NLG_TOKEN": "bench-nlg-token",
        },
    )
    settings = Settings(
        _env_file=None,
        **{k.lower(): v for k, v in env.items() if k.lower() in Settings.model_fields},
    )
    endpoints = write_endpoints(
        settings,
        api_url=f"http://127.0.0.1:{ports.api}",
        action_url=f"http://127.0.0.1:{ports.actions}/webhook",
        path=tmp / "endpoints.yml",
    )
    running = stack.Stack(env=env, log_dir=tmp / "logs")
    try:
        running.start(stack.twilio_sandbox_service(ports))
        running.start(stack.api_service(ports))
        running.start(stack.actions_service(ports))
        # Loading the model takes minutes on a loaded 2-core machine.
        rasa = stack.rasa_service(ports, model, endpoints, settings.rasa_auth_token)
        running.start(rasa, timeout=1200)
    except BaseException:
        running.stop()
        raise
    bench = Bench(
        api=f"http://127.0.0.1:{ports.api}",
        public=public,
        rasa=f"http://127.0.0.1:{ports.rasa}",
        env=env,
        database_url=settings.effective_database_url,
    )
    return running, bench


def bench_portfolio(per_language: int) -> str:
    """Identical debtors (one overdue invoice of the same amount) so every reply is comparable."""
    issue = (date.today() - timedelta(days=60)).isoformat()
    due = (date.today() - timedelta(days=30)).isoformat()
    lines = [COLUMNS]
    for i in range(per_language):
        lines.append(
            f"B-FR-{i:05d},Client Banc {i},fr,Europe/Paris,FR,+3361234{i:04d},75011,Paris,FR,"
            f"BF-{i:05d},Abonnement,1234.56,0.00,EUR,{issue},{due}"
        )
        lines.append(
            f"B-EN-{i:05d},Bench Client {i},en,America/Chicago,US,+1202555{1000 + i:04d},60601,"
            f"Chicago,US,BE-{i:05d},Subscription,1234.56,0.00,USD,{issue},{due}"
        )
    return "\n".join(lines) + "\n"


def prepare_database(url: str, per_language: int) -> dict[str, list[Debtor]]:
    """Fresh schema through Alembic, the bench portfolio, and the debtors split between paths.

    Raw-path debtors get their conversation row up front (the api creates it on first contact in
    the full path), so the raw metadata carries the same debtor and conversation ids.
    """
    from sqlalchemy import select, text
    from sqlalchemy.orm import Session

    from relance.conversations.repository import conversation_for_debtor
    from relance.db.base import Base
    from relance.db.migrate import upgrade_to_head
    from relance.db.models import Contact
    from relance.db.models import Debtor as DebtorRow
    from relance.db.session import make_engine
    from relance.portfolio.importer import import_rows, read_csv
    from relance.settings import normalise_database_url

    url = normalise_database_url(url)
    engine = make_engine(url)
    if url.startswith("postgresql"):
        from relance.db.provision import ensure_postgres_database

        ensure_postgres_database(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    else:
        Base.metadata.drop_all(engine)
    upgrade_to_head(url)
    pools: dict[str, list[Debtor]] = {}
    with Session(engine) as session:
        report = import_rows(session, read_csv(bench_portfolio(per_language)), actor="bench")
        if not report.ok:
            raise SystemExit(f"bench portfolio refused: {report.errors[:5]}")
        session.commit()
        rows = session.execute(
            select(DebtorRow, Contact.address)
            .join(Contact, Contact.debtor_id == DebtorRow.id)
            .where(Contact.channel == "sms")
            .order_by(DebtorRow.id)
        ).all()
        for n, (debtor, phone) in enumerate(rows):
            path = "raw" if n % 4 < 2 else "full"  # FR/EN rows alternate: both paths get both
            conversation_id = None
            if path == "raw":
                conversation_id = conversation_for_debtor(session, debtor).id
            pools.setdefault(f"{path}:{debtor.language}", []).append(
                Debtor(debtor.id, conversation_id, phone, debtor.language, f"debtor-{debtor.id}")
            )
        session.commit()
    engine.dispose()
    return pools


# -- one conversation, either path -----------------------------------------------------------


@dataclass
class Turn:
    kind: str  # sms or voice
    index: int  # 0 = first turn (greet / call start)
    seconds: float
    replies: list[str]


def _twiml(text: str, tag: str) -> list[str]:
    root = ET.fromstring(text)
    return [(e.text or "").strip() for e in root.iter(tag)]


def _sign(url: str, fields: dict[str, str]) -> str:
    return RequestValidator(AUTH_TOKEN).compute_signature(url, fields)


def raw_conversation(
    client: httpx.Client, bench: Bench, debtor: Debtor, channel: str
) -> list[Turn]:
    texts = list(TURNS[debtor.language])
    if channel == "voice":
        texts[0] = VOICE_OPENING
    metadata = {
        "channel": channel,
        "language": debtor.language,
        "debtor_id": str(debtor.id),
        "conversation_id": str(debtor.conversation_id),
    }
    turns = []
    for n, text in enumerate(texts):
        started = time.perf_counter()
        response = client.post(
            bench.rasa + "/webhooks/rest/webhook",
            json={"sender": debtor.sender_id, "message": text, "metadata": metadata},
        )
        elapsed = time.perf_counter() - started
        response.raise_for_status()
        replies = [m["text"] for m in response.json() if m.get("text")]
        turns.append(Turn(channel, n, elapsed, replies))
    return turns


def full_sms_conversation(client: httpx.Client, bench: Bench, debtor: Debtor) -> list[Turn]:
    turns = []
    for n, text in enumerate(TURNS[debtor.language]):
        sid = "SM" + uuid.uuid4().hex
        fields = {
            "MessageSid": sid,
            "SmsSid": sid,
            "AccountSid": "ACbench000000000000000000000000000",
            "From": debtor.phone,
            "To": "+33757000000",
            "Body": text,
            "NumMedia": "0",
        }
        signature = _sign(bench.public + "/twilio/sms", fields)
        started = time.perf_counter()
        response = client.post(
            bench.api + "/twilio/sms", data=fields, headers={"X-Twilio-Signature": signature}
        )
        elapsed = time.perf_counter() - started
        response.raise_for_status()
        turns.append(Turn("sms", n, elapsed, _twiml(response.text, "Message")))
    return turns


def full_voice_conversation(client: httpx.Client, bench: Bench, debtor: Debtor) -> list[Turn]:
    """Inbound call: call start (opening turn), then one gather callback per spoken answer."""
    call = {
        "AccountSid": "ACbench000000000000000000000000000",
        "ApiVersion": "2010-04-01",
        "CallSid": "CA" + uuid.uuid4().hex,
        "CallStatus": "in-progress",
        "Called": "+33757000002",
        "Caller": debtor.phone,
        "Direction": "inbound",
        "From": debtor.phone,
        "To": "+33757000002",
    }
    url = bench.public + "/twilio/voice"
    fields = call
    turns = []
    for n, spoken in enumerate([None, *TURNS[debtor.language][1:]]):
        if spoken is not None:
            fields = {**call, "SpeechResult": spoken, "Confidence": "0.92"}
        started = time.perf_counter()
        response = client.post(
            bench.api + url[len(bench.public) :],
            data=fields,
            headers={"X-Twilio-Signature": _sign(url, fields)},
        )
        elapsed = time.perf_counter() - started
        response.raise_for_status()
        turns.append(Turn("voice", n, elapsed, _twiml(response.text, "Say")))
        gather = ET.fromstring(response.text).find("Gather")
        if gather is None:
            raise RuntimeError(f"call ended early for debtor {debtor.id}: {response.text}")
        url = gather.attrib["action"]
    return turns


# -- blocks, statistics ----------------------------------------------------------------------


@dataclass
class Series:
    """Latencies and throughput blocks of one (channel, mode, path)."""

    latencies: list[float] = field(default_factory=list)
    turns: int = 0
    seconds: float = 0.0
    replies: dict[str, list[list[str]]] = field(default_factory=dict)

    def add(self, turns: list[Turn], measured: Callable[[Turn], bool], language: str) -> None:
        self.latencies.extend(t.seconds for t in turns if measured(t))
        key = f"{language}:{'|'.join(str(t.index) for t in turns)}"
        self.replies.setdefault(key, []).append([" ".join(t.replies) for t in turns])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, int(-(-q * len(ordered) // 100)))  # nearest rank
    return ordered[rank - 1]


class Pools:
    def __init__(self, pools: dict[str, list[Debtor]]) -> None:
        self._pools = pools
        self._lock = threading.Lock()

    def take(self, path: str, language: str) -> Debtor:
        with self._lock:
            pool = self._pools[f"{path}:{language}"]
            if not pool:
                raise SystemExit(f"out of fresh {path}/{language} debtors: raise --debtors")
            return pool.pop(0)


def _conversation(
    client: httpx.Client, bench: Bench, pools: Pools, path: str, channel: str, language: str
) -> list[Turn]:
    debtor = pools.take(path, language)
    if path == "raw":
        return raw_conversation(client, bench, debtor, channel)
    if channel == "voice":
        return full_voice_conversation(client, bench, debtor)
    return full_sms_conversation(client, bench, debtor)


def _measured(channel: str) -> Callable[[Turn], bool]:
    # Voice: the spec's turn is the gather callback; the call start is played but not counted.
    return (lambda t: t.index > 0) if channel == "voice" else (lambda t: True)


def run_channel(
    client: httpx.Client,
    bench: Bench,
    pools: Pools,
    channel: str,
    *,
    sequential_rounds: int,
    concurrent_blocks: int,
    concurrency: int,
) -> dict[str, Series]:
    results = {f"{m}:{p}": Series() for m in ("seq", "conc") for p in ("raw", "full")}
    measured = _measured(channel)
    for _ in range(2):  # warm-up: both paths, both languages, not recorded
        for path in ("raw", "full"):
            for language in TURNS:
                _conversation(client, bench, pools, path, channel, language)
    for r in range(sequential_rounds):
        order = ("raw", "full") if r % 2 == 0 else ("full", "raw")  # ABBA against drift
        for path in order:
            for language in TURNS:
                turns = _conversation(client, bench, pools, path, channel, language)
                results[f"seq:{path}"].add(turns, measured, language)
                results[f"seq:{path}"].turns += sum(1 for t in turns if measured(t))
                results[f"seq:{path}"].seconds += sum(t.seconds for t in turns if measured(t))
        print(f"  {channel} sequential round {r + 1}/{sequential_rounds}", flush=True)
    languages = [list(TURNS)[i % len(TURNS)] for i in range(concurrency)]
    with ThreadPoolExecutor(max_workers=concurrency) as executor:
        for b in range(concurrent_blocks):
            order = ("raw", "full") if b % 2 == 0 else ("full", "raw")
            for path in order:
                started = time.perf_counter()
                futures = [
                    executor.submit(_conversation, client, bench, pools, path, channel, lang)
                    for lang in languages
                ]
                done = [(f.result(), lang) for f, lang in zip(futures, languages, strict=True)]
                wall = time.perf_counter() - started
                series = results[f"conc:{path}"]
                series.seconds += wall
                for turns, lang in done:
                    series.add(turns, measured, lang)
                    series.turns += len(turns)  # throughput: every turn the block served
            print(f"  {channel} concurrent block {b + 1}/{concurrent_blocks}", flush=True)
    return results


def consistency(results: dict[str, Series], channel: str) -> str:
    """Both paths must have had the same conversation: compare replies turn by turn (voice: the
    raw text as the api speaks it, `voice.speech.for_speech`)."""
    from voice.speech import for_speech

    spoken = channel == "voice"
    same = total = 0
    for mode in ("seq", "conc"):
        raw, full = results[f"{mode}:raw"].replies, results[f"{mode}:full"].replies
        for key, conversations in full.items():
            expected = raw.get(key, [[]])[0]
            if spoken:
                expected = [for_speech(r)[0] for r in expected]
            for replies in conversations:
                total += 1
                equal = [_norm(r) for r in replies] == [_norm(r) for r in expected]
                if not equal and same == total - 1:  # first difference: shown for diagnosis
                    print(f"{channel} {key}: raw {expected} != full {replies}", flush=True)
                same += equal
    return f"{same}/{total}"


def _norm(text: str) -> str:
    return " ".join(text.split())


# -- report ----------------------------------------------------------------------------------


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({model or platform.processor()}), {platform.system()}"


def _ms(value: float) -> str:
    return f"{value * 1000:.0f}"


def table(channel: str, results: dict[str, Series], concurrency: int) -> list[str]:
    rows = [
        f"| {channel} | n | p50 ms | p95 ms | p99 ms | throughput ({concurrency} debtors) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for path in ("raw", "full"):
        seq, conc = results[f"seq:{path}"], results[f"conc:{path}"]
        rows.append(
            f"| {path} | {len(seq.latencies)} | {_ms(percentile(seq.latencies, 50))} | "
            f"{_ms(percentile(seq.latencies, 95))} | {_ms(percentile(seq.latencies, 99))} | "
            f"{conc.turns / conc.seconds:.2f} turns/s ({conc.turns} turns) |"
        )
    return rows


def ratios(results: dict[str, Series]) -> dict[str, float]:
    raw, full = results["seq:raw"].latencies, results["seq:full"].latencies
    out = {f"p{q}": percentile(full, q) / percentile(raw, q) for q in (50, 95, 99)}
    conc_raw, conc_full = results["conc:raw"], results["conc:full"]
    out["throughput"] = (conc_full.turns / conc_full.seconds) / (conc_raw.turns / conc_raw.seconds)
    out["conc_p95"] = percentile(conc_full.latencies, 95) / percentile(conc_raw.latencies, 95)
    return out


def report(
    args: argparse.Namespace,
    all_results: dict[str, dict[str, Series]],
    loads: list[tuple[float, float, float]],
    database: str,
    minutes: float,
) -> str:
    today = date.today().isoformat()
    command = "python bench/turn_latency/run.py " + shlex.join(sys.argv[1:])
    lines = [
        f"## Debtor turn latency — raw Rasa REST vs full Twilio path ({today}"
        + (f", {args.label}" if args.label else "")
        + f", commit {args.commit})",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {machine()} (may be shared with other runs: read the load); load average "
        f"(1/5/15 min) at start {' '.join(f'{x:.2f}' for x in loads[0])}, at end "
        f"{' '.join(f'{x:.2f}' for x in loads[-1])}. Database: {database}. Run time "
        f"{minutes:.1f} min. One Rasa process, one model (`{args.model_name}`), one action server, one "
        "api worker; raw and full measured in the same run, in alternating blocks (ABBA).",
        "",
        "Raw = `POST /webhooks/rest/webhook` straight to Rasa with the metadata the api sends: it "
        "still calls the action server (DB reads and writes) and the api's NLG endpoint for every "
        "reply. Full = signed Twilio webhook → api (signature, idempotency claim, inbound stored "
        "and committed, turn lock, Rasa, replies stored) → TwiML. Each conversation uses a fresh "
        f"debtor (fresh Rasa sender id): FR `{' → '.join(TURNS['fr'])}`, EN "
        f"`{' → '.join(TURNS['en'])}` (greet → ask balance → identity answer, then the balance). "
        "Sequential: one turn at a time, p50/p95/p99 over every turn. Throughput: "
        f"{args.concurrency} debtors (half FR, half EN) talking at once, turns served / wall time "
        "of the block. Voice: call start then gather callbacks (speech) → TwiML; latencies are "
        "the gather callbacks only, throughput counts every webhook of the call. Target: full p95 "
        "≤ 1.3× raw, full throughput ≥ 80 % of raw.",
        "",
    ]
    for channel, results in all_results.items():
        r = ratios(results)
        lines += table(channel, results, args.concurrency)
        p95_ok = "met" if r["p95"] <= 1.3 else "missed"
        tput_ok = "met" if r["throughput"] >= 0.8 else "missed"
        lines += [
            "",
            f"{channel}: full/raw p50 {r['p50']:.2f}×, p95 {r['p95']:.2f}× ({p95_ok}), "
            f"p99 {r['p99']:.2f}×; throughput full/raw {r['throughput'] * 100:.0f} % ({tput_ok}); "
            f"p95 under {args.concurrency}-debtor load full/raw {r['conc_p95']:.2f}×. "
            f"Same replies on both paths: {consistency(results, channel)} conversations.",
            "",
        ]
    return "\n".join(lines)


def _commit() -> str:
    import subprocess

    out = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    return out.stdout.strip() or "unknown"


def _model(path: str | None) -> Path:
    if path:
        return Path(path)
    if CI_MODEL_POINTER.exists():
        return Path(CI_MODEL_POINTER.read_text().strip())
    from relance.runtime.paths import BOT_DIR
    from relance.runtime.training import ensure_model

    return ensure_model(BOT_DIR / "config.ci.yml")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DB, help="recreated from scratch")
    parser.add_argument("--model", help="model .tar.gz (default: the CI model)")
    parser.add_argument(
        "--rounds", type=int, default=20, help="sequential conversations / path / language"
    )
    parser.add_argument("--blocks", type=int, default=4, help="concurrent blocks per path")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--channels", default="sms,voice")
    parser.add_argument("--append", type=Path, help="append the report to this Markdown file")
    parser.add_argument("--label", default="", help="added to the report title (e.g. before fix)")
    args = parser.parse_args(argv)
    args.commit = _commit()  # at start: the api runs the code of that moment
    # Stopped with SIGTERM: still stop the processes this run started (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    channels = [c for c in args.channels.split(",") if c]
    per_conversation_set = 4 + args.rounds + args.blocks * args.concurrency // 2 + 4
    per_language = 2 * per_conversation_set * len(channels) + 8  # raw + full
    tmp = Path(tempfile.mkdtemp(prefix="bench-turn-latency-"))
    model = _model(args.model)
    args.model_name = model.name  # the report names the model measured (CI or production)
    print(f"model {model}; preparing {2 * per_language} debtors…", flush=True)
    pools = Pools(prepare_database(args.database_url, per_language))
    running, bench = start_stack(tmp, args.database_url, model)
    started = time.monotonic()
    all_results: dict[str, dict[str, Series]] = {}
    loads = [os.getloadavg()]
    try:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        with httpx.Client(timeout=120, limits=limits) as client:
            client.post(
                bench.rasa + "/model/parse",
                json={"text": "bonjour"},
                params={"token": bench.env["RASA_AUTH_TOKEN"]},
            ).raise_for_status()
            for channel in channels:
                all_results[channel] = run_channel(
                    client,
                    bench,
                    pools,
                    channel,
                    sequential_rounds=args.rounds,
                    concurrent_blocks=args.blocks,
                    concurrency=args.concurrency,
                )
                # Printed at once: a run cut short still leaves the finished channels' numbers.
                print("\n".join(table(channel, all_results[channel], args.concurrency)), flush=True)
                print(ratios(all_results[channel]), flush=True)
        loads.append(os.getloadavg())
    finally:
        running.stop()
        print(f"logs: {tmp / 'logs'}")
    from sqlalchemy.engine import make_url

    database = make_url(args.database_url).get_backend_name()
    text = report(args, all_results, loads, database, (time.monotonic() - started) / 60)
    print(text)
    if args.append:
        with args.append.open("a", encoding="utf-8") as out:
            out.write("\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
