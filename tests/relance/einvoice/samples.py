"""E-invoice fixtures built on the fly: CII for each Factur-X profile (embedded into a PDF by the
`factur-x` library, which also checks each against its profile's XSD), the same CII built by a
third party's generator (drafthorse, checked against its own copy of the XSDs) and UBL 2.1."""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from xml.sax.saxutils import escape

from pypdf import PdfWriter

GUIDELINES = {
    "minimum": "urn:factur-x.eu:1p0:minimum",
    "basicwl": "urn:factur-x.eu:1p0:basicwl",
    "basic": "urn:cen.eu:en16931:2017#compliant#urn:factur-x.eu:1p0:basic",
    "en16931": "urn:cen.eu:en16931:2017",
    "extended": "urn:cen.eu:en16931:2017#conformant#urn:factur-x.eu:1p0:extended",
    "extended-ctc-fr": "urn:cen.eu:en16931:2017#conformant#urn.cpro.gouv.fr:1p0:extended-ctc-fr",
}
# What each profile's XSD lets a document carry: invoice lines from BASIC on (BASIC WL, "without
# lines", has none); the buyer's contact (BT-56..58, the only place for a phone) in EN 16931 and
# EXTENDED; the buyer's electronic address (BT-49) from BASIC WL on.
WITH_LINES = {"basic", "en16931", "extended", "extended-ctc-fr"}
WITH_CONTACT = {"en16931", "extended", "extended-ctc-fr"}


@dataclass(frozen=True)
class Sample:
    number: str = "FA-2026-0001"
    type_code: str = "380"
    issue: str = "2026-10-01"
    due: str = "2026-10-31"
    currency: str = "EUR"
    amount_currency: str = ""  # currencyID on the amounts; the invoice currency when empty
    net: str = "100.00"
    vat: str = "20.00"
    total: str = "120.00"
    buyer_name: str = "Boulangerie Martin SARL"
    buyer_id: str = "C-EI-001"
    siret: str = "73282932000074"
    vat_number: str = "FR44732829320"
    email: str = "compta@martin.example"
    phone: str = "+33639980001"
    street: str = "12 rue des Lilas"
    postcode: str = "75011"
    city: str = "Paris"
    terms: str = "Paiement à 30 jours. Pénalités de retard : 3 fois le taux légal ; indemnité forfaitaire de 40 € pour frais de recouvrement."
    preceding: str = ""
    # (due date, amount) per instalment: an invoice payable in parts (CII: one
    # SpecifiedTradePaymentTerms each, EXTENDED profile; UBL: one cac:PaymentTerms each).
    instalments: tuple[tuple[str, str], ...] = ()

    def but(self, **changes: object) -> Sample:
        return replace(self, **changes)


def _d(value: str) -> str:
    return value.replace("-", "")


def cii(s: Sample, profile: str = "en16931") -> bytes:
    """A CrossIndustryInvoice in the element order of the Factur-X 1.0 XSDs."""
    cur = s.amount_currency or s.currency
    full = profile != "minimum"
    e = escape
    electronic = (
        f'<ram:URIUniversalCommunication><ram:URIID schemeID="EM">{e(s.email)}</ram:URIID></ram:URIUniversalCommunication>'
        if full and profile not in WITH_CONTACT and s.email
        else ""
    )
    contact = (
        f"<ram:DefinedTradeContact><ram:PersonName>Comptabilité</ram:PersonName>"
        f"<ram:TelephoneUniversalCommunication><ram:CompleteNumber>{e(s.phone)}</ram:CompleteNumber></ram:TelephoneUniversalCommunication>"
        f"<ram:EmailURIUniversalCommunication><ram:URIID>{e(s.email)}</ram:URIID></ram:EmailURIUniversalCommunication>"
        f"</ram:DefinedTradeContact>"
        if profile in WITH_CONTACT
        else ""
    )
    buyer = (
        "<ram:BuyerTradeParty>"
        + (f"<ram:ID>{e(s.buyer_id)}</ram:ID>" if full and s.buyer_id else "")
        + f"<ram:Name>{e(s.buyer_name)}</ram:Name>"
        + (
            f'<ram:SpecifiedLegalOrganization><ram:ID schemeID="0009">{s.siret}</ram:ID></ram:SpecifiedLegalOrganization>'
            if s.siret
            else ""
        )
        + contact
        + (
            f"<ram:PostalTradeAddress><ram:PostcodeCode>{e(s.postcode)}</ram:PostcodeCode><ram:LineOne>{e(s.street)}</ram:LineOne>"
            f"<ram:CityName>{e(s.city)}</ram:CityName><ram:CountryID>FR</ram:CountryID></ram:PostalTradeAddress>"
            if full
            else ""
        )
        + electronic
        + (
            f'<ram:SpecifiedTaxRegistration><ram:ID schemeID="VA">{s.vat_number}</ram:ID></ram:SpecifiedTaxRegistration>'
            if full and s.vat_number
            else ""
        )
        + "</ram:BuyerTradeParty>"
    )
    lines = (
        "<ram:IncludedSupplyChainTradeLineItem>"
        "<ram:AssociatedDocumentLineDocument><ram:LineID>1</ram:LineID></ram:AssociatedDocumentLineDocument>"
        "<ram:SpecifiedTradeProduct><ram:Name>Pain de campagne (livraisons octobre)</ram:Name></ram:SpecifiedTradeProduct>"
        f"<ram:SpecifiedLineTradeAgreement><ram:NetPriceProductTradePrice><ram:ChargeAmount>{s.net}</ram:ChargeAmount></ram:NetPriceProductTradePrice></ram:SpecifiedLineTradeAgreement>"
        '<ram:SpecifiedLineTradeDelivery><ram:BilledQuantity unitCode="C62">1</ram:BilledQuantity></ram:SpecifiedLineTradeDelivery>'
        "<ram:SpecifiedLineTradeSettlement><ram:ApplicableTradeTax><ram:TypeCode>VAT</ram:TypeCode><ram:CategoryCode>S</ram:CategoryCode>"
        "<ram:RateApplicablePercent>20</ram:RateApplicablePercent></ram:ApplicableTradeTax>"
        f"<ram:SpecifiedTradeSettlementLineMonetarySummation><ram:LineTotalAmount>{s.net}</ram:LineTotalAmount></ram:SpecifiedTradeSettlementLineMonetarySummation>"
        "</ram:SpecifiedLineTradeSettlement></ram:IncludedSupplyChainTradeLineItem>"
        if profile in WITH_LINES
        else ""
    )
    tax = (
        f"<ram:ApplicableTradeTax><ram:CalculatedAmount>{s.vat}</ram:CalculatedAmount><ram:TypeCode>VAT</ram:TypeCode>"
        f"<ram:BasisAmount>{s.net}</ram:BasisAmount><ram:CategoryCode>S</ram:CategoryCode>"
        "<ram:RateApplicablePercent>20</ram:RateApplicablePercent></ram:ApplicableTradeTax>"
        if full
        else ""
    )
    terms = (
        f"<ram:SpecifiedTradePaymentTerms><ram:Description>{e(s.terms)}</ram:Description>"
        f'<ram:DueDateDateTime><udt:DateTimeString format="102">{_d(s.due)}</udt:DateTimeString></ram:DueDateDateTime>'
        "</ram:SpecifiedTradePaymentTerms>"
        if full and s.due and not s.instalments
        else ""
    )
    terms += "".join(
        f"<ram:SpecifiedTradePaymentTerms><ram:Description>Échéance {n}</ram:Description>"
        + (
            f'<ram:DueDateDateTime><udt:DateTimeString format="102">{_d(due)}</udt:DateTimeString></ram:DueDateDateTime>'
            if due
            else ""
        )
        + (f"<ram:PartialPaymentAmount>{amount}</ram:PartialPaymentAmount>" if amount else "")
        + "</ram:SpecifiedTradePaymentTerms>"
        for n, (due, amount) in enumerate(s.instalments, start=1)
    )
    preceding = (
        f"<ram:InvoiceReferencedDocument><ram:IssuerAssignedID>{e(s.preceding)}</ram:IssuerAssignedID></ram:InvoiceReferencedDocument>"
        if full and s.preceding
        else ""
    )
    note = (
        f"<ram:IncludedNote><ram:Content>{e(s.terms)}</ram:Content><ram:SubjectCode>PMT</ram:SubjectCode></ram:IncludedNote>"
        if full
        else ""
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100" xmlns:qdt="urn:un:unece:uncefact:data:standard:QualifiedDataType:100" xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100" xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">
<rsm:ExchangedDocumentContext><ram:GuidelineSpecifiedDocumentContextParameter><ram:ID>{GUIDELINES[profile]}</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter></rsm:ExchangedDocumentContext>
<rsm:ExchangedDocument><ram:ID>{e(s.number)}</ram:ID><ram:TypeCode>{s.type_code}</ram:TypeCode>
<ram:IssueDateTime><udt:DateTimeString format="102">{_d(s.issue)}</udt:DateTimeString></ram:IssueDateTime>{note}</rsm:ExchangedDocument>
<rsm:SupplyChainTradeTransaction>{lines}
<ram:ApplicableHeaderTradeAgreement>
<ram:SellerTradeParty><ram:Name>Minoterie du Nord SAS</ram:Name><ram:SpecifiedLegalOrganization><ram:ID schemeID="0002">552081317</ram:ID></ram:SpecifiedLegalOrganization>
<ram:PostalTradeAddress><ram:CountryID>FR</ram:CountryID></ram:PostalTradeAddress><ram:SpecifiedTaxRegistration><ram:ID schemeID="VA">FR40552081317</ram:ID></ram:SpecifiedTaxRegistration></ram:SellerTradeParty>
{buyer}
</ram:ApplicableHeaderTradeAgreement>
<ram:ApplicableHeaderTradeDelivery/>
<ram:ApplicableHeaderTradeSettlement><ram:InvoiceCurrencyCode>{e(s.currency)}</ram:InvoiceCurrencyCode>{tax}{terms}
<ram:SpecifiedTradeSettlementHeaderMonetarySummation>{f"<ram:LineTotalAmount>{s.net}</ram:LineTotalAmount>" if full else ""}<ram:TaxBasisTotalAmount>{s.net}</ram:TaxBasisTotalAmount>
<ram:TaxTotalAmount currencyID="{e(cur)}">{s.vat}</ram:TaxTotalAmount><ram:GrandTotalAmount>{s.total}</ram:GrandTotalAmount><ram:DuePayableAmount>{s.total}</ram:DuePayableAmount>
</ram:SpecifiedTradeSettlementHeaderMonetarySummation>{preceding}
</ram:ApplicableHeaderTradeSettlement>
</rsm:SupplyChainTradeTransaction>
</rsm:CrossIndustryInvoice>""".encode()


def blank_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def facturx(s: Sample, profile: str = "en16931") -> bytes:
    """A Factur-X PDF: the library embeds (and XSD-checks) the CII of `profile`."""
    from facturx import generate_from_binary

    return bytes(
        generate_from_binary(
            blank_pdf(), cii(s, profile), flavor="factur-x", level=profile, check_xsd=True
        )
    )


def ubl(s: Sample) -> bytes:
    e = escape
    credit = s.type_code in ("381", "261", "396")
    root = "CreditNote" if credit else "Invoice"
    ns = f"urn:oasis:names:specification:ubl:schema:xsd:{root}-2"
    type_el = (
        f"<cbc:CreditNoteTypeCode>{s.type_code}</cbc:CreditNoteTypeCode>"
        if credit
        else f"<cbc:InvoiceTypeCode>{s.type_code}</cbc:InvoiceTypeCode>"
    )
    cur = s.amount_currency or s.currency
    billing = (
        f"<cac:BillingReference><cac:InvoiceDocumentReference><cbc:ID>{e(s.preceding)}</cbc:ID></cac:InvoiceDocumentReference></cac:BillingReference>"
        if s.preceding
        else ""
    )
    instalments = "".join(
        "<cac:PaymentTerms>"
        + (f'<cbc:Amount currencyID="{e(cur)}">{amount}</cbc:Amount>' if amount else "")
        + (f"<cbc:PaymentDueDate>{due}</cbc:PaymentDueDate>" if due else "")
        + "</cac:PaymentTerms>"
        for due, amount in s.instalments
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<{root} xmlns="{ns}" xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2" xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
<cbc:CustomizationID>urn:cen.eu:en16931:2017</cbc:CustomizationID>
<cbc:ID>{e(s.number)}</cbc:ID><cbc:IssueDate>{s.issue}</cbc:IssueDate>{f"<cbc:DueDate>{s.due}</cbc:DueDate>" if s.due and not credit else ""}{type_el}
<cbc:Note>{e(s.terms)}</cbc:Note><cbc:DocumentCurrencyCode>{e(s.currency)}</cbc:DocumentCurrencyCode>{billing}
<cac:AccountingSupplierParty><cac:Party><cac:PartyName><cbc:Name>Minoterie du Nord SAS</cbc:Name></cac:PartyName></cac:Party></cac:AccountingSupplierParty>
<cac:AccountingCustomerParty><cac:Party>
<cac:PartyIdentification><cbc:ID>{e(s.buyer_id)}</cbc:ID></cac:PartyIdentification>
<cac:PartyName><cbc:Name>{e(s.buyer_name)}</cbc:Name></cac:PartyName>
<cac:PostalAddress><cbc:StreetName>{e(s.street)}</cbc:StreetName><cbc:CityName>{e(s.city)}</cbc:CityName><cbc:PostalZone>{e(s.postcode)}</cbc:PostalZone><cac:Country><cbc:IdentificationCode>FR</cbc:IdentificationCode></cac:Country></cac:PostalAddress>
<cac:PartyTaxScheme><cbc:CompanyID>{s.vat_number}</cbc:CompanyID><cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:PartyTaxScheme>
<cac:PartyLegalEntity><cbc:RegistrationName>{e(s.buyer_name)}</cbc:RegistrationName><cbc:CompanyID schemeID="0009">{s.siret}</cbc:CompanyID></cac:PartyLegalEntity>
<cac:Contact><cbc:Telephone>{e(s.phone)}</cbc:Telephone><cbc:ElectronicMail>{e(s.email)}</cbc:ElectronicMail></cac:Contact>
</cac:Party></cac:AccountingCustomerParty>
<cac:PaymentTerms><cbc:Note>{e(s.terms)}</cbc:Note></cac:PaymentTerms>{instalments}
<cac:TaxTotal><cbc:TaxAmount currencyID="{e(cur)}">{s.vat}</cbc:TaxAmount></cac:TaxTotal>
<cac:LegalMonetaryTotal><cbc:LineExtensionAmount currencyID="{e(cur)}">{s.net}</cbc:LineExtensionAmount><cbc:TaxExclusiveAmount currencyID="{e(cur)}">{s.net}</cbc:TaxExclusiveAmount>
<cbc:TaxInclusiveAmount currencyID="{e(cur)}">{s.total}</cbc:TaxInclusiveAmount><cbc:PayableAmount currencyID="{e(cur)}">{s.total}</cbc:PayableAmount></cac:LegalMonetaryTotal>
</{root}>""".encode()


DRAFTHORSE_SCHEMAS = {
    "basicwl": "FACTUR-X_BASIC-WL",
    "basic": "FACTUR-X_BASIC",
    "en16931": "FACTUR-X_EN16931",
    "extended": "FACTUR-X_EXTENDED",
}


def drafthorse_cii(profile: str = "en16931", number: str = "DH-2026-001") -> bytes:
    """A CII of `profile` built by a third party's generator (drafthorse), serialised with its own
    XSD check: proof that the reader is not only in step with our own templates. Each profile
    gets what its XSD allows: no lines in BASIC WL, the buyer's contact (phone, e-mail) in
    EN 16931 and EXTENDED only, the buyer's electronic address (e-mail) elsewhere."""
    from datetime import date
    from decimal import Decimal

    from drafthorse.models.accounting import ApplicableTradeTax
    from drafthorse.models.document import Document
    from drafthorse.models.party import TaxRegistration
    from drafthorse.models.payment import PaymentTerms
    from drafthorse.models.tradelines import LineItem

    doc = Document()
    doc.context.guideline_parameter.id = GUIDELINES[profile]
    doc.header.id = number
    doc.header.type_code = "380"
    doc.header.issue_date_time = date(2026, 10, 1)
    doc.trade.agreement.seller.name = "Minoterie du Nord SAS"
    doc.trade.agreement.seller.address.country_id = "FR"
    doc.trade.agreement.seller.tax_registrations.add(TaxRegistration(id=("VA", "FR40552081317")))
    buyer = doc.trade.agreement.buyer
    buyer.id = "C-DH-001"
    buyer.name = "Epicerie Dupont"
    buyer.legal_organization.id = ("0002", "552100554")
    if profile in WITH_CONTACT:
        buyer.contact.telephone.number = "+33639980042"
        buyer.contact.email.address = "dupont@example.fr"
    else:
        buyer.electronic_address.uri_ID = ("EM", "dupont@example.fr")
    buyer.address.postcode = "59000"
    buyer.address.line_one = "3 place du Marché"
    buyer.address.city_name = "Lille"
    buyer.address.country_id = "FR"
    buyer.tax_registrations.add(TaxRegistration(id=("VA", "FR27552100554")))
    doc.trade.settlement.currency_code = "EUR"
    if profile in WITH_LINES:
        li = LineItem()
        li.document.line_id = "1"
        li.product.name = "Farine T65"
        li.agreement.net.amount = Decimal("250.00")
        li.delivery.billed_quantity = (Decimal("1.0000"), "C62")
        li.settlement.trade_tax.type_code = "VAT"
        li.settlement.trade_tax.category_code = "S"
        li.settlement.trade_tax.rate_applicable_percent = Decimal("20.00")
        li.settlement.monetary_summation.total_amount = Decimal("250.00")
        doc.trade.items.add(li)
    trade_tax = ApplicableTradeTax()
    trade_tax.calculated_amount = Decimal("50.00")
    trade_tax.basis_amount = Decimal("250.00")
    trade_tax.type_code = "VAT"
    trade_tax.category_code = "S"
    trade_tax.rate_applicable_percent = Decimal("20.00")
    doc.trade.settlement.trade_tax.add(trade_tax)
    terms = PaymentTerms()
    terms.description = (
        "30 jours fin de mois. Indemnité forfaitaire de 40 € pour frais de recouvrement."
    )
    terms.due = date(2026, 11, 30)
    doc.trade.settlement.terms.add(terms)
    ms = doc.trade.settlement.monetary_summation
    ms.line_total = Decimal("250.00")
    ms.charge_total = Decimal("0.00")
    ms.allowance_total = Decimal("0.00")
    ms.tax_basis_total = Decimal("250.00")
    ms.tax_total = (Decimal("50.00"), "EUR")
    ms.grand_total = Decimal("300.00")
    ms.due_amount = Decimal("300.00")
    return bytes(doc.serialize(schema=DRAFTHORSE_SCHEMAS[profile]))


def drafthorse_facturx(profile: str = "en16931", number: str = "DH-2026-001") -> bytes:
    """drafthorse's CII embedded by the `factur-x` library, which checks it against its own XSD
    of the same level (a second, newer copy of the schemas than drafthorse's)."""
    from facturx import generate_from_binary

    return bytes(
        generate_from_binary(
            blank_pdf(),
            drafthorse_cii(profile, number),
            flavor="factur-x",
            level=profile,
            check_xsd=True,
        )
    )
