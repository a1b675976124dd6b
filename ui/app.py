"""The Gradio newsroom chat: streamed answers, a sources panel, filters, article upload.

`build_app(qa)` wires the interface to a `NewsQA`; `serve(qa, settings)` indexes the seed
folder on first start and launches it. Nothing heavy happens at import time.

The layout is built by one function per tab (`ask_tab`, `articles_tab`, `quotes_tab`), the
behaviour by one object per group of events (`ChatEvents`, `ArticleEvents`, `QuoteEvents`,
`ApiEndpoints`) over a shared `AppContext`; `build_app` only puts them together.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from index.build import summary_line
from index.dates import parse_day
from index.errors import NewsQAError, SettingsError
from index.records import Article, Quote
from index.settings import Settings, apply_offline_env
from qa.errors import InvalidQuestionError
from qa.records import Answer
from ui import render
from ui.binding import bind_error, check_bindable, exposure_warning, parse_auth
from ui.uploads import UPLOAD_TYPES, store_upload

# The library applies the offline environment itself (no hub, no telemetry, no analytics), so
# a script that imports ui.app gets it too. It must run before gradio is imported: gradio and
# huggingface_hub read these variables at import time.
apply_offline_env()

# Imported at module level (not inside build_app): Gradio resolves the handlers' type hints
# (gr.SelectData, gr.Progress) against this module's globals. Importing gradio loads no model;
# the CLI imports this module only inside `newsqa serve`, so other commands start fast.
import gradio as gr  # noqa: E402

if TYPE_CHECKING:
    from qa.api import NewsQA

__all__ = ["CONCURRENCY", "QUEUE_MAX", "UPLOAD_TYPES", "build_app", "parse_filters", "serve",
           "store_upload"]

log = logging.getLogger("newsqa.ui")

HERE = Path(__file__).resolve().parent
CSS_PATH = HERE / "style.css"
JS_PATH = HERE / "citations.js"

#: Events allowed to run at once. The model and store are shared and thread-safe; a question
#: costs one query embedding plus a store lookup (well under a second on CPU), so 20 slots let
#: ~20 journalists ask at the same time without queueing behind each other's streams. Indexing
#: has its own single slot (the store's lock would serialise it anyway).
CONCURRENCY = 20
#: Requests waiting beyond the running ones; more get a "queue is full" message, not a hang.
QUEUE_MAX = 200

#: Uploads of up to this many files are indexed one by one (a result row per file); larger
#: batches are indexed in one run (the keyword index is rebuilt once, not per file).
PER_FILE_LIMIT = 10

#: The report counts summed over the per-file runs of one upload.
_TOTALS = ("indexed", "updated", "unchanged", "skipped")

#: Keyword arguments that keep an event off the API page and away from scripts.
PRIVATE = {"api_visibility": "private"}

#: Shown at the top of the page until the model, the store and the keyword index are warm.
WARMING_HTML = ('<div class="nq-notice nq-warming" role="status">Warming up: loading the '
                "language model and opening the index. You can ask already; the first answer "
                "comes once it is ready.</div>")
#: How often an open page asks whether the app is warm yet (seconds).
WARM_POLL_SECONDS = 1.0


# ---------------------------------------------------------------------------------------------
# Helpers shared by the UI handlers and the API endpoints


def parse_filters(sources: Sequence[str] | str | None, since: str | None, until: str | None
                  ) -> dict[str, Any]:
    """Validated retrieval filters as keyword arguments for NewsQA.ask/stream."""
    if isinstance(sources, str):
        sources = [s.strip() for s in sources.split(",")]
    chosen = [s for s in (sources or []) if s]
    start = parse_day(since, "From date") or None
    end = parse_day(until, "To date") or None
    if start and end and start > end:
        raise ValueError(f"From date {start} is after To date {end}")
    return {"sources": chosen or None, "since": start, "until": end}


def api_safe(value: Any) -> Any:
    """JSON for gradio_client: every `path` key renamed `file`.

    gradio_client takes any dict with a string `path` for a file and tries to download it,
    so article records and index errors would make `Client.predict` fail.
    """
    if isinstance(value, dict):
        return {("file" if k == "path" else k): api_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [api_safe(v) for v in value]
    return value


@dataclass(frozen=True)
class Turn:
    """One answered question of a chat session and the filters it was asked with."""

    answer: Answer
    filters: str = ""


def _history(turns: Sequence[Turn | None]) -> list[dict[str, str]]:
    """Earlier answered turns as plain-text messages for follow-up questions."""
    out: list[dict[str, str]] = []
    for turn in turns:
        if turn is not None:
            out.append({"role": "user", "content": turn.answer.question})
            out.append({"role": "assistant", "content": turn.answer.text})
    return out


def _user_bubble(question: str) -> str:
    return f'<div class="nq-q">{render.esc(question)}</div>'


def _bot(content: str) -> dict[str, str]:
    return {"role": "assistant", "content": content}


def _selected_index(evt: gr.SelectData) -> int | None:
    """The row (or message) index of a select event, None when it is not a single index."""
    index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    return index if isinstance(index, int) else None


def _progress_callback(progress: gr.Progress, prefix: str = "") -> Callable[[str, int, int], None]:
    """An indexing progress callback (stage, done, total) that drives Gradio's progress bar."""
    def callback(stage: str, done: int, total: int) -> None:
        progress((done, total) if total else None, desc=f"{prefix}{stage}")
    return callback


def _add(totals: dict[str, int], data: dict[str, Any]) -> None:
    for key in _TOTALS:
        totals[key] = totals.get(key, 0) + int(data.get(key) or 0)


# ---------------------------------------------------------------------------------------------
# What every group of events shares


def _warm_event() -> threading.Event:
    event = threading.Event()
    event.set()
    return event


@dataclass(frozen=True)
class AppContext:
    """The `NewsQA` behind one app, the lock that gives indexing a single slot, and the
    event set once the model and indexes are warm (`serve` sets it after `qa.warm_up()`)."""

    qa: NewsQA
    index_lock: threading.Lock = field(default_factory=threading.Lock)
    warm: threading.Event = field(default_factory=_warm_event)

    def warm_state(self) -> tuple[Any, Any]:
        """The warming-up notice and its poll timer: both off once warm."""
        if self.warm.is_set():
            return gr.update(visible=False), gr.Timer(active=False)
        return gr.update(visible=True), gr.skip()

    @property
    def settings(self) -> Settings:
        return self.qa.settings

    def stats_html(self) -> str:
        try:
            return render.render_stats_html(self.qa.stats())
        except NewsQAError as exc:
            return f'<span class="nq-error">{render.esc(exc)}</span>'

    def source_choices(self) -> list[str]:
        try:
            return sorted(self.qa.sources())
        except NewsQAError:
            return []

    def article_table(self, query: str) -> tuple[list[list[Any]], list[str]]:
        """Rows of the Articles table matching `query`, and the article id of each row."""
        rows = render.article_rows(self.qa.articles((query or "").strip()))
        return [r[:4] for r in rows], [r[4] for r in rows]

    def bodies(self, answer: Answer) -> dict[str, Article]:
        """Full texts of every article the answer cites or shows, fetched once each."""
        ids = ([c.article.id for c in answer.citations]
               + [p.chunk.article_id for p in answer.passages])
        out: dict[str, Article] = {}
        for article_id in dict.fromkeys(ids):
            try:
                article = self.qa.article(article_id)
            except NewsQAError:
                article = None
            if article is not None:
                out[article_id] = article
        return out

    def after_indexing(self, query: str) -> tuple[Any, ...]:
        """What the page refreshes after indexing: table, row ids, stats, source choices."""
        table, ids = self.article_table(query)
        return table, ids, self.stats_html(), gr.update(choices=self.source_choices())


# ---------------------------------------------------------------------------------------------
# Chat events: ask, show an earlier answer's sources, start over

#: What a chat step updates: messages, sources panel, turns, the question box.
ChatUpdate = tuple[Any, Any, Any, Any]


class ChatEvents:
    """The Ask tab's behaviour: stream an answer, show the sources of any earlier answer."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def respond(self, message: str, chat: list[dict[str, Any]], turns: list[Turn | None],
                sources: list[str] | None, since: str, until: str) -> Iterator[ChatUpdate]:
        """Stream one answer into the chat; `turns[i]` backs the i-th question/answer pair."""
        question = (message or "").strip()
        chat, turns = list(chat or []), list(turns or [])
        if not question:
            yield chat, gr.skip(), turns, gr.skip()
            return
        try:
            filters = parse_filters(sources, since, until)
        except ValueError as exc:
            gr.Warning(str(exc))
            yield chat, gr.skip(), turns, message
            return
        turn = len(turns)
        history = _history(turns) or None
        turns.append(None)  # replaced by the Turn once answered
        chat += [{"role": "user", "content": _user_bubble(question)},
                 _bot(render.render_pending_html(""))]
        yield chat, render.render_searching_html(question), turns, ""
        yield from self._wait_until_warm(chat, turns)
        outcome = yield from self._stream(question, history, filters, chat, turns)
        if isinstance(outcome, str):
            chat[-1] = _bot(render.render_error_html(outcome))
            yield chat, gr.skip(), turns, message
            return
        turns[turn] = Turn(outcome, render.describe_filters(**filters))
        chat[-1] = _bot(render.render_answer_html(outcome, turn=turn))
        yield chat, self.sources_for(turns, turn), turns, ""

    def _wait_until_warm(self, chat: list[dict[str, Any]], turns: list[Turn | None]
                         ) -> Iterator[ChatUpdate]:
        """A question asked while the app warms up waits for it, saying so in the chat."""
        if self.ctx.warm.is_set():
            return
        chat[-1] = _bot(render.render_pending_html("Warming up, the answer follows shortly…"))
        yield chat, gr.skip(), turns, ""
        self.ctx.warm.wait()

    def _stream(self, question: str, history: list[dict[str, str]] | None,
                filters: dict[str, Any], chat: list[dict[str, Any]], turns: list[Turn | None]
                ) -> Generator[ChatUpdate, None, Answer | str]:
        """Show the answer's text as it arrives; returns the Answer, or the message to show."""
        text = ""
        try:
            for piece in self.ctx.qa.stream(question, history=history, **filters):
                if isinstance(piece, Answer):
                    return piece
                text += piece
                chat[-1] = _bot(render.render_pending_html(text))
                yield chat, gr.skip(), turns, ""
        except InvalidQuestionError as exc:
            return str(exc)
        except NewsQAError as exc:
            log.warning("question failed: %s", exc)
            return f"Could not answer: {exc}"
        except Exception:  # the one handler boundary: report in the chat, traceback in the log
            log.exception("question failed unexpectedly: %r", question)
            return "Something went wrong while answering; the details are in the server log."
        return "The answerer stopped without an answer; please ask again."

    def sources_for(self, turns: list[Turn | None], turn: int) -> str:
        """The sources panel of answer number `turn` (the empty panel when there is none)."""
        current = turns[turn] if 0 <= turn < len(turns) else None
        if current is None:
            return render.render_sources_html(None)
        return render.render_sources_html(current.answer, self.ctx.bodies(current.answer),
                                          turn=turn, filters=current.filters)

    def show_turn(self, turns: list[Turn | None], evt: gr.SelectData) -> Any:
        """Clicking a message (or its [n]) shows the sources of that answer."""
        index = _selected_index(evt)
        if index is None or not turns:
            return gr.skip()
        return self.sources_for(turns, min(index // 2, len(turns) - 1))

    def clear(self) -> ChatUpdate:
        return [], render.render_sources_html(None), [], ""


# ---------------------------------------------------------------------------------------------
# Article events: search, read, upload, re-index the folder


class ArticleEvents:
    """The Articles tab's behaviour; indexing runs one at a time under the context's lock."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def list_articles(self, query: str) -> tuple[list[list[Any]], list[str]]:
        return self.ctx.article_table(query)

    def open_article(self, ids: list[str], evt: gr.SelectData) -> str:
        row = _selected_index(evt)
        if row is None or not 0 <= row < len(ids):
            return gr.skip()
        article = self.ctx.qa.article(ids[row])
        if article is None:
            return '<p class="nq-muted">This article is no longer indexed.</p>'
        return render.render_article_html(article)

    def upload(self, files: list[str] | None, query: str,
               progress: gr.Progress = gr.Progress()  # noqa: B008
               ) -> tuple[Any, ...]:
        """Store the uploaded files, index them, and report one row per file."""
        if not files:
            gr.Warning("Choose one or more article files first.")
            return (gr.skip(),) * 7
        rows, stored = self._store(files)
        with self.ctx.index_lock:
            if len(stored) <= PER_FILE_LIMIT:
                indexed_rows, totals = self._index_each(stored, progress)
            else:
                indexed_rows, totals = self._index_batch(stored, progress)
        rows += indexed_rows
        rejected = sum(1 for r in rows if r[1] == "rejected")
        summary = summary_line(totals)
        if rejected:
            summary += f"; {rejected} file{'s' if rejected != 1 else ''} rejected"
        return (rows, f"**Upload:** {summary}.", *self.ctx.after_indexing(query), None)

    def _store(self, files: list[str]) -> tuple[list[list[str]], list[tuple[str, Path]]]:
        """Copy the uploads into the uploads folder: rows for rejected files, (name, path)
        for stored ones."""
        settings = self.ctx.settings
        rows: list[list[str]] = []
        stored: list[tuple[str, Path]] = []
        for item in files:
            temp = Path(item)
            try:
                target = store_upload(temp, temp.name, settings.uploads_dir,
                                      settings.max_file_bytes)
            except (ValueError, OSError) as exc:
                rows.append([temp.name, "rejected", str(exc)])
                log.info("upload %r rejected: %s", temp.name, exc)
                continue
            stored.append((temp.name, target))
        return rows, stored

    def _index_each(self, stored: list[tuple[str, Path]], progress: gr.Progress
                    ) -> tuple[list[list[str]], dict[str, int]]:
        """One run per file, so each file gets its own result row."""
        rows: list[list[str]] = []
        totals: dict[str, int] = {}
        for number, (name, target) in enumerate(stored, start=1):
            prefix = f"file {number}/{len(stored)}: "
            try:
                report = self.ctx.qa.add([target], progress=_progress_callback(progress, prefix))
            except NewsQAError as exc:
                rows.append([name, "error", str(exc)])
                continue
            data = report.to_dict()
            result, detail = render.file_result(data)
            if target.name != name:
                detail += f" (saved as {target.name})"
            rows.append([name, result, detail])
            _add(totals, data)
        return rows, totals

    def _index_batch(self, stored: list[tuple[str, Path]], progress: gr.Progress
                     ) -> tuple[list[list[str]], dict[str, int]]:
        """One run for many files (the keyword index is rebuilt once): a summary row, then
        a row per skipped file under the name it was uploaded as."""
        label = f"{len(stored)} files"
        try:
            data = self.ctx.qa.add([t for _, t in stored],
                                   progress=_progress_callback(progress)).to_dict()
        except NewsQAError as exc:
            return [[label, "error", str(exc)]], {}
        names = {str(t): n for n, t in stored} | {t.name: n for n, t in stored}
        rows = [[label, "done", summary_line(data)], *render.report_rows(data, names)]
        return rows, {k: int(data.get(k) or 0) for k in _TOTALS}

    def reindex_folder(self, query: str, progress: gr.Progress = gr.Progress()  # noqa: B008
                       ) -> tuple[Any, ...]:
        """Bring the configured articles folder up to date and report what changed."""
        folder = self.ctx.settings.seeds_dir
        with self.ctx.index_lock:
            try:
                data = self.ctx.qa.reindex(progress=_progress_callback(progress)).to_dict()
            except NewsQAError as exc:
                gr.Warning(str(exc))
                return (gr.skip(),) * 6
        summary = summary_line(data)
        rows = [[str(folder), "done", summary], *render.report_rows(data)]
        return (rows, f"**Articles folder** {folder}: {summary}.",
                *self.ctx.after_indexing(query))

    def refresh(self, query: str) -> tuple[Any, ...]:
        """Page load: current stats, source choices and article table."""
        table, ids = self.ctx.article_table(query)
        return self.ctx.stats_html(), gr.update(choices=self.ctx.source_choices()), table, ids


# ---------------------------------------------------------------------------------------------
# Who said what: the speakers table, a speaker's quotes, the topic search

#: Quote cards shown at most for one search in the tab (the /quotes endpoint takes a limit).
QUOTE_CARDS = 50
#: Shown in the quotes panel while a topic search waits for the model.
QUOTES_WARMING_HTML = ('<div class="nq-sources nq-empty"><p class="nq-muted">Warming up: the '
                       "topic search starts once the language model is loaded …</p></div>")


def quote_query(speaker: str | None, topic: str | None, since: str | None, until: str | None,
                sources: Sequence[str] | str | None = None) -> dict[str, Any]:
    """Validated keyword arguments for NewsQA.quotes (ValueError naming a bad date)."""
    return {"speaker": (speaker or "").strip() or None, "topic": (topic or "").strip() or None,
            **parse_filters(sources, since, until)}


def find_quotes(qa: NewsQA, query: dict[str, Any], limit: int | None
                ) -> tuple[list[Quote], int | None]:
    """Quotes matching `query` (at most `limit`) and how many matched (None if not counted):
    ranked by topic when there is one, else newest first, in article order within a day."""
    if query["topic"]:
        return list(qa.quotes(**query, limit=limit)), None
    found = sorted(qa.quotes(**query), key=lambda q: (q.published, q.article_id, -q.start),
                   reverse=True)
    return (found if limit is None else found[:limit]), len(found)


def quote_articles(qa: NewsQA, quotes: Sequence[Quote]) -> dict[str, Article]:
    """The articles the quotes come from, fetched once each (missing ones left out)."""
    out: dict[str, Article] = {}
    for article_id in dict.fromkeys(q.article_id for q in quotes):
        article = qa.article(article_id)
        if article is not None:
            out[article_id] = article
    return out


def listed_names(qa: NewsQA, quotes: Sequence[Quote]) -> dict[str, str]:
    """The merged speaker name each quote is listed under, by quote id (named ones only)."""
    return {q.id: name for q in quotes if (name := qa.speaker_of(q))}


def _quotes_heading(query: dict[str, Any], shown: int, total: int | None) -> str:
    """What a quote search looked for, in plain words ("Elisabetta Trenta · on “France” …")."""
    parts = [query["speaker"] or "All speakers"]
    if query["topic"]:
        parts.append(f"on “{query['topic']}”")
    dates = render.describe_filters(None, query["since"], query["until"])
    if dates:
        parts.append(dates)
    count = shown if total is None else total
    parts.append(f"{count} quote{'s' if count != 1 else ''}"
                 + (" (best matches first)" if query["topic"] else " (newest first)"))
    return " · ".join(parts)


class QuoteEvents:
    """The "Who said what" tab's behaviour: list speakers, show a speaker's or a topic's quotes."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def list_speakers(self, since: str, until: str) -> tuple[Any, Any, Any]:
        """The speakers table (counts and date ranges), its row names, the speaker choices."""
        try:
            dates = parse_filters(None, since, until)
            found = self.ctx.qa.speakers(since=dates["since"], until=dates["until"])
        except (ValueError, NewsQAError) as exc:
            gr.Warning(str(exc))
            return gr.skip(), gr.skip(), gr.skip()
        names = [s.name for s in found]
        return render.speaker_rows(found), names, gr.update(choices=names)

    def choose_speaker(self, names: list[str], since: str, until: str, evt: gr.SelectData
                       ) -> Iterator[tuple[Any, Any, Any]]:
        """Clicking a speaker's row shows all their quotes, newest first (the topic cleared)."""
        row = _selected_index(evt)
        if row is None or not 0 <= row < len(names or []):
            yield gr.skip(), gr.skip(), gr.skip()
            return
        for panel in self.search_quotes(names[row], "", since, until):
            yield names[row], "", panel

    def search_quotes(self, speaker: str | None, topic: str, since: str, until: str
                      ) -> Iterator[str]:
        """The quote cards of a speaker and/or topic; a topic search waits for the model."""
        try:
            query = quote_query(speaker, topic, since, until)
        except ValueError as exc:
            yield render.render_error_html(str(exc))
            return
        if query["topic"] and not self.ctx.warm.is_set():
            yield QUOTES_WARMING_HTML
            self.ctx.warm.wait()
        try:
            found, total = find_quotes(self.ctx.qa, query, QUOTE_CARDS)
            articles = quote_articles(self.ctx.qa, found)
            names = listed_names(self.ctx.qa, found)
        except NewsQAError as exc:
            yield render.render_error_html(f"Could not search the quotes: {exc}")
            return
        yield render.render_quotes_html(found, articles, speakers=names, total=total,
                                        heading=_quotes_heading(query, len(found), total))


# ---------------------------------------------------------------------------------------------
# The named API endpoints (/ask, /index, /quotes, /speakers), for scripts using gradio_client


class ApiEndpoints:
    """The public endpoints; every other event is private."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def ask(self, question: str, sources: list[str] | None = None, since: str = "",
            until: str = "") -> dict:
        """Answer a question from the indexed articles; returns the answer with citations."""
        try:
            filters = parse_filters(sources, since, until)
        except ValueError as exc:
            raise gr.Error(str(exc)) from None
        try:
            return api_safe(self.ctx.qa.ask(question, **filters).to_dict())
        except NewsQAError as exc:
            raise gr.Error(str(exc)) from None

    def index(self) -> dict:
        """Index new and changed files of the configured articles folder; returns the report."""
        with self.ctx.index_lock:
            try:
                return api_safe(self.ctx.qa.reindex().to_dict())
            except NewsQAError as exc:
                raise gr.Error(str(exc)) from None

    def quotes(self, speaker: str = "", topic: str = "", since: str = "", until: str = "",
               sources: list[str] | None = None, limit: int | None = None) -> list[dict]:
        """Quotes from the indexed articles: a speaker's (newest first), or those on a topic
        (best first), within optional dates (YYYY-MM-DD) and sources. Each is
        `Quote.to_dict()` plus the article's `title` and `url` and `merged_speaker`, the name
        it is listed under in /speakers; `content` is `body[start:end]` of each of its
        `content_spans` joined by " ... "."""
        try:
            query = quote_query(speaker, topic, since, until, sources)
            found, _ = find_quotes(self.ctx.qa, query, limit)
            articles = quote_articles(self.ctx.qa, found)
            names = listed_names(self.ctx.qa, found)
        except (ValueError, NewsQAError) as exc:
            raise gr.Error(str(exc)) from None
        out = []
        for quote in found:
            article = articles.get(quote.article_id)
            out.append(quote.to_dict() | {"title": article.title if article else "",
                                          "url": article.url if article else "",
                                          "merged_speaker": names.get(quote.id, "")})
        return api_safe(out)

    def speakers(self, since: str = "", until: str = "", sources: list[str] | None = None
                 ) -> list[dict]:
        """Everyone quoted (merged names), with quote and article counts and first/last dates."""
        try:
            filters = parse_filters(sources, since, until)
            return api_safe([s.to_dict() for s in self.ctx.qa.speakers(**filters)])
        except (ValueError, NewsQAError) as exc:
            raise gr.Error(str(exc)) from None


# ---------------------------------------------------------------------------------------------
# The layout: one builder per part of the page


@dataclass(frozen=True)
class AskTab:
    """The Ask tab's components."""

    chatbot: gr.Chatbot
    question: gr.Textbox
    send: gr.Button
    sources: gr.Dropdown
    since: gr.Textbox
    until: gr.Textbox
    new_chat: gr.Button
    sources_panel: gr.HTML
    turns: gr.State


@dataclass(frozen=True)
class ArticlesTab:
    """The Articles tab's components."""

    search: gr.Textbox
    table: gr.Dataframe
    viewer: gr.HTML
    ids: gr.State
    files: gr.File
    upload: gr.Button
    reindex: gr.Button
    status: gr.Markdown
    results: gr.Dataframe


def header(ctx: AppContext) -> gr.HTML:
    """Title, a line on checking sources, and the index statistics (returned, kept current)."""
    with gr.Column(elem_classes="nq-header"):
        gr.HTML("<h1>newsqa</h1><p>Ask questions about the indexed news articles. "
                "Every answer quotes its sources: check the highlighted passages.</p>")
        return gr.HTML(ctx.stats_html(), elem_id="nq-stats-box")


def warming_notice(demo: gr.Blocks, ctx: AppContext) -> None:
    """The "warming up" notice, shown until the app is warm; each open page polls for it."""
    warm = ctx.warm.is_set()
    notice = gr.HTML(WARMING_HTML, elem_id="nq-warming", visible=not warm)
    timer = gr.Timer(WARM_POLL_SECONDS, active=not warm)
    timer.tick(ctx.warm_state, None, [notice, timer], show_progress="hidden",
               concurrency_limit=None, **PRIVATE)
    demo.load(ctx.warm_state, None, [notice, timer], show_progress="hidden",
              concurrency_limit=None, **PRIVATE)


def _question_box() -> tuple[gr.Textbox, gr.Button]:
    with gr.Row():
        question = gr.Textbox(elem_id="nq-question", show_label=False, scale=5, lines=1,
                              max_lines=4, placeholder="Type a question and press Enter",
                              autofocus=True)
        send = gr.Button("Ask", variant="primary", scale=1, elem_id="nq-send")
    return question, send


def _filters(ctx: AppContext) -> tuple[gr.Dropdown, gr.Textbox, gr.Textbox]:
    with gr.Accordion("Filters: source and date", open=False, elem_id="nq-filters"):
        sources = gr.Dropdown(choices=ctx.source_choices(), multiselect=True, value=[],
                              label="Only these sources (empty = all)",
                              elem_id="nq-sources-filter")
        with gr.Row():
            since = gr.Textbox(label="From date", placeholder="YYYY-MM-DD", elem_id="nq-since")
            until = gr.Textbox(label="To date", placeholder="YYYY-MM-DD", elem_id="nq-until")
    return sources, since, until


def ask_tab(ctx: AppContext) -> AskTab:
    """The chat, the question box, the filters, and the sources panel beside them."""
    with gr.Tab("Ask", id="ask"), gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=420):
            chatbot = gr.Chatbot(
                elem_id="nq-chat", label="Conversation", height=560, latex_delimiters=[],
                buttons=[], feedback_options=None,
                placeholder="Ask about the news, e.g. *What did Trenta say about "
                            "intervention?* Follow-up questions keep the context.")
            question, send = _question_box()
            sources, since, until = _filters(ctx)
            new_chat = gr.Button("New conversation", size="sm", variant="secondary")
        with gr.Column(scale=2, min_width=340):
            gr.Markdown("### Sources")
            panel = gr.HTML(render.render_sources_html(None), elem_id="nq-sources")
        turns = gr.State([])  # inside the tab: a State directly under gr.Tabs breaks the tab bar
    return AskTab(chatbot=chatbot, question=question, send=send, sources=sources, since=since,
                  until=until, new_chat=new_chat, sources_panel=panel, turns=turns)


def _indexing_column(settings: Settings) -> dict[str, Any]:
    """The upload box, the indexing buttons and their results."""
    files = gr.File(label=f"Add articles ({', '.join(UPLOAD_TYPES)}; up to "
                          f"{settings.max_upload_mb} MB each)",
                    file_count="multiple", file_types=list(UPLOAD_TYPES), type="filepath",
                    elem_id="nq-upload")
    upload = gr.Button("Index uploaded files", variant="primary", elem_id="nq-upload-btn")
    reindex = gr.Button("Re-index the articles folder", variant="secondary",
                        elem_id="nq-reindex-btn")
    gr.Markdown(f"Folder: `{settings.seeds_dir}` — new and changed files are indexed; "
                "uploaded articles are kept.", elem_classes="nq-muted")
    status = gr.Markdown(elem_id="nq-index-status")
    results = gr.Dataframe(headers=["File", "Result", "Detail"], datatype=["str"] * 3,
                           interactive=False, wrap=True, label="Indexing results",
                           column_widths=["32%", "16%", "52%"], elem_id="nq-results")
    return {"files": files, "upload": upload, "reindex": reindex, "status": status,
            "results": results}


def articles_tab(ctx: AppContext) -> ArticlesTab:
    """The searchable table of indexed articles, the article viewer, upload and re-index."""
    with gr.Tab("Articles", id="articles"), gr.Row(equal_height=False):
        with gr.Column(scale=3):
            search = gr.Textbox(label="Search titles and sources", placeholder="e.g. Libya",
                                elem_id="nq-search")
            table = gr.Dataframe(
                headers=["Title", "Source", "Date", "Passages"],
                datatype=["str", "str", "str", "number"], interactive=False, wrap=True,
                elem_id="nq-articles", label="Indexed articles (click a row to read it)",
                max_height=420, column_widths=["58%", "20%", "12%", "10%"])
            viewer = gr.HTML('<p class="nq-muted">Click an article to read it.</p>',
                             elem_id="nq-viewer")
        with gr.Column(scale=2):
            indexing = _indexing_column(ctx.settings)
        ids = gr.State([])  # inside the tab, as in ask_tab
    return ArticlesTab(search=search, table=table, viewer=viewer, ids=ids, **indexing)


@dataclass(frozen=True)
class QuotesTab:
    """The "Who said what" tab's components."""

    speakers: gr.Dataframe
    names: gr.State
    speaker: gr.Dropdown
    topic: gr.Textbox
    since: gr.Textbox
    until: gr.Textbox
    search: gr.Button
    results: gr.HTML


def quotes_tab() -> QuotesTab:
    """Everyone quoted (click a name for their quotes), a speaker and topic search, dates."""
    with gr.Tab("Who said what", id="quotes"), gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=340):
            speakers = gr.Dataframe(
                headers=["Speaker", "Quotes", "Articles", "First", "Last", "Also named"],
                datatype=["str", "number", "number", "str", "str", "str"], interactive=False,
                wrap=True, max_height=520, elem_id="nq-speakers",
                column_widths=["30%", "10%", "10%", "15%", "15%", "20%"],
                label="Speakers (click a name to see their quotes)")
        with gr.Column(scale=3, min_width=420):
            with gr.Row():
                speaker = gr.Dropdown(choices=[], value=None, allow_custom_value=True,
                                      filterable=True, label="Speaker (empty = anyone)",
                                      elem_id="nq-quote-speaker")
                topic = gr.Textbox(label="Topic", placeholder="e.g. intervention",
                                   elem_id="nq-quote-topic")
            with gr.Row():
                since = gr.Textbox(label="From date", placeholder="YYYY-MM-DD",
                                   elem_id="nq-quote-since")
                until = gr.Textbox(label="To date", placeholder="YYYY-MM-DD",
                                   elem_id="nq-quote-until")
            search = gr.Button("Find quotes", variant="primary", elem_id="nq-quote-search")
            results = gr.HTML('<p class="nq-muted">Click a speaker, or search by topic.</p>',
                              elem_id="nq-quotes")
        names = gr.State([])  # inside the tab, as in ask_tab
    return QuotesTab(speakers=speakers, names=names, speaker=speaker, topic=topic,
                     since=since, until=until, search=search, results=results)


# ---------------------------------------------------------------------------------------------
# Wiring: one function per group of events


def wire_chat(tab: AskTab, events: ChatEvents) -> None:
    """Ask on Enter or the button; clicking a message shows its sources; start over."""
    inputs = [tab.question, tab.chatbot, tab.turns, tab.sources, tab.since, tab.until]
    outputs = [tab.chatbot, tab.sources_panel, tab.turns, tab.question]
    gr.on([tab.question.submit, tab.send.click], events.respond, inputs, outputs,
          show_progress="hidden", **PRIVATE)
    tab.chatbot.select(events.show_turn, [tab.turns], [tab.sources_panel],
                       show_progress="hidden", **PRIVATE)
    tab.new_chat.click(events.clear, None, outputs, **PRIVATE)
    # the chat's own trash icon empties the messages: forget the answers behind them too
    tab.chatbot.clear(events.clear, None, outputs, **PRIVATE)


def wire_articles(demo: gr.Blocks, tab: ArticlesTab, stats: gr.HTML, sources: gr.Dropdown,
                  events: ArticleEvents) -> None:
    """Search and read articles; upload and re-index share the one indexing slot."""
    tab.search.change(events.list_articles, [tab.search], [tab.table, tab.ids],
                      show_progress="hidden", concurrency_limit=None, **PRIVATE)
    tab.table.select(events.open_article, [tab.ids], [tab.viewer], concurrency_limit=None,
                     **PRIVATE)
    outputs = [tab.results, tab.status, tab.table, tab.ids, stats, sources]
    tab.upload.click(events.upload, [tab.files, tab.search], [*outputs, tab.files],
                     concurrency_id="index", concurrency_limit=1, **PRIVATE)
    tab.reindex.click(events.reindex_folder, [tab.search], outputs, concurrency_id="index",
                      concurrency_limit=1, **PRIVATE)
    demo.load(events.refresh, [tab.search], [stats, sources, tab.table, tab.ids],
              concurrency_limit=None, show_progress="hidden", **PRIVATE)


def wire_quotes(demo: gr.Blocks, tab: QuotesTab, events: QuoteEvents) -> None:
    """Speakers on page load and with the dates; a row click or a search shows quote cards."""
    listing = [tab.speakers, tab.names, tab.speaker]
    demo.load(events.list_speakers, [tab.since, tab.until], listing, concurrency_limit=None,
              show_progress="hidden", **PRIVATE)
    gr.on([tab.since.submit, tab.until.submit], events.list_speakers, [tab.since, tab.until],
          listing, show_progress="hidden", concurrency_limit=None, **PRIVATE)
    tab.speakers.select(events.choose_speaker, [tab.names, tab.since, tab.until],
                        [tab.speaker, tab.topic, tab.results], **PRIVATE)
    gr.on([tab.search.click, tab.topic.submit, tab.since.submit, tab.until.submit],
          events.search_quotes, [tab.speaker, tab.topic, tab.since, tab.until], [tab.results],
          **PRIVATE)


def wire_api(endpoints: ApiEndpoints) -> None:
    """The named endpoints; /index shares the indexing slot with the Articles tab."""
    gr.api(endpoints.ask, api_name="ask")
    gr.api(endpoints.index, api_name="index", concurrency_id="index", concurrency_limit=1)
    gr.api(endpoints.quotes, api_name="quotes")
    gr.api(endpoints.speakers, api_name="speakers")


def build_app(qa: NewsQA, *, warm: threading.Event | None = None) -> gr.Blocks:
    """The newsqa web chat over `qa` (not launched; `serve` launches it).

    Script access (gradio_client), besides the browser UI:

    - `/ask` — `client.predict("What did Trenta say about intervention?", api_name="/ask")`;
      optional `sources` (list of source names), `since` / `until` (YYYY-MM-DD). Returns the
      answer as a dict: `text` with [n] markers, `found`, `citations` (number, title, source,
      published, url, quote, start, end: `quote` is body[start:end] of the article),
      `passages`, `warnings`. This is `Answer.to_dict()` except that each `path` key is
      named `file` (gradio_client would try to download any dict with a `path`).
    - `/index` — `client.predict(api_name="/index")` indexes new and changed files of the
      configured articles folder (settings.seeds_dir; uploads and other articles are kept) and
      returns the report: indexed, updated, unchanged, skipped, removed, errors [{file, reason}].
    - `/quotes` — `client.predict(speaker="Elisabetta Trenta", topic="", api_name="/quotes")`;
      optional `topic`, `since` / `until` (YYYY-MM-DD), `sources`, `limit`. Returns a list of
      `Quote.to_dict()` (content, content_spans into the article body, speaker, speaker_name,
      cue, venue, kind, published, source) each with the article's `title` and `url` and
      `merged_speaker` (the name /speakers lists it under): a speaker's quotes newest first,
      or the best matches of a topic first.
    - `/speakers` — everyone quoted, merged names with aliases, quote and article counts,
      first and last dates; optional `since` / `until`, `sources`.

    With a password set (NEWSQA_AUTH), pass it to the client: `Client(url, auth=(user, pw))`.
    Chat, upload and table events are private (not callable from scripts, not in the API page).
    `warm`: set once `qa` is warm; until then the page shows a "warming up" notice and
    questions wait (None: warm already).
    """
    ctx = AppContext(qa) if warm is None else AppContext(qa, warm=warm)
    # delete_cache: Gradio keeps its own temporary copy of every upload; drop those hourly
    # (the article itself lives on in settings.uploads_dir).
    with gr.Blocks(title="newsqa — ask the news archive", fill_width=True,
                   delete_cache=(3600, 3600)) as demo:
        stats = header(ctx)
        warming_notice(demo, ctx)
        with gr.Tabs():
            ask = ask_tab(ctx)
            articles = articles_tab(ctx)
            quotes = quotes_tab()
        wire_chat(ask, ChatEvents(ctx))
        wire_articles(demo, articles, stats, ask.sources, ArticleEvents(ctx))
        wire_quotes(demo, quotes, QuoteEvents(ctx))
        wire_api(ApiEndpoints(ctx))
    return demo


# ---------------------------------------------------------------------------------------------
# Serving


def _say(message: str) -> None:
    print(f"newsqa: {message}", file=sys.stderr, flush=True)


def _progress_printer() -> Callable[[str, int, int], None]:
    """A progress callback printing every 25th step of each stage on stderr."""
    last: dict[str, int] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if last.get(stage) != done and (done == total or done % 25 == 0):
            last[stage] = done
            _say(f"  {stage} {done}/{total}")

    return progress


def check_seeds_folder(qa: NewsQA, settings: Settings) -> None:
    """A first start (empty store) needs the articles folder: SettingsError naming it if it
    is missing. With articles already indexed, a missing folder is only a warning."""
    folder = settings.seeds_dir
    if folder.exists():
        return
    if qa.is_empty():
        raise SettingsError(f"the store is empty and the articles folder {folder} does not "
                            "exist: create it (it may stay empty), set NEWSQA_SEEDS_DIR, or "
                            "index articles first with `newsqa index`")
    _say(f"warning: the articles folder {folder} does not exist; re-indexing it will "
         "find nothing")


def index_seeds_if_empty(qa: NewsQA, settings: Settings) -> dict[str, Any] | None:
    """First start: index the seed folder when the store is empty, printing progress."""
    if not qa.is_empty():
        return None
    _say(f"first start, indexing {settings.seeds_dir} ...")
    report = qa.reindex(progress=_progress_printer()).to_dict()
    _say(f"indexed the articles folder: {summary_line(report)}")
    return report


def launch_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for Blocks.launch that newsqa always uses."""
    return {
        "share": False,  # never open a public tunnel
        "css": CSS_PATH.read_text(encoding="utf-8"),
        "head": f"<script>{JS_PATH.read_text(encoding='utf-8')}</script>",
        "max_file_size": settings.max_file_bytes,
        "show_error": True,
        "ssr_mode": False,  # no Node server: one process, starts faster
        "mcp_server": False,
        "pwa": False,
        "enable_monitoring": False,
        "run_history": False,  # nothing about questions is kept in the browser
        "footer_links": ["api"],
    }


def _launch(demo: gr.Blocks, settings: Settings, host: str, port: int,
            credentials: tuple[str, str] | None) -> None:
    """Start the server in the background; a bind failure becomes a SettingsError."""
    try:
        demo.launch(server_name=host, server_port=port, auth=credentials,
                    auth_message="newsqa: sign in with the newsroom account"
                    if credentials else None,
                    prevent_thread_lock=True, quiet=True, **launch_options(settings))
    except OSError as exc:  # gradio's "Cannot find empty port" (a race with check_bindable)
        raise bind_error(host, port, exc) from None


def _warm_up(qa: NewsQA, demo: gr.Blocks, warm: threading.Event) -> None:
    """Load the model and open the indexes while the page is already up (showing "warming
    up"), then set `warm`. A failure (a model that cannot load, say) closes the server and
    propagates, so `newsqa serve` exits with one clear line instead of serving a chat where
    every question fails."""
    try:
        qa.warm_up()
    except BaseException:
        demo.close()
        raise
    finally:
        warm.set()  # waiting questions go on (and fail at once if the server closed)


def serve(qa: NewsQA, settings: Settings, *, host: str | None = None, port: int | None = None,
          auth: str | None = None, prevent_thread_lock: bool = False) -> gr.Blocks:
    """Index the seeds on first start, then launch the web chat; returns the running app.

    Raises SettingsError (one line naming the address or folder) when the port is taken, the
    host cannot be bound, or a first start has no articles folder.
    """
    host = host or settings.host
    port = settings.port if port is None else port
    auth = settings.auth if auth is None else auth
    credentials = parse_auth(auth)
    check_bindable(host, port)
    check_seeds_folder(qa, settings)
    warning = exposure_warning(host, credentials)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    index_seeds_if_empty(qa, settings)
    warm = threading.Event()
    demo = build_app(qa, warm=warm)
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_MAX)
    _say(f"web chat on http://{host}:{port}")
    _launch(demo, settings, host, port, credentials)
    _warm_up(qa, demo, warm)
    if not prevent_thread_lock:
        demo.block_thread()
    return demo
