"""The Python programs of a rendered book chapter, so that tests can run them as written."""

from __future__ import annotations

import html
import re

# The renderer's code blocks (book/render.py): markdown-it's `language-python` class inside
# a <pre> that `_boxed` gave a tabindex, with the text HTML-escaped.
PYTHON_BLOCK = re.compile(
    r'<pre[^>]*><code class="language-python">(?P<code>.*?)</code></pre>', re.DOTALL
)


def python_snippets(page: str) -> list[str]:
    """Every ```python block of a chapter's HTML, unescaped, in page order."""
    return [html.unescape(match.group("code")) for match in PYTHON_BLOCK.finditer(page)]
