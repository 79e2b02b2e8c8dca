"""Mail providers' event webhooks as the providers post them, for the core and the Saleor suites.

The shapes are the providers' documented examples as django-anymail's own webhook tests use them
(tests/test_amazon_ses_webhooks.py, test_postmark_webhooks.py, test_sendgrid_webhooks.py,
test_mailgun_webhooks.py, test_brevo_webhooks.py, test_mailjet_webhooks.py,
test_mailersend_webhooks.py, test_sparkpost_webhooks.py), with the recipient,
the message's ids and the event id filled in. Each builder returns ``(body, content_type,
headers)``; :func:`post` sends one with basic auth.
"""

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass

SECRET = "events:0f3c9a7d2b51e8a4c6"
MAILGUN_KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
MAILERSEND_KEY = "Qo8jQ3vzD1Rk5sTn2uXw"
# What a channel's esp_signing_key holds for the providers that sign their posts.
SIGNING_KEYS = {"mailgun": MAILGUN_KEY, "mailersend": MAILERSEND_KEY}
KINDS = ("bounce", "soft_bounce", "complaint", "unsubscribe", "delivery")
# Amazon SES publishes no unsubscribe event (SES's own list management is not reported by SNS).
SUPPORTED = {
    "amazon_ses": ("bounce", "soft_bounce", "complaint", "delivery"),
    "postmark": KINDS,
    "sendgrid": KINDS,
    "mailgun": KINDS,
    "brevo": KINDS,
    "mailjet": KINDS,
    "mailersend": KINDS,
    "sparkpost": KINDS,
}
# Providers whose events carry our own Message-ID (the others name the message by their own id).
ECHO_MESSAGE_ID = ("amazon_ses", "sendgrid", "mailgun", "brevo")


@dataclass(frozen=True)
class Sent:
    """What the provider knows of the message it reports on."""

    recipient: str
    header_id: str = ""  # our Message-ID, "<…>" ("" when the provider does not echo it)
    provider_id: str = "provider-message-1"
    event_id: str = "event-1"


def amazon_ses(kind: str, sent: Sent) -> tuple[bytes, str, dict]:
    mail = {
        "timestamp": "2026-03-02T10:00:01.237Z",
        "source": "shop@example.com",
        "messageId": sent.provider_id,
        "destination": [sent.recipient],
        "headersTruncated": False,
        "headers": [
            {"name": "From", "value": "Shop <shop@example.com>"},
            {"name": "To", "value": sent.recipient},
            {"name": "Message-ID", "value": sent.header_id},
            {"name": "Subject", "value": "Forgot something?"},
        ],
        "commonHeaders": {"from": ["Shop <shop@example.com>"], "messageId": sent.header_id},
    }
    if kind in ("bounce", "soft_bounce"):
        event = {
            "notificationType": "Bounce",
            "bounce": {
                "bounceType": "Permanent" if kind == "bounce" else "Transient",
                "bounceSubType": "General" if kind == "bounce" else "MailboxFull",
                "bouncedRecipients": [
                    {
                        "emailAddress": sent.recipient,
                        "status": "5.1.1",
                        "action": "failed",
                        "diagnosticCode": f"smtp; 550 5.1.1 <{sent.recipient}>... User unknown",
                    }
                ],
                "timestamp": "2026-03-02T10:00:44.101Z",
                "feedbackId": "00000138111222aa-44455566-cccc-cccc-cccc-ddddaaaa068a-000000",
                "reportingMTA": "dns; email.example.com",
            },
            "mail": mail,
        }
    elif kind == "complaint":
        event = {
            "notificationType": "Complaint",
            "complaint": {
                "userAgent": "AnyCompany Feedback Loop (V0.01)",
                "complainedRecipients": [{"emailAddress": sent.recipient}],
                "complaintFeedbackType": "abuse",
            },
            "mail": mail,
        }
    else:
        event = {
            "notificationType": "Delivery",
            "mail": mail,
            "delivery": {
                "timestamp": "2026-03-02T10:00:02.237Z",
                "recipients": [sent.recipient],
                "processingTimeMillis": 546,
                "reportingMTA": "a8-70.smtp-out.amazonses.com",
                "smtpResponse": "250 ok:  Message 64111812 accepted",
            },
        }
    sns = {
        "Type": "Notification",
        "MessageId": sent.event_id,
        "TopicArn": "arn:aws:sns:us-east-1:1234567890:SES_Events",
        "Subject": "Amazon SES Email Event Notification",
        "Message": json.dumps(event) + "\n",
        "Timestamp": "2026-03-02T10:00:59.675Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE-SIGNATURE==",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-12345abcde.pem",
    }
    headers = {"x-amz-sns-message-id": sent.event_id, "x-amz-sns-message-type": "Notification"}
    return json.dumps(sns).encode(), "text/plain; charset=UTF-8", headers


def postmark(kind: str, sent: Sent) -> tuple[bytes, str, dict]:
    bounce = {
        "RecordType": "Bounce",
        "ID": int(hashlib.sha256(sent.event_id.encode()).hexdigest()[:8], 16),
        "TypeCode": 1,
        "ServerID": 23,
        "MessageID": sent.provider_id,
        "Email": sent.recipient,
        "From": "shop@example.com",
        "BouncedAt": "2026-03-02T10:00:50.3963933-04:00",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "Forgot something?",
    }
    if kind == "bounce":
        event = {
            **bounce,
            "Type": "HardBounce",
            "Name": "Hard bounce",
            "Description": "The server was unable to deliver your message"
            " (ex: unknown user, mailbox not found).",
            "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        }
    elif kind == "soft_bounce":
        event = {
            **bounce,
            "Type": "SoftBounce",
            "TypeCode": 4096,
            "Name": "Soft bounce/Undeliverable",
            "Description": "Unable to temporarily deliver this email.",
            "Details": "smtp;452 4.2.2 The email account that you tried to reach is over quota.",
            "Inactive": False,
        }
    elif kind == "complaint":
        event = {
            **bounce,
            "RecordType": "SpamComplaint",
            "Type": "SpamComplaint",
            "TypeCode": 512,
            "Name": "Spam complaint",
            "Description": "",
            "Details": "Test spam complaint details",
            "CanActivate": False,
        }
    elif kind == "unsubscribe":
        event = {
            "RecordType": "SubscriptionChange",
            "MessageID": sent.provider_id,
            "ServerID": 23,
            "MessageStream": "outbound",
            "ChangedAt": "2026-03-02T10:05:32Z",
            "Recipient": sent.recipient,
            "Origin": "Recipient",
            "SuppressSending": True,
            "SuppressionReason": "ManualSuppression",
            "Metadata": {},
        }
    else:
        event = {
            "RecordType": "Delivery",
            "ServerId": 23,
            "MessageID": sent.provider_id,
            "Recipient": sent.recipient,
            "Metadata": {},
            "DeliveredAt": "2026-03-02T10:00:10.2735393-04:00",
            "Details": "smtp;250 2.0.0 OK",
        }
    return json.dumps(event).encode(), "application/json", {}


def sendgrid(kind: str, sent: Sent) -> tuple[bytes, str, dict]:
    event = {
        "email": sent.recipient,
        "timestamp": 1772445650,
        "smtp-id": sent.header_id,
        "sg_event_id": sent.event_id,
        "sg_message_id": f"{sent.provider_id}.filter0077p1las1.21536.5717FC482.0",
    }
    if kind == "bounce":
        event |= {
            "event": "bounce",
            "type": "bounce",
            "status": "5.1.1",
            "reason": "550 5.1.1 The email account that you tried to reach does not exist.",
        }
    elif kind == "soft_bounce":
        # a final soft bounce ("blocked": refused for now); "deferred" is SendGrid retrying, no bounce
        event |= {"event": "bounce", "type": "blocked", "status": "4.2.2", "reason": "452 4.2.2 Mailbox full"}
    elif kind == "complaint":
        event |= {"event": "spamreport"}
    elif kind == "unsubscribe":
        event |= {"event": "unsubscribe"}
    else:
        event |= {"event": "delivered", "response": "250 OK", "ip": "167.89.17.173", "tls": 1}
    return json.dumps([event]).encode(), "application/json", {}


def mailgun(kind: str, sent: Sent, *, signing_key: str = MAILGUN_KEY) -> tuple[bytes, str, dict]:
    data = {
        "id": sent.event_id,
        "timestamp": 1772445650.389832,
        "recipient": sent.recipient,
        "message": {
            "headers": {
                "to": sent.recipient,
                "message-id": sent.header_id.strip("<>"),
                "from": "shop@example.com",
            }
        },
    }
    if kind == "bounce":
        data |= {
            "event": "failed",
            "severity": "permanent",
            "reason": "bounce",
            "log-level": "error",
            "delivery-status": {
                "code": 550,
                "message": "5.1.1 The email account that you tried to reach does not exist.",
                "description": "",
                "attempt-no": 1,
            },
        }
    elif kind == "soft_bounce":
        data |= {
            "event": "failed",  # Mailgun gave up retrying ("temporary" ones are deferrals, no bounce)
            "severity": "permanent",
            "reason": "old",
            "log-level": "error",
            "delivery-status": {
                "code": 452,
                "message": "4.2.2 Mailbox full",
                "description": "",
                "attempt-no": 3,
            },
        }
    elif kind == "complaint":
        data |= {"event": "complained", "log-level": "warn"}
    elif kind == "unsubscribe":
        data |= {"event": "unsubscribed", "log-level": "info"}
    else:
        data |= {
            "event": "delivered",
            "log-level": "info",
            "delivery-status": {"code": 250, "message": "OK", "description": "", "attempt-no": 1},
        }
    token = hashlib.sha256(sent.event_id.encode()).hexdigest()[:50]
    timestamp = "1772445650"
    signature = hmac.new(signing_key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    body = {"signature": {"token": token, "timestamp": timestamp, "signature": signature}, "event-data": data}
    return json.dumps(body).encode(), "application/json", {}


def brevo(kind: str, sent: Sent) -> tuple[bytes, str, dict]:
    event = {
        "event": {
            "bounce": "hard_bounce",
            "soft_bounce": "soft_bounce",
            "complaint": "spam",
            "unsubscribe": "unsubscribe",
            "delivery": "delivered",
        }[kind],
        "email": sent.recipient,
        "id": 123456,
        "date": "2026-03-02 11:00:44",
        "ts": 1772445644,
        "ts_event": 1772445644,
        "ts_epoch": 1772445644101,
        "message-id": sent.header_id,
        "subject": "Forgot something?",
        "sending_ip": "185.41.28.109",
        "event_id": sent.event_id,  # not Brevo's: keeps the test's events apart (Brevo gives no id)
    }
    if kind == "bounce":  # Brevo's own documented sample: 5.5.0 on a hard bounce is the mailbox's fault
        event["reason"] = " RecipientError: 550 5.5.0 Requested action not taken: mailbox unavailable."
    elif kind == "soft_bounce":
        event["reason"] = " RecipientError: 452 4.2.2 Mailbox full."
    return json.dumps(event).encode(), "application/json", {}


def mailjet(kind: str, sent: Sent) -> tuple[bytes, str, dict]:
    event = {
        "time": 1772445644,
        "MessageID": sent.provider_id,
        "Message_GUID": "1ab23cd4-e567-8901-2345-6789f0gh1i2j",
        "email": sent.recipient,
        "mj_campaign_id": 1234567890,
        "mj_contact_id": 9876543210,
        "customcampaign": sent.event_id,
    }
    if kind in ("bounce", "soft_bounce"):
        event |= {
            "event": "bounce",
            "blocked": kind == "bounce",
            "hard_bounce": kind == "bounce",
            "error_related_to": "recipient",
            "error": "user unknown" if kind == "bounce" else "quota exceeded",
        }
    elif kind == "complaint":
        event |= {"event": "spam", "source": "JMRPP"}
    elif kind == "unsubscribe":
        event |= {"event": "unsub", "mj_list_id": 1, "ip": "127.0.0.1", "geo": "FR", "agent": "Mozilla"}
    else:
        event |= {"event": "sent", "smtp_reply": "sent (250 2.0.0 OK 1498093527 a67bc12345def.22 - gsmtp)"}
    return json.dumps([event]).encode(), "application/json", {}


def mailersend(kind: str, sent: Sent, *, signing_key: str = MAILERSEND_KEY) -> tuple[bytes, str, dict]:
    activity = {
        "bounce": ("hard_bounced", "rejected", {"object": "recipient_bounce", "reason": "Host not found"}),
        "soft_bounce": ("soft_bounced", "rejected", {"object": "recipient_bounce", "reason": "Mailbox full"}),
        "complaint": ("spam_complaint", "delivered", {"object": "spam_complaint", "reason": None}),
        "unsubscribe": (
            "unsubscribed",
            "delivered",
            {
                "object": "recipient_unsubscribe",
                "reason": "option_3",
                "readable_reason": "I get too many emails",
            },
        ),
        "delivery": ("delivered", "delivered", None),
    }
    kind_name, status, morph = activity[kind]
    event = {
        "type": f"activity.{kind_name}",
        "data": {
            "object": "activity",
            "id": sent.event_id,
            "type": kind_name,
            "created_at": "2026-03-02T10:00:51.865000Z",
            "email": {
                "status": status,
                "message": {"id": sent.provider_id},
                "recipient": {"email": sent.recipient},
            },
            "morph": morph,
        },
    }
    # MailerSend backslash-escapes every "/" in its payloads, as anymail's tests do too
    body = json.dumps(event).replace("/", "\\/").encode()
    signature = hmac.new(signing_key.encode(), body, hashlib.sha256).hexdigest()
    return body, "application/json", {"Signature": signature}


def sparkpost(kind: str, sent: Sent, *, bounce_class: str = "") -> tuple[bytes, str, dict]:
    """``bounce_class`` overrides the bounce's class (e.g. "50", a block by the receiver)."""
    event = {
        "event_id": sent.event_id,
        "transmission_id": sent.provider_id,
        "message_id": "0e0d94b7-9085-4e3c-ab30-e3f2cd9c273e",
        "customer_id": "1",
        "raw_rcpt_to": sent.recipient,
        "rcpt_to": sent.recipient.lower(),
        "timestamp": "1772445644",
        "friendly_from": "shop@example.com",
        "subject": "Forgot something?",
    }
    group = "message_event"
    if kind in ("bounce", "soft_bounce"):
        event |= {
            "type": "bounce",
            "bounce_class": bounce_class or ("10" if kind == "bounce" else "22"),
            "raw_reason": "550 5.1.1 <recipient>... User unknown",
            "error_code": "550",
        }
    elif kind == "complaint":
        event |= {"type": "spam_complaint", "fbtype": "abuse", "report_by": "server.example.com"}
    elif kind == "unsubscribe":
        group = "unsubscribe_event"
        event |= {"type": "list_unsubscribe", "mailfrom": "shop@example.com"}
    else:
        event |= {"type": "delivery", "queue_time": "3195", "num_retries": "0"}
    return json.dumps([{"msys": {group: event}}]).encode(), "application/json", {}


BUILDERS = {
    "amazon_ses": amazon_ses,
    "postmark": postmark,
    "sendgrid": sendgrid,
    "mailgun": mailgun,
    "brevo": brevo,
    "mailjet": mailjet,
    "mailersend": mailersend,
    "sparkpost": sparkpost,
}


def basic_auth(secret: str = SECRET) -> str:
    return "Basic " + base64.b64encode(secret.encode()).decode()


def post(client, url: str, provider: str, kind: str, sent: Sent, *, secret: str | None = SECRET, **build):
    """Post the provider's event for ``sent`` to ``url`` (a Django test client) with ``secret``."""
    body, content_type, headers = BUILDERS[provider](kind, sent, **build)
    if secret is not None:
        headers = {**headers, "Authorization": basic_auth(secret)}
    return client.post(url, data=body, content_type=content_type, headers=headers)
