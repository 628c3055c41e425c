"""An adapter's README.md: the limits an uploaded one must keep, and its HTML, rendered once when it is stored.

Every way a README reaches the hub (a REST upload, the web form, its zip, a Hugging Face commit) is checked by
`check_readme_size` and `readme_text`: at most `ADAPTERHUB_MAX_README_BYTES` bytes, and no NUL character
(PostgreSQL cannot store one in text). The text is decoded as UTF-8, invalid bytes replaced.

The page of an adapter shows `Adapter.readme_html`, which `render_readme` makes from the README when the README
is saved (see `Adapter.save`), so a view never renders Markdown. `render_readme` uses markdown-it-py, whose
time grows linearly with the text (Python-Markdown's grew worse than quadratically on unclosed brackets), and
nh3 removes scripts, event handlers, styles and unsafe URLs from the result.
"""

import re

import nh3
from django.conf import settings
from markdown_it import MarkdownIt

from adapters_core.directory import README_FILE
from hub.registry.errors import PayloadTooLarge, UploadRejected

# A front matter starts the text: a line of three dashes, the YAML, and another such line.
FRONT_MATTER = re.compile(r"\A\ufeff?\s*---[ \t]*\r?\n(?P<yaml>.*?)^---[ \t]*(?:\r?\n|\Z)", re.S | re.M)
# CommonMark (fenced code included) with GitHub's tables and strikethrough. Raw HTML passes to nh3, which
# keeps only safe tags and attributes.
MARKDOWN = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
# Untrusted README links must not pass on the hub's reputation or a window reference.
LINK_REL = "noopener noreferrer nofollow"
HEADING_TAG = re.compile(r"<(/?)h([1-6])\b")


def split_front_matter(text: str) -> tuple[str | None, str]:
    """(the front matter's YAML text, the rest of the README); (None, text) without a front matter."""
    match = FRONT_MATTER.match(text)
    if match is None:
        return None, text
    return match["yaml"], text[match.end() :]


def check_readme_size(size: int) -> None:
    """Raise `PayloadTooLarge` when a README of `size` bytes is over `ADAPTERHUB_MAX_README_BYTES`."""
    limit = settings.ADAPTERHUB_MAX_README_BYTES
    if size > limit:
        raise PayloadTooLarge(
            f"{README_FILE} is {size} bytes; the hub accepts at most {limit} bytes "
            "(ADAPTERHUB_MAX_README_BYTES). Shorten it, e.g. link to long tables or logs instead of including "
            "them.",
            field="files",
        )


def readme_text(data: bytes) -> str:
    """An uploaded README's text (UTF-8, invalid bytes replaced). Raises `PayloadTooLarge` when it is too
    large and `UploadRejected` when it holds a NUL character."""
    check_readme_size(len(data))
    text = data.decode("utf-8", errors="replace")
    nul = text.find("\x00")
    if nul != -1:
        line = text.count("\n", 0, nul) + 1
        raise UploadRejected(
            f"{README_FILE} holds a NUL character (byte 0) on line {line}; a README is text, and the hub "
            "cannot store a NUL in it. Remove it and upload again.",
            field="files",
        )
    return text


def render_readme(text: str) -> str:
    """A README as sanitised HTML. A model card's YAML front matter is metadata, not shown; the README's
    headings move down two levels, since it sits under the page's own h1 and h2."""
    if not text:
        return ""
    _, body = split_front_matter(text)
    html = MARKDOWN.render(body)
    html = HEADING_TAG.sub(lambda match: f"<{match[1]}h{min(int(match[2]) + 2, 6)}", html)
    return nh3.clean(html, link_rel=LINK_REL)
