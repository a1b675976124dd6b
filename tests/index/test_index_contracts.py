"""What the index layer promises beyond one build: stale chunk settings are refused, duplicate
names are reported, the change signal is our own, query-time encodes run on one torch thread,
the offline environment is applied by the library itself, one summary wording."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from index.build import IndexReport, rebuild, summary_line, update
from index.chunking import ChunkingConfig, embedding_text
from index.embedding import Embedder
from index.errors import ChunkingMismatchError
from index.manifest import Manifest
from index.records import Article, Chunk
from index.settings import OFFLINE_ENV, Settings
from index.sources import SUPPORTED_SUFFIXES, describe_supported
from index.store import Store

ROOT = Path(__file__).resolve().parents[2]
STORY = "Ferry service resumes\n\nThe island ferry resumed its daily crossings on Friday.\n"


def folder_with(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_changed_chunk_settings_are_refused_until_rebuild(tmp_path: Path,
                                                          embedder: Embedder) -> None:
    first = folder_with(tmp_path / "first", {"ferry.txt": STORY})
    second = folder_with(tmp_path / "second", {"other.txt": "Market day\n\nStalls opened."})
    settings = Settings(data_dir=tmp_path / "data")
    update([first], settings, embedder=embedder)
    smaller = settings.replace(chunk_tokens=64, chunk_overlap=8)
    with pytest.raises(ChunkingMismatchError, match=r"newsqa index --rebuild PATH\.\.\.") as err:
        update([second], smaller, embedder=embedder)
    assert "tokens 200 -> 64" in str(err.value) and "overlap 40 -> 8" in str(err.value)
    with Manifest(settings.manifest_path) as manifest:  # nothing was marked current
        assert manifest.get("chunker") == ChunkingConfig.from_settings(settings).signature()
        assert str(second / "other.txt") not in manifest.files()
    report = rebuild([first, second], smaller, embedder=embedder)
    assert report.articles == 2
    assert update([second], smaller, embedder=embedder).unchanged == 1  # accepted now


def test_the_same_text_under_two_names_says_whose_metadata_was_kept(
        tmp_path: Path, embedder: Embedder) -> None:
    news = folder_with(tmp_path / "news", {"a-first.txt": STORY})
    settings = Settings(data_dir=tmp_path / "data")
    update([news], settings, embedder=embedder)
    (news / "b-copy.txt").write_text(STORY, encoding="utf-8")
    (news / "c-copy.txt").write_text(STORY, encoding="utf-8")
    report = update([news], settings, embedder=embedder)
    first, copies = str(news / "a-first.txt"), [str(news / "b-copy.txt"),
                                                str(news / "c-copy.txt")]
    assert report.duplicates == 2 and report.articles == 1
    assert [d["path"] for d in report.duplicate_names] == copies
    assert all(d["same_text_as"] == first for d in report.duplicate_names)
    assert f"title, source and date of {first}" in report.duplicate_names[0]["reason"]
    assert report.to_dict()["duplicate_names"] == [dict(d) for d in report.duplicate_names]

    fresh = Settings(data_dir=tmp_path / "fresh")  # both names new in one run
    report = update([news], fresh, embedder=embedder)
    assert [d["path"] for d in report.duplicate_names] == copies
    assert {d["same_text_as"] for d in report.duplicate_names} == {first}


def test_store_fingerprint_changes_on_writes_not_on_reads(tmp_path: Path,
                                                          embedder: Embedder) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    store = Store(settings, model_name=settings.embedding_model)
    assert store.fingerprint() == ""
    article = Article(title="Ferry", body="The ferry resumed its crossings.")
    chunk = Chunk(article.id, 0, 0, len(article.body), article.body)
    store.upsert_article(article, [chunk], embedder.embed_documents([article.body]))
    written = store.fingerprint()
    assert written and settings.chroma_path.as_posix() in written
    store.query(embedder.embed_query("ferry"), k=1)
    store.list_articles()
    assert Store(settings, model_name=settings.embedding_model).fingerprint() == written
    store.delete_article(article.id)
    assert store.fingerprint() not in ("", written)


def test_a_write_behind_the_manifest_is_seen_by_the_next_run(tmp_path: Path,
                                                             embedder: Embedder) -> None:
    news = folder_with(tmp_path / "news", {"ferry.txt": STORY})
    settings = Settings(data_dir=tmp_path / "data")
    update([news], settings, embedder=embedder)
    other = Store(settings, model_name=settings.embedding_model)  # another process, say
    [victim] = other.article_ids()
    other.delete_article(victim)
    report = update([news], settings, embedder=embedder)
    assert report.articles == 1 and report.chunks_added > 0  # reconciled, not skipped


def test_embed_group_is_a_parameter(tmp_path: Path, embedder: Embedder,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    news = folder_with(tmp_path / "news", {f"s{i}.txt": f"Story {i}\n\nBody number {i} here."
                                           for i in range(3)})
    writes: list[int] = []
    real = Store.upsert_articles
    monkeypatch.setattr(Store, "upsert_articles",
                        lambda self, items, quotes=None, new=False: (
                            writes.append(len(items)), real(self, items, quotes, new=new)))
    update([news], Settings(data_dir=tmp_path / "one"), embedder=embedder, embed_group=1)
    assert writes == [1, 1, 1]
    writes.clear()
    update([news], Settings(data_dir=tmp_path / "all"), embedder=embedder)
    assert writes == [3]


def test_query_time_encodes_run_on_one_torch_thread(embedder: Embedder,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    seen: list[int] = []
    real = embedder.embed_documents

    def recording(texts: list[str], **kwargs: object) -> np.ndarray:
        seen.append(torch.get_num_threads())
        return real(texts, **kwargs)

    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        monkeypatch.setattr(embedder, "embed_documents", recording)
        vector = embedder.embed_query("ferry crossings")
        small = embedder.embed_small(["one sentence", "another"])
        embedder.embed_documents(["bulk"])
        assert seen == [1, 1, 2]
        assert torch.get_num_threads() == 2  # restored
    finally:
        torch.set_num_threads(saved)
    assert vector.shape == (384,) and small.shape == (2, 384)
    assert np.allclose(vector, real(["ferry crossings"])[0], atol=1e-5)


def test_title_prefix_is_part_of_the_chunking_config(embedder: Embedder) -> None:
    article = Article(title="Ferry service", body="The ferry resumed.")
    chunk = Chunk(article.id, 0, 0, len(article.body), article.body)
    assert embedding_text(article, chunk, embedder) == "Ferry service\nThe ferry resumed."
    assert embedding_text(article, chunk, embedder, title_prefix=False) == article.body
    config = ChunkingConfig(model="m", tokens=200, overlap=40)
    assert json.loads(config.signature())["title"] is True
    assert config.signature() != ChunkingConfig(model="m", tokens=200, overlap=40,
                                                title_prefix=False).signature()


def test_one_summary_wording() -> None:
    report = IndexReport(indexed=2, unchanged=1, duplicates=1, skipped=1, articles=3,
                         chunks=9, chunks_added=4)
    assert summary_line(report.to_dict()) == "2 indexed, 1 unchanged, 1 duplicates, 1 skipped"
    assert report.summary().startswith("2 indexed, 1 unchanged, 1 duplicates, 1 skipped (4 ")
    assert summary_line({"skipped": [{"path": "x"}]}) == "1 skipped"
    assert summary_line({}) == "nothing to do"


def test_supported_suffixes_are_public() -> None:
    assert {".markdown", ".ndjson", ".txt", ".atom"} <= SUPPORTED_SUFFIXES
    assert describe_supported() == ", ".join(sorted(SUPPORTED_SUFFIXES))


OFFLINE_PROBE = """
import json, os, sys
if sys.argv[1] == "embedder":
    from index.embedding import get_embedder
    get_embedder().warm_up()
else:
    from index.settings import Settings
    from index.store import Store
    Store(Settings(data_dir=sys.argv[2]), model_name="x").exists()
print(json.dumps({k: os.environ.get(k) for k in json.loads(os.environ["PROBE_KEYS"])}))
"""


@pytest.mark.parametrize("part", ["embedder", "store"])
def test_the_library_applies_the_offline_environment(part: str, tmp_path: Path) -> None:
    """`from index.embedding import get_embedder; get_embedder().warm_up()` (or opening a
    Store) in a process whose environment lacks every offline variable sets them all."""
    env = {key: value for key, value in os.environ.items()
           if key not in OFFLINE_ENV and not key.startswith(("HF_", "TRANSFORMERS_"))}
    env.update(PYTHONPATH=str(ROOT), PROBE_KEYS=json.dumps(sorted(OFFLINE_ENV)))
    result = subprocess.run([sys.executable, "-c", OFFLINE_PROBE, part, str(tmp_path / "d")],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == OFFLINE_ENV
