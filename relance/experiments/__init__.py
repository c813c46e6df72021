"""Experiments: wording variants tested on debtors, with outcomes from the ledger (issue 21)."""
