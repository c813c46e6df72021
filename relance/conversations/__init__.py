"""The conversation path: inbound debtor text → Rasa → replies, with nothing lost if Rasa is down."""
