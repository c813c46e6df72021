"""Invoice documents on the portal: the original kept by the e-invoice import, the debtor's only.

Served like the letters' PDFs (same session and identity check), and only from the e-invoice
folder: a `document_path` pointing anywhere else is refused as if there were no document.
"""

from __future__ import annotations

from pathlib import Path

from relance.private_files import einvoice_dir
from tests.portal.conftest import Portal, make_portal, sign_in

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
XML = b'<?xml version="1.0"?><Invoice xmlns="urn:oasis:names:specification:ubl"/>'


def _document(
    settings, portal: Portal, index: int, data: bytes = PDF, suffix: str = ".pdf"
) -> Path:
    folder = einvoice_dir(settings.var_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{portal.debtor.id}-{index}{suffix}"
    path.write_bytes(data)
    portal.invoices[index].document_path = str(path)
    return path


def _url(portal: Portal, index: int) -> str:
    return f"{portal.path}/invoices/{portal.invoices[index].id}/document"


def test_own_invoice_document_downloads_as_an_attachment(client, db, settings, portal):
    _document(settings, portal, 0)
    db.flush()
    sign_in(client, portal)
    home = client.get(portal.path).text
    assert f"/invoices/{portal.invoices[0].id}/document" in home
    response = client.get(_url(portal, 0))
    assert response.status_code == 200
    assert response.content == PDF
    assert response.headers["content-type"] == "application/pdf"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment")
    assert f"invoice-{portal.invoices[0].number}.pdf" in disposition
    assert response.headers["cache-control"] == "no-store"


def test_an_xml_e_invoice_is_served_as_xml(client, db, settings, portal):
    _document(settings, portal, 0, XML, ".xml")
    db.flush()
    sign_in(client, portal)
    assert "(XML)" in client.get(portal.path).text
    response = client.get(_url(portal, 0))
    assert response.status_code == 200 and response.content == XML
    assert response.headers["content-type"].startswith("application/xml")


def test_another_debtors_invoice_document_is_not_found(client, db, settings, portal):
    """Attack: a signed-in debtor walks invoice ids; another debtor's document does not exist."""
    other = make_portal(db)
    _document(settings, other, 0)
    db.flush()
    sign_in(client, portal)
    response = client.get(f"{portal.path}/invoices/{other.invoices[0].id}/document")
    assert response.status_code == 404
    assert PDF not in response.content
    assert other.invoices[0].number not in response.text


def test_no_document_before_the_identity_check(client, db, settings, portal):
    _document(settings, portal, 0)
    db.flush()
    response = client.get(_url(portal, 0))  # the link, but no identity check yet
    assert 400 <= response.status_code < 500
    assert PDF not in response.content
    assert "/identity" in response.text


def test_invoice_without_a_document_has_no_link_and_no_download(client, db, settings, portal):
    _document(settings, portal, 0)
    db.flush()
    sign_in(client, portal)
    home = client.get(portal.path).text
    assert f"/invoices/{portal.invoices[1].id}/document" not in home
    assert client.get(_url(portal, 1)).status_code == 404


def test_a_document_path_outside_the_storage_folder_is_refused(
    client, db, settings, portal, tmp_path
):
    outside = tmp_path / "elsewhere" / "secret.pdf"
    outside.parent.mkdir(parents=True)
    outside.write_bytes(PDF)
    portal.invoices[0].document_path = str(outside)
    folder = einvoice_dir(settings.var_dir)
    folder.mkdir(parents=True, exist_ok=True)
    portal.invoices[1].document_path = str(folder / ".." / ".." / "elsewhere" / "secret.pdf")
    link = folder / "link.pdf"
    link.symlink_to(outside)
    db.flush()
    sign_in(client, portal)
    home = client.get(portal.path).text
    assert "/document" not in home
    for index in (0, 1):
        response = client.get(_url(portal, index))
        assert response.status_code == 404 and PDF not in response.content
    portal.invoices[0].document_path = str(link)  # inside the folder, but a link out of it
    db.flush()
    assert client.get(_url(portal, 0)).status_code == 404
