"""`make run`'s email backend: every email whole in a file, one line about it on the console.

Django's console backend prints each message in full (a welcome email is ~50 lines of headers,
text and HTML), which buried the demo logins `make run` prints. Local settings use this backend
when EMAIL_URL is unset: the console shows who got what, and the file holds the message (a
password-reset link included) to open or paste.
"""

from __future__ import annotations

import sys
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend


class SummaryFileBackend(BaseEmailBackend):
    def __init__(self, *args, file_path: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.directory = Path(file_path or str(getattr(settings, "EMAIL_FILE_PATH", ".run/emails")))
        self._lock = threading.Lock()

    def send_messages(self, email_messages) -> int:
        sent = 0
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            for message in email_messages:
                if not message.recipients():
                    continue
                stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
                path = self.directory / f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
                path.write_bytes(message.message().as_bytes(linesep="\n"))
                recipients = ", ".join(message.recipients())
                sys.stdout.write(f'email to {recipients}: "{message.subject}" -> {path}\n')
                sys.stdout.flush()
                sent += 1
        return sent
