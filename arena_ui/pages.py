"""HTML answers as pages of their own: served from ``/answer-page/<key>``, shown in a sandboxed iframe.

Why not ``<iframe srcdoc>``: a srcdoc (or blob:, data:) document inherits the policy container of the page
around it, and the arena page's Content-Security-Policy lets only its own scripts run (by hash), so an
answer's inline script would never run in it; loosening the arena's policy for it would loosen it for the
arena too. A page fetched from its own URL gets its own policy instead (:data:`ANSWER_PAGE_CSP`, set by
``arena_ui.http``): ``sandbox allow-scripts`` (an opaque origin even if it is opened outside the frame: no
cookies, no storage, no reading the arena), scripts and styles of its own only, and nothing from the network.
The arena page's ``frame-src 'self'`` keeps the frame from being navigated anywhere else.

A key is an HMAC of the page under a per-process secret: the same answer gets the same key (no state per
battle), and a key cannot be guessed without the page. Pages live in memory, bounded in count and size.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import secrets
import threading
from collections import OrderedDict

PAGE_PREFIX = "/answer-page/"
IFRAME_HEIGHT_PX = 420


class PageStore:
    """The HTML pages of answers voters asked to see, least recently used first out. Thread-safe."""

    def __init__(self, *, max_pages: int = 2000, max_bytes: int = 64 << 20) -> None:
        self.max_pages = max_pages
        self.max_bytes = max_bytes
        self._secret = secrets.token_bytes(32)
        self._pages: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def put(self, page: str) -> str:
        """Keep ``page``; returns its key (the same key for the same page)."""
        body = page.encode("utf-8", "replace")
        key = hmac.new(self._secret, body, hashlib.sha256).hexdigest()[:40]
        with self._lock:
            if key in self._pages:
                self._pages.move_to_end(key)
                return key
            self._pages[key] = body
            self._bytes += len(body)
            while len(self._pages) > 1 and (len(self._pages) > self.max_pages or self._bytes > self.max_bytes):
                _, old = self._pages.popitem(last=False)
                self._bytes -= len(old)
        return key

    def get(self, key: str) -> bytes | None:
        with self._lock:
            body = self._pages.get(key)
            if body is not None:
                self._pages.move_to_end(key)
            return body

    def __len__(self) -> int:
        return len(self._pages)


def iframe_html(key: str) -> str:
    """The frame that shows page ``key`` in the arena page: scripts allowed, nothing else (no same origin,
    forms, popups, top navigation, downloads). The src is relative, so an arena behind a path prefix works."""
    src = html.escape(f"{PAGE_PREFIX.lstrip('/')}{key}", quote=True)
    return (f'<iframe sandbox="allow-scripts" src="{src}" title="The answer\'s page (sandboxed: no network, no '
            f'access to this page)" referrerpolicy="no-referrer" class="answer-page" '
            f'style="width:100%;height:{IFRAME_HEIGHT_PX}px;border:1px solid #d0d0d0;background:#fff"></iframe>')


# Headers of a served page besides its CSP (which arena_ui.http sets for every PAGE_PREFIX path).
PAGE_HEADERS = {"cache-control": "no-store", "x-dns-prefetch-control": "off"}
