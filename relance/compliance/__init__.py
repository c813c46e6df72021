"""Rules checked before every outbound contact, per jurisdiction, explained when they block."""
