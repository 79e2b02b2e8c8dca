"""The app token at rest: encrypted with a key derived from ``SECRET_KEY`` (a database dump alone
does not give Saleor access). Rotating ``SECRET_KEY`` makes the stored token unreadable: the app
then counts as uninstalled until Saleor registers it again."""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

_CONTEXT = b"saleor-cart-recovery app token v1"


def _fernet() -> Fernet:
    key = hashlib.sha256(_CONTEXT + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(token: str) -> str:
    return _fernet().encrypt(token.encode()).decode()


def decrypt(ciphertext: str) -> str | None:
    """The token, or ``None`` when it was encrypted under another ``SECRET_KEY``."""
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        return None
