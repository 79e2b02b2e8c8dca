"""Saleor's signing keys and the two checks made with them: a webhook body's ``Saleor-Signature``
and a JWT Saleor issued (staff tokens, the Dashboard's tokens for our app).

Saleor signs both with one RSA key (``saleor/core/jwt_manager.py``) and publishes its public keys at
``{origin of SALEOR_API_URL}/.well-known/jwks.json``. The set is cached per process; a key id it
does not hold triggers one refetch (Saleor rotated its key), and a key id still unknown after that
is refused without another fetch for ``REFETCH_INTERVAL`` (a request repeated with a forged key id
cannot make us fetch again and again).
"""

import logging
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import jwt
import requests
from django.conf import settings
from django.utils.translation import gettext as _
from jwt import PyJWK, PyJWKSet, api_jws

from ..exceptions import CartRecoveryError

logger = logging.getLogger(__name__)

ALGORITHM = "RS256"  # the only one Saleor signs with
FETCH_TIMEOUT = (5.0, 10.0)
REFETCH_INTERVAL = 30.0  # seconds between two fetches caused by unknown key ids
MAX_AGE = 3600.0  # a key set older than this is refetched on next use
MAX_MISSING = 1000  # key ids remembered as unknown (forgers can invent any number of them)


class SignatureInvalid(CartRecoveryError):
    """Not signed by the installing Saleor (missing, malformed, forged, another Saleor's, expired)."""


class TokenExpired(SignatureInvalid):
    """Signed by Saleor, but past its expiry."""


class KeysUnavailable(CartRecoveryError):
    """Saleor's key set could not be fetched: nothing can be verified right now (the caller answers
    5xx so Saleor retries a webhook)."""


def jwks_url(api_url: str) -> str:
    parts = urlsplit(api_url)
    return f"{parts.scheme}://{parts.netloc}/.well-known/jwks.json"


class _KeyCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, dict[str, PyJWK]] = {}
        self._fetched_at: dict[str, float] = {}
        self._missing: dict[tuple[str, str], float] = {}  # (url, kid) -> when a refetch lacked it

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()
            self._fetched_at.clear()
            self._missing.clear()

    def refresh(self, api_url: str) -> None:
        """Fetch the key set now (at install: Saleor's keys may have changed, and webhooks must be
        verifiable from the first one); raises :class:`KeysUnavailable`."""
        url = jwks_url(api_url)
        keys = _fetch(url)
        with self._lock:
            self._keys[url], self._fetched_at[url] = keys, time.monotonic()
            self._missing.clear()

    def key(self, api_url: str, kid: str) -> PyJWK:
        url = jwks_url(api_url)
        with self._lock:
            now = time.monotonic()
            fetched_at = self._fetched_at.get(url)
            keys = self._keys.get(url, {})
            missed_at = self._missing.get((url, kid))
            unknown = kid not in keys and (missed_at is None or now - missed_at > REFETCH_INTERVAL)
            if fetched_at is None or now - fetched_at > MAX_AGE or unknown:
                keys = self._keys[url] = _fetch(url)
                self._fetched_at[url] = now
                if kid not in keys:
                    if len(self._missing) >= MAX_MISSING:
                        self._missing.clear()
                    self._missing[(url, kid)] = now
        if kid not in keys:
            raise SignatureInvalid(_("unknown key id %(kid)s") % {"kid": repr(kid)})
        return keys[kid]


def _fetch(url: str) -> dict[str, PyJWK]:
    try:
        response = requests.get(url, timeout=FETCH_TIMEOUT, allow_redirects=False)
        response.raise_for_status()
        key_set = PyJWKSet.from_dict(response.json())
    except (requests.RequestException, ValueError, jwt.PyJWTError) as exc:
        raise KeysUnavailable(
            _("could not fetch Saleor's keys from %(url)s: %(problem)s") % {"url": url, "problem": exc}
        ) from None
    return {key.key_id: key for key in key_set.keys if key.key_id}


KEYS = _KeyCache()


def _key_for(token: str) -> PyJWK:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise SignatureInvalid(_("malformed: %(problem)s") % {"problem": exc}) from None
    if header.get("alg") != ALGORITHM or not isinstance(header.get("kid"), str):
        raise SignatureInvalid(_("not an RS256 token with a key id"))
    return KEYS.key(settings.SALEOR_API_URL, header["kid"])


def verify_body(body: bytes, signature: str) -> None:
    """Check a webhook's ``Saleor-Signature``: a JWS over ``body`` with the payload detached
    (``b64: false``, ``header..signature``), as ``saleor/webhook/transport`` makes it. Anything
    else signed by Saleor (a user's JWT) is refused: it would carry its own payload, not the body."""
    if not signature or signature.count(".") != 2 or signature.split(".")[1]:
        raise SignatureInvalid(_("not a detached JWS"))
    key = _key_for(signature)
    try:
        header = jwt.get_unverified_header(signature)
        if header.get("b64") is not False:
            raise SignatureInvalid(_("not a detached JWS"))
        api_jws.decode_complete(signature, key.key, algorithms=[ALGORITHM], detached_payload=body)
    except jwt.PyJWTError as exc:
        raise SignatureInvalid(str(exc)) from None


def verify_jwt(token: str) -> dict[str, Any]:
    """The claims of a JWT the installing Saleor issued (signature, expiry and issuer checked)."""
    key = _key_for(token)
    try:
        claims = jwt.decode(
            token,
            key.key,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "iss"], "verify_aud": False},
        )
    except jwt.ExpiredSignatureError:
        raise TokenExpired(_("expired")) from None
    except jwt.PyJWTError as exc:
        raise SignatureInvalid(str(exc)) from None
    if str(claims.get("iss", "")).rstrip("/") != settings.SALEOR_API_URL.rstrip("/"):
        raise SignatureInvalid(_("issued by another Saleor"))
    return claims
