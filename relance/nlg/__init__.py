"""Customer-facing wording: fr/en templates (admin-editable), rendered for Rasa and for outbound sends."""
