"""Contact points: consent, opt-out/opt-in and delivery-failure flags the dunning engine reads."""
