"""Saleor's signing keys and the two checks made with them: a webhook body's ``Saleor-Signature``
and a JWT Saleor issued (staff tokens, the Dashboard's tokens for our app).

Saleor signs both with one RSA key (``saleor/core/jwt_manager.py``) and publishes its public keys at
``{origin of SALEOR_API_URL}/.well-known/jwks.json``. The set is cached per process. A request
fetches it when there is none yet, when it is older than ``MAX_AGE``, or when it names a key id the
set lacks (Saleor rotated its key) — but at most once per ``REFETCH_INTERVAL`` per Saleor, whatever
the key ids, and single-flight: concurrent requests wait for the one fetch under way and share its
result. So a flood of invented key ids (or of requests while Saleor is down) costs Saleor one fetch
per interval; a key id still unknown is refused from the cache, a failed fetch answered from it
(:class:`KeysUnavailable`) until the interval has passed.
"""

import logging
import threading
import time
from dataclasses import dataclass, field
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
FETCH_WAIT = 30.0  # the longest a request waits for another request's fetch
REFETCH_INTERVAL = 30.0  # seconds between two fetches caused by requests, per Saleor
MAX_AGE = 3600.0  # a key set older than this is refetched on next use


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


@dataclass
class _KeySet:
    """One Saleor's keys and the state of fetching them (guarded by the cache's lock)."""

    keys: dict[str, PyJWK] = field(default_factory=dict)
    fetched_at: float | None = None  # the last successful fetch
    attempted_at: float | None = None  # the last fetch a request caused, successful or not
    error: str = ""  # that fetch's failure
    fetching: threading.Event | None = None  # set when the fetch under way is done


class _KeyCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sets: dict[str, _KeySet] = {}

    def clear(self) -> None:
        with self._lock:
            self._sets.clear()

    def _set(self, url: str) -> _KeySet:
        return self._sets.setdefault(url, _KeySet())

    def refresh(self, api_url: str) -> None:
        """Fetch the key set now (at install, once Saleor confirmed the token: its keys may have
        changed, and webhooks must be verifiable from the first one); raises
        :class:`KeysUnavailable`. Not counted against ``REFETCH_INTERVAL``."""
        url = jwks_url(api_url)
        keys = _fetch(url)
        with self._lock:
            found = self._set(url)
            found.keys, found.fetched_at, found.error = keys, time.monotonic(), ""

    def key(self, api_url: str, kid: str) -> PyJWK:
        url = jwks_url(api_url)
        while True:
            with self._lock:
                found = self._set(url)
                now = time.monotonic()
                fresh = found.fetched_at is not None and now - found.fetched_at <= MAX_AGE
                if fresh and kid in found.keys:
                    return found.keys[kid]
                under_way = found.fetching
                if under_way is None:
                    if found.attempted_at is not None and now - found.attempted_at < REFETCH_INTERVAL:
                        if found.error:
                            raise KeysUnavailable(found.error)
                        raise SignatureInvalid(_("unknown key id %(kid)s") % {"kid": repr(kid)})
                    found.fetching, found.attempted_at = threading.Event(), now
            if under_way is not None:
                if not under_way.wait(FETCH_WAIT):
                    raise KeysUnavailable(
                        _("Saleor's keys at %(url)s are taking too long to fetch") % {"url": url}
                    )
                continue  # answered by the fetch just made
            self._fetch_into(url, found)

    def _fetch_into(self, url: str, found: _KeySet) -> None:
        """The one fetch; whatever happens, the requests waiting for it are let go."""
        keys, error = None, f"could not fetch Saleor's keys from {url}"
        try:
            keys, error = _fetch(url), ""
        except KeysUnavailable as exc:
            error = str(exc)
            logger.warning("cart recovery app: %s", exc)
        finally:
            with self._lock:
                if keys is not None:
                    found.keys, found.fetched_at = keys, time.monotonic()
                found.error = error
                done, found.fetching = found.fetching, None
            if done is not None:
                done.set()


# What reading a body that is JSON but no key set raises (a list, an object without "keys").
_NOT_A_KEY_SET = (AttributeError, TypeError, KeyError)


def _fetch(url: str) -> dict[str, PyJWK]:
    try:
        response = requests.get(url, timeout=FETCH_TIMEOUT, allow_redirects=False)
        response.raise_for_status()
        key_set = PyJWKSet.from_dict(response.json())
    except (requests.RequestException, ValueError, jwt.PyJWTError, *_NOT_A_KEY_SET) as exc:
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
