"""Portfolio import: debtors and invoices from CSV (or API rows), validated, all-or-nothing."""
