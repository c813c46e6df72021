"""Personal data of debtors: export (right of access), erasure (right to erasure) and retention.

The accounting facts a creditor must keep (invoices, payments, dates, amounts; Code de commerce
L123-22, ten years) stay; what identifies the person and what they said is removed or purged.
"""
