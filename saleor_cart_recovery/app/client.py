"""Saleor's GraphQL API over HTTP, as the App host calls it: one POST per document, a bounded wait,
and failures sorted by what the caller must do about them.

A thin layer over ``requests`` rather than a GraphQL client library: the developer API is served by
graphene 2 (Saleor 3.23 pins it), which needs graphql-core 2, while every maintained Python GraphQL
client (gql, sgqlc, ariadne-codegen) needs graphql-core 3 under the same import name. Saleor's API
needs nothing a client library would add here: the documents are fixed strings, batched by aliases.

- :class:`SaleorUnavailable`: nothing can be said (network error, timeout, 5xx, a body that is not
  GraphQL); the caller retries later and decides nothing meanwhile.
- :class:`AppTokenRevoked`: Saleor no longer accepts the app's token: the app was uninstalled or its
  token deleted. Never retried. Saleor does not say so directly: it treats a request with an
  unknown app token as anonymous, so it answers with permission errors. Only then, one more request
  asks ``app { id }``: an app without a permission gets its ID, an unknown token ``PermissionDenied``
  and ``null`` (a staff user's token — a JWT — is refused with its own codes instead: 401 or an
  invalid-token error).
- :class:`SaleorQueryError`: Saleor answered, with GraphQL errors (a bug of ours, or input Saleor
  refuses); ``errors`` are Saleor's.
"""

import logging
import threading
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import requests
from django.utils.translation import gettext as _

from ..exceptions import CartRecoveryError, ShopUnavailable

logger = logging.getLogger(__name__)

# Seconds to connect and to wait for Saleor's answer; a send batch waits for this at most once per
# request before it gives its claims back.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 20.0
# Saleor's codes for a token it does not accept (saleor/graphql/core/validators + auth errors).
_TOKEN_ERRORS = {"InvalidTokenError", "ExpiredSignatureError", "JWT_INVALID_TOKEN", "JWT_SIGNATURE_EXPIRED"}
# Saleor's code for a field the requester may not read (saleor/core/exceptions.py).
_PERMISSION_DENIED = "PermissionDenied"
WHO_AM_I = "query AppProbe { app { id } }"


class SaleorUnavailable(ShopUnavailable):
    """Saleor could not be asked (down, slow, 5xx): retry later."""


class AppTokenRevoked(CartRecoveryError):
    """Saleor refuses the app's token: the app is uninstalled (or its token was deleted)."""


class SaleorQueryError(CartRecoveryError):
    """Saleor answered with GraphQL errors."""

    def __init__(self, errors: list[dict]):
        self.errors = errors
        super().__init__("; ".join(str(error.get("message", error)) for error in errors) or "GraphQL error")


class SaleorClient:
    """Calls one Saleor's GraphQL endpoint with one token (an app token, or a user's bearer token).

    ``requests_made`` counts the HTTP requests sent, for budgets and benchmarks. Thread-safe: the
    underlying session is per thread.
    """

    def __init__(self, api_url: str, token: str | None = None, *, timeout: float = READ_TIMEOUT):
        self.api_url = api_url
        self._token = token
        self._timeout = (CONNECT_TIMEOUT, timeout)
        self._local = threading.local()
        self.requests_made = 0

    def __repr__(self) -> str:  # the token never appears in logs or tracebacks
        return f"SaleorClient({self.api_url!r})"

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def execute(self, document: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The ``data`` of Saleor's answer (numbers with a fraction as :class:`Decimal`, as Saleor
        wrote them); raises one of the exceptions above."""
        try:
            return self._post(document, variables)
        except SaleorQueryError as exc:
            if self._is_app_token() and any(_code(error) == _PERMISSION_DENIED for error in exc.errors):
                self._raise_if_revoked()
            raise

    def _is_app_token(self) -> bool:
        """App tokens are opaque strings; a user's token is a JWT (dot-separated)."""
        return bool(self._token) and "." not in str(self._token)

    def _raise_if_revoked(self) -> None:
        try:
            self._post(WHO_AM_I, None)
        except SaleorQueryError as exc:
            if any(_code(error) == _PERMISSION_DENIED for error in exc.errors):
                raise AppTokenRevoked(
                    _("Saleor at %(url)s no longer knows the app's token") % {"url": self.api_url}
                ) from None
            raise

    def _post(self, document: str, variables: Mapping[str, Any] | None) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        self.requests_made += 1
        try:
            response = self._session().post(
                self.api_url,
                json={"query": document, "variables": dict(variables or {})},
                headers=headers,
                timeout=self._timeout,
            )
        except (requests.RequestException, ValueError) as exc:  # ValueError: a token no header carries
            raise SaleorUnavailable(
                _("could not reach Saleor at %(url)s: %(problem)s") % {"url": self.api_url, "problem": exc}
            ) from None
        if response.status_code == 401:
            raise AppTokenRevoked(_("Saleor at %(url)s refused the token (401)") % {"url": self.api_url})
        answered = {"url": self.api_url, "status": response.status_code}
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise SaleorUnavailable(_("Saleor at %(url)s answered %(status)s") % answered)
        try:
            body = response.json(parse_float=Decimal)
        except ValueError:
            raise SaleorUnavailable(
                _("Saleor at %(url)s answered %(status)s without JSON") % answered
            ) from None
        if not isinstance(body, dict):
            raise SaleorUnavailable(_("Saleor at %(url)s answered an unexpected body") % answered)
        errors = body.get("errors") or []
        if any(_is_token_error(error) for error in errors):
            raise AppTokenRevoked(_("Saleor at %(url)s refused the token") % answered)
        if errors:
            raise SaleorQueryError(errors)
        if response.status_code >= 400 or not isinstance(body.get("data"), dict):
            raise SaleorUnavailable(_("Saleor at %(url)s answered %(status)s without data") % answered)
        return body["data"]


def _code(error: Mapping[str, Any]) -> str | None:
    """Saleor's error code: ``extensions.exception.code`` (else ``extensions.code``)."""
    extensions = error.get("extensions") or {}
    return (extensions.get("exception") or {}).get("code") or extensions.get("code")


def _is_token_error(error: Mapping[str, Any]) -> bool:
    extensions = error.get("extensions") or {}
    exception = extensions.get("exception") or {}
    return extensions.get("code") in _TOKEN_ERRORS or exception.get("code") in _TOKEN_ERRORS
