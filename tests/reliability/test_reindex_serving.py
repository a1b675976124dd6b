"""A separate `newsqa index` process adds articles while users ask the running server.

No question fails, nobody sees half an article (chunks without their record, or a record
without all its chunks), and the new articles become answerable, by meaning and by keyword,
without restarting the server.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from pathlib import Path
from typing import Any

from tests.reliability.conftest import Figures, serve_app
from tests.reliability.harness import (
    CORPUS_LATE,
    LATE_QUESTIONS,
    QUESTIONS,
    LoadReport,
    Result,
    ask_api,
    check_load,
    cites_expected,
    client,
    make_corpus,
    popen_cli,
    settings_for,
    snapshot,
)

MAX_REQUESTS = 150


def test_new_articles_from_another_process_are_answerable_without_restart(
        tmp_path: Path, embedder: Any, figures: Figures) -> None:
    seeds = make_corpus(tmp_path / "articles")
    settings = settings_for(tmp_path / "data", seeds_dir=seeds)
    with serve_app(settings, embedder) as app:
        api = client(app.url)
        for question in LATE_QUESTIONS:
            assert not cites_expected(ask_api(api, question.text), question)
        before = snapshot(settings)
        assert not before.problems()

        indexer = popen_cli("index", str(CORPUS_LATE), "--json", "--quiet",
                            data_dir=settings.data_dir)
        done = threading.Event()
        half_seen: list[str] = []
        polls = itertools.count()

        def watch() -> None:
            """What any reader can see must never be half an article."""
            while not done.is_set():
                snap = snapshot(settings)
                next(polls)
                if not snap.opened:
                    half_seen.append(f"store did not open: {snap.error}")
                half_seen.extend(f"visible but incomplete: {a}" for a in snap.incomplete_articles)
                time.sleep(0.2)

        report = LoadReport(users=3, questions_per_user=0)
        lock = threading.Lock()
        counter = itertools.count()
        questions = QUESTIONS + LATE_QUESTIONS

        def user(u: int) -> None:
            user_api = client(app.url)
            while not done.is_set():
                n = next(counter)
                if n >= MAX_REQUESTS:
                    return
                question = questions[(u * 5 + n) % len(questions)]
                began = time.perf_counter()
                try:
                    result = Result(u, question, time.perf_counter() - began,
                                    ask_api(user_api, question.text))
                except Exception as exc:
                    result = Result(u, question, time.perf_counter() - began, error=repr(exc))
                result.seconds = time.perf_counter() - began
                with lock:
                    report.results.append(result)

        threads = [threading.Thread(target=watch, daemon=True)]
        threads += [threading.Thread(target=user, args=(u,), daemon=True) for u in range(3)]
        for thread in threads:
            thread.start()
        try:
            out, err = indexer.communicate(timeout=600)
        finally:
            done.set()
            for thread in threads:
                thread.join(timeout=120)
        assert indexer.returncode == 0, err
        assert json.loads(out)["indexed"] == 3
        polled = next(polls)
        figures({"questions asked while indexing": len(report.results),
                 "errors": len(report.errors), "p50_s": round(report.latency(0.5), 2),
                 "p95_s": round(report.latency(0.95), 2), "store snapshots taken": polled,
                 "incomplete articles seen": len(half_seen),
                 "articles indexed by the other process": 3})
        assert report.results, "no question was asked while indexing"
        problems = check_load(report, settings, same_answers=False)
        assert not problems, "\n".join(problems)
        assert polled > 0 and not half_seen, half_seen

        # No restart: the running server answers from the new articles.
        for question in LATE_QUESTIONS:
            answer = ask_api(api, question.text)
            assert cites_expected(answer, question), (question.text, answer["text"][:300])
        # ...and its keyword index has them too.
        late_ids = {aid for aid in snapshot(settings).article_ids - before.article_ids}
        hits = app.qa.retriever_engine.keyword.search("Quintavalle Stremnikova", 5)
        assert any(chunk_id.split("-")[0] in late_ids for chunk_id, _ in hits), hits
        after = snapshot(settings)
        assert not after.problems()
        assert after.article_ids >= before.article_ids
        assert after.article_count == before.article_count + 3


WRITER = """
import sys
import numpy as np
from index.records import Article, Chunk
from index.settings import Settings
from index.store import Store

store = Store(Settings(data_dir=sys.argv[1]), model_name="fake-384")
rng = np.random.default_rng(int(sys.argv[2]))
for i in range(int(sys.argv[2]), int(sys.argv[3])):
    body = f"Article number {i} about topic {i}. " * 4
    article = Article(title=f"t{i}", body=body, path=f"/x/{i}.txt")
    vector = rng.normal(size=(1, 384)).astype("float32")
    store.upsert_article(article, [Chunk(article.id, 0, 0, len(body), body)],
                         vector / np.linalg.norm(vector))
"""


def test_store_reopen_sees_vectors_written_by_another_process(tmp_path: Path) -> None:
    """Embedded Chroma caches one vector index per path per process; reopen must drop it."""
    import subprocess
    import sys

    import numpy as np

    from index.settings import Settings
    from index.store import Store
    from tests.reliability.harness import ROOT, cli_env

    data_dir = tmp_path / "data"

    def write(start: int, end: int) -> None:
        subprocess.run([sys.executable, "-c", WRITER, str(data_dir), str(start), str(end)],
                       check=True, cwd=ROOT, env=cli_env(data_dir), timeout=300)

    write(0, 1)
    store = Store(Settings(data_dir=data_dir), model_name="fake-384")
    probe = np.full(384, 1 / np.sqrt(384), dtype="float32")
    assert len(store.query(probe, 50)) == 1
    write(1, 8)  # another process adds 7 articles
    assert store.count() == (8, 8)  # the tables are shared at once...
    store.reopen()  # ...the vector index only after a reopen
    assert len(store.query(probe, 50)) == 8
    write(8, 10)
    store.reopen()
    assert len(store.query(probe, 50)) == 10
