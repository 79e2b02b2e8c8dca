"""Saleor's side of an App's install, webhooks and tokens, on a real loopback HTTP server.

Made the way Saleor 3.23 makes them (``saleor/core/jwt_manager.py``, ``saleor/webhook/transport``):
one RSA key with its RFC 7638 thumbprint as key id, published at ``/.well-known/jwks.json``; webhook
bodies signed as a detached JWS (``b64: false``, ``crit: ["b64"]``) sent with Saleor's headers; JWTs
with Saleor's claims and ``iss`` = the API URL. Its ``/graphql/`` answers the two questions the app
server asks about a caller's token (``app``, ``me``) for the tokens registered here, 401 otherwise.
"""

import base64
import hashlib
import itertools
import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt import api_jws
from jwt.algorithms import RSAAlgorithm


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _generate() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


# RSA keys take a while to make on a busy machine: the suite makes a few once and hands them out in
# turn, so any eight keys taken one after another (a test uses three at most) are distinct.
_POOL: list[rsa.RSAPrivateKey] = []
_TAKEN = itertools.count()
POOL_SIZE = 8


class SigningKey:
    def __init__(self) -> None:
        if not _POOL:
            _POOL.extend(_generate() for _ in range(POOL_SIZE))
        self.private = _POOL[next(_TAKEN) % POOL_SIZE]
        numbers = self.private.public_key().public_numbers()
        canonical = json.dumps(
            {"e": _b64(numbers.e), "kty": "RSA", "n": _b64(numbers.n)}, separators=(",", ":")
        )
        self.kid = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()

    def jwk(self) -> dict[str, Any]:
        found = json.loads(RSAAlgorithm.to_jwk(self.private.public_key()))
        found.update({"use": "sig", "kid": self.kid, "alg": "RS256"})
        return found


class StandinSaleor:
    """``api_url`` is this Saleor's GraphQL URL; ``apps`` maps app tokens to ``app`` answers,
    ``users`` maps user JWTs to ``me`` answers; ``jwks_fetches`` counts key-set downloads."""

    def __init__(self) -> None:
        self.key = SigningKey()
        self.apps: dict[str, dict[str, Any]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.jwks_fetches = 0
        self.graphql_requests = 0
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path != "/.well-known/jwks.json":
                    return self._answer(404, {})
                standin.jwks_fetches += 1
                self._answer(200, {"keys": [standin.key.jwk()]})

            def do_POST(self):
                standin.graphql_requests += 1
                query = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))["query"]
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                if "me {" in query and token in standin.users:
                    return self._answer(200, {"data": {"me": standin.users[token]}})
                if "app {" in query and token in standin.apps:
                    return self._answer(200, {"data": {"app": standin.apps[token]}})
                self._answer(401, {"errors": [{"message": "Invalid token"}]})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.api_url = f"{self.origin}/graphql/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def rotate_key(self) -> None:
        self.key = SigningKey()

    # -- what Saleor sends ----------------------------------------------------------------------

    def sign(self, body: bytes, key: SigningKey | None = None) -> str:
        key = key or self.key
        return api_jws.encode(
            body,
            key=key.private,
            algorithm="RS256",
            headers={"kid": key.kid, "crit": ["b64"]},
            is_payload_detached=True,
        )

    def webhook_headers(self, event: str, body: bytes, **overrides: str) -> dict[str, str]:
        """Saleor's headers for an async webhook (``saleor/webhook/transport/utils.py``)."""
        signature = self.sign(body)
        domain = self.origin.removeprefix("http://")
        headers = {
            "X-Saleor-Event": event,
            "X-Saleor-Domain": domain,
            "X-Saleor-Signature": signature,
            "Saleor-Event": event,
            "Saleor-Domain": domain,
            "Saleor-Signature": signature,
            "Saleor-Api-Url": self.api_url,
        }
        headers.update(overrides)
        return headers

    def token(self, key: SigningKey | None = None, issuer: str | None = None, **claims: Any) -> str:
        """A JWT with Saleor's claims (``saleor.core.jwt.jwt_user_payload``); ``claims`` add to or
        replace them."""
        now = datetime.now(tz=UTC)
        payload = {
            "iat": now,
            "owner": "saleor",
            "iss": issuer or self.api_url,
            "exp": now + timedelta(minutes=5),
            "token": "key",
            "email": "staff@example.com",
            "type": "access",
            "user_id": "VXNlcjox",
            "is_staff": True,
        }
        payload.update(claims)
        key = key or self.key
        return jwt.encode(payload, key.private, algorithm="RS256", headers={"kid": key.kid})

    def staff(
        self, user_permissions=("MANAGE_CHECKOUTS",), channels=("main",), restricted=False, **claims
    ) -> str:
        """A staff member's JWT that this Saleor's ``me`` answers for."""
        token = self.token(**claims)
        self.users[token] = {
            "email": claims.get("email", "staff@example.com"),
            "isStaff": claims.get("is_staff", True),
            "isActive": True,
            "restrictedAccessToChannels": restricted,
            "userPermissions": [{"code": code} for code in user_permissions],
            "accessibleChannels": [
                {"slug": slug, "name": slug.title(), "currencyCode": "USD"} for slug in channels
            ],
        }
        return token
