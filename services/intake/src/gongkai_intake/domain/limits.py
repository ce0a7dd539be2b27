"""Size bounds of what intake accepts.

The event log refuses messages over 1 MiB, so the bounds keep the largest post (body, title,
attachment list and screening spans) inside one event with room for the envelope.
"""

from __future__ import annotations

TITLE_MAX = 300
BODY_MAX = 200_000  # characters; a 200-page document is still far below this
SOURCE_MAX = 300
ATTACHMENTS_MAX = 50
ATTACHMENT_SIZE_MAX = 200 * 1024 * 1024  # bytes; the file itself stays in the CMS
REASON_MAX = 1000
SUMMARY_MAX = 2000
URL_MAX = 2048
NAME_MAX = 100
UNIT_NAME_MAX = 200
#: Encoded payload ceiling: the stream's message limit (1 MiB) minus room for the envelope.
PAYLOAD_BYTES_MAX = 900 * 1024
