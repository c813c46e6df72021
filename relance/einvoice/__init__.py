"""Electronic invoices in: Factur-X PDFs, UN/CEFACT CII and UBL 2.1 XML (issue 22)."""
