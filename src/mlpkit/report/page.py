"""The page skeleton every report shares, and the plain values its templates are given.

Pages are rendered from Jinja2 templates (``report/templates/*.html.j2``, autoescaping on);
Python builds a context of plain values (strings, numbers, lists, dicts) and never markup.
The stylesheet (``report/static/report.css``) is inlined at build time and figures are
embedded as ``data:`` URIs, so one HTML file opens with no network and no other file; a
Content-Security-Policy forbids any other resource and any script.

Another package adds its own templates by naming itself in ``packages`` (its
``templates/`` folder is searched first); those templates extend ``page.html.j2`` and import
the macros of ``macros.html.j2`` (table, figure, section).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlpkit.report.format import slug

if TYPE_CHECKING:
    import jinja2

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

#: A table cell: plain text, or a badge (``{"text", "cls", "after"}``: coloured text then a remark).
Cell = str | dict[str, str]


def badge(text: str, cls: str, after: str = "") -> dict[str, str]:
    """A cell shown as ``text`` in class ``cls`` (``ok``, ``off``), then `` (after)`` if given."""
    return {"text": text, "cls": cls, "after": after}


def table(
    headers: Sequence[Cell] | None,
    rows: Iterable[Sequence[Cell]],
    *,
    numeric: Iterable[int] = (),
    row_classes: Sequence[str] | None = None,
    cls: str = "",
) -> dict[str, Any]:
    """A table as template data.

    Parameters
    ----------
    headers : sequence of cells or None
        The header row; None for a table without one.
    rows : iterable of sequences of cells
        The body rows.
    numeric : iterable of int
        Column indices to right-align (numbers).
    row_classes : sequence of str, optional
        A CSS class per row ("" for none), e.g. ``differs``.
    cls : str
        The table's CSS class; tests and readers find tables by it.

    Returns
    -------
    dict
        ``{"cls", "headers", "numeric", "rows": [{"cls", "cells"}]}`` for the ``table`` macro.
    """
    body = [{"cls": (row_classes[i] if row_classes else "") or "", "cells": list(row)} for i, row in enumerate(rows)]
    return {
        "cls": cls,
        "headers": None if headers is None else list(headers),
        "numeric": sorted(set(numeric)),
        "rows": body,
    }


@dataclass
class Assets:
    """The ``<stem>_files`` folder beside a page: figures are written there (PNG + SVG) and also
    embedded in the page as data URIs."""

    out: Path
    folder: Path = field(init=False)
    written: list[Path] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.folder = self.out.with_name(f"{self.out.stem}_files")
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        """Where the figure ``name`` goes (without suffix)."""
        return self.folder / slug(name)

    def links(self, paths: Sequence[Path]) -> list[dict[str, str]]:
        """Download links (relative to the page) to the saved copies of a figure."""
        self.written += [p for p in paths if p not in self.written]
        return [{"href": f"{self.folder.name}/{p.name}", "label": p.suffix[1:].upper()} for p in paths]

    def prune(self) -> list[Path]:
        """Delete the figures (PNG, SVG) in the folder that this page did not write: left by an
        earlier page of the same name, they would be stale. Returns what was deleted."""
        keep = {p.name for p in self.written}
        stale = [p for p in self.folder.iterdir() if p.suffix in (".png", ".svg") and p.name not in keep]
        for p in stale:
            p.unlink()
        return stale

    def figure(self, paths: Sequence[Path], *, alt: str, caption: str = "", size: str = "wide") -> dict[str, Any]:
        """The PNG of ``paths`` as a data URI with its caption and download links (``figure`` macro)."""
        png = next(p for p in paths if p.suffix == ".png")
        return {
            "src": png_data_uri(png.read_bytes()),
            "alt": alt,
            "caption": caption,
            "size": size,
            "links": self.links(paths),
        }


def png_data_uri(data: bytes) -> str:
    """``data:image/png;base64,...`` for PNG bytes."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def stylesheet() -> str:
    """The report stylesheet (package data), inlined into every page."""
    return resources.files("mlpkit.report").joinpath("static").joinpath("report.css").read_text(encoding="utf-8")


@cache
def environment(packages: tuple[str, ...] = ()) -> jinja2.Environment:
    """A Jinja2 environment with autoescaping on that finds the templates of ``packages`` first,
    then this package's (``page.html.j2``, ``macros.html.j2``, ...)."""
    import jinja2

    loaders: list[jinja2.BaseLoader] = [jinja2.PackageLoader(p, "templates") for p in packages]
    loaders.append(jinja2.PackageLoader("mlpkit.report", "templates"))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_page(
    template: str,
    *,
    title: str,
    subtitle: str,
    nav: Sequence[tuple[str, str]],
    packages: tuple[str, ...] = (),
    **context: Any,
) -> str:
    """Render ``template`` (which extends ``page.html.j2``) into a complete HTML page.

    Parameters
    ----------
    template : str
        Template name, e.g. ``run_report.html.j2``.
    title, subtitle : str
        The page heading and the line under it.
    nav : sequence of (section id, link text)
        The table of contents.
    packages : tuple of str
        Packages whose ``templates/`` folder is searched before this one's.
    **context
        Plain values the template uses.

    Returns
    -------
    str
        The page, stylesheet inlined.
    """
    import markupsafe

    from mlpkit.core.version import __version__

    page = environment(packages).get_template(template)
    return page.render(
        title=title,
        subtitle=subtitle,
        nav=list(nav),
        csp=CSP,
        version=__version__,
        css=markupsafe.Markup(stylesheet()),
        generated=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        **context,
    )
