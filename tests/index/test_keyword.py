"""The keyword index: stemming, filters, bm25s's exact scores, incremental add / replace /
prune, readers following other writers, crash safety, catching up with the store."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from index import keyword
from index.keyword import KeywordIndex, analyzer, build, keyword_text, load_or_build, open_index
from index.records import ArticleMeta, Chunk
from index.settings import Settings
from index.store import ChunkHit


def chunk(article_id: str, ordinal: int, text: str) -> Chunk:
    return Chunk(article_id=article_id, ordinal=ordinal, start=0, end=len(text), text=text)


CHUNKS = [
    chunk("a1", 0, "The minister rejected military intervention in Libya."),
    chunk("a1", 1, "Talks with the United Nations envoy continue in Tripoli."),
    chunk("a2", 0, "Dock workers ended their strike after the union won a pay rise."),
    chunk("a3", 0, "Libya's oil output fell as fighting intensified near the port."),
]
TITLES = {"a1": "Italy on Libya", "a2": "Port strike ends", "a3": "Oil and war"}
QUERIES = ("Libya oil port", "strike union pay", "minister envoy talks Tripoli",
           "Italy Libya Libya intervention", "war fighting workers")


def test_search_stems_and_ranks(tmp_path: Path) -> None:
    index = build(tmp_path / "k", CHUNKS, TITLES)
    assert len(index) == 4
    hits = index.search("Militaries and interventions", k=5)  # stems: militari, intervent
    assert hits[0][0] == CHUNKS[0].id
    assert all(score > 0 for _, score in hits)
    assert index.search("the and of", k=5) == []  # stop words only
    assert index.search("zeppelin", k=5) == []
    # title words count: "port" is in a2's title only (and in a3's text), "Italy" only in
    # a1's title, which both of a1's chunks carry
    assert {cid for cid, _ in index.search("port", k=5)} == {CHUNKS[2].id, CHUNKS[3].id}
    assert {cid for cid, _ in index.search("Italy", k=5)} == {CHUNKS[0].id, CHUNKS[1].id}
    untitled = build(tmp_path / "u", CHUNKS, {})
    assert untitled.search("Italy", k=5) == []
    assert [cid for cid, _ in untitled.search("port", k=5)] == [CHUNKS[3].id]


def test_filter_is_applied_before_top_k(tmp_path: Path) -> None:
    index = build(tmp_path / "k", CHUNKS, TITLES)
    hits = index.search("Libya", k=1, allowed_article_ids={"a3"})
    assert [cid for cid, _ in hits] == [CHUNKS[3].id]
    assert index.search("Libya", k=3, allowed_article_ids={"a2"}) == []
    assert index.search("Libya", k=3, allowed_article_ids=set()) == []
    best = index.search("Libya", k=10)  # a1's first chunk has Libya in its title and text
    assert [cid for cid, _ in best] == [CHUNKS[0].id, CHUNKS[1].id, CHUNKS[3].id]
    assert best[0][1] > best[1][1] > best[2][1] > 0


def test_ties_at_the_cut_are_broken_by_chunk_id(tmp_path: Path) -> None:
    same = [chunk(f"a{n}", 0, "Identical wire copy about the harbour strike.") for n in range(9)]
    index = build(tmp_path / "k", list(reversed(same)), {})
    hits = index.search("harbour strike", k=3)
    assert [cid for cid, _ in hits] == sorted(c.id for c in same)[:3]
    assert len({score for _, score in hits}) == 1


# --- bm25s's scores, exactly ---------------------------------------------------------------

def corpus(seed: int, articles: int) -> list[tuple[str, list[Chunk]]]:
    """Random (title, chunks) articles over a small vocabulary (many shared terms, repeats)."""
    rng = random.Random(seed)
    words = ("port", "strike", "union", "pay", "minister", "libya", "oil", "war", "talks",
             "envoy", "tripoli", "harbour", "election", "vote", "court", "ruling", "storm",
             "flood", "rescue", "market", "shares", "bank", "rates")
    out = []
    for number in range(articles):
        aid = f"art{seed}x{number:03d}"
        title = " ".join(rng.choices(words, k=rng.randint(0, 4)))
        chunks = [chunk(aid, o, " ".join(rng.choices(words, k=rng.randint(1, 40))))
                  for o in range(rng.randint(1, 4))]
        out.append((title, chunks))
    return out


def bm25s_reference(articles: Sequence[tuple[str, Sequence[Chunk]]], query: str, k: int
                    ) -> list[tuple[str, float]]:
    """What the bm25s index newsqa used before gives for `query` over these articles."""
    import bm25s  # the reference only: a dev dependency, no longer the product's
    ids = [c.id for _, chunks in articles for c in chunks]
    tokens = [analyzer()(keyword_text(title, c)) for title, chunks in articles for c in chunks]
    retriever = bm25s.BM25()
    retriever.index(tokens, show_progress=False)
    scores = retriever.get_scores_from_ids(retriever.get_tokens_ids(analyzer()(query)))
    ranked = sorted((i for i in range(len(ids)) if scores[i] > 0),
                    key=lambda i: (-float(scores[i]), ids[i]))[:k]
    return [(ids[i], float(scores[i])) for i in ranked]


def fresh(folder: Path, articles: Sequence[tuple[str, Sequence[Chunk]]]) -> KeywordIndex:
    index = KeywordIndex(folder)
    index.apply(list(articles), (), "stamp")
    return index


def test_scores_equal_bm25s_exactly(tmp_path: Path) -> None:
    articles = corpus(1, 60)
    index = fresh(tmp_path / "k", articles)
    for query in (*QUERIES, "flood flood rescue", "bank rates market shares court"):
        assert index.search(query, k=25) == bm25s_reference(articles, query, 25), query


def test_incremental_updates_rank_as_a_fresh_build(tmp_path: Path) -> None:
    """Add, replace and prune in several transactions; a reader opened at the start follows
    them as deltas; both rank exactly as a from-scratch index (and as bm25s) at every step."""
    articles = dict((c[0].article_id, (t, c)) for t, c in corpus(2, 40))
    writer = fresh(tmp_path / "k", list(articles.values())[:10])
    reader = KeywordIndex.load(tmp_path / "k")
    assert reader is not None and len(reader) == len(writer)
    live = dict(list(articles.items())[:10])
    steps = [("add", list(articles)[10:25]), ("prune", list(articles)[3:8]),
             ("replace", list(articles)[12:14]), ("add", list(articles)[25:40]),
             ("prune", list(articles)[30:31]), ("add", list(articles)[3:5])]
    for number, (step, ids) in enumerate(steps):
        if step == "prune":
            writer.apply([], ids, f"s{number}")
            for aid in ids:
                live.pop(aid)
        else:
            changed = {aid: (f"retitled {articles[aid][0]}" if step == "replace"
                             else articles[aid][0], articles[aid][1]) for aid in ids}
            writer.apply(list(changed.values()), (), f"s{number}")
            live.update(changed)
        scratch = fresh(tmp_path / f"scratch{number}", list(live.values()))
        reader.refresh()
        for query in QUERIES:
            expected = bm25s_reference(list(live.values()), query, 15)
            assert scratch.search(query, k=15) == expected
            assert writer.search(query, k=15) == expected, (step, query)
            assert reader.search(query, k=15) == expected, (step, query)
        assert sorted(reader.chunk_ids) == sorted(c.id for _, cs in live.values() for c in cs)


def test_reader_older_than_the_kept_tombstones_reloads(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keyword, "KEEP_TOMBSTONE_VERSIONS", 1)
    writer = build(tmp_path / "k", CHUNKS, TITLES)
    reader = KeywordIndex.load(tmp_path / "k")
    assert reader is not None
    for number in range(3):
        writer.apply([], ["a2"] if number == 0 else [], f"s{number}")
    assert reader.refresh() is True
    assert len(reader) == 3 and reader.search("strike", k=3) == []


def test_missing_or_corrupt_index(tmp_path: Path) -> None:
    folder = tmp_path / "keyword"
    assert KeywordIndex.load(folder) is None
    build(folder, CHUNKS, TITLES).close()
    (folder / keyword.FILE_NAME).write_bytes(b"not a database" * 100)
    for suffix in ("-wal", "-shm"):
        Path(f"{folder / keyword.FILE_NAME}{suffix}").unlink(missing_ok=True)
    assert KeywordIndex.load(folder) is None
    reopened = open_index(folder)  # an unreadable file starts afresh, to be synced
    assert len(reopened) == 0 and reopened.synced == ""


def test_empty_index(tmp_path: Path) -> None:
    index = build(tmp_path / "k", [], {})
    assert len(index) == 0 and index.search("anything", k=3) == []
    loaded = KeywordIndex.load(tmp_path / "k")
    assert loaded is not None and len(loaded) == 0


# --- crash safety ----------------------------------------------------------------------------

def test_an_exception_between_writes_leaves_the_previous_state(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index = build(tmp_path / "k", CHUNKS, TITLES, synced="before")
    before = {q: index.search(q, k=5) for q in QUERIES}

    def fail(*_: object) -> None:
        raise RuntimeError("injected between the delete and the insert")

    monkeypatch.setattr(keyword, "_insert_documents", fail)
    with pytest.raises(RuntimeError, match="injected"):
        index.apply([("Oil and war, updated", [CHUNKS[3]])], ["a1"], "after")
    monkeypatch.undo()
    reader = KeywordIndex.load(tmp_path / "k")
    assert reader is not None and reader.synced == "before" and len(reader) == 4
    assert {q: reader.search(q, k=5) for q in QUERIES} == before
    assert {q: index.search(q, k=5) for q in QUERIES} == before


def _killed_mid_update(folder: str) -> None:
    """Child: start an update and die by SIGKILL inside its transaction, after the deletes
    and the new rows were written but before the commit."""
    original = keyword._insert_documents  # the step the crash follows

    def insert_then_die(conn: object, documents: object) -> None:
        original(conn, documents)  # type: ignore[arg-type]
        os.kill(os.getpid(), signal.SIGKILL)

    keyword._insert_documents = insert_then_die
    KeywordIndex(folder).apply([("Strike over", [chunk("a9", 0, "zeppelin harbour")])],
                               ["a1", "a2"], "crashed")


def test_a_process_killed_mid_update_leaves_a_searchable_index_that_sync_repairs(
        tmp_path: Path) -> None:
    folder = tmp_path / "k"
    build(folder, CHUNKS, TITLES, synced="before").close()
    child = multiprocessing.get_context("spawn").Process(target=_killed_mid_update,
                                                          args=(str(folder),))
    child.start()
    child.join(120)
    assert child.exitcode == -signal.SIGKILL
    index = KeywordIndex.load(folder)
    assert index is not None and index.synced == "before" and len(index) == 4
    assert index.search("zeppelin", k=3) == []
    assert index.search("strike", k=1)[0][0] == CHUNKS[2].id
    store = FakeStore([*CHUNKS[2:], chunk("a9", 0, "zeppelin harbour")],
                      {**TITLES, "a9": "Strike over"}, "after")
    assert index.sync(store) is True  # the next run brings it in step
    assert index.synced == "after" and len(index) == 3
    assert index.search("zeppelin", k=3)[0][0] == chunk("a9", 0, "zeppelin harbour").id


# --- catching up with the store --------------------------------------------------------------

class FakeStore:
    """The Store methods the keyword index reads: fingerprint, ids, counts, chunks."""

    def __init__(self, chunks: list[Chunk], titles: dict[str, str], stamp: str) -> None:
        self.chunks, self.titles, self.stamp = chunks, titles, stamp
        self.fetched: list[str] = []
        self.listed = 0

    def fingerprint(self) -> str:
        return self.stamp

    def article_ids(self) -> set[str]:
        return {c.article_id for c in self.chunks}

    def count(self) -> tuple[int, int]:
        return len(self.article_ids()), len(self.chunks)

    def list_articles(self) -> list[tuple[ArticleMeta, int]]:
        self.listed += 1
        counts: dict[str, int] = {}
        for c in self.chunks:
            counts[c.article_id] = counts.get(c.article_id, 0) + 1
        return [(ArticleMeta(id=a, title=self.titles.get(a, "")), n) for a, n in counts.items()]

    def iter_chunks(self) -> list[Chunk]:
        self.fetched.append("*every chunk*")
        return list(self.chunks)

    def chunks_of_articles(self, article_ids: Sequence[str]) -> list[ChunkHit]:
        self.fetched += article_ids
        return [ChunkHit(c, ArticleMeta(id=c.article_id, title=self.titles.get(c.article_id, "")),
                         0.0) for c in self.chunks if c.article_id in set(article_ids)]


def test_sync_fetches_only_what_changed(tmp_path: Path) -> None:
    store = FakeStore(CHUNKS[:3], TITLES, "s1")
    index = open_index(tmp_path / "k")
    assert index.sync(store) is True and sorted(store.fetched) == ["a1", "a2"]
    store.fetched.clear()
    assert index.sync(store) is False and store.fetched == []
    store.chunks, store.stamp = CHUNKS[2:], "s2"  # a1 pruned, a3 added
    assert index.catch_up(store) is True and store.fetched == ["a3"]
    assert sorted(index.chunk_ids) == sorted(c.id for c in CHUNKS[2:])
    assert store.listed == 3  # one read of the article records per sync, nothing more
    rechunked = [chunk("a2", 0, "Dock workers ended"), chunk("a2", 1, "their strike at last.")]
    store.chunks, store.stamp, store.fetched = [*rechunked, CHUNKS[3]], "s3", []
    store.titles = {**TITLES, "a2": "Dock deal"}
    assert index.catch_up(store) is True and store.fetched == ["a2"]  # re-chunked under its id
    assert store.listed == 4
    assert sorted(index.chunk_ids) == sorted(c.id for c in store.chunks)
    assert index.search("dock deal", k=1)[0][0] in {c.id for c in rechunked}
    assert index.catch_up(store) is False and index.synced == "s3"


def test_a_retitled_article_with_the_same_chunks_is_caught_up(tmp_path: Path) -> None:
    """Deleted and stored again under the same id (same body, so the same chunk ids and
    counts) with another title between two syncs: the new title's words are found."""
    store = FakeStore(list(CHUNKS), TITLES, "s1")
    index = open_index(tmp_path / "k")
    index.sync(store)
    assert index.search("zeppelin", k=3) == []
    store.titles, store.stamp, store.fetched = {**TITLES, "a2": "Zeppelin lands"}, "s2", []
    assert index.catch_up(store) is True and store.fetched == ["a2"]
    assert {cid for cid, _ in index.search("zeppelin", k=3)} == {
        c.id for c in CHUNKS if c.article_id == "a2"}
    reference = build(tmp_path / "ref", CHUNKS, store.titles)
    for query in (*QUERIES, "Italy", "zeppelin"):
        assert index.search(query, k=5) == reference.search(query, k=5)


def test_many_new_articles_are_read_in_one_pass_with_their_titles(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keyword, "BULK_FETCH_ARTICLES", 1)
    store = FakeStore(list(CHUNKS), TITLES, "s1")
    index = open_index(tmp_path / "k")
    assert index.sync(store) is True and store.fetched == ["*every chunk*"]
    reference = build(tmp_path / "ref", CHUNKS, TITLES)
    for query in (*QUERIES, "Italy"):
        assert index.search(query, k=5) == reference.search(query, k=5)


def test_load_or_build_syncs_when_missing_corrupt_or_out_of_step(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    store = FakeStore(list(CHUNKS), TITLES, "s1")
    index = load_or_build(settings, store)  # type: ignore[arg-type]
    assert len(index) == 4 and len(store.fetched) == 3  # a1, a2, a3
    index.close()
    again = load_or_build(settings, store)  # type: ignore[arg-type]
    assert len(again) == 4 and len(store.fetched) == 3  # in step: nothing fetched
    again.close()
    (settings.keyword_dir / keyword.FILE_NAME).write_bytes(b"garbage" * 100)
    for suffix in ("-wal", "-shm"):
        Path(f"{settings.keyword_dir / keyword.FILE_NAME}{suffix}").unlink(missing_ok=True)
    assert len(load_or_build(settings, store)) == 4 and len(store.fetched) == 6  # corrupt
    store.chunks, store.stamp = CHUNKS[:3], "s2"
    assert len(load_or_build(settings, store)) == 3  # out of step
    assert keyword.in_step(settings.keyword_dir, "s2")
    assert not keyword.in_step(settings.keyword_dir, "s1")


def test_scores_are_float32_sums_in_query_order(tmp_path: Path) -> None:
    index = build(tmp_path / "k", CHUNKS, TITLES)
    one = dict(index.search("Libya", k=5))
    two = dict(index.search("Libya Libya", k=5))
    assert two == {cid: float(np.float32(s) + np.float32(s)) for cid, s in one.items()}


def test_a_relative_data_folder_is_read_in_step(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The default data folder is relative ("data"): the stamp check must read it too."""
    monkeypatch.chdir(tmp_path)
    settings = Settings(data_dir=Path("data"))
    load_or_build(settings, FakeStore(list(CHUNKS), TITLES, "s1")).close()  # type: ignore[arg-type]
    assert not settings.keyword_dir.is_absolute()
    assert keyword.synced_stamp(settings.keyword_dir) == "s1"
    assert keyword.in_step(settings.keyword_dir, "s1")
