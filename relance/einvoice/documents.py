"""Read one e-invoice (CII, UBL 2.1, or the CII inside a Factur-X PDF) into an `EInvoice`.

Only reading happens here: the values are kept as the text the document holds (amounts as
strings, dates as ISO strings) so that one set of validation rules, the CSV import's
(`relance/portfolio/rows.py`), judges them. What cannot be read at all (not XML, not an invoice,
no invoice number) is a `DocumentError` naming the field.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

from lxml import etree

from relance.einvoice.safe_xml import UnsafeXml, parse

CII = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
UBL_INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
UBL_CREDIT = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
NS = {"rsm": CII, "ram": RAM, "udt": UDT, "cac": CAC, "cbc": CBC}

# UNTDID 1001 document type codes: 381 credit note, 261 self-billed credit note, 396 factored
# credit note; everything else imported here is an invoice (380, 384 corrective, 389...).
CREDIT_NOTE_CODES = {"381", "261", "262", "396", "532"}
# Factur-X profiles read (the guideline id of BT-24 says which one the document claims).
PROFILES = {
    "urn:factur-x.eu:1p0:minimum": "minimum",
    "urn:cen.eu:en16931:2017#compliant#urn:factur-x.eu:1p0:basic": "basic",
    "urn:factur-x.eu:1p0:basicwl": "basicwl",
    "urn:cen.eu:en16931:2017": "en16931",
    "urn:cen.eu:en16931:2017#conformant#urn:factur-x.eu:1p0:extended": "extended",
    # EXTENDED for the French e-invoicing reform (Factur-X 1.07, CII only): what French
    # platforms (PDP) exchange from 2026; checked against its own XSD (D22B).
    "urn:cen.eu:en16931:2017#conformant#urn.cpro.gouv.fr:1p0:extended-ctc-fr": "extended-ctc-fr",
}
# Mentions of late-payment penalties in the notes (French law requires them on B2B invoices).
_LATE_PAYMENT = re.compile(
    r"(p[ée]nalit[ée]s? de retard|indemnit[ée] forfaitaire|late[- ]payment|40 ?(€|eur))",
    re.IGNORECASE,
)


class DocumentError(ValueError):
    """The file cannot be read as an e-invoice; `field` names what is missing or wrong.

    Internal to the import, not a RelanceError: `einvoice.service` turns it into a per-file
    problem in the import report, so one bad file does not refuse the others."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass
class Buyer:
    name: str = ""
    identifier: str = ""  # BT-46, the buyer's id at the seller (often the customer number)
    legal_id: str = ""  # BT-47: SIREN (scheme 0002) or SIRET (scheme 0009) in France
    vat_number: str = ""
    email: str = ""
    phone: str = ""
    address_line: str = ""
    postcode: str = ""
    city: str = ""
    country: str = ""


@dataclass(frozen=True)
class Instalment:
    """One part of an invoice payable in instalments, as the document says it (text)."""

    due_date: str
    amount: str


@dataclass
class EInvoice:
    """What a document says, as text; `format` is cii, ubl or facturx (with `profile`)."""

    format: str
    profile: str
    number: str
    type_code: str
    issue_date: str
    due_date: str
    currency: str
    total: str  # BT-112 grand total (VAT included)
    prepaid: str  # BT-113 already paid
    payment_terms: str
    notes: list[str]
    buyer: Buyer
    preceding_invoice: str = ""  # BT-25: the invoice a credit note corrects
    amount_currencies: set[str] = field(default_factory=set)  # every currencyID on an amount
    # Two or more payment terms each with its own due date and amount: the invoice is payable
    # in parts, and each part is owed only from its own date. Empty for a single due date.
    instalments: list[Instalment] = field(default_factory=list)

    @property
    def is_credit_note(self) -> bool:
        return self.type_code in CREDIT_NOTE_CODES

    @property
    def late_payment_terms(self) -> str:
        mentions = [n for n in [self.payment_terms, *self.notes] if _LATE_PAYMENT.search(n)]
        return " ".join(mentions)


def _text(node: etree._Element, path: str) -> str:
    found = node.xpath(path, namespaces=NS)
    if not found:
        return ""
    first = found[0]
    value = first if isinstance(first, str) else (first.text or "")
    return " ".join(str(value).split())


def _cii_date(node: etree._Element, path: str) -> str:
    """CII dates are `udt:DateTimeString format="102"` (YYYYMMDD); returned as YYYY-MM-DD."""
    raw = _text(node, path)
    if re.fullmatch(r"\d{8}", raw):
        return f"{raw[:4]}-{raw[4:6]}-{raw[6:]}"
    return raw


def read_cii(root: etree._Element, format: str = "cii") -> EInvoice:
    if etree.QName(root).namespace != CII or etree.QName(root).localname != "CrossIndustryInvoice":
        raise DocumentError("document", "not a UN/CEFACT CrossIndustryInvoice document")
    doc = "rsm:ExchangedDocument"
    agreement = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement"
    settlement = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement"
    total = f"{settlement}/ram:SpecifiedTradeSettlementHeaderMonetarySummation"
    party = root.xpath(f"{agreement}/ram:BuyerTradeParty", namespaces=NS)
    if not party:
        raise DocumentError("buyer", "the invoice names no buyer (BuyerTradeParty)")
    buyer_node = party[0]
    address = "ram:PostalTradeAddress"
    buyer = Buyer(
        name=_text(buyer_node, "ram:Name"),
        identifier=_text(buyer_node, "ram:ID"),
        legal_id=_text(buyer_node, "ram:SpecifiedLegalOrganization/ram:ID"),
        vat_number=_text(buyer_node, "ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']"),
        email=_text(
            buyer_node, "ram:DefinedTradeContact/ram:EmailURIUniversalCommunication/ram:URIID"
        )
        or _text(buyer_node, "ram:URIUniversalCommunication/ram:URIID[@schemeID='EM']"),
        phone=_text(
            buyer_node,
            "ram:DefinedTradeContact/ram:TelephoneUniversalCommunication/ram:CompleteNumber",
        ),
        address_line=_text(buyer_node, f"{address}/ram:LineOne"),
        postcode=_text(buyer_node, f"{address}/ram:PostcodeCode"),
        city=_text(buyer_node, f"{address}/ram:CityName"),
        country=_text(buyer_node, f"{address}/ram:CountryID"),
    )
    guideline = _text(
        root, "rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID"
    )
    # BT-111, the VAT total in the VAT accounting currency (BT-6, required in France when the
    # invoice is in another currency than the euro), is the one amount not in the invoice's
    # currency: a second TaxTotalAmount, every profile but MINIMUM. It is not judged as one.
    tax_currency = _text(root, f"{settlement}/ram:TaxCurrencyCode")
    currencies = {
        str(node.get("currencyID")).strip()
        for node in root.xpath(f"{settlement}//*[@currencyID]", namespaces=NS)
        if not (
            etree.QName(node).localname == "TaxTotalAmount"
            and node.get("currencyID") == tax_currency
        )
    } - {""}
    terms = root.xpath(f"{settlement}/ram:SpecifiedTradePaymentTerms", namespaces=NS)
    instalments = _instalments(
        [
            (
                _cii_date(term, "ram:DueDateDateTime/udt:DateTimeString"),
                _text(term, "ram:PartialPaymentAmount"),
            )
            for term in terms
        ],
        "SpecifiedTradePaymentTerms",
        "DueDateDateTime",
        "PartialPaymentAmount",
    )
    return EInvoice(
        format=format,
        profile=PROFILES.get(guideline, guideline),
        number=_text(root, f"{doc}/ram:ID"),
        type_code=_text(root, f"{doc}/ram:TypeCode"),
        issue_date=_cii_date(root, f"{doc}/ram:IssueDateTime/udt:DateTimeString"),
        due_date=_cii_date(
            root,
            f"{settlement}/ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString",
        ),
        currency=_text(root, f"{settlement}/ram:InvoiceCurrencyCode"),
        total=_text(root, f"{total}/ram:GrandTotalAmount"),
        prepaid=_text(root, f"{total}/ram:TotalPrepaidAmount"),
        payment_terms=_text(root, f"{settlement}/ram:SpecifiedTradePaymentTerms/ram:Description"),
        notes=[
            " ".join((n.text or "").split())
            for n in root.xpath(f"{doc}/ram:IncludedNote/ram:Content", namespaces=NS)
        ],
        buyer=buyer,
        preceding_invoice=_text(
            root, f"{settlement}/ram:InvoiceReferencedDocument/ram:IssuerAssignedID"
        ),
        amount_currencies=currencies,
        instalments=instalments,
    )


def read_ubl(root: etree._Element) -> EInvoice:
    qname = etree.QName(root)
    if (qname.namespace, qname.localname) not in (
        (UBL_INVOICE, "Invoice"),
        (UBL_CREDIT, "CreditNote"),
    ):
        raise DocumentError("document", "not a UBL 2.1 Invoice or CreditNote document")
    credit = qname.localname == "CreditNote"
    party = root.xpath("cac:AccountingCustomerParty/cac:Party", namespaces=NS)
    if not party:
        raise DocumentError("buyer", "the invoice names no buyer (AccountingCustomerParty)")
    p = party[0]
    buyer = Buyer(
        name=_text(p, "cac:PartyLegalEntity/cbc:RegistrationName")
        or _text(p, "cac:PartyName/cbc:Name"),
        identifier=_text(p, "cac:PartyIdentification/cbc:ID"),
        legal_id=_text(p, "cac:PartyLegalEntity/cbc:CompanyID"),
        vat_number=_text(p, "cac:PartyTaxScheme/cbc:CompanyID"),
        email=_text(p, "cac:Contact/cbc:ElectronicMail"),
        phone=_text(p, "cac:Contact/cbc:Telephone"),
        address_line=_text(p, "cac:PostalAddress/cbc:StreetName"),
        postcode=_text(p, "cac:PostalAddress/cbc:PostalZone"),
        city=_text(p, "cac:PostalAddress/cbc:CityName"),
        country=_text(p, "cac:PostalAddress/cac:Country/cbc:IdentificationCode"),
    )
    type_code = _text(root, "cbc:CreditNoteTypeCode" if credit else "cbc:InvoiceTypeCode")
    due = _text(root, "cbc:DueDate") or _text(root, "cac:PaymentMeans/cbc:PaymentDueDate")
    currencies = {
        str(c)
        for c in root.xpath(
            "cac:LegalMonetaryTotal/*/@currencyID | cac:PaymentTerms/cbc:Amount/@currencyID",
            namespaces=NS,
        )
        if str(c).strip()
    }
    instalments = _instalments(
        [
            (
                _text(term, "cbc:PaymentDueDate") or _text(term, "cbc:InstallmentDueDate"),
                _text(term, "cbc:Amount"),
            )
            for term in root.xpath("cac:PaymentTerms", namespaces=NS)
        ],
        "cac:PaymentTerms",
        "cbc:PaymentDueDate",
        "cbc:Amount",
    )
    return EInvoice(
        format="ubl",
        profile="ubl-2.1",
        number=_text(root, "cbc:ID"),
        type_code=type_code or ("381" if credit else "380"),
        issue_date=_text(root, "cbc:IssueDate"),
        due_date=due,
        currency=_text(root, "cbc:DocumentCurrencyCode"),
        total=_text(root, "cac:LegalMonetaryTotal/cbc:TaxInclusiveAmount")
        or _text(root, "cac:LegalMonetaryTotal/cbc:PayableAmount"),
        prepaid=_text(root, "cac:LegalMonetaryTotal/cbc:PrepaidAmount"),
        payment_terms=_text(root, "cac:PaymentTerms/cbc:Note"),
        notes=[" ".join((n.text or "").split()) for n in root.xpath("cbc:Note", namespaces=NS)],
        buyer=buyer,
        preceding_invoice=_text(root, "cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID"),
        amount_currencies=currencies,
        instalments=instalments,
    )


def _instalments(
    terms: list[tuple[str, str]], element: str, date_name: str, amount_name: str
) -> list[Instalment]:
    """The instalments when two or more payment terms carry an amount, else none (one due date,
    read as before). A term of such a schedule without its date or amount is refused: which part
    is owed when cannot be guessed, and a guess could claim money not yet due."""
    with_amount = [(due, amount) for due, amount in terms if amount]
    if len(with_amount) < 2:
        return []
    parts = [(due, amount) for due, amount in terms if due or amount]
    for index, (due, amount) in enumerate(parts, start=1):
        if not due or not amount:
            missing = date_name if not due else amount_name
            raise DocumentError(
                "payment terms (BT-20)",
                f"the invoice is payable in instalments, but {element} {index} has no {missing}",
            )
    return [Instalment(due, amount) for due, amount in parts]


def read_xml(data: bytes) -> EInvoice:
    """A CII or UBL document, told apart by its root element."""
    try:
        root = parse(data)
    except UnsafeXml as exc:
        raise DocumentError("file", str(exc)) from None
    namespace = etree.QName(root).namespace
    if namespace == CII:
        return read_cii(root)
    if namespace in (UBL_INVOICE, UBL_CREDIT):
        return read_ubl(root)
    raise DocumentError("document", "neither a UBL 2.1 nor a UN/CEFACT CII invoice")


def read_facturx(data: bytes) -> EInvoice:
    """The CII embedded in a Factur-X (or ZUGFeRD 2) PDF, checked against its profile's XSD by
    the `factur-x` library after our own safe parse (which refuses DTDs first)."""
    from facturx import get_facturx_xml_from_pdf, xml_check_xsd

    try:
        _name, xml = get_facturx_xml_from_pdf(io.BytesIO(data), check_xsd=False)
    except Exception as exc:  # the library raises bare Exceptions for unreadable PDFs
        raise DocumentError("file", f"not a readable PDF: {exc}") from None
    if not xml:
        raise DocumentError("file", "the PDF carries no Factur-X/ZUGFeRD invoice XML")
    try:
        root = parse(xml)
    except UnsafeXml as exc:
        raise DocumentError("file", f"embedded XML: {exc}") from None
    invoice = read_cii(root, format="facturx")
    try:
        xml_check_xsd(xml, flavor="factur-x", level=_xsd_level(invoice.profile))
    except Exception as exc:  # the library raises a bare Exception listing the XSD errors
        raise DocumentError(
            "document", f"the embedded XML breaks its profile's schema: {exc}"
        ) from None
    return invoice


def _xsd_level(profile: str) -> str:
    if profile not in PROFILES.values():
        raise DocumentError("profile", f"unknown Factur-X profile '{profile}'")
    return profile
