"""Parse untrusted XML without the classic traps.

E-invoices arrive from outside: a document may carry a DTD declaring external entities (XXE:
`<!ENTITY x SYSTEM "file:///etc/passwd">`, or an `http://` URL the server would fetch) or nested
entities that expand to gigabytes ("billion laughs"). No e-invoice format uses a DTD, so any
DOCTYPE is refused outright (defusedxml's rule), and the parser never resolves entities, never
touches the network and keeps libxml2's tree-size limits.
"""

from __future__ import annotations

from lxml import etree

MAX_XML_BYTES = 5 * 1024 * 1024  # an invoice with thousands of lines is well under 1 MB


class UnsafeXml(ValueError):
    """The document is not well-formed, too large, or carries a DTD/entities.

    Internal: the parsers that call `parse` turn it into their own per-file or per-statement
    problem (`DocumentError`, `StatementError`)."""


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def parse(data: bytes) -> etree._Element:
    """The root element of `data`, or UnsafeXml saying why it is refused."""
    if len(data) > MAX_XML_BYTES:
        raise UnsafeXml(f"the XML is larger than {MAX_XML_BYTES // (1024 * 1024)} MB")
    lowered = data.lower()
    if b"<!doctype" in lowered or b"<!entity" in lowered:
        raise UnsafeXml("the XML declares a DTD or entities, which e-invoices never do")
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise UnsafeXml(f"the XML is not well-formed: {exc.msg}") from None
    if root.getroottree().docinfo.doctype:
        raise UnsafeXml("the XML declares a DTD, which e-invoices never do")
    return root
