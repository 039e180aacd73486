"""Every Python snippet in the book is run by a test (issue #13, item 5). The chapters of
the kit and of OpenID Connect have their own runners against a live server, which play
the member where a snippet opens a browser; this file runs the rest, and fails when a
chapter gains a snippet that no test runs."""

from __future__ import annotations

import subprocess
import sys

from pitpass.book.render import chapters, render_chapter
from tests.book_snippets import python_snippets
from tests.conftest import Site

# Chapter → the test that runs its snippets, each against a live server.
RUN_ELSEWHERE = {
    "kit_client": "tests/kit/test_book_kit.py",
}
# Chapter → what each of its snippets prints, run here: they need no server.
RUN_HERE = {
    "masking": ["CDZpTp0GQYZXHJ2tSnH9GtXnutZvyGxESQXfBnqTCVo="],
}


def test_every_python_snippet_has_a_runner(sqlite_site: Site) -> None:
    settings = sqlite_site.context.settings
    with_snippets = set()
    for chapter in chapters():
        rendered = render_chapter(chapter, settings)
        assert rendered is not None
        if python_snippets(rendered[1]):
            with_snippets.add(chapter)
    assert with_snippets == set(RUN_ELSEWHERE) | set(RUN_HERE)


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
