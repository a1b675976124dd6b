"""The "Who said what" tab and the /quotes and /speakers endpoints.

Rendering and the tab's events are checked on hand-made `Quote` records (exact control of the
spans); the tab itself in a real Chromium and the endpoints through gradio_client, on the real
app over the seed index (tests/ui/conftest.py `live_app`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from index.records import Article, Quote
from qa.records import Speaker
from tests.conftest import SEED_ARTICLE
from tests.ui.conftest import EVIL_IMG, EVIL_SCRIPT, LiveApp
from ui import render
from ui.app import AppContext, QuoteEvents, find_quotes, quote_query

SEED = SEED_ARTICLE.read_text(encoding="utf-8")
TRENTA_WORDS = "as far as Italian staff in Libya the evacuation plans are operational"


def _span(text: str, body: str = SEED, after: str = "") -> tuple[int, int]:
    start = body.index(text, body.index(after) if after else 0)
    return start, start + len(text)


def seed_article(url: str = "https://example.org/libya?a=1&b=2") -> Article:
    return Article(title="Italy's Conte and Trenta on Libya", body=SEED, source="Xinhua",
                   published="2019-04-13", url=url)


def trenta_quote(article: Article, **changes: Any) -> Quote:
    """Trenta's words to Corriere della Sera in the seed, spans as the extractor gives them."""
    fields: dict[str, Any] = {
        "article_id": article.id, "content_spans": (_span(TRENTA_WORDS),),
        "content": TRENTA_WORDS, "speaker": "Trenta",
        "speaker_span": _span("Trenta", after="He was echoed"), "speaker_name":
        "Elisabetta Trenta", "cue": "told", "cue_span": _span("told", after="He was echoed"),
        "venue": "Corriere della Sera", "venue_span": _span("Corriere della Sera",
                                                            after="He was echoed"),
        "published": article.published, "source": article.source}
    fields.update(changes)
    return Quote(**fields)


# ---------------------------------------------------------------------------------------------
# Rendering


def test_citation_line_names_quote_speaker_venue_outlet_date_and_url() -> None:
    article = seed_article()
    line = render.quote_citation(trenta_quote(article), article.meta)
    assert line == (f'"{TRENTA_WORDS}" - Elisabetta Trenta (to Corriere della Sera), Xinhua, '
                    "2019-04-13, https://example.org/libya?a=1&b=2")


def test_citation_line_without_url_names_the_title_and_leaves_out_unknowns() -> None:
    body = 'The mayor said: "We will "rebuild" the pier." Nothing else.'
    article = Article(title='Pier "plan"', body=body, source="", published="")
    content = '"We will "rebuild" the pier."'
    quote = Quote(article_id=article.id, content_spans=(_span(content, body),), content=content,
                  speaker="The mayor", speaker_span=_span("The mayor", body), kind="direct")
    line = render.quote_citation(quote, article.meta)
    # outer quotation marks are the citation's own, inner ones become single
    assert line == "\"We will 'rebuild' the pier.\" - The mayor, \"Pier 'plan'\""
    anonymous = Quote(article_id=article.id, content_spans=((0, 8),), content="The mayo",
                      source="Wire")
    assert render.quote_citation(anonymous) == '"The mayo" - unnamed source, Wire'


def test_quote_card_marks_the_content_in_its_context_with_speaker_cue_and_venue() -> None:
    article = seed_article()
    card = render.render_quote_card(trenta_quote(article), article)
    context = card.split('<blockquote class="nq-passage">')[1].split("</blockquote>")[0]
    assert ("his defense minister <strong>Trenta</strong> who <em>told</em> "
            "<em>Corriere della Sera</em> newspaper") in context
    assert f"that <mark>{TRENTA_WORDS}</mark> we ll see" in context
    assert context.startswith("… ") and context.endswith(" …")  # no sentences: a window
    assert len(context) < 2 * render.QUOTE_CONTEXT_CHARS + 300
    assert 'class="nq-title nq-speaker">Elisabetta Trenta<' in card
    assert "(as “" not in card  # "Trenta" is part of the name: not repeated
    assert "told Corriere della Sera" in card
    assert "Italy&#x27;s Conte and Trenta on Libya" in card
    assert 'href="https://example.org/libya?a=1&amp;b=2"' in card
    assert ('<code class="nq-citation" style="user-select: all; font-size: .85em">&quot;as far '
            "as Italian staff") in card
    assert '<details class="nq-full">' in card


def test_quote_card_context_stops_at_sentence_breaks() -> None:
    body = "First story line. The mayor said the pier will reopen in June. Other news here."
    article = Article(title="Pier", body=body, source="Wire", published="2020-01-02")
    quote = Quote(article_id=article.id, content_spans=(_span("the pier will reopen in June",
                                                              body),),
                  content="the pier will reopen in June", speaker="The mayor",
                  speaker_span=_span("The mayor", body), speaker_name="Mayor Ana Ruiz",
                  cue="said", cue_span=_span("said", body), kind="indirect")
    html = render.quote_context_html(quote, body)
    assert html == ("… <strong>The mayor</strong> <em>said</em> <mark>the pier will reopen in "
                    "June</mark>. …")
    heading = render.render_quote_card(quote, article)
    assert "(as “The mayor”)" in heading and "indirect" in heading


def test_quote_card_escapes_markup_and_falls_back_to_the_content() -> None:
    body = f"Councillor Okonjo said {EVIL_SCRIPT} the pier {EVIL_IMG} will open."
    article = Article(title="<b>x</b>", body=body, source="Evil <i>Gazette</i>",
                      published="2021-03-04", url="javascript:alert(1)")
    content = body[body.index(EVIL_SCRIPT):body.index(" will open")]
    quote = Quote(article_id=article.id, content_spans=(_span(content, body),), content=content,
                  speaker="Councillor Okonjo", speaker_span=_span("Councillor Okonjo", body),
                  speaker_name="Mirela <u>Okonjo</u>", source=article.source)
    for html in (render.render_quote_card(quote, article), render.render_quote_card(quote),
                 render.render_quotes_html([quote], {}, heading="<b>h</b>")):
        assert "<script>" not in html and "<img" not in html and "<u>" not in html
        assert "<b>" not in html and "<i>" not in html
        assert "javascript:" not in html
    assert "&lt;script&gt;" in render.render_quote_card(quote, article)
    # spans that are not in the body given (the article changed): the content alone, marked
    assert render.quote_context_html(quote, "another text") == (
        f"<mark>{render.esc(content)}</mark>")


def test_speaker_rows_and_the_empty_panel() -> None:
    speakers = [Speaker("Elisabetta Trenta", ("Trenta", "Defense Minister Elisabetta Trenta"),
                        5, 1, "2019-04-13", "2019-04-13T10:00:00"), Speaker("Wire <x>")]
    assert render.speaker_rows(speakers) == [
        ["Elisabetta Trenta", 5, 1, "2019-04-13", "2019-04-13",
         "Trenta, Defense Minister Elisabetta Trenta"],
        ["Wire <x>", 0, 0, "—", "—", ""]]
    assert "No quotes match." in render.render_quotes_html([], {})


# ---------------------------------------------------------------------------------------------
# The tab's events over a NewsQA stand-in that returns hand-made quotes


def card_marks(panel: str) -> list[str]:
    """The first marked span of each quote card's passage, in the order the cards appear."""
    cards = panel.split('<article class="nq-card nq-quote"')[1:]
    return [card.split('<blockquote class="nq-passage">')[1].split("<mark>")[1]
            .split("</mark>")[0] for card in cards]


class FakeQuotes:
    """Just what the quote events call on a NewsQA: quotes(), article(), speakers()."""

    def __init__(self, article: Article, quotes: list[Quote]) -> None:
        self.body, self.found, self.calls = article, quotes, []

    def quotes(self, **query: Any) -> list[Quote]:
        self.calls.append(query)
        return self.found[: query.get("limit") or None]

    def article(self, article_id: str) -> Article | None:
        return self.body if article_id == self.body.id else None

    def speakers(self, **filters: Any) -> list[Speaker]:
        return [Speaker("Elisabetta Trenta", ("Trenta",), len(self.found), 1)]

    def speaker_of(self, quote: Quote) -> str:
        return "Elisabetta Trenta"


def _three_quotes() -> tuple[Article, list[Quote]]:
    article = seed_article()
    later = Article(title="Later", body=SEED, source="Xinhua", published="2019-05-01")
    early = trenta_quote(article)
    second = trenta_quote(article, content_spans=(_span("there is no need a showdown"),),
                          content="there is no need a showdown", speaker_span=None, cue_span=None,
                          venue="", venue_span=None)
    return article, [early, second, trenta_quote(later, speaker="the minister",
                                                 speaker_name="Trenta")]


def test_a_speakers_quotes_come_newest_first_in_article_order() -> None:
    article, quotes = _three_quotes()
    fake = FakeQuotes(article, quotes)
    query = quote_query(" Elisabetta Trenta ", "  ", "", "2019-12-31")
    assert query == {"speaker": "Elisabetta Trenta", "topic": None, "sources": None,
                     "since": None, "until": "2019-12-31"}
    found, total = find_quotes(fake, query, 2)  # type: ignore[arg-type]
    assert total == 3
    assert [q.published for q in found] == ["2019-05-01", "2019-04-13"]
    found, _ = find_quotes(fake, query, None)  # type: ignore[arg-type]
    assert [q.content for q in found[1:]] == [TRENTA_WORDS, "there is no need a showdown"]
    with pytest.raises(ValueError, match="To date"):
        quote_query("x", "", "", "2019-02-30")


def test_a_topic_search_keeps_the_ranking_and_waits_for_warm_up() -> None:
    article, quotes = _three_quotes()
    fake = FakeQuotes(article, quotes)
    warm = threading.Event()
    events = QuoteEvents(AppContext(fake, warm=warm))  # type: ignore[arg-type]
    panels: Iterator[str] = events.search_quotes("Elisabetta Trenta", "evacuation", "", "")
    assert "Warming up" in next(panels)
    assert fake.calls == []  # nothing asked of the index before the model is ready
    warm.set()
    panel = next(panels)
    assert fake.calls[-1]["topic"] == "evacuation" and fake.calls[-1]["limit"] == 50
    assert card_marks(panel) == [TRENTA_WORDS, "there is no need a showdown", TRENTA_WORDS]
    assert "Elisabetta Trenta · on “evacuation” · 3 quotes (best matches first)" in panel
    # every card is listed under the merged name, the mention as written beside it
    assert panel.count('data-speaker="Elisabetta Trenta"') == 3
    assert panel.count("(as “the minister”)") == 1
    assert panel.count("&quot; - Elisabetta Trenta (to Corriere della Sera), Xinhua") == 2
    assert panel.count("showdown&quot; - Elisabetta Trenta, Xinhua, 2019-04-13") == 1
    # a speaker's quotes need no model: answered at once while warming up
    warm.clear()
    assert "Warming up" not in next(iter(events.search_quotes("Elisabetta Trenta", "", "", "")))
    assert "From date" in next(iter(events.search_quotes("", "", "13 April", "")))


# ---------------------------------------------------------------------------------------------
# The real app: the tab in Chromium, the endpoints through gradio_client


@pytest.fixture(scope="module")
def client(live_app: LiveApp) -> Iterator[Any]:
    from gradio_client import Client

    c = Client(live_app.url, verbose=False)
    try:
        yield c
    finally:
        c.close()


def test_quotes_endpoint_returns_trentas_quotes_with_verbatim_spans(client: Any,
                                                                    live_app: LiveApp) -> None:
    result = client.predict(speaker="Elisabetta Trenta", topic="", api_name="/quotes")
    assert result, "no quotes for Elisabetta Trenta"
    assert {q["merged_speaker"] for q in result} == {"Elisabetta Trenta"}
    assert len(result) == len(live_app.qa.quotes(speaker="Elisabetta Trenta"))
    body = live_app.qa.article(result[0]["article_id"]).body
    for quote in result:
        spans = quote["content_spans"]
        assert quote["content"] == " ... ".join(body[a:b] for a, b in spans)
        assert quote["title"] and "file" not in quote
    contents = " ".join(q["content"] for q in result)
    assert "evacuation plans are operational" in contents
    topical = client.predict(speaker="Elisabetta Trenta", topic="evacuation plans", limit=1,
                             api_name="/quotes")
    assert len(topical) == 1 and "evacuation" in topical[0]["content"]


def test_speakers_endpoint_lists_trenta_and_conte_with_counts(client: Any) -> None:
    speakers = {s["name"]: s for s in client.predict(api_name="/speakers")}
    for name in ("Elisabetta Trenta", "Giuseppe Conte"):
        assert speakers[name]["quote_count"] >= 1, speakers
        assert speakers[name]["article_count"] == 1


@pytest.mark.browser
def test_tab_lists_speakers_and_shows_trentas_quote_cards(page: Any, live_app: LiveApp,
                                                          screenshots: Path) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"],
                                   origin=live_app.url.rstrip("/"))
    page.goto(live_app.url)
    page.get_by_role("tab", name="Articles").click()  # visiting another tab first
    page.get_by_role("tab", name="Who said what").click()
    assert page.get_by_role("tab").all_inner_texts() == ["Ask", "Articles", "Who said what"]
    table = page.locator("#nq-speakers")
    table.get_by_text("Elisabetta Trenta", exact=True).first.wait_for()
    expected = {s.name: s.quote_count for s in live_app.qa.speakers()}
    for name in ("Elisabetta Trenta", "Giuseppe Conte"):
        row = table.locator("[role=row]", has_text=name).first.get_attribute("data-index")
        assert table.locator(f"[data-testid='cell-{row}-1']").inner_text() == str(
            expected[name]), name

    table.get_by_text("Elisabetta Trenta", exact=True).first.click()
    panel = page.locator("#nq-quotes")
    panel.locator(".nq-quote").first.wait_for()
    cards = panel.locator(".nq-quote")
    assert cards.count() == expected["Elisabetta Trenta"]
    assert {cards.nth(i).get_attribute("data-speaker") for i in range(cards.count())} == {
        "Elisabetta Trenta"}
    marks = " ".join(panel.locator(".nq-passage mark").all_inner_texts())
    assert "evacuation plans are operational" in marks
    citation = panel.locator("code.nq-citation").first.inner_text()
    assert citation.startswith('"') and " - Elisabetta Trenta" in citation
    panel.locator("button.nq-copy").first.click()
    assert page.evaluate("navigator.clipboard.readText()") == citation
    assert page.locator("#nq-quote-speaker input").input_value() == "Elisabetta Trenta"
    page.screenshot(path=str(screenshots / "ui-quotes-trenta.png"))

    # a topic search within her quotes puts the matching one first
    page.fill("#nq-quote-topic input, #nq-quote-topic textarea", "evacuation plans")
    page.click("#nq-quote-search")
    page.get_by_text("on “evacuation plans”").first.wait_for()
    first = panel.locator(".nq-quote").first.locator(".nq-passage mark").first
    assert "evacuation" in first.inner_text()
    assert page.evaluate("typeof window.__pwned") == "undefined"
