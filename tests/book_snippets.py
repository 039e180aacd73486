"""The code snippets of a rendered book chapter, so that tests can run them as a reader
would (issue #13: every snippet in the book is run against a live server)."""

from __future__ import annotations

import html
import re


def snippets(chapter_html: str, language: str) -> list[str]:
    """Each ```<language> block of the chapter, as the reader copies it."""
    block = re.compile(
        rf'<pre tabindex="0"><code class="language-{re.escape(language)}">(.*?)</code></pre>',
        re.DOTALL,
    )
    return [html.unescape(code) for code in block.findall(chapter_html)]


def python_snippets(chapter_html: str) -> list[str]:
    return snippets(chapter_html, "python")
