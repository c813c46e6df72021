from tests.support.payment_fixtures import (  # noqa: F401  (fixtures)
    gateway,
    sandbox_payments,
    stripe_server,
    stripe_settings,
)
