"""The Rasa project. A package only so that Rasa can import its custom NLU components
(`bot.components.*`) by module path; Rasa runs from the checkout's root."""
