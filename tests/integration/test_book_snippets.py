"""Every snippet in the book is run by a test (issue #13, item 5). The quick start, the
kit and OpenID Connect chapters have their own runners against a live server, which play
the member where a snippet opens a browser; this file runs the rest, and fails when a
chapter gains a snippet that no test runs. (`text` and `json` blocks show output.)"""

from __future__ import annotations

import subprocess
import sys

from pitpass.book.render import chapters, render_chapter
from tests.book_snippets import python_snippets, snippets
from tests.conftest import Site

# Chapter → the test that runs its snippets, each against a live server.
RUN_ELSEWHERE = {
    "kit_client": "tests/kit/test_book_kit.py",
    "kit_resource": "tests/kit/test_book_kit.py",
    "openid_connect": "tests/integration/test_book_openid_connect.py",
}
# Chapter → the test that runs its shell snippets, in order, against a live server.
SHELL_RUN_ELSEWHERE = {
    "quick_start": "tests/integration/test_book_quick_start.py",
}
# Chapter → what each of its snippets prints, run here: they need no server.
RUN_HERE = {
    "masking": ["CDZpTp0GQYZXHJ2tSnH9GtXnutZvyGxESQXfBnqTCVo="],
}


def test_every_snippet_has_a_runner(sqlite_site: Site) -> None:
    settings = sqlite_site.context.settings
    with_python, with_shell = set(), set()
    for chapter in chapters():
        rendered = render_chapter(chapter, settings)
        assert rendered is not None
        if python_snippets(rendered[1]):
            with_python.add(chapter)
        if snippets(rendered[1], "sh") or snippets(rendered[1], "bash"):
            with_shell.add(chapter)
    assert with_python == set(RUN_ELSEWHERE) | set(RUN_HERE)
    assert with_shell == set(SHELL_RUN_ELSEWHERE)


def test_snippets_without_a_server_print_what_the_book_says(sqlite_site: Site) -> None:
    for chapter, outputs in RUN_HERE.items():
        rendered = render_chapter(chapter, sqlite_site.context.settings)
        assert rendered is not None
        snippets = python_snippets(rendered[1])
        assert len(snippets) == len(outputs), chapter
        for code, expected in zip(snippets, outputs, strict=True):
            done = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
            )
            assert done.returncode == 0, done.stderr
            assert done.stdout.strip() == expected
