"""Hand a composed message to the channel's SMTP server or Django's email backend.

Opening the connection and sending on it are separate steps so the send path can make its last
re-check (order placed? unsubscribed?) after the slow part — reaching the server — and right
before the message goes over the wire. Failures are sorted by what they mean for a retry:

- :class:`SendFailed`: nothing was handed over (unreachable, timeout, 4xx); try again later.
- :class:`RecipientRefused`: the server refused the address for good (5xx at RCPT or DATA with
  a mailbox status 5.1.x / 5.2.x, or with no enhanced status at all): a bounce, the address is
  suppressed.
- :class:`SendRefused`: refused for good for another reason (sender, policy, content): no retry,
  and the recipient is not blamed.
- :class:`SendUncertain`: the connection broke during the transfer; the server may have the
  message, so sending again could duplicate it.

The reasons are said in the active language (the Dashboard's test send and connection check show
them to the owner); the server's own reply is quoted as it came.

A successful send returns the id the mail provider gave the message, when it gave one: an anymail
backend's ``anymail_status.message_id``, or the id in an SMTP relay's reply to DATA (Amazon SES:
``250 Ok <id>``; SendGrid, Postfix: ``250 Ok: queued as <id>``). Provider events name messages by it.
"""

import contextlib
import re
import smtplib

from django.conf import settings
from django.core.mail import get_connection
from django.core.mail.backends.smtp import EmailBackend
from django.utils.translation import gettext as _

from ..exceptions import RecipientRefused, SendFailed, SendRefused, SendUncertain
from ..settings.formats import SmtpConfig

# Seconds per SMTP conversation step (connect, each command); no lock of ours is held meanwhile.
# Django setting CART_RECOVERY_SMTP_TIMEOUT overrides it, bounded to 1–60 so a whole conversation
# (about five steps) always ends within the dispatcher's SENDING_TIMEOUT.
SMTP_TIMEOUT = 15
MAX_SMTP_TIMEOUT = 60
# Enhanced status codes (RFC 3463): 5.1.x / 5.2.x are about the mailbox (a bounce); others (5.7.x
# policy, relay denied, blocklisted sender) are about us and must not suppress the shopper.
_LEADING_STATUS = re.compile(r"^\s*(\d\.\d+\.\d+)")
_ANY_STATUS = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d.])")
# The message's id in a relay's reply to DATA, after "Ok" / "queued as" (and an enhanced status).
_QUEUED_ID = re.compile(rb"^\s*(?:\d\.\d+\.\d+\s+)?ok\b[:\s]*(?:queued as\s+)?<?([\w.@=+-]{6,200})>?", re.I)


def blames_mailbox(status: str) -> bool:
    """Whether an enhanced status (``5.1.1``) says the mailbox is the problem, not the sender."""
    return status.startswith(("5.1.", "5.2."))


def enhanced_status(text: str) -> str:
    """The first enhanced status in a provider's report (``"smtp;550 5.1.1 unknown"`` → ``5.1.1``);
    empty when it has none."""
    match = _ANY_STATUS.search(text)
    return match.group(1) if match else ""


def _is_bounce(reply: bytes | str) -> bool:
    text = reply.decode("ascii", "replace") if isinstance(reply, bytes) else str(reply)
    match = _LEADING_STATUS.match(text)
    return not match or blames_mailbox(match.group(1))


def smtp_timeout() -> float:
    configured = getattr(settings, "CART_RECOVERY_SMTP_TIMEOUT", SMTP_TIMEOUT)
    return min(max(float(configured), 1.0), float(MAX_SMTP_TIMEOUT))


def open_connection(smtp: SmtpConfig | None):
    """A connected backend (Django's when ``smtp`` is ``None``); raises :class:`SendFailed`."""
    timeout = smtp_timeout()
    if smtp is None:
        connection = get_connection(fail_silently=False, timeout=timeout)
    else:
        connection = EmailBackend(
            host=smtp.host,
            port=smtp.port,
            username=smtp.username or None,
            password=smtp.password or None,
            use_tls=smtp.use_tls,
            use_ssl=smtp.use_ssl,
            timeout=timeout,
            fail_silently=False,
        )
    try:
        connection.open()
    except (TimeoutError, smtplib.SMTPException, OSError) as exc:
        raise SendFailed(_("could not reach the mail server: %(problem)s") % {"problem": exc}) from exc
    return connection


def connection_alive(connection) -> bool:
    """Whether an open SMTP connection still answers (a NOOP), so a connection the server closed
    between two messages is replaced before the next one instead of failing it. Backends that are
    not SMTP connections count as alive."""
    smtp = getattr(connection, "connection", None)
    if not isinstance(smtp, smtplib.SMTP):
        return True
    try:
        return smtp.noop()[0] == 250
    except (smtplib.SMTPException, OSError):
        return False


def close_connection(connection) -> None:
    with contextlib.suppress(smtplib.SMTPException, OSError):
        connection.close()  # the outcome is decided; a failing QUIT changes nothing


def provider_message_id(message, data_replies: list[bytes]) -> str:
    """The provider's id for a sent ``message`` (see the module docstring); empty when none."""
    status = getattr(message, "anymail_status", None)
    found = getattr(status, "message_id", None)
    if isinstance(found, str) and found:
        return found[:255]
    for reply in data_replies:
        match = _QUEUED_ID.match(reply)
        if match and not match.group(1).isdigit():  # Gmail's "2.0.0 OK 1709380800 …": a time, no id
            return match.group(1).decode("ascii", "replace")
    return ""


def send_on(connection, message) -> str:
    """Send one message on an open connection and return the provider's id for it (empty when it
    gave none), or raise one of the exceptions above."""
    message.connection = connection
    smtp = getattr(connection, "connection", None)
    data_replies: list[bytes] = []
    if isinstance(smtp, smtplib.SMTP):
        # smtplib's sendmail drops the reply to DATA, where relays name the message: keep it.
        data = smtp.data

        def recording_data(msg):
            code, reply = data(msg)
            data_replies.append(reply)
            return code, reply

        smtp.data = recording_data  # type: ignore[method-assign]
    try:
        message.send(fail_silently=False)
    except smtplib.SMTPRecipientsRefused as exc:
        replies = list(exc.recipients.values())
        refused = {"reply": exc.recipients}
        if replies and all(400 <= code < 500 for code, _reply in replies):
            raise SendFailed(_("the recipient was refused for now: %(reply)s") % refused) from exc
        if replies and all(_is_bounce(reply) for code, reply in replies if code >= 500):
            raise RecipientRefused(_("the recipient was refused: %(reply)s") % refused) from exc
        raise SendRefused(_("the recipient was refused for another reason: %(reply)s") % refused) from exc
    except smtplib.SMTPResponseException as exc:  # MAIL FROM, DATA or another command refused
        answered = {"reply": f"{exc.smtp_code} {exc.smtp_error!r}"}
        if not 500 <= exc.smtp_code < 600:
            raise SendFailed(_("the mail server answered %(reply)s") % answered) from exc
        if isinstance(exc, smtplib.SMTPDataError) and _is_bounce(exc.smtp_error):
            raise RecipientRefused(_("the message was refused: %(reply)s") % answered) from exc
        raise SendRefused(_("the mail server refused the message: %(reply)s") % answered) from exc
    except (TimeoutError, smtplib.SMTPException, OSError) as exc:
        broke = {"problem": exc}
        raise SendUncertain(
            _("the connection to the mail server broke while sending: %(problem)s") % broke
        ) from exc
    except Exception as exc:
        # Anything else (a non-SMTP email backend's own errors): we cannot tell whether it went out,
        # so it counts as possibly delivered and is never sent again.
        failed = {"problem": repr(exc)}
        raise SendUncertain(_("the email backend failed while sending: %(problem)s") % failed) from exc
    finally:
        if isinstance(smtp, smtplib.SMTP):
            del smtp.data  # the connection's own method again
    return provider_message_id(message, data_replies)
