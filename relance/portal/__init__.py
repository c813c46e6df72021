"""The debtor self-service portal's core: personal links, identity check, what the debtor sees."""
