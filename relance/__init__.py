"""Relance core: settings, database, ledger, policy, dunning engine and the services the edges call."""
