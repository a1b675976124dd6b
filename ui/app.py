"""The Gradio newsroom chat: streamed answers, a sources panel, filters, article upload.

`build_app(qa)` wires the interface to a `NewsQA`; `serve(qa, settings)` indexes the seed
folder on first start and launches it. Nothing heavy happens at import time.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
import shutil
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Imported at module level (not inside build_app): Gradio resolves the handlers' type hints
# (gr.SelectData, gr.Progress) against this module's globals. Importing gradio loads no model.
import gradio as gr

from index.dates import parse_day
from index.errors import NewsQAError
from index.records import Article
from index.settings import Settings
from qa.errors import InvalidQuestionError
from qa.records import Answer
from ui import render

if TYPE_CHECKING:
    from qa.api import NewsQA

log = logging.getLogger("newsqa.ui")

HERE = Path(__file__).resolve().parent
CSS_PATH = HERE / "style.css"
JS_PATH = HERE / "citations.js"

#: File types accepted by the upload box (and checked again on the server).
UPLOAD_TYPES = (".txt", ".md", ".json", ".jsonl", ".html", ".htm", ".rss", ".atom", ".xml")

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

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


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


def safe_filename(name: str) -> str:
    """A basename safe to create in the uploads folder: no folders, no dot-files, known type.

    The client's filename is never trusted: `../../etc/passwd.txt` becomes `passwd.txt`.
    """
    base = re.split(r"[\\/]", name or "")[-1]
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    stem = _UNSAFE.sub("_", stem).strip("._-")[:80] or "upload"
    ext = ext.lower()
    if f".{ext}" not in UPLOAD_TYPES:
        raise ValueError(f"unsupported file type {('.' + ext) if ext else '(none)'}; "
                         f"accepted: {', '.join(UPLOAD_TYPES)}")
    return f"{stem}.{ext}"


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


def store_upload(source: Path, original_name: str, uploads_dir: Path, max_bytes: int) -> Path:
    """Copy one uploaded file into `uploads_dir` under a sanitised, non-clobbering name."""
    name = safe_filename(original_name)
    size = source.stat().st_size
    if size > max_bytes:
        raise ValueError(f"file is {size / 1e6:.1f} MB; the limit is {max_bytes // 2**20} MB")
    if size == 0:
        raise ValueError("file is empty")
    uploads_dir.mkdir(parents=True, exist_ok=True)
    root = uploads_dir.resolve()
    stem, ext = name.rsplit(".", 1)
    digest = _digest(source)
    for n in range(1, 1000):
        target = root / (name if n == 1 else f"{stem}-{n}.{ext}")
        if target.parent != root:  # cannot happen after safe_filename; belt and braces
            raise ValueError("unsafe file name")
        if target.exists():
            if _digest(target) == digest:
                return target  # same file uploaded again: let the indexer report "unchanged"
            continue
        shutil.copyfile(source, target)
        return target
    raise ValueError("too many uploads with this name")


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


def _bodies(qa: NewsQA, answer: Answer) -> dict[str, Article]:
    """Full texts of every article the answer cites or shows, fetched once each."""
    ids = [c.article.id for c in answer.citations] + [p.chunk.article_id for p in answer.passages]
    out: dict[str, Article] = {}
    for article_id in dict.fromkeys(ids):
        try:
            article = qa.article(article_id)
        except NewsQAError:
            article = None
        if article is not None:
            out[article_id] = article
    return out


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


# ---------------------------------------------------------------------------------------------
# The app


def build_app(qa: NewsQA) -> gr.Blocks:
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

    With a password set (NEWSQA_AUTH), pass it to the client: `Client(url, auth=(user, pw))`.
    Chat, upload and table events are private (not callable from scripts, not in the API page).
    """
    settings = qa.settings
    index_lock = threading.Lock()

    def stats_html() -> str:
        try:
            return render.render_stats_html(qa.stats())
        except NewsQAError as exc:
            return f'<span class="nq-error">{render.esc(exc)}</span>'

    def source_choices() -> list[str]:
        try:
            return sorted(qa.sources())
        except NewsQAError:
            return []

    # -- chat --------------------------------------------------------------------------------

    def respond(message: str, chat: list[dict[str, Any]], turns: list[Turn | None],
                sources: list[str] | None, since: str, until: str
                ) -> Iterator[tuple[Any, ...]]:
        """Stream one answer into the chat; `turns[i]` backs the i-th question/answer pair."""
        question = (message or "").strip()
        chat = list(chat or [])
        turns = list(turns or [])
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
        turns.append(None)  # replaced by the Turn once answered
        chat.append({"role": "user", "content": _user_bubble(question)})
        chat.append({"role": "assistant", "content": render.render_pending_html("")})
        yield chat, render.render_searching_html(question), turns, ""
        text = ""
        answer: Answer | None = None
        try:
            for piece in qa.stream(question, history=_history(turns) or None, **filters):
                if isinstance(piece, Answer):
                    answer = piece
                    break
                text += piece
                chat[-1] = {"role": "assistant", "content": render.render_pending_html(text)}
                yield chat, gr.skip(), turns, ""
        except InvalidQuestionError as exc:
            chat[-1] = {"role": "assistant", "content": render.render_error_html(str(exc))}
            yield chat, gr.skip(), turns, message
            return
        except NewsQAError as exc:
            log.warning("question failed: %s", exc)
            chat[-1] = {"role": "assistant",
                        "content": render.render_error_html(f"Could not answer: {exc}")}
            yield chat, gr.skip(), turns, message
            return
        except Exception:  # a bug or a broken store: say so in the chat, details in the log
            log.exception("question failed unexpectedly: %r", question)
            chat[-1] = {"role": "assistant", "content": render.render_error_html(
                "Something went wrong while answering; the details are in the server log.")}
            yield chat, gr.skip(), turns, message
            return
        if answer is None:
            chat[-1] = {"role": "assistant", "content": render.render_error_html(
                "The answerer stopped without an answer; please ask again.")}
            yield chat, gr.skip(), turns, message
            return
        turns[turn] = Turn(answer, render.describe_filters(**filters))
        chat[-1] = {"role": "assistant", "content": render.render_answer_html(answer, turn=turn)}
        yield chat, sources_for(turns, turn), turns, ""

    def sources_for(turns: list[Turn | None], turn: int) -> str:
        current = turns[turn] if 0 <= turn < len(turns) else None
        if current is None:
            return render.render_sources_html(None)
        return render.render_sources_html(current.answer, _bodies(qa, current.answer),
                                          turn=turn, filters=current.filters)

    def show_turn(turns: list[Turn | None], evt: gr.SelectData) -> Any:
        """Clicking a message (or its [n]) shows the sources of that answer."""
        index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        if not isinstance(index, int) or not turns:
            return gr.skip()
        return sources_for(turns, min(index // 2, len(turns) - 1))

    def clear() -> tuple[Any, ...]:
        return [], render.render_sources_html(None), [], ""

    # -- articles ----------------------------------------------------------------------------

    def list_articles(query: str) -> tuple[list[list[Any]], list[str]]:
        rows = render.article_rows(qa.articles((query or "").strip()))
        return [r[:4] for r in rows], [r[4] for r in rows]

    def open_article(ids: list[str], evt: gr.SelectData) -> str:
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        if not isinstance(row, int) or not 0 <= row < len(ids):
            return gr.skip()
        article = qa.article(ids[row])
        if article is None:
            return '<p class="nq-muted">This article is no longer indexed.</p>'
        return render.render_article_html(article)

    def _progress_cb(progress: gr.Progress, prefix: str = "") -> Any:
        def callback(stage: str, done: int, total: int) -> None:
            progress((done, total) if total else None, desc=f"{prefix}{stage}")
        return callback

    def upload(files: list[str] | None, query: str,
               progress: gr.Progress = gr.Progress()  # noqa: B008
               ) -> tuple[Any, ...]:
        if not files:
            gr.Warning("Choose one or more article files first.")
            return (gr.skip(),) * 7
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
        totals: dict[str, int] = {}
        with index_lock:
            if len(stored) <= PER_FILE_LIMIT:
                # one run per file, so each file gets its own result row
                for number, (name, target) in enumerate(stored, start=1):
                    prefix = f"file {number}/{len(stored)}: "
                    try:
                        report = qa.add([target], progress=_progress_cb(progress, prefix))
                    except NewsQAError as exc:
                        rows.append([name, "error", str(exc)])
                        continue
                    data = report.to_dict()
                    result, detail = render.file_result(data)
                    if target.name != name:
                        detail += f" (saved as {target.name})"
                    rows.append([name, result, detail])
                    for key in ("indexed", "updated", "unchanged", "skipped"):
                        totals[key] = totals.get(key, 0) + int(data.get(key) or 0)
            elif stored:
                try:
                    data = qa.add([t for _, t in stored],
                                  progress=_progress_cb(progress)).to_dict()
                except NewsQAError as exc:
                    rows.append([f"{len(stored)} files", "error", str(exc)])
                else:
                    names = {str(t): n for n, t in stored} | {t.name: n for n, t in stored}
                    rows.append([f"{len(stored)} files", "done", render.report_summary(data)])
                    rows.extend(render.report_rows(data, names))
                    totals = {k: int(data.get(k) or 0)
                              for k in ("indexed", "updated", "unchanged", "skipped")}
        rejected = sum(1 for r in rows if r[1] == "rejected")
        summary = render.report_summary(totals)
        if rejected:
            summary += f"; {rejected} file{'s' if rejected != 1 else ''} rejected"
        table, ids = list_articles(query)
        return (rows, f"**Upload:** {summary}.", table, ids, stats_html(),
                gr.update(choices=source_choices()), None)

    def reindex_folder(query: str, progress: gr.Progress = gr.Progress()  # noqa: B008
                       ) -> tuple[Any, ...]:
        with index_lock:
            try:
                data = qa.reindex(progress=_progress_cb(progress)).to_dict()
            except NewsQAError as exc:
                gr.Warning(str(exc))
                return (gr.skip(),) * 6
        table, ids = list_articles(query)
        rows = [[str(settings.seeds_dir), "done", render.report_summary(data)]]
        rows.extend(render.report_rows(data))
        return (rows, f"**Articles folder** {settings.seeds_dir}: "
                f"{render.report_summary(data)}.", table, ids, stats_html(),
                gr.update(choices=source_choices()))

    def refresh(query: str) -> tuple[Any, ...]:
        table, ids = list_articles(query)
        return stats_html(), gr.update(choices=source_choices()), table, ids

    # -- API endpoints -------------------------------------------------------------------------

    def ask(question: str, sources: list[str] | None = None, since: str = "",
            until: str = "") -> dict:
        """Answer a question from the indexed articles; returns the answer with citations."""
        try:
            filters = parse_filters(sources, since, until)
        except ValueError as exc:
            raise gr.Error(str(exc)) from None
        try:
            return api_safe(qa.ask(question, **filters).to_dict())
        except NewsQAError as exc:
            raise gr.Error(str(exc)) from None

    def index() -> dict:
        """Index new and changed files of the configured articles folder; returns the report."""
        with index_lock:
            try:
                return api_safe(qa.reindex().to_dict())
            except NewsQAError as exc:
                raise gr.Error(str(exc)) from None

    # -- layout --------------------------------------------------------------------------------

    hidden = {"api_visibility": "private"}
    # delete_cache: Gradio keeps its own temporary copy of every upload; drop those hourly
    # (the article itself lives on in settings.uploads_dir).
    with gr.Blocks(title="newsqa — ask the news archive", fill_width=True,
                   delete_cache=(3600, 3600)) as demo:
        with gr.Column(elem_classes="nq-header"):
            gr.HTML("<h1>newsqa</h1><p>Ask questions about the indexed news articles. "
                    "Every answer quotes its sources: check the highlighted passages.</p>")
            stats = gr.HTML(stats_html(), elem_id="nq-stats-box")
        turns_state = gr.State([])
        ids_state = gr.State([])
        with gr.Tabs():
            with gr.Tab("Ask", id="ask"), gr.Row(equal_height=False):
                with gr.Column(scale=3, min_width=420):
                    chatbot = gr.Chatbot(
                        elem_id="nq-chat", label="Conversation", height=560,
                        latex_delimiters=[], buttons=[], feedback_options=None,
                        placeholder="Ask about the news, e.g. *What did Trenta say about "
                                    "intervention?* Follow-up questions keep the context.",
                    )
                    with gr.Row():
                        question = gr.Textbox(
                            elem_id="nq-question", show_label=False, scale=5, lines=1,
                            max_lines=4, placeholder="Type a question and press Enter",
                            autofocus=True)
                        send = gr.Button("Ask", variant="primary", scale=1,
                                         elem_id="nq-send")
                    with gr.Accordion("Filters: source and date", open=False,
                                      elem_id="nq-filters"):
                        sources = gr.Dropdown(
                            choices=source_choices(), multiselect=True, value=[],
                            label="Only these sources (empty = all)",
                            elem_id="nq-sources-filter")
                        with gr.Row():
                            since = gr.Textbox(label="From date", placeholder="YYYY-MM-DD",
                                               elem_id="nq-since")
                            until = gr.Textbox(label="To date", placeholder="YYYY-MM-DD",
                                               elem_id="nq-until")
                    new_chat = gr.Button("New conversation", size="sm", variant="secondary")
                with gr.Column(scale=2, min_width=340):
                    gr.Markdown("### Sources")
                    sources_panel = gr.HTML(render.render_sources_html(None),
                                            elem_id="nq-sources")
            with gr.Tab("Articles", id="articles"), gr.Row(equal_height=False):
                with gr.Column(scale=3):
                    search = gr.Textbox(label="Search titles and sources",
                                        placeholder="e.g. Libya", elem_id="nq-search")
                    table = gr.Dataframe(
                        headers=["Title", "Source", "Date", "Passages"],
                        datatype=["str", "str", "str", "number"], interactive=False,
                        wrap=True, elem_id="nq-articles", label="Indexed articles "
                        "(click a row to read it)", max_height=420,
                        column_widths=["58%", "20%", "12%", "10%"])
                    viewer = gr.HTML('<p class="nq-muted">Click an article to read it.</p>',
                                     elem_id="nq-viewer")
                with gr.Column(scale=2):
                    files = gr.File(
                        label=f"Add articles ({', '.join(UPLOAD_TYPES)}; up to "
                              f"{settings.max_upload_mb} MB each)",
                        file_count="multiple", file_types=list(UPLOAD_TYPES),
                        type="filepath", elem_id="nq-upload")
                    upload_btn = gr.Button("Index uploaded files", variant="primary",
                                           elem_id="nq-upload-btn")
                    reindex_btn = gr.Button("Re-index the articles folder",
                                            variant="secondary", elem_id="nq-reindex-btn")
                    gr.Markdown(f"Folder: `{settings.seeds_dir}` — new and changed files "
                                "are indexed; uploaded articles are kept.",
                                elem_classes="nq-muted")
                    status = gr.Markdown(elem_id="nq-index-status")
                    results = gr.Dataframe(
                        headers=["File", "Result", "Detail"], datatype=["str"] * 3,
                        interactive=False, wrap=True, label="Indexing results",
                        column_widths=["32%", "16%", "52%"], elem_id="nq-results")

        chat_inputs = [question, chatbot, turns_state, sources, since, until]
        chat_outputs = [chatbot, sources_panel, turns_state, question]
        gr.on([question.submit, send.click], respond, chat_inputs, chat_outputs,
              show_progress="hidden", **hidden)
        chatbot.select(show_turn, [turns_state], [sources_panel], show_progress="hidden",
                       **hidden)
        new_chat.click(clear, None, chat_outputs, **hidden)
        # the chat's own trash icon empties the messages: forget the answers behind them too
        chatbot.clear(clear, None, chat_outputs, **hidden)

        search.change(list_articles, [search], [table, ids_state], show_progress="hidden",
                      concurrency_limit=None, **hidden)
        table.select(open_article, [ids_state], [viewer], concurrency_limit=None, **hidden)
        index_outputs = [results, status, table, ids_state, stats, sources]
        upload_btn.click(upload, [files, search], [*index_outputs, files],
                         concurrency_id="index", concurrency_limit=1, **hidden)
        reindex_btn.click(reindex_folder, [search], index_outputs, concurrency_id="index",
                          concurrency_limit=1, **hidden)
        demo.load(refresh, [search], [stats, sources, table, ids_state], concurrency_limit=None,
                  show_progress="hidden", **hidden)

        gr.api(ask, api_name="ask")
        gr.api(index, api_name="index", concurrency_id="index", concurrency_limit=1)
    return demo


# ---------------------------------------------------------------------------------------------
# Serving


def is_loopback(host: str) -> bool:
    """True when `host` only accepts connections from this machine."""
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, credentials: tuple[str, str] | None) -> str:
    """The warning to print when the chat is reachable from other machines without a password."""
    if credentials is not None or is_loopback(host):
        return ""
    return (f"newsqa: WARNING: serving on {host} without a password; anyone who can reach this "
            "machine can read and add articles. Set NEWSQA_AUTH=USER:PASS (or --auth).")


def parse_auth(auth: str) -> tuple[str, str] | None:
    """"USER:PASS" -> (user, pass); "" -> None."""
    if not auth:
        return None
    user, sep, password = auth.partition(":")
    if not sep or not user or not password:
        from index.errors import SettingsError
        raise SettingsError("auth must look like USER:PASS with both parts non-empty")
    return user, password


def index_seeds_if_empty(qa: NewsQA, settings: Settings) -> dict[str, Any] | None:
    """First start: index the seed folder when the store is empty, printing progress."""
    if not qa.is_empty():
        return None
    if not settings.seeds_dir.exists():
        print(f"newsqa: the store is empty and the articles folder {settings.seeds_dir} "
              "does not exist; add articles in the Articles tab.", file=sys.stderr)
        return None
    print(f"newsqa: first start, indexing {settings.seeds_dir} ...", file=sys.stderr, flush=True)
    last: dict[str, Any] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if last.get(stage) != done and (done == total or done % 25 == 0):
            last[stage] = done
            print(f"newsqa:   {stage} {done}/{total}", file=sys.stderr, flush=True)

    report = qa.reindex(progress=progress).to_dict()
    print(f"newsqa: indexed the articles folder: {render.report_summary(report)}",
          file=sys.stderr, flush=True)
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


def serve(qa: NewsQA, settings: Settings, *, host: str | None = None, port: int | None = None,
          auth: str | None = None, prevent_thread_lock: bool = False) -> gr.Blocks:
    """Index the seeds on first start, then launch the web chat; returns the running app."""
    host = host or settings.host
    port = settings.port if port is None else port
    auth = settings.auth if auth is None else auth
    credentials = parse_auth(auth)
    warning = exposure_warning(host, credentials)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    index_seeds_if_empty(qa, settings)
    demo = build_app(qa)
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_MAX)
    print(f"newsqa: web chat on http://{host}:{port}", file=sys.stderr, flush=True)
    # Load the model in the background so the page is up at once; the first question waits
    # for it only if it arrives before the model is ready.
    threading.Thread(target=_warm_up, args=(qa,), name="newsqa-warm-up", daemon=True).start()
    demo.launch(server_name=host, server_port=port, auth=credentials,
                auth_message="newsqa: sign in with the newsroom account" if credentials else None,
                prevent_thread_lock=prevent_thread_lock, quiet=True,
                **launch_options(settings))
    return demo


def _warm_up(qa: NewsQA) -> None:
    try:
        qa.warm_up()
    except Exception as exc:  # reported, not fatal: the first question will raise it clearly
        log.warning("warm-up failed: %s", exc)
