"""E-invoices in: Factur-X (every profile: MINIMUM, BASIC WL, BASIC, EN 16931, EXTENDED), CII and
UBL; each file all-or-nothing."""

from __future__ import annotations

import io
import os
import stat
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relance.db.models import Contact, Debtor, Invoice, Payment
from relance.db.models.enums import Channel, InvoiceStatus
from relance.einvoice.bundle import Source, expand
from relance.einvoice.service import EInvoiceReport, import_sources
from tests.factories import make_debtor
from tests.relance.einvoice.samples import (
    WITH_CONTACT,
    Sample,
    cii,
    drafthorse_facturx,
    facturx,
    ubl,
)

BASE = Sample()
PROFILES = ["minimum", "basicwl", "basic", "en16931", "extended"]
# The profiles whose documents carry everything a new debtor needs (a buyer phone, BT-57).
NO_PHONE = [p for p in PROFILES if p not in WITH_CONTACT]


def run(db: Session, tmp_path: Path, *files: tuple[str, bytes]) -> EInvoiceReport:
    sources = [s for name, data in files for s in expand(name, data)]
    return import_sources(db, sources, actor="test", store_dir=tmp_path / "store")


def count(db: Session, model: type) -> int:
    return db.scalar(select(func.count()).select_from(model)) or 0


def known_debtor(db: Session, **kw: str) -> Debtor:
    return make_debtor(
        db,
        channels=(Channel.SMS,),
        phone="+33639980077",
        customer_number=kw.get("customer_number", "C-KNOWN"),
        name="Boulangerie Martin",
        siren=kw.get("siren"),
        vat_number=kw.get("vat_number"),
    )


@pytest.mark.parametrize("profile", ["basicwl", "basic", "en16931", "extended"])
def test_a_facturx_pdf_creates_debtor_and_invoice_with_identity_terms_and_evidence(
    db: Session, tmp_path: Path, profile: str
) -> None:
    """BASIC WL and BASIC carry no buyer phone: the debtor must be known (here by its customer
    number, BT-46); EN 16931 and EXTENDED carry one, so the debtor is created as from a CSV row.
    BASIC WL has no invoice lines: the import reads only the header, so it needs none."""
    known = known_debtor(db, customer_number=BASE.buyer_id) if profile in NO_PHONE else None
    report = run(db, tmp_path, ("fa.pdf", facturx(BASE, profile)))
    [entry] = report.files
    assert (entry.status, entry.format, entry.profile) == ("created", "facturx", profile), entry
    assert entry.problems == []
    invoice = db.scalars(select(Invoice).where(Invoice.number == BASE.number)).one()
    assert (invoice.amount_minor, invoice.currency) == (12_000, "EUR")
    assert (str(invoice.issue_date), str(invoice.due_date)) == ("2026-10-01", "2026-10-31")
    assert invoice.payment_terms and "30 jours" in invoice.payment_terms
    assert invoice.late_payment_terms and "indemnité forfaitaire" in invoice.late_payment_terms
    debtor = invoice.debtor
    assert (debtor.siren, debtor.siret, debtor.vat_number) == (
        "732829320",
        "73282932000074",
        "FR44732829320",
    )
    if known is not None:
        assert debtor.id == known.id
    else:
        assert (debtor.postcode, debtor.city, debtor.segment) == ("75011", "Paris", "b2b")
    stored = Path(invoice.document_path or "")
    assert stored.read_bytes().startswith(b"%PDF")  # the original, kept as evidence
    assert stat.S_IMODE(os.stat(stored).st_mode) == 0o600
    # The e-mail: the buyer's contact (BT-58) from EN 16931 on, its electronic address (BT-49)
    # in BASIC WL and BASIC; the phone only in the contact.
    assert BASE.email in {c.address for c in debtor.contacts}
    if profile in WITH_CONTACT:
        assert debtor.email == BASE.email
        assert {c.address for c in debtor.contacts} >= {BASE.phone}


@pytest.mark.parametrize("profile", PROFILES)
def test_reimporting_a_facturx_pdf_updates_never_duplicates_and_keeps_each_original(
    db: Session, tmp_path: Path, profile: str
) -> None:
    if profile in NO_PHONE:
        known_debtor(db, customer_number=BASE.buyer_id, siren="732829320")
    first = facturx(BASE, profile)
    assert run(db, tmp_path, ("a.pdf", first)).files[0].status == "created"
    again = run(db, tmp_path, ("a.pdf", first)).files[0]
    assert (again.status, again.profile) == ("unchanged", profile), again.problems
    due = "2026-10-31" if profile == "minimum" else "2026-11-15"  # MINIMUM has no due date
    second = facturx(BASE.but(total="150.00", due=due), profile)
    changed = run(db, tmp_path, ("a2.pdf", second)).files[0]
    assert changed.status == "updated", changed.problems
    [invoice] = db.scalars(select(Invoice)).all()
    assert (invoice.amount_minor, str(invoice.due_date)) == (15_000, due)
    assert count(db, Debtor) == 1
    assert Path(invoice.document_path or "").read_bytes() == second  # the new version's evidence
    assert len(list((tmp_path / "store").iterdir())) == 2  # and the first one's is still kept


@pytest.mark.parametrize("profile", PROFILES)
def test_each_profiles_fixture_is_what_the_library_reads_as_that_profile(profile: str) -> None:
    """The generated PDFs carry the CII the `factur-x` library identifies as `profile` (BT-24),
    with the XMP conformance level of that profile, and valid against that profile's XSD;
    BASIC WL and MINIMUM without any invoice line, as their XSDs require."""
    from facturx import get_facturx_xml_from_pdf, get_level, xml_check_xsd
    from facturx.facturx import FACTURX_LEVEL2xmp
    from lxml import etree
    from pypdf import PdfReader

    pdf = facturx(BASE, profile)
    _name, xml = get_facturx_xml_from_pdf(io.BytesIO(pdf), check_xsd=False)
    assert get_level(etree.fromstring(xml)) == profile
    xmp = PdfReader(io.BytesIO(pdf)).xmp_metadata
    assert xmp is not None
    level = f"<fx:ConformanceLevel>{FACTURX_LEVEL2xmp[profile]}</fx:ConformanceLevel>"
    assert level.encode() in xmp.stream.get_data()
    assert xml_check_xsd(xml, flavor="factur-x", level=profile)
    has_lines = b"IncludedSupplyChainTradeLineItem" in xml
    assert has_lines == (profile not in ("minimum", "basicwl"))
    assert (b"<ram:TelephoneUniversalCommunication>" in xml) == (profile in WITH_CONTACT)


def test_a_minimum_profile_invoice_goes_to_the_debtor_known_by_its_siren(
    db: Session, tmp_path: Path
) -> None:
    debtor = known_debtor(db, siren="732829320")
    report = run(db, tmp_path, ("min.pdf", facturx(BASE, "minimum")))
    [entry] = report.files
    assert entry.status == "created", entry.problems
    invoice = db.scalars(select(Invoice).where(Invoice.number == BASE.number)).one()
    assert invoice.debtor_id == debtor.id
    assert str(invoice.due_date) == "2026-10-31"  # no due date in MINIMUM: 30 days by law
    assert "L441-10" in entry.warnings[0]


def test_ubl_invoice_and_plain_cii_xml_import(db: Session, tmp_path: Path) -> None:
    report = run(
        db,
        tmp_path,
        ("a.xml", ubl(BASE.but(number="UBL-1"))),
        ("b.xml", cii(BASE.but(number="CII-1"))),
    )
    assert [(f.status, f.format) for f in report.files] == [("created", "ubl"), ("created", "cii")]
    assert count(db, Debtor) == 1  # the same buyer (SIRET) both times
    ubl_invoice = db.scalars(select(Invoice).where(Invoice.number == "UBL-1")).one()
    assert ubl_invoice.debtor.customer_number == BASE.buyer_id


def test_a_french_ctc_extended_cii_is_read_as_that_profile(db: Session, tmp_path: Path) -> None:
    """EXTENDED-CTC-FR, the CII the French e-invoicing reform's platforms exchange from 2026, was
    reported under its raw guideline URN and refused inside a PDF as an unknown profile. The
    fixture is checked against that profile's own XSD (D22B) by the factur-x library first."""
    from facturx import xml_check_xsd

    xml = cii(BASE.but(number="CTC-1"), "extended-ctc-fr")
    xml_check_xsd(xml, flavor="factur-x", level="extended-ctc-fr")
    report = run(db, tmp_path, ("ctc.xml", xml))
    [entry] = report.files
    assert (entry.status, entry.format, entry.profile) == ("created", "cii", "extended-ctc-fr")
    invoice = db.scalars(select(Invoice).where(Invoice.number == "CTC-1")).one()
    assert (invoice.amount_minor, invoice.debtor.customer_number) == (12_000, BASE.buyer_id)


def test_reimport_updates_never_duplicates(db: Session, tmp_path: Path) -> None:
    run(db, tmp_path, ("a.xml", ubl(BASE)))
    again = run(db, tmp_path, ("a.xml", ubl(BASE)))
    assert again.files[0].status == "unchanged"
    changed = run(db, tmp_path, ("a2.xml", ubl(BASE.but(total="150.00", due="2026-11-15"))))
    assert changed.files[0].status == "updated"
    [invoice] = db.scalars(select(Invoice)).all()
    assert (invoice.amount_minor, str(invoice.due_date)) == (15_000, "2026-11-15")


def test_a_credit_note_reduces_the_balance_through_the_ledger_once(
    db: Session, tmp_path: Path
) -> None:
    run(db, tmp_path, ("a.pdf", facturx(BASE)))
    note = BASE.but(number="AV-1", type_code="381", preceding=BASE.number, total="20.00")
    first = run(db, tmp_path, ("av.xml", cii(note)))
    assert first.files[0].status == "credited", first.files[0].problems
    invoice = db.scalars(select(Invoice).where(Invoice.number == BASE.number)).one()
    assert invoice.balance_minor == 10_000
    payment = db.scalars(select(Payment)).one()
    assert (payment.method, payment.amount_minor) == ("credit_note", 2_000)
    assert run(db, tmp_path, ("av.xml", cii(note))).files[0].status == "unchanged"
    assert count(db, Payment) == 1
    full = note.but(number="AV-2", total="100.00")
    assert run(db, tmp_path, ("av2.xml", ubl(full))).files[0].status == "credited"
    db.refresh(invoice)
    assert (invoice.balance_minor, invoice.status) == (0, InvoiceStatus.PAID)


@pytest.mark.parametrize("profile", NO_PHONE)
def test_unknown_debtor_without_a_phone_is_refused_with_the_documented_error(
    db: Session, tmp_path: Path, profile: str
) -> None:
    """MINIMUM, BASIC WL and BASIC cannot carry the buyer's phone, which a new debtor needs: the
    file is refused alone, naming what the buyer is known by, and the next file still imports."""
    other = BASE.but(number="FA-OTHER")
    report = run(db, tmp_path, ("nophone.pdf", facturx(BASE, profile)), ("ok.pdf", facturx(other)))
    [entry, ok] = report.files
    assert (entry.status, entry.profile) == ("rejected", profile)
    assert entry.problems[0].field == "buyer"
    assert entry.problems[0].message.startswith("unknown debtor: no debtor has SIREN/SIRET")
    assert "carries no buyer phone to create one (import the debtor by CSV first)" in (
        entry.problems[0].message
    )
    assert ok.status == "created", ok.problems
    assert {i.number for i in db.scalars(select(Invoice))} == {"FA-OTHER"}
    assert len(list((tmp_path / "store").iterdir())) == 1  # the refused original is not kept


@pytest.mark.parametrize(
    ("sample", "field", "message"),
    [
        (BASE.but(currency="EURO"), "invoice currency (BT-5)", "is not an ISO 4217 code"),
        (BASE.but(amount_currency="USD"), "invoice currency (BT-5)", "amounts are in USD"),
        (BASE.but(total="12O.00"), "invoice total with VAT (BT-112)", "is not a number"),
        (BASE.but(issue="2026-13-01"), "issue date (BT-2)", "is not a date"),
        (BASE.but(phone="12"), "buyer phone (BT-57)", "not a possible phone number"),
    ],
)
def test_bad_fields_are_reported_by_field_and_nothing_is_stored(
    db: Session, tmp_path: Path, sample: Sample, field: str, message: str
) -> None:
    [entry] = run(db, tmp_path, ("bad.xml", ubl(sample))).files
    assert entry.status == "rejected"
    assert any(p.field == field and message in p.message for p in entry.problems), entry.problems
    assert count(db, Invoice) == 0 and count(db, Debtor) == 0 and count(db, Contact) == 0


def test_wrong_currency_on_reimport_and_duplicate_in_one_batch(db: Session, tmp_path: Path) -> None:
    run(db, tmp_path, ("a.xml", ubl(BASE)))
    [entry] = run(db, tmp_path, ("usd.xml", ubl(BASE.but(currency="USD")))).files
    assert entry.problems[0].message.startswith("wrong currency: invoice FA-2026-0001 is in EUR")
    batch = run(
        db, tmp_path, ("x.xml", ubl(BASE.but(number="X-1"))), ("y.xml", cii(BASE.but(number="X-1")))
    )
    assert [f.status for f in batch.files] == ["created", "rejected"]
    assert "X-1 is also in x.xml" in batch.files[1].problems[0].message


def test_malformed_files_are_rejected_each_with_its_reason(db: Session, tmp_path: Path) -> None:
    report = run(
        db,
        tmp_path,
        ("cut.xml", ubl(BASE)[:300]),
        ("word.docx", b"\x00\x01binary"),
        ("fake.pdf", b"%PDF-1.4 not really"),
        ("other.xml", b"<note><to>x</to></note>"),
        ("good.xml", ubl(BASE)),
    )
    statuses = [(f.name, f.status) for f in report.files]
    assert statuses[-1] == ("good.xml", "created")
    messages = [f.problems[0].message for f in report.files[:-1]]
    assert "not well-formed" in messages[0]
    assert "neither a PDF nor an XML" in messages[1]
    assert "PDF" in messages[2]
    assert "neither a UBL 2.1 nor a UN/CEFACT CII" in messages[3]


def test_xxe_is_refused_and_no_file_is_read(db: Session, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    attack = (
        ubl(BASE)
        .replace(
            b'<?xml version="1.0" encoding="UTF-8"?>',
            f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://{secret}">]>'.encode(),
        )
        .replace(BASE.buyer_name.encode(), b"&x;", 1)
    )
    [entry] = run(db, tmp_path, ("xxe.xml", attack)).files
    assert entry.status == "rejected"
    assert "DTD" in entry.problems[0].message
    assert count(db, Debtor) == 0


def test_billion_laughs_inside_a_facturx_pdf_is_refused(db: Session, tmp_path: Path) -> None:
    from facturx import generate_from_binary

    from tests.relance.einvoice.samples import blank_pdf

    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        + cii(BASE).split(b"?>", 1)[1].replace(BASE.buyer_name.encode(), b"&lol2;", 1)
    )
    pdf = generate_from_binary(
        blank_pdf(), bomb, flavor="factur-x", level="en16931", check_xsd=False
    )
    [entry] = run(db, tmp_path, ("bomb.pdf", bytes(pdf))).files
    assert entry.status == "rejected" and "DTD" in entry.problems[0].message


def test_a_zip_of_invoices_imports_each_member(db: Session, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("one.xml", ubl(BASE.but(number="Z-1")))
        archive.writestr("two.pdf", facturx(BASE.but(number="Z-2")))
    report = run(db, tmp_path, ("batch.zip", buffer.getvalue()))
    assert [(f.name, f.status) for f in report.files] == [
        ("batch.zip/one.xml", "created"),
        ("batch.zip/two.pdf", "created"),
    ]


def test_a_zip_bomb_is_refused_before_it_is_expanded(db: Session, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb.xml", b"<" + b"a" * (50 * 1024 * 1024))  # 50 MB of one letter
    assert len(buffer.getvalue()) < 100_000
    [source] = list(expand("bomb.zip", buffer.getvalue()))
    assert source.problem.startswith("refused as a zip bomb")
    [entry] = run(db, tmp_path, ("bomb.zip", buffer.getvalue())).files
    assert (entry.name, entry.status) == ("bomb.zip", "rejected")


def test_too_many_members_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from relance.einvoice import bundle

    monkeypatch.setattr(bundle, "MAX_MEMBERS", 3)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for n in range(4):
            archive.writestr(f"{n}.xml", b"<a/>")
    assert list(expand("many.zip", buffer.getvalue())) == [
        Source("many.zip", problem="the archive holds more than 3 files")
    ]


def test_a_concurrent_write_rejects_only_that_file(
    db: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another import writes invoice B between this chunk's look-up and its write: the chunk's
    INSERT breaks the unique number. The chunk is redone file by file, so only B's file is
    reported, nothing of it is stored (not even its original), the others import, and the
    request does not fail with a 500."""
    from relance.einvoice import service

    theirs = ubl(BASE.but(number="B", total="99.00"))
    import_sources(db, [Source("theirs.xml", theirs)], actor="other", store_dir=tmp_path / "other")
    monkeypatch.setattr(service, "_known_invoices", lambda session, numbers: set())  # the race
    ours = [("a.xml", ubl(BASE.but(number="A"))), ("b.xml", ubl(BASE.but(number="B")))]
    report = run(db, tmp_path, *ours, ("c.xml", ubl(BASE.but(number="C"))))
    assert [(f.name, f.status) for f in report.files] == [
        ("a.xml", "created"),
        ("b.xml", "rejected"),
        ("c.xml", "created"),
    ]
    assert "another import" in report.files[1].problems[0].message
    assert count(db, Invoice) == 3
    b = db.scalars(select(Invoice).where(Invoice.number == "B")).one()
    assert b.amount_minor == 9_900  # theirs, untouched
    assert len(list((tmp_path / "store").iterdir())) == 2  # a.xml and c.xml only


@pytest.mark.parametrize("chunk", [2, 500])
def test_a_bad_file_in_a_chunk_keeps_the_good_ones_and_leaves_no_trace(
    db: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """Files are judged together per chunk but each stays all-or-nothing: a file giving another
    buyer's phone is rejected between good files of a new buyer (whose later files find the
    debtor the first one created), and nothing of it is stored: no debtor, contact, invoice,
    audit row nor original. Same with chunks of two files, so chunk boundaries are crossed."""
    from relance.db.models import AuditEvent
    from relance.einvoice import service

    monkeypatch.setattr(service, "CHUNK", chunk)
    intruder = BASE.but(
        number="I-1",
        buyer_id="C-INTRUS",
        siret="55210055400013",
        vat_number="FR00552100554",
        buyer_name="Intrus SA",
        email="intrus@example.fr",
    )
    report = run(
        db,
        tmp_path,
        ("1.xml", ubl(BASE.but(number="G-1"))),
        ("2.xml", cii(BASE.but(number="G-2"))),
        ("bad.xml", ubl(intruder)),  # BASE's phone: refused
        ("4.xml", ubl(BASE.but(number="G-3"))),
        ("5.xml", ubl(intruder.but(number="I-2", phone="+33639980055"))),
    )
    assert [f.status for f in report.files] == ["created", "created", "rejected"] + ["created"] * 2
    assert report.files[2].problems[0].field == "buyer phone (BT-57)"
    assert "already belongs to customer" in report.files[2].problems[0].message
    base = db.scalars(select(Debtor).where(Debtor.customer_number == BASE.buyer_id)).one()
    assert {i.number for i in db.scalars(select(Invoice).where(Invoice.debtor_id == base.id))} == {
        "G-1",
        "G-2",
        "G-3",
    }
    intrus = db.scalars(select(Debtor).where(Debtor.customer_number == "C-INTRUS")).one()
    assert {c.address for c in intrus.contacts} == {"+33639980055", "intrus@example.fr"}
    assert count(db, Debtor) == 2 and count(db, Invoice) == 4
    created = db.scalars(select(AuditEvent).where(AuditEvent.action == "einvoice.created")).all()
    assert sorted(e.details["file"] for e in created) == ["1.xml", "2.xml", "4.xml", "5.xml"]
    assert len(list((tmp_path / "store").iterdir())) == 4


def test_a_new_invoice_and_its_credit_note_in_one_folder(db: Session, tmp_path: Path) -> None:
    """The credit note comes after the invoice in the same chunk: the invoice is written first."""
    note = BASE.but(number="AV-9", type_code="381", preceding=BASE.number, total="20.00")
    report = run(db, tmp_path, ("a.xml", ubl(BASE)), ("av.xml", cii(note)))
    assert [f.status for f in report.files] == ["created", "credited"], report.files
    invoice = db.scalars(select(Invoice).where(Invoice.number == BASE.number)).one()
    assert invoice.balance_minor == 10_000


def _statements(db: Session, tmp_path: Path, files: list[tuple[str, bytes]]) -> Counter[str]:
    """The statements the import runs, by kind: INSERT, and the others."""
    from sqlalchemy import event

    kinds: Counter[str] = Counter()

    def counted(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        kinds["insert" if statement.lstrip().upper().startswith("INSERT") else "other"] += 1

    connection = db.connection()
    event.listen(connection, "before_cursor_execute", counted)
    try:
        assert run(db, tmp_path, *files).ok
    finally:
        event.remove(connection, "before_cursor_execute", counted)
    return kinds


@pytest.mark.parametrize("files", [40, 600])
def test_statements_per_file_do_not_grow(db: Session, tmp_path: Path, files: int) -> None:
    """A folder is read, looked up and written per chunk of files, not per file (a savepoint, the
    debtor look-up, the importer's queries and the writes took about twenty statements per file).

    Four files per buyer, each buyer new. Other than INSERTs: a savepoint, three look-ups (known
    invoices, debtors, contact holders), its release, per chunk. INSERTs: on PostgreSQL a few per
    chunk; SQLite cannot tell in which order RETURNING gives generated ids, so there SQLAlchemy
    inserts the rows whose ids it needs one by one: per file the invoice and its audit row, per
    new buyer the debtor and its three contacts, per chunk the import's audit row.
    """
    buyers = [
        BASE.but(
            buyer_id=f"C-{n:04d}",
            siret=f"{100000000 + n:09d}00012",
            vat_number=f"FR00{100000000 + n:09d}",
            phone=f"+336{n:08d}",
            email=f"compta{n}@client.example",
        )
        for n in range(files // 4)
    ]
    batch = [(f"{n}.xml", ubl(buyers[n // 4].but(number=f"S-{n:05d}"))) for n in range(files)]
    kinds = _statements(db, tmp_path, batch)
    chunks = -(-files // 500)
    assert kinds["other"] <= 6 * chunks, kinds
    if db.get_bind().dialect.name == "sqlite":
        assert kinds["insert"] <= 2 * files + 4 * len(buyers) + chunks, kinds
    else:
        assert kinds["insert"] <= 8 * chunks, kinds


@pytest.mark.parametrize("profile", ["basicwl", "basic", "en16931", "extended"])
def test_a_drafthorse_built_facturx_imports(db: Session, tmp_path: Path, profile: str) -> None:
    if profile in NO_PHONE:  # no buyer phone in these profiles: a debtor known by its SIREN
        make_debtor(
            db,
            channels=(Channel.SMS,),
            phone="+33639980043",
            customer_number="C-DH",
            siren="552100554",
        )
    pdf = drafthorse_facturx(profile)
    [entry] = run(db, tmp_path, ("dh.pdf", pdf)).files
    assert (entry.status, entry.format, entry.profile) == ("created", "facturx", profile), entry
    invoice = db.scalars(select(Invoice).where(Invoice.number == "DH-2026-001")).one()
    assert (invoice.amount_minor, invoice.currency) == (30_000, "EUR")
    assert (str(invoice.issue_date), str(invoice.due_date)) == ("2026-10-01", "2026-11-30")
    debtor = invoice.debtor
    assert (debtor.siren, debtor.vat_number) == ("552100554", "FR27552100554")
    assert debtor.customer_number == ("C-DH" if profile in NO_PHONE else "C-DH-001")
    assert "dupont@example.fr" in {c.address for c in debtor.contacts}
    assert "40 €" in (invoice.late_payment_terms or "")
    assert Path(invoice.document_path or "").read_bytes() == pdf
    assert run(db, tmp_path, ("dh.pdf", pdf)).files[0].status == "unchanged"
    assert count(db, Invoice) == 1 and count(db, Debtor) == 1


def test_reimport_adds_the_buyers_new_contacts_but_never_anothers_phone(
    db: Session, tmp_path: Path
) -> None:
    """A new version of an invoice carrying the buyer's new phone and e-mail adds them, as a CSV
    re-import would (it used to ignore them: reminders kept going to the old number). A phone
    that is another debtor's is refused, with nothing changed: it would disclose this debt to
    that person."""
    run(db, tmp_path, ("a.xml", ubl(BASE)))
    moved = BASE.but(phone="+33639980088", email="factures@martin.example")
    [entry] = run(db, tmp_path, ("a2.xml", ubl(moved))).files
    assert entry.status == "updated", entry.problems
    debtor = db.scalars(select(Debtor)).one()
    addresses = {(c.channel, c.address) for c in debtor.contacts}
    assert {
        (Channel.SMS, "+33639980088"),
        (Channel.VOICE, "+33639980088"),
        (Channel.EMAIL, "factures@martin.example"),
        (Channel.SMS, BASE.phone),  # the old number stays: the creditor decides to retire it
    } <= addresses

    known_debtor(db)  # owns +33639980077
    before = count(db, Contact)
    stolen = BASE.but(phone="+33639980077", total="130.00")
    [refused] = run(db, tmp_path, ("a3.xml", ubl(stolen))).files
    assert refused.status == "rejected"
    assert refused.problems[0].field == "buyer phone (BT-57)"
    assert "already belongs to customer C-KNOWN" in refused.problems[0].message
    assert count(db, Contact) == before
    invoice = db.scalars(select(Invoice).where(Invoice.number == BASE.number)).one()
    assert invoice.amount_minor == 12_000  # the whole file changed nothing


@pytest.mark.parametrize("profile", ["basicwl", "extended"])
def test_a_foreign_currency_invoice_with_its_vat_total_in_euros_imports(
    db: Session, tmp_path: Path, profile: str
) -> None:
    """A USD invoice states its VAT also in euros (BT-111 in the VAT accounting currency BT-6, as
    French law asks): that second TaxTotalAmount is not an amount in the wrong currency (such
    invoices were refused, 'amounts are in EUR but the invoice currency is USD'). An amount in
    a currency that is neither is still refused."""
    from facturx import generate_from_binary

    from tests.relance.einvoice.samples import blank_pdf

    known_debtor(db, customer_number=BASE.buyer_id)

    def pdf(number: str, tax_currency: str) -> bytes:
        xml = (
            cii(BASE.but(number=number, currency="USD"), profile)
            .replace(
                b"<ram:InvoiceCurrencyCode>",
                f"<ram:TaxCurrencyCode>{tax_currency}</ram:TaxCurrencyCode><ram:InvoiceCurrencyCode>".encode(),
            )
            .replace(
                b"<ram:GrandTotalAmount>",
                b'<ram:TaxTotalAmount currencyID="EUR">18.50</ram:TaxTotalAmount><ram:GrandTotalAmount>',
            )
        )
        return bytes(
            generate_from_binary(blank_pdf(), xml, flavor="factur-x", level=profile, check_xsd=True)
        )

    [entry] = run(db, tmp_path, ("usd.pdf", pdf("USD-1", "EUR"))).files
    assert entry.status == "created", entry.problems
    invoice = db.scalars(select(Invoice).where(Invoice.number == "USD-1")).one()
    assert (invoice.amount_minor, invoice.currency) == (12_000, "USD")
    [wrong] = run(db, tmp_path, ("gbp.pdf", pdf("USD-2", "GBP"))).files
    assert wrong.status == "rejected"
    assert wrong.problems[0].message == "amounts are in EUR but the invoice currency is 'USD'"
