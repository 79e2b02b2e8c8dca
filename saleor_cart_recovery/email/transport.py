"""Deliver a composed message over the channel's SMTP server or Django's email backend."""

import contextlib
import smtplib

from django.core.mail import get_connection
from django.core.mail.backends.smtp import EmailBackend

from ..exceptions import SendFailed, SendRefused, SendUncertain
from ..settings.formats import SmtpConfig

# Seconds; the cart row stays locked while we talk to the server, so this must stay short.
SMTP_TIMEOUT = 15


def connection_for(smtp: SmtpConfig | None):
    if smtp is None:
        return get_connection(fail_silently=False, timeout=SMTP_TIMEOUT)
    return EmailBackend(
        host=smtp.host,
        port=smtp.port,
        username=smtp.username or None,
        password=smtp.password or None,
        use_tls=smtp.use_tls,
        use_ssl=smtp.use_ssl,
        timeout=SMTP_TIMEOUT,
        fail_silently=False,
    )


def send_email(message, smtp: SmtpConfig | None) -> None:
    """Send or raise :class:`SendRefused` (permanent), :class:`SendFailed` (nothing was handed over;
    may work later) or :class:`SendUncertain` (the connection broke mid-transfer: the server may
    have the message, so sending again could duplicate it)."""
    connection = connection_for(smtp)
    try:
        connection.open()
    except (TimeoutError, smtplib.SMTPException, OSError) as exc:
        raise SendFailed(f"could not reach the mail server: {exc}") from exc
    message.connection = connection
    try:
        message.send(fail_silently=False)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        if codes and all(400 <= code < 500 for code in codes):
            raise SendFailed(f"recipient temporarily refused: {exc.recipients}") from exc
        raise SendRefused(f"recipient refused: {exc.recipients}") from exc
    except smtplib.SMTPResponseException as exc:
        if 500 <= exc.smtp_code < 600:
            raise SendRefused(f"server refused the message: {exc.smtp_code} {exc.smtp_error!r}") from exc
        raise SendFailed(f"server answered {exc.smtp_code} {exc.smtp_error!r}") from exc
    except (TimeoutError, smtplib.SMTPException, OSError) as exc:
        raise SendUncertain(f"connection to the mail server broke while sending: {exc}") from exc
    finally:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            connection.close()  # the outcome is decided; a failing QUIT changes nothing
