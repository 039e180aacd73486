"""The code snippets of a rendered book chapter, so that tests can run them as a reader
would (issue #13: every snippet in the book is run against a live server)."""

from __future__ import annotations

import html
import re

_PYTHON_BLOCK = re.compile(
    r'<pre tabindex="0"><code class="language-python">(.*?)</code></pre>', re.DOTALL
)


def python_snippets(chapter_html: str) -> list[str]:
    """Each ```python block of the chapter, as the reader copies it."""
    return [html.unescape(block) for block in _PYTHON_BLOCK.findall(chapter_html)]
