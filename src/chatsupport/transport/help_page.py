"""`GET /help`: the help lines as a plain page, no JavaScript, no connection, no session.

It works where the page's script cannot run (old phones, script blockers, a banned or
muted person, a server whose chat is down): the same lines from the same resources file,
one link per number exactly as listed (`Contact.href`), the chosen region first
(`/help?region=GB`) and every other region one tap away. Served with the same strict
headers as everything else (transport/http.py).
"""

from __future__ import annotations

from html import escape
from urllib.parse import parse_qs

from ..core.resources import INTERNATIONAL, Contact, Resource, Resources

URGENT = (
    "If you are in danger or might act on thoughts of harming yourself, call your local "
    "emergency number now (for example 112, 911 or 999)."
)
FINE = (
    "These services are independent of ChatSupport. The people in the chat are peers and "
    "volunteers, not a crisis service."
)


def region_of(resources: Resources, query: str) -> str | None:
    """The region asked for in the query string (`region=GB`), if it has lines."""
    asked = parse_qs(query).get("region", [""])[0][:16]
    return resources.normalise_region(asked) if asked else None


def render(resources: Resources, region: str | None) -> str:
    """The whole page, every piece of text escaped."""
    own = region is not None and region != INTERNATIONAL
    sections = []
    if own:
        assert region is not None
        name = resources.region_name(region) or region
        own_lines = [r for r in resources.for_region(region) if r.region == region]
        sections.append(_section(f"Help lines for {name}", own_lines))
    sections.append(_section("International help lines", resources.international()))
    return _PAGE.format(
        urgent=escape(URGENT),
        sections="\n".join(sections),
        regions=_regions(resources, region),
        fine=escape(FINE),
    )


def _section(title: str, lines: list[Resource]) -> str:
    items = "\n".join(_resource(r) for r in lines)
    return f'<section><h2>{escape(title)}</h2>\n<ul class="resources">\n{items}\n</ul></section>'


def _resource(entry: Resource) -> str:
    ways = " ".join(_link(entry, c) for c in entry.contacts)
    details = " · ".join(x for x in (entry.hours, ", ".join(entry.languages), entry.notes) if x)
    hint = f'<p class="hint">{escape(details)}</p>' if details else ""
    return (
        f'<li class="resource"><strong>{escape(entry.name)}</strong>'
        f'<p class="ways">{ways}</p>{hint}</li>'
    )


def _link(entry: Resource, contact: Contact) -> str:
    if contact.kind == "call":
        text = f"Call {contact.label}"
    elif contact.kind == "text":
        text = (
            f"Text {contact.body} to {contact.label}" if contact.body else f"Text {contact.label}"
        )
    else:
        text = contact.label
    extra = ", ".join(x for x in (contact.hours, ", ".join(contact.languages)) if x)
    label = escape(f"{text} ({entry.name})", quote=True)
    link = (
        f'<a class="way {contact.kind}" href="{escape(contact.href(), quote=True)}" '
        f'aria-label="{label}">{escape(text)}</a>'
    )
    return f'{link} <span class="hint">({escape(extra)})</span>' if extra else link


def _regions(resources: Resources, current: str | None) -> str:
    named = sorted((resources.region_name(c) or c, c) for c in resources.regions())
    items = []
    for name, code in [("Anywhere (international)", INTERNATIONAL), *named]:
        here = ' aria-current="page"' if code == (current or INTERNATIONAL) else ""
        href = escape(f"/help?region={code}", quote=True)
        items.append(f'<li><a href="{href}"{here}>{escape(name)}</a></li>')
    return "\n".join(items)


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex">
<title>Get help now · ChatSupport</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/help.css">
</head>
<body>
<main class="help-page">
<h1>Get help now</h1>
<p class="urgent">{urgent}</p>
{sections}
<nav aria-labelledby="regions-title">
<h2 id="regions-title">Other countries</h2>
<ul class="regions">
{regions}
</ul>
</nav>
<p class="fine">{fine}</p>
<p><a href="/">Back to the chat</a></p>
</main>
</body>
</html>
"""
