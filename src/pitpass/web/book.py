"""Serves the developer book under the issuer path: `/oauth2/book/` (PRODUCT.md §5)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from pitpass.book.render import chapter_titles, render_chapter
from pitpass.http.context import app_context
from pitpass.http.render import render


def book_router(issuer_path: str) -> APIRouter:
    router = APIRouter(prefix=f"{issuer_path.rstrip('/')}/book", include_in_schema=False)

    @router.get("", include_in_schema=False)
    def book_root() -> Response:
        return RedirectResponse(f"{router.prefix}/", status_code=308)

    @router.get("/", response_class=HTMLResponse)
    def book_index(request: Request) -> Response:
        return chapter_page(request, "index.html")

    @router.get("/{page}", response_class=HTMLResponse)
    def chapter_page(request: Request, page: str) -> Response:
        chapter = page.removesuffix(".html")
        rendered = render_chapter(chapter, app_context(request).settings)
        if rendered is None or not page.endswith(".html"):
            return render(
                request,
                "error.html",
                {"title": "No such chapter", "detail": f"The book has no page {page!r}."},
                status_code=404,
            )
        title, html = rendered
        return render(
            request,
            "book.html",
            {
                "title": title,
                "html": Markup(html),  # noqa: S704 - rendered from our own Markdown files
                "chapters": chapter_titles(app_context(request).settings),
                "current": chapter,
                "book_base": router.prefix,
            },
        )

    return router
