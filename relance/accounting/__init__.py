"""Accounting export of collection activity (issue 22, "Out")."""
