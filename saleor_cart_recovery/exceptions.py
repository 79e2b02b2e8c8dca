"""Anticipated failures, caught at the boundary (hook, task, endpoint)."""

from collections.abc import Iterable


class CartRecoveryError(Exception):
    """Base class for every failure this package anticipates."""


class ConfigurationError(CartRecoveryError):
    """A setting is invalid; ``errors`` maps each field name to its message; ``required`` names the
    fields whose problem is a missing value the plugin needs to be active."""

    def __init__(self, errors: dict[str, str], required: Iterable[str] = ()):
        self.errors = errors
        self.required = frozenset(required)
        super().__init__("; ".join(f"{field}: {msg}" for field, msg in errors.items()))


class BadToken(CartRecoveryError):
    """A signed link token is missing, malformed, forged or expired."""


class SendRefused(CartRecoveryError):
    """The mail server refused the message for good (retrying will not help)."""


class RecipientRefused(SendRefused):
    """The mail server refused the recipient's address for good: a hard bounce."""


class SendUncertain(CartRecoveryError):
    """The transfer broke after the message was handed over: it may have been delivered."""


class SendFailed(CartRecoveryError):
    """Delivery failed in a way that may succeed later (connection, timeout, 4xx reply)."""


class ShopUnavailable(CartRecoveryError):
    """The shop could not be asked right now (its API down, failing or too slow to answer): nothing
    can be decided about a reminder without it; ask again later."""


class DashboardRefused(CartRecoveryError):
    """A Dashboard page was asked for without a token it can trust (``status`` 401) or by someone
    the token does not allow there (403); ``message`` says which, for the page to show."""

    def __init__(self, status: int, message: str):
        self.status, self.message = status, message
        super().__init__(message)
