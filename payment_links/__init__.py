"""Secure payment links, Stripe Checkout + webhook, and the local sandbox provider."""
