"""Link settings with a placeholder the plugin fills in (``{token}``, ``{slug}``)."""

import re
from urllib.parse import urlsplit


def parse_url_template(text: str, placeholder: str, what: str) -> str:
    """An http(s) link with exactly one kind of ``{placeholder}``; empty stays empty."""
    url = text.strip()
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"'{url}' is not an http(s) URL")
    if f"{{{placeholder}}}" not in url:
        raise ValueError(f"must contain {{{placeholder}}}, where {what} goes")
    if re.search(rf"\{{(?!{placeholder}\}})", url):
        raise ValueError(f"only the placeholder {{{placeholder}}} is allowed")
    return url
