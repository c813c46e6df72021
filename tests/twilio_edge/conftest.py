"""Channel fixtures: Twilio recorder, fake Rasa, installed gateway."""

from tests.support.channels import gateway, rasa, twilio  # noqa: F401
