"""Local stand-ins for third parties so the demo runs with no account and no internet."""
