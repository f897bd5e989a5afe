"""Email over SMTP (aiosmtplib): a plain-text body with an HTML alternative, in the recipient's language."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid

import aiosmtplib

from server.settings import Settings

SMTP_TIMEOUT_S = 20.0


def build_email(
    settings: Settings, *, to: str, subject: str, text: str, html: str, language: str
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Subject"] = subject
    message["Content-Language"] = language
    message["Message-ID"] = make_msgid(domain=settings.smtp_from.rpartition("@")[2] or "localhost")
    message.set_content(text, charset="utf-8")
    message.add_alternative(html, subtype="html", charset="utf-8")
    return message


async def send_email(settings: Settings, message: EmailMessage) -> None:
    """Send one message; raises on any SMTP or connection failure (the caller retries later)."""
    if not settings.smtp_host:
        raise RuntimeError("SMTP is not configured")
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    await aiosmtplib.send(
        message,
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=password,
        start_tls=settings.smtp_starttls,
        timeout=SMTP_TIMEOUT_S,
    )
