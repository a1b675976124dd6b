"""Pure HTML builders for the web chat: answers, source cards, article bodies, tables, quotes.

Every piece of article or question text goes through `html.escape` here, so an article that
contains markup (a <script>, an <img onerror>) is shown as text and never runs.
URLs become links only when they are http(s).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from index.records import Article, ArticleMeta, Quote
from qa.markers import format_marker, iter_markers
from qa.records import Answer, Citation, Passage, Speaker

#: Characters of passage shown around a quoted span in a source card.
CONTEXT_CHARS = 280


def esc(text: object) -> str:
    """Escape any value for HTML text or attribute context."""
    return html.escape(str(text), quote=True)


def safe_url(url: str) -> str:
    """The URL if it is an absolute http(s) URL with a host, else "" (no javascript:, data:)."""
    url = (url or "").strip()
    if not url or any(ch in url for ch in "\x00\r\n\t"):
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return ""
    return url


def format_date(published: str) -> str:
    """YYYY-MM-DD from an ISO date or datetime; "" when unknown."""
    return (published or "")[:10]


def card_id(turn: int, number: int) -> str:
    """DOM id of the source card for citation `number` of answer `turn`."""
    return f"nq-src-{turn}-{number}"


def _text_html(text: str) -> str:
    """Escaped text; newlines become <br> so markdown never sees a blank line."""
    return esc(text).replace("\r\n", "\n").replace("\n", "<br>")


def highlight(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """Escaped `text` with each (start, end) span wrapped in <mark>; overlaps merged."""
    clean: list[list[int]] = []
    for start, end in sorted((max(0, s), min(len(text), e)) for s, e in spans):
        if end <= start:
            continue
        if clean and start <= clean[-1][1]:
            clean[-1][1] = max(clean[-1][1], end)
        else:
            clean.append([start, end])
    out: list[str] = []
    pos = 0
    for start, end in clean:
        out.append(esc(text[pos:start]))
        out.append(f"<mark>{esc(text[start:end])}</mark>")
        pos = end
    out.append(esc(text[pos:]))
    return "".join(out)


def highlight_answer(text: str, start: int, end: int, answer: tuple[int, int] | None) -> str:
    """Escaped `text` with [start, end) in <mark> and, inside it, the short answer `answer`
    (offsets into `text`) in a nested <mark class="nq-short"><strong>; the quote alone is
    marked when the answer does not lie inside it."""
    if answer is None or not start <= answer[0] < answer[1] <= end:
        return highlight(text, [(start, end)])
    a, b = answer
    return (f"{esc(text[:start])}<mark>{esc(text[start:a])}"
            f'<mark class="nq-short"><strong>{esc(text[a:b])}</strong></mark>'
            f"{esc(text[b:end])}</mark>{esc(text[end:])}")


def cli_quote(citation: Citation, *, tty: bool) -> str:
    """The citation's quote for a terminal, its short answer in bold (ANSI on a tty,
    `**…**` otherwise); the quote unchanged when it has no short answer."""
    if citation.answer_start is None or citation.answer_end is None:
        return citation.quote
    a, b = citation.answer_start - citation.start, citation.answer_end - citation.start
    on, off = ("\x1b[1m", "\x1b[0m") if tty else ("**", "**")
    return f"{citation.quote[:a]}{on}{citation.quote[a:b]}{off}{citation.quote[b:]}"


def _excerpt(text: str, start: int, end: int, context: int = CONTEXT_CHARS,
             answer: tuple[int, int] | None = None) -> str:
    """Escaped window of `text` around [start, end) with the span marked (and the short
    `answer` inside it, offsets into `text`), cut at word breaks."""
    lo = max(0, start - context)
    hi = min(len(text), end + context)
    if lo > 0:
        space = text.find(" ", lo, start)
        lo = space + 1 if space != -1 else lo
    if hi < len(text):
        space = text.rfind(" ", end, hi)
        hi = space if space != -1 else hi
    prefix = "… " if lo > 0 else ""
    suffix = " …" if hi < len(text) else ""
    inner = (answer[0] - lo, answer[1] - lo) if answer is not None else None
    return prefix + highlight_answer(text[lo:hi], start - lo, end - lo, inner) + suffix


def render_meta_html(article: ArticleMeta) -> str:
    """Source · date · author line, and the article's link when it has a safe URL."""
    bits = [f'<span class="nq-source">{esc(article.source or "unknown source")}</span>',
            f'<span class="nq-date">{esc(format_date(article.published) or "date unknown")}'
            "</span>"]
    if article.author:
        bits.append(f'<span class="nq-author">{esc(article.author)}</span>')
    line = f'<div class="nq-meta">{" · ".join(bits)}</div>'
    url = safe_url(article.url)
    if url:
        line += (f'<div class="nq-url"><a href="{esc(url)}" target="_blank" '
                 f'rel="noopener noreferrer nofollow">{esc(url)}</a></div>')
    elif article.path:
        name = article.path.replace("\\", "/").rsplit("/", 1)[-1]
        line += f'<div class="nq-url nq-file">file: {esc(name)}</div>'
    return line


def render_article_html(article: Article, spans: Sequence[tuple[int, int]] = (),
                        *, heading: bool = True) -> str:
    """The whole article body as escaped text, cited spans highlighted with <mark>."""
    head = ""
    if heading:
        head = (f'<h3 class="nq-article-title">{esc(article.title or "(untitled)")}</h3>'
                + render_meta_html(article.meta))
    body = highlight(article.body, spans)
    return f'<div class="nq-article">{head}<div class="nq-body">{body}</div></div>'


def _article_details(body: Article | None, spans: Sequence[tuple[int, int]]) -> str:
    if body is None:
        return '<p class="nq-muted">The full text of this article is no longer indexed.</p>'
    return ('<details class="nq-full"><summary>Read the full article</summary>'
            + render_article_html(body, spans, heading=False) + "</details>")


def _passage_for(citation: Citation, passages: Sequence[Passage]) -> Passage | None:
    for passage in passages:
        if citation.chunk_id and passage.chunk.id == citation.chunk_id:
            return passage
    for passage in passages:
        chunk = passage.chunk
        if (chunk.article_id == citation.article.id and chunk.start <= citation.start
                and citation.end <= chunk.end):
            return passage
    return None


def _card_excerpt(citation: Citation, passages: Sequence[Passage], body: Article | None
                  ) -> str:
    """The passage around a citation's quote, the quote marked and its short answer inside."""
    passage = _passage_for(citation, passages)
    answer = (None if citation.answer_start is None or citation.answer_end is None
              else (citation.answer_start, citation.answer_end))
    if passage is not None:
        chunk = passage.chunk
        shifted = (answer[0] - chunk.start, answer[1] - chunk.start) if answer else None
        return _excerpt(chunk.text, citation.start - chunk.start, citation.end - chunk.start,
                        answer=shifted)
    if body is not None:
        return _excerpt(body.body, citation.start, citation.end, answer=answer)
    inner = (answer[0] - citation.start, answer[1] - citation.start) if answer else None
    return highlight_answer(citation.quote, 0, len(citation.quote), inner)


def render_citation_card(citation: Citation, turn: int, passages: Sequence[Passage] = (),
                         body: Article | None = None) -> str:
    """One source card: number, title, source/date/link, passage with the quote marked (and
    the short answer highlighted inside it)."""
    excerpt = _card_excerpt(citation, passages, body)
    title = esc(citation.article.title or "(untitled)")
    return (f'<article class="nq-card" id="{card_id(turn, citation.number)}" '
            f'data-number="{citation.number}">'
            f'<header><span class="nq-num">[{citation.number}]</span> '
            f'<span class="nq-title">{title}</span></header>'
            + render_meta_html(citation.article)
            + f'<blockquote class="nq-passage">{excerpt}</blockquote>'
            + _article_details(body, [(citation.start, citation.end)])
            + "</article>")


def render_passage_card(passage: Passage, turn: int, index: int,
                        body: Article | None = None) -> str:
    """A "see also" card for a retrieved passage that was not cited."""
    chunk = passage.chunk
    text = chunk.text
    if len(text) > 2 * CONTEXT_CHARS:
        cut = text.rfind(" ", 0, 2 * CONTEXT_CHARS)
        text = text[: cut if cut > 0 else 2 * CONTEXT_CHARS] + " …"
    title = esc(passage.article.title or "(untitled)")
    return (f'<article class="nq-card nq-seealso" id="nq-see-{turn}-{index}">'
            f'<header><span class="nq-title">{title}</span></header>'
            + render_meta_html(passage.article)
            + f'<blockquote class="nq-passage">{esc(text)}</blockquote>'
            + _article_details(body, [(chunk.start, chunk.end)])
            + "</article>")


def _see_also(answer: Answer) -> list[Passage]:
    """Retrieved passages worth a look besides the citations: the best one per article,
    skipping articles already cited (their full text is one click away in the card)."""
    seen = {c.article.id for c in answer.citations}
    out: list[Passage] = []
    for passage in answer.passages:
        if passage.chunk.article_id in seen:
            continue
        seen.add(passage.chunk.article_id)
        out.append(passage)
    return out


def describe_filters(sources: Sequence[str] | None = None, since: str | None = None,
                     until: str | None = None) -> str:
    """Plain words for the active retrieval filters ("" when none), shown with the sources."""
    parts = []
    if sources:
        parts.append("only " + ", ".join(sources))
    if since and until:
        parts.append(f"dated {since} to {until}")
    elif since:
        parts.append(f"dated {since} or later")
    elif until:
        parts.append(f"dated {until} or earlier")
    return "; ".join(parts)


def describe_searched(answer: Answer) -> str:
    """Which days an answer searched ("Searched articles from X to Y"; "" when unbounded)."""
    if not answer.searched:
        return ""
    since, until = answer.searched
    if since and until:
        return f"Searched articles from {since} to {until}"
    return f"Searched articles from {since} on" if since else f"Searched articles up to {until}"


def render_sources_html(answer: Answer | None, bodies: Mapping[str, Article] | None = None,
                        *, turn: int = 0, filters: str = "") -> str:
    """The sources panel for one answer: its citation cards, then "see also" passages."""
    if answer is None:
        return ('<div class="nq-sources nq-empty"><p class="nq-muted">Sources appear here: '
                "each numbered marker in an answer matches a card with the exact passage "
                "it quotes.</p></div>")
    bodies = bodies or {}
    parts = [f'<div class="nq-sources" data-turn="{turn}">',
             f'<p class="nq-question">Sources for: <q>{esc(answer.question)}</q></p>']
    if filters:
        parts.append(f'<p class="nq-question nq-filters-note">Filters: {esc(filters)}</p>')
    standalone = answer.standalone_question.strip()
    if standalone and standalone != answer.question.strip():
        parts.append(f'<p class="nq-question">Searched as: <q>{esc(standalone)}</q></p>')
    if answer.searched:
        parts.append(f'<p class="nq-question nq-searched">{esc(describe_searched(answer))}</p>')
    if not answer.found:
        parts.append('<p class="nq-notice">No indexed article answers this question. '
                     "The closest passages are listed below; check them yourself.</p>")
    for citation in answer.citations:
        parts.append(render_citation_card(citation, turn, answer.passages,
                                          bodies.get(citation.article.id)))
    see_also = _see_also(answer)
    if see_also:
        limit = 5 if answer.found else 6
        head = "See also" if answer.found else "Closest passages"
        parts.append(f'<h4 class="nq-seealso-head">{head}</h4>')
        for i, passage in enumerate(see_also[:limit], start=1):
            parts.append(render_passage_card(passage, turn, i,
                                             bodies.get(passage.chunk.article_id)))
    if answer.warnings:
        items = "".join(f"<li>{esc(w)}</li>" for w in answer.warnings)
        parts.append(f'<ul class="nq-warnings">{items}</ul>')
    parts.append("</div>")
    return "".join(parts)


def render_searching_html(question: str) -> str:
    """The sources panel while an answer is on its way."""
    return ('<div class="nq-sources nq-empty nq-searching"><p class="nq-muted">Searching the '
            f"articles for: <q>{esc(question)}</q> …</p></div>")


def _marker_html(numbers: Sequence[int], known: set[int], turn: int) -> str:
    """One marker's numbers, each known one a link to its card ("[2, 5]" -> [2][5])."""
    return "".join(
        f'<a class="nq-cite" href="#{card_id(turn, n)}" title="Show source {n}">'
        f"{format_marker(n)}</a>" if n in known else format_marker(n)
        for n in numbers)


def link_markers(text: str, numbers: Iterable[int], turn: int) -> str:
    """Escaped answer text with each [n] of a known citation turned into a link to its card.

    Markers follow the one grammar of `qa.markers` (`[n]`, `[n, m]`); a marker naming no
    known citation is left as written.
    """
    known = set(numbers)
    out: list[str] = []
    pos = 0
    for match, cited in iter_markers(text):
        if not known.intersection(cited):
            continue
        out.append(_text_html(text[pos:match.start()]))
        out.append(_marker_html(cited, known, turn))
        pos = match.end()
    out.append(_text_html(text[pos:]))
    return "".join(out)


def render_answer_html(answer: Answer, *, turn: int = 0) -> str:
    """The chat bubble of an answer: escaped text, [n] linked to source cards.

    A "not found" answer gets a muted notice and the titles of the closest passages instead,
    so it never looks like a confident answer.
    """
    if not answer.found:
        titles = []
        for passage in _see_also(answer)[:3]:
            meta = passage.article
            when = format_date(meta.published)
            titles.append(f"<li>{esc(meta.title or '(untitled)')}"
                          f"{' — ' + esc(meta.source) if meta.source else ''}"
                          f"{' (' + esc(when) + ')' if when else ''}</li>")
        see = ""
        if titles and "see also" not in answer.text.lower():  # the answerer may list them
            see = (f'<div class="nq-muted">See also (closest passages, in the sources panel):'
                   f"<ul>{''.join(titles)}</ul></div>")
        text = _text_html(answer.text) if answer.text else ""
        return (f'<div class="nq-answer nq-notfound" data-turn="{turn}">'
                '<div class="nq-notice">Not found in the indexed articles.</div>'
                f'<div class="nq-muted">{text}</div>{see}</div>')
    body = link_markers(answer.text, (c.number for c in answer.citations), turn)
    count = len(answer.citations)
    foot = (f'<div class="nq-foot">{count} source{"s" if count != 1 else ""} — click a number '
            "to see the quoted passage.</div>" if count else
            '<div class="nq-foot nq-muted">No citation survived checking; treat with care.</div>')
    return f'<div class="nq-answer" data-turn="{turn}">{body}{foot}</div>'


def render_pending_html(text: str) -> str:
    """A streaming answer in progress: escaped text only (links arrive with the final answer)."""
    return f'<div class="nq-answer nq-pending">{_text_html(text) or "…"}</div>'


def render_error_html(message: str) -> str:
    """A message the user must act on (bad filter, invalid question), escaped."""
    return f'<div class="nq-answer nq-error">{_text_html(message)}</div>'


def article_rows(articles: Iterable[tuple[ArticleMeta, int]]) -> list[list[Any]]:
    """Rows of the Articles table: title, source, date, chunks, id (sorted newest first)."""
    rows = [[meta.title or "(untitled)", meta.source or "—",
             format_date(meta.published) or "—", int(count), meta.id]
            for meta, count in articles]
    rows.sort(key=lambda r: (r[2] if r[2] != "—" else "0000", r[0]), reverse=True)
    return rows


def _path_name(path: object) -> str:
    return str(path).replace("\\", "/").rsplit("/", 1)[-1]


def _count(report: Mapping[str, Any], key: str) -> int:
    value = report.get(key) or 0
    return value if isinstance(value, int) else len(value)


def file_result(report: Mapping[str, Any]) -> tuple[str, str]:
    """(result, detail) for an IndexReport dict of a single uploaded file."""
    errors = report.get("errors") or []
    reasons = "; ".join(str(e.get("reason", e)) if isinstance(e, Mapping) else str(e)
                        for e in errors)
    indexed, updated = _count(report, "indexed"), _count(report, "updated")
    duplicates, chunks = _count(report, "duplicates"), _count(report, "chunks_added")
    if indexed or updated:
        n = indexed + updated
        detail = f"{n} article{'s' if n != 1 else ''}, {chunks} passage{'s' if chunks != 1 else ''}"
        if duplicates:
            detail += f"; {duplicates} already indexed under another name"
        if reasons:
            detail += f"; some records skipped: {reasons}"
        return ("updated" if updated and not indexed else "indexed"), detail
    if _count(report, "unchanged"):
        return "unchanged", "already indexed with the same text"
    if errors:
        return "skipped", reasons
    return "skipped", "no article found in the file"


def report_rows(report: Mapping[str, Any], names: Mapping[str, str] | None = None
                ) -> list[list[str]]:
    """Rows (file, result, detail) for the inputs an IndexReport dict lists as skipped."""
    names = names or {}
    rows: list[list[str]] = []
    for item in report.get("errors") or []:
        if isinstance(item, Mapping):
            path, detail = str(item.get("path", "")), str(item.get("reason", ""))
        else:
            path, detail = str(item), ""
        shown = names.get(path) or names.get(_path_name(path)) or _path_name(path)
        rows.append([shown, "skipped", detail])
    return rows


def render_stats_html(stats: Mapping[str, Any]) -> str:
    """The header's status line: how many articles and passages are searchable."""
    def plural(count: object, word: str) -> str:
        return f"{count} {word}{'' if count == 1 else 's'}"

    parts = [plural(stats.get("articles", "?"), "article"),
             plural(stats.get("chunks", "?"), "passage") + " indexed"]
    sources = stats.get("sources")
    if isinstance(sources, (list, tuple)) and sources:
        parts.append("from " + plural(len(sources), "source"))
    first, last = stats.get("published_min"), stats.get("published_max")
    if first and last:
        parts.append(f"dated {first} to {last}")
    return f'<span class="nq-stats">{esc(" · ".join(parts))}</span>'


# ---------------------------------------------------------------------------------------------
# Who said what: speaker table rows, quote cards, the "copy as citation" line

#: Characters of article shown at most on each side of a quote when no sentence break is near.
QUOTE_CONTEXT_CHARS = 160
#: Where a sentence ends, for the context shown around a quote.
_SENTENCE_BREAKS = (". ", "! ", "? ", ".\n", "\n")
#: Quotation marks taken off the ends of a quote's content and swapped inside a citation.
_OUTER_QUOTES = "\"“”„«»‘’'"
_INNER_QUOTES = str.maketrans({'"': "'", "“": "‘", "”": "’"})


def speaker_rows(speakers: Iterable[Speaker]) -> list[list[Any]]:
    """Rows of the speakers table: name, quotes, articles, first date, last date, other names."""
    return [[s.name, s.quote_count, s.article_count, format_date(s.first) or "—",
             format_date(s.last) or "—", ", ".join(s.aliases)] for s in speakers]


def quote_citation(quote: Quote, article: ArticleMeta | None = None, *, speaker: str = ""
                   ) -> str:
    """The quote as a plain-text citation a journalist can paste:
    `"content" - Speaker (to Venue), Outlet, YYYY-MM-DD, URL` (parts that are unknown left out;
    the article's title instead of a URL it has none; inner double quotes made single).
    `speaker`: the merged name the quote is listed under (default: the quote's own name)."""
    content = " ".join(quote.content.split()).strip(_OUTER_QUOTES + " ")
    who = speaker or quote.name or "unnamed source"
    if quote.venue:
        who += f" (to {quote.venue})"
    parts = [f'"{content.translate(_INNER_QUOTES)}" - {who}']
    outlet = (article.source if article else "") or quote.source
    when = format_date(quote.published or (article.published if article else ""))
    parts += [p for p in (outlet, when) if p]
    url = safe_url(article.url) if article else ""
    if url:
        parts.append(url)
    elif article and article.title:
        parts.append(f'"{article.title.translate(_INNER_QUOTES)}"')
    return ", ".join(parts)


def _quote_spans(quote: Quote) -> list[tuple[int, int, str]]:
    """The quote's spans with the tag each is shown in: content first, then who, cue, venue."""
    spans = [(a, b, "mark") for a, b in quote.content_spans]
    for span, tag in ((quote.speaker_span, "strong"), (quote.cue_span, "em"),
                      (quote.venue_span, "em")):
        if span is not None:
            spans.append((span[0], span[1], tag))
    return spans


def tag_spans(text: str, spans: Iterable[tuple[int, int, str]]) -> str:
    """Escaped `text` with each (start, end, tag) span wrapped in <tag>; a span overlapping
    an earlier one in `spans` is left out (so list the most important first)."""
    kept: list[tuple[int, int, str]] = []
    for start, end, tag in spans:
        start, end = max(0, start), min(len(text), end)
        if end > start and all(end <= a or start >= b for a, b, _ in kept):
            kept.append((start, end, tag))
    out: list[str] = []
    pos = 0
    for start, end, tag in sorted(kept):
        out.append(esc(text[pos:start]))
        out.append(f"<{tag}>{esc(text[start:end])}</{tag}>")
        pos = end
    out.append(esc(text[pos:]))
    return "".join(out)


def _sentence_bounds(body: str, lo: int, hi: int, reach: int) -> tuple[int, int]:
    """[lo, hi) widened to the sentence breaks within `reach` characters, else to a word break
    `reach` characters out (text with its punctuation stripped has no sentences)."""
    before = body[max(0, lo - reach):lo]
    cuts = [before.rfind(mark) + len(mark) for mark in _SENTENCE_BREAKS if mark in before]
    if cuts:
        start = lo - len(before) + max(cuts)
    elif lo - reach <= 0:
        start = 0
    else:
        space = before.find(" ")
        start = lo - len(before) + space + 1 if space != -1 else lo - len(before)
    after = body[hi:hi + reach]
    ends = [after.find(mark) + 1 for mark in _SENTENCE_BREAKS if mark in after]
    if ends:
        end = hi + min(ends)
    elif hi + reach >= len(body):
        end = len(body)
    else:
        space = after.rfind(" ")
        end = hi + space if space != -1 else hi + len(after)
    return start, end


def quote_context_html(quote: Quote, body: str, reach: int = QUOTE_CONTEXT_CHARS) -> str:
    """The sentence(s) around a quote, escaped, with the content marked, the speaker mention in
    <strong> and the cue and venue in <em>; the content alone when the spans are not in `body`."""
    if not quote.matches(body):
        return f"<mark>{esc(quote.content)}</mark>"
    spans = _quote_spans(quote)
    lo, hi = _sentence_bounds(body, min(s[0] for s in spans), max(s[1] for s in spans), reach)
    inner = tag_spans(body[lo:hi], [(a - lo, b - lo, tag) for a, b, tag in spans])
    return ("… " if lo > 0 else "") + inner.strip() + (" …" if hi < len(body) else "")


def _quote_heading(quote: Quote, name: str) -> str:
    """Who (and the mention as written, when it is not part of the name), the cue and venue,
    the kind."""
    head = f'<span class="nq-title nq-speaker">{esc(name or "Unnamed source")}</span>'
    if name and quote.speaker and quote.speaker.lower() not in name.lower():
        head += f' <span class="nq-muted nq-mention">(as “{esc(quote.speaker)}”)</span>'
    said = " ".join(p for p in (quote.cue, quote.venue) if p)
    if said:
        head += f' <span class="nq-muted nq-cue">{esc(said)}</span>'
    if quote.kind:
        label = "direct quote" if quote.kind == "direct" else "indirect"
        head += f' <span class="nq-muted nq-kind">· {label}</span>'
    return head


def render_quote_card(quote: Quote, article: Article | None = None, *, speaker: str = ""
                      ) -> str:
    """One quote: who said it, the article (title, source, date, link), the content marked in
    its sentence, a "copy as citation" line, and the full article one click away.
    `speaker`: the merged name the quote is listed under (default: the quote's own name)."""
    meta = article.meta if article is not None else None
    name = speaker or quote.name
    if article is not None:
        title = esc(article.title or "(untitled)")
        source = (f'<div class="nq-quote-article">from <span class="nq-title">{title}</span></div>'
                  + render_meta_html(article.meta))
        passage = quote_context_html(quote, article.body)
    else:
        when = format_date(quote.published) or "date unknown"
        source = (f'<div class="nq-meta"><span class="nq-source">'
                  f'{esc(quote.source or "unknown source")}</span> · '
                  f'<span class="nq-date">{esc(when)}</span></div>')
        passage = f"<mark>{esc(quote.content)}</mark>"
    citation = esc(quote_citation(quote, meta, speaker=name))
    return (f'<article class="nq-card nq-quote" id="nq-quote-{esc(quote.id)}" '
            f'data-speaker="{esc(name)}">'
            f"<header>{_quote_heading(quote, name)}</header>{source}"
            f'<blockquote class="nq-passage">{passage}</blockquote>'
            '<div class="nq-cite-line"><span class="nq-muted">Copy as citation:</span> '
            '<code class="nq-citation" style="user-select: all; font-size: .85em">'
            f"{citation}</code> "
            '<button type="button" class="nq-copy" title="Copy the citation" '
            'onclick="navigator.clipboard &amp;&amp; navigator.clipboard.writeText('
            "this.previousElementSibling.textContent)\">Copy</button></div>"
            + (_article_details(article, list(quote.content_spans)) if article else "")
            + "</article>")


def render_quotes_html(quotes: Sequence[Quote], articles: Mapping[str, Article],
                       *, speakers: Mapping[str, str] | None = None, heading: str = "",
                       total: int | None = None) -> str:
    """The quote cards of one search, under a heading ("Elisabetta Trenta · 4 quotes");
    `speakers` maps quote ids to the merged names they are listed under."""
    speakers = speakers or {}
    parts = ['<div class="nq-sources nq-quotes">']
    if heading:
        parts.append(f'<p class="nq-question">{esc(heading)}</p>')
    if not quotes:
        parts.append('<p class="nq-muted">No quotes match.</p>')
    elif total is not None and total > len(quotes):
        parts.append(f'<p class="nq-muted">Showing the first {len(quotes)} of {total} quotes; '
                     "narrow the search with a topic or dates.</p>")
    parts += [render_quote_card(q, articles.get(q.article_id), speaker=speakers.get(q.id, ""))
              for q in quotes]
    parts.append("</div>")
    return "".join(parts)
