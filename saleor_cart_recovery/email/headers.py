"""The headers that make a reminder look like mail from a careful bulk sender, and find it again
when the mail provider reports on it later.

- ``Message-ID`` on the sender's own domain (Django's default names the server's host): a
  reminder's is derived from its message row (``<cart-recovery.<id>.<digest>@<domain>>``), so it
  is the same on every attempt and recognisable in whatever a provider echoes back of it
  (:func:`our_message_ids`).
- ``Feedback-ID`` (Gmail's feedback loop: ``campaign:customer:type:sender``) groups complaints by
  step and subject variant in Google Postmaster Tools.
"""

import re
from email.utils import make_msgid, parseaddr

from django.utils.crypto import salted_hmac

_SALT = "saleor_cart_recovery.message_id"
# A Message-ID of ours inside any text (a JSON event, a header list): the row's id and its digest.
_OURS = re.compile(r"cart-recovery\.(\d{1,19})\.([0-9a-f]{16})@[A-Za-z0-9.-]{1,253}")
VARIANT_LETTERS = "ABCDEFGHIJ"


def sender_domain(from_email: str) -> str:
    """The domain of ``Shop <shop@example.com>`` (lowercased); ``localhost`` when it has none."""
    address = parseaddr(from_email)[1]
    return address.rpartition("@")[2].lower() or "localhost"


def _digest(message_pk: int) -> str:
    return salted_hmac(_SALT, str(message_pk), algorithm="sha256").hexdigest()[:16]


def _ascii_domain(from_email: str) -> str:
    """The sender's domain as a header may carry it: an internationalized one in its IDNA form
    (``bücher.example`` → ``xn--bcher-kva.example``); ``localhost`` when it cannot be encoded."""
    domain = sender_domain(from_email)
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return "localhost"


def reminder_message_id(message_pk: int, from_email: str) -> str:
    """The reminder's own ``Message-ID``: stable for the row, on the sender's domain."""
    return f"<cart-recovery.{message_pk}.{_digest(message_pk)}@{_ascii_domain(from_email)}>"


def one_off_message_id(from_email: str) -> str:
    """A fresh ``Message-ID`` on the sender's domain, for previews and test sends."""
    return make_msgid(domain=_ascii_domain(from_email))


def feedback_id(step: int, variant: int, from_email: str) -> str:
    """``step1:A:cart-recovery:shop.example.com``: what Gmail's feedback loop reports complaints by."""
    letter = VARIANT_LETTERS[variant] if 0 <= variant < len(VARIANT_LETTERS) else str(variant)
    return f"step{step}:{letter}:cart-recovery:{_ascii_domain(from_email)}"


def our_message_ids(text: str) -> set[int]:
    """The message rows whose reminder Message-ID appears in ``text`` (a digest that checks out:
    not any number after ``cart-recovery.``)."""
    return {int(pk) for pk, digest in _OURS.findall(text) if digest == _digest(int(pk))}
