"""Template helpers of the web UI: status badges, query-string links, config values."""

import html
import json
import re

from django import template
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe

from hub.registry.choices import VersionStatus
from hub.registry.lifecycle import waiting_for as version_waiting_for
from hub.registry.search import search_words

register = template.Library()


@register.simple_tag(takes_context=True)
def highlighted(context, text):
    """`text`, escaped, with the words of the page's search (`search_query` in the context, on the adapter
    list) marked (`<mark>`) where a word of the text starts with one, as the search matches them."""
    words = search_words(context.get("search_query", ""))
    text = str(text or "")
    if not words:
        return text  # simple_tag escapes it
    longest_first = sorted(words, key=len, reverse=True)
    pattern = re.compile(
        r"(?<!\w)(?:" + "|".join(re.escape(word) for word in longest_first) + ")", re.IGNORECASE
    )
    pieces, position = [], 0
    for match in pattern.finditer(text):
        pieces.append(escape(text[position : match.start()]))
        pieces.append(format_html("<mark>{}</mark>", match.group()))
        position = match.end()
    pieces.append(escape(text[position:]))
    return mark_safe("".join(pieces))  # every piece is escaped above


@register.simple_tag
def status_badge(status):
    """A coloured badge for a version status; unknown or missing statuses show as "no version"."""
    if not status:
        return mark_safe('<span class="badge badge-pending">no version</span>')
    label = VersionStatus(status).label if status in VersionStatus.values else status
    return format_html('<span class="badge badge-{}">{}</span>', status, label.lower())


@register.filter
def waiting_for(version):
    """What a version that is not final yet waits for (a GPU worker, for a large base model)."""
    return version_waiting_for(version)


@register.filter
def pretty_json(value):
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


@register.filter
def config_value(value):
    """A config value as JSON writes it (true, null, 16, "relu"), so the table reads like the file."""
    return json.dumps(value, ensure_ascii=False)


@register.simple_tag(takes_context=True)
def query_with(context, **changes):
    """The current query string with `changes` applied (a value of None removes the key); keeps filters
    when a link changes only the page or the sort order."""
    query = context["request"].GET.copy()
    for key, value in changes.items():
        query.pop(key, None)
        if value not in (None, ""):
            query[key] = value
    encoded = query.urlencode()
    return f"?{encoded}" if encoded else "?"


@register.simple_tag
def filter_select(name, label, options, current, errors=None):
    """A labelled `<select>` of a list filter. A value not among the options (a typo in a shared URL) stays
    selected and is marked unknown, so the page can say why nothing matched."""
    current = current or ""
    known = {value for value, _ in options}
    rendered = [format_html('<option value=""{}>Any</option>', " selected" if not current else "")]
    if current and current not in known:
        rendered.append(format_html('<option value="{}" selected>{} (unknown)</option>', current, current))
    # The namespace menu has hundreds of options on every list page: each is escaped with the standard library's
    # `html.escape` (what Django's `escape` calls) rather than through `format_html`, a few times faster.
    for value, text in options:
        selected = " selected" if value == current else ""
        rendered.append(
            f'<option value="{html.escape(str(value))}"{selected}>{html.escape(str(text))}</option>'
        )
    error_html = ""
    described_by = ""
    if errors:
        error_id = f"filter-{name}-errors"
        described_by = format_html(' aria-describedby="{}" aria-invalid="true"', error_id)
        error_html = format_html(
            '<ul class="errorlist" id="{}">{}</ul>',
            error_id,
            mark_safe("".join(format_html("<li>{}</li>", message) for message in errors)),  # noqa: S308
        )
    return format_html(
        '<div class="field"><label for="filter-{}">{}</label><select id="filter-{}" name="{}"{}>{}</select>{}</div>',
        name,
        label,
        name,
        name,
        described_by,
        mark_safe("".join(rendered)),  # noqa: S308 (each option was built with format_html)
        error_html,
    )


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if mapping else None
