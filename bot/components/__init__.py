"""Custom Rasa graph components, loaded by Rasa (its own venv) from bot/config*.yml."""
