"""The learned reader: weights from package data, the sha256 check, the real training path."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from index.settings import OFFLINE_ENV
from qa.errors import EvalError
from qa.reader import (
    FEATURES,
    METADATA_FILE,
    SHA_FILE,
    WEIGHTS_DIR,
    WEIGHTS_FILE,
    AnswerFrame,
    Calibrator,
    Reader,
    ReaderConfig,
    ReaderWeightsError,
    SpanReading,
    answer_pairs,
    build_answer_head,
    build_encoder,
    choose_answer,
    complete_name,
    decode_answer,
    file_sha256,
    fits_type,
    pair_logits,
    refine_answer,
    span_reading,
    widen_to_words,
)
from qa.text import words

ROOT = Path(__file__).resolve().parents[2]
TRAIN_DIR = ROOT.parent / "shared" / "eval" / "realtimeqa-train"
QUESTION = "Which newspaper interviewed Trenta?"
SPANS = ["Trenta told the Corriere della Sera newspaper that Italy opposed intervention.",
         "Tomatoes need sun and regular watering in the summer months.",
         "The ministers agreed to meet again next month."]


def _bare_scores(reader: Reader) -> np.ndarray:
    """The same head on the encoder WITHOUT the adapter."""
    import torch

    state = torch.load(reader.folder / WEIGHTS_FILE, weights_only=True)
    tokenizer, encoder, head = build_encoder(ReaderConfig(variant="frozen"))
    head.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("head.")})
    encoder.eval()
    with torch.inference_mode():
        return pair_logits(tokenizer, encoder, head, QUESTION, SPANS).numpy()


def test_packaged_weights_load_by_path_and_match_their_sha256() -> None:
    reader = Reader()
    assert reader.folder == WEIGHTS_DIR
    assert reader.sha256 == file_sha256(WEIGHTS_DIR / WEIGHTS_FILE)
    assert (WEIGHTS_DIR / WEIGHTS_FILE).stat().st_size <= 10 * 1024 * 1024
    metadata = json.loads((WEIGHTS_DIR / METADATA_FILE).read_text(encoding="utf-8"))
    assert metadata["weights_sha256"] == reader.sha256
    assert {"data_sha256", "settings", "seed", "held_out"} <= set(metadata)
    scores = reader.score(QUESTION, SPANS)
    assert scores.shape == (len(SPANS),) and np.isfinite(scores).all()


def test_packaged_adapter_changes_scores_against_the_bare_encoder() -> None:
    reader = Reader()
    if reader.config.variant != "lora":
        pytest.skip("the packaged reader is the frozen variant: it has no adapter")
    adapted = reader.score(QUESTION, SPANS)
    assert not np.allclose(adapted, _bare_scores(reader), atol=1e-4)


def test_a_corrupted_copy_fails_the_sha256_check(tmp_path: Path) -> None:
    copy = tmp_path / "reader"
    shutil.copytree(WEIGHTS_DIR, copy)
    data = bytearray((copy / WEIGHTS_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / WEIGHTS_FILE).write_bytes(bytes(data))
    with pytest.raises(ReaderWeightsError, match="sha256"):
        Reader(copy).score(QUESTION, SPANS)


def test_missing_sha_file_is_a_clear_error(tmp_path: Path) -> None:
    copy = tmp_path / "reader"
    shutil.copytree(WEIGHTS_DIR, copy)
    (copy / SHA_FILE).unlink()
    with pytest.raises(ReaderWeightsError, match="sha256 missing"):
        Reader(copy).score(QUESTION, SPANS)


def test_too_many_candidates_are_refused() -> None:
    with pytest.raises(ReaderWeightsError, match="at most 2"):
        Reader(max_candidates=2).score(QUESTION, SPANS)


def test_malformed_training_data_names_file_and_line(tmp_path: Path) -> None:
    from qa.eval.train_reader import train_reader

    (tmp_path / "corpus.jsonl").write_text('{"id": "a"}\nnot json\n', encoding="utf-8")
    (tmp_path / "queries_train.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(EvalError, match=r"corpus\.jsonl:"):
        train_reader(tmp_path, tmp_path / "out", limit=1)
    (tmp_path / "corpus.jsonl").unlink()
    with pytest.raises(EvalError, match=r"corpus\.jsonl: training data file missing"):
        train_reader(tmp_path, tmp_path / "out", limit=1)


@pytest.mark.skipif(not TRAIN_DIR.is_dir(), reason="the RealTime QA training set is absent")
def test_tiny_training_run_through_the_cli_produces_loadable_weights(tmp_path: Path) -> None:
    out = tmp_path / "reader"
    env = {**os.environ, **OFFLINE_ENV, "NEWSQA_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run(
        [sys.executable, "-m", "ui.cli", "train", "reader", "--limit", "2", "--out", str(out),
         "--train-dir", str(TRAIN_DIR), "--variant", "lora", "--quiet", "--json"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr
    metadata = json.loads(result.stdout)
    assert metadata["chosen"] == "lora" and metadata["settings"]["max_steps"] == 1
    assert metadata["training_questions"] <= 2 and "lora" in metadata["held_out"]
    assert "answerer" in metadata["held_out"]  # trained beside the ranker, kept if it wins
    reader = Reader(out)
    assert reader.sha256 == metadata["weights_sha256"] == file_sha256(out / WEIGHTS_FILE)
    assert reader.config.variant == "lora" and reader.config.answer_head
    assert reader.config.answer_adapter == metadata["answerer_kept"]
    assert reader.score(QUESTION, SPANS).shape == (len(SPANS),)
    readings = reader.read(QUESTION, SPANS)
    assert all(r.answer_start is not None for r in readings)
    assert 0.0 <= reader.confidence(QUESTION, SPANS, readings) <= 1.0
    assert 0.0 <= reader.threshold <= 1.0
    refined = reader.short_answer(QUESTION, SPANS[0], readings[0])
    assert (refined.answerer_margin is not None) == metadata["answerer_kept"]
    assert {"ece_leave_one_week_out", "unanswerable_refused"} <= set(
        metadata["calibration_report"])


@pytest.mark.skipif(not TRAIN_DIR.is_dir(), reason="the RealTime QA training set is absent")
def test_the_frozen_variant_trained_beside_lora_in_its_own_process_is_the_same(
        tmp_path: Path) -> None:
    from qa.eval.train_reader import train_reader

    both = train_reader(TRAIN_DIR, tmp_path / "both", limit=2, baseline=False)
    alone = train_reader(TRAIN_DIR, tmp_path / "alone", limit=2, variants=("frozen",),
                         baseline=False)
    assert list(both["held_out"])[:2] == ["lora", "frozen"]
    figures = {k: v for k, v in both["held_out"]["frozen"].items() if k != "train_seconds"}
    assert figures == {k: v for k, v in alone["held_out"]["frozen"].items()
                       if k != "train_seconds"}
    if both["chosen"] == "frozen":  # the worker's head is what is saved
        assert both["weights_sha256"] == alone["weights_sha256"]


@pytest.mark.skipif(not TRAIN_DIR.is_dir(), reason="the RealTime QA training set is absent")
def test_the_answerer_trained_in_a_worker_process_is_the_one_trained_in_process() -> None:
    import concurrent.futures
    import multiprocessing

    import torch

    from qa.eval.train_reader import (
        CANDIDATES,
        HELD_OUT_WEEKS,
        TrainSettings,
        answerer_job,
        build_examples,
        load_training_data,
        split,
        train_answerer,
    )
    from qa.reader import ReaderConfig, answerer_state, load_answerer

    docs, questions, _ = load_training_data(TRAIN_DIR)
    chosen = [q for q in questions if q.week not in set(HELD_OUT_WEEKS)][:2]
    training, _ = split(build_examples(docs, chosen, CANDIDATES))
    settings = TrainSettings(max_steps=2)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        tensors, seconds = pool.submit(answerer_job, training, settings).result()
    here = train_answerer(training, settings)
    expected = answerer_state(here.encoder, here.answer_head)
    assert seconds > 0 and set(tensors) == set(expected)
    assert all(np.array_equal(tensors[k], expected[k].numpy()) for k in expected)
    # the tensors load back into an answerer that reads as the in-process one does
    config = ReaderConfig(variant="lora", answer_head=True)
    loaded = load_answerer(config, {k: torch.from_numpy(v) for k, v in tensors.items()})
    assert loaded is not None
    reloaded = answerer_state(*loaded)
    assert all(torch.equal(reloaded[k], expected[k]) for k in expected)


# --- the short answer ----------------------------------------------------------------------


def _word_aligned(span: str, start: int, end: int) -> bool:
    """Every word of `span` lies wholly inside or wholly outside [start, end)."""
    return all(w.end <= start or w.start >= end or (start <= w.start and w.end <= end)
               for w in words(span))


def test_packaged_reader_gives_word_aligned_short_answers_inside_the_span() -> None:
    reader = Reader()
    assert reader.config.answer_head
    readings = reader.read(QUESTION, SPANS)
    assert len(readings) == len(SPANS)
    assert [r.score for r in readings] == pytest.approx(list(reader.score(QUESTION, SPANS)),
                                                        abs=1e-4)
    for span, reading in zip(SPANS, readings, strict=True):
        assert reading.answer_start is not None and reading.answer_end is not None
        assert 0 <= reading.answer_start < reading.answer_end <= len(span)
        assert _word_aligned(span, reading.answer_start, reading.answer_end)
        assert words(span[reading.answer_start:reading.answer_end])


def test_decoding_picks_the_best_short_pair_and_widens_it_to_words() -> None:
    span = "Trenta told the Corriere della Sera newspaper"
    # word pieces: [CLS]-like 0, then "Tr" "enta" "told" "the" "Corr" "iere" "della" "Sera" ...
    offsets = np.array([[0, 0], [0, 2], [2, 6], [7, 11], [12, 15], [16, 20], [20, 24],
                        [25, 30], [31, 35], [36, 45]])
    inside = np.array([False] + [True] * 9)
    start = np.full(10, -5.0)
    end = np.full(10, -5.0)
    start[5], end[8] = 3.0, 2.0   # "Corr" .. "Sera"
    start[0], end[0] = 50.0, 50.0  # outside the span: never chosen
    found = decode_answer(start, end, inside, offsets, span)
    assert found is not None and span[found[0]:found[1]] == "Corriere della Sera"
    assert found[2] == pytest.approx(5.0)
    start[6] = 4.0                # best start in the middle of a word -> widened
    found = decode_answer(start, end, inside, offsets, span, max_pieces=3)
    assert span[found[0]:found[1]] == "Corriere della Sera"
    assert decode_answer(start, end, np.zeros(10, dtype=bool), offsets, span) is None


def test_an_end_before_the_start_or_too_long_an_answer_is_not_decoded() -> None:
    span = "one two three four"
    offsets = np.array([[0, 3], [4, 7], [8, 13], [14, 18]])
    inside = np.ones(4, dtype=bool)
    start, end = np.array([0.0, 0.0, 0.0, 9.0]), np.array([9.0, 0.0, 0.0, 0.0])
    found = decode_answer(start, end, inside, offsets, span)
    assert found is not None and found[0] <= found[1]
    assert span[found[0]:found[1]] != span           # not "one .. four" backwards
    start, end = np.array([9.0, 0.0, 0.0, 0.0]), np.array([0.0, 0.0, 0.0, 9.0])
    found = decode_answer(start, end, inside, offsets, span, max_pieces=2)
    assert span[found[0]:found[1]] in {"one two", "three four", "one", "four"}


def test_widening_never_cuts_a_word() -> None:
    text = "The Buffalo Bills won."
    assert widen_to_words(text, 6, 13) == (4, 17)
    assert text[slice(*widen_to_words(text, 4, 17))] == "Buffalo Bills"


# --- typed decoding ------------------------------------------------------------------------


def _word_pieces(span: str) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, inside) of a fake encoding: a [CLS] piece, then one piece per word."""
    offsets = np.array([[0, 0]] + [[w.start, w.end] for w in words(span)])
    return offsets, np.array([False] + [True] * (len(offsets) - 1))


def _logits(size: int, starts: dict[int, float], ends: dict[int, float]
            ) -> tuple[np.ndarray, np.ndarray]:
    start, end = np.full(size, -10.0), np.full(size, -10.0)
    for piece, value in starts.items():
        start[piece] = value
    for piece, value in ends.items():
        end[piece] = value
    return start, end


def test_a_stop_word_pair_loses_to_the_next_best_name_for_who() -> None:
    span = "He said that Maria Rossi won."
    offsets, inside = _word_pieces(span)
    # pieces: 1 He, 2 said, 3 that, 4 Maria, 5 Rossi, 6 won
    start, end = _logits(len(offsets), {2: 5.0, 4: 6.0}, {3: 5.0, 5: 1.0})
    pairs = answer_pairs(start, end, inside, offsets, span)
    assert [span[a:b] for a, b, _ in pairs[:2]] == ["said that", "Maria Rossi"]
    assert span[slice(*decode_answer(start, end, inside, offsets, span)[:2])] == "said that"
    reading = span_reading(1.5, span, pairs, AnswerFrame.of("Who won?"))
    assert span[reading.answer_start:reading.answer_end] == "Maria Rossi"
    assert reading.answer_fits
    assert reading.answer_score == pytest.approx(10.0)  # the head's best: the calibrator's
    untyped = span_reading(1.5, span, pairs, None)
    assert span[untyped.answer_start:untyped.answer_end] == "said that"


def _chosen(span: str, ranked: list[str], question: str) -> str:
    """The typed choice among `ranked` answers (best first, each a substring of `span`)."""
    pairs = [(span.index(t), span.index(t) + len(t), 10.0 - n) for n, t in enumerate(ranked)]
    chosen = choose_answer(span, pairs, AnswerFrame.of(question))
    return "" if chosen is None else span[chosen[0]:chosen[1]]


def test_the_answer_type_picks_a_number_a_date_or_a_name() -> None:
    span = "The union said 400 nurses walked out on Monday in Oakland."
    ranked = ["The union", "400 nurses", "Monday", "Oakland"]
    assert _chosen(span, ranked, "How many nurses walked out?") == "400 nurses"
    assert _chosen(span, ["The union", "Monday", "400 nurses"],
                   "When did the nurses walk out?") == "Monday"
    assert _chosen(span, ["walked out", "Oakland"], "Where did the strike start?") == "Oakland"
    assert _chosen(span, ranked, "What happened next?") == "The union"  # no type: the best


def test_an_answer_that_echoes_the_question_is_never_chosen() -> None:
    span = "The Nobel Prize went to Maria Rossi on Monday."
    assert _chosen(span, ["Nobel Prize", "Maria Rossi"], "Who won the Nobel Prize?") \
        == "Maria Rossi"
    frame = AnswerFrame.of("Who won the Nobel Prize?")
    assert not fits_type("Nobel Prize", frame) and not fits_type("the", frame)
    assert fits_type("Maria Rossi", frame) and not fits_type("went to", frame)
    # nothing plausible among the head's pairs: no short answer at all, rather than an echo
    assert _chosen(span, ["Nobel Prize", "The"], "Who won the Nobel Prize?") == ""
    pairs = [(4, 15, 7.0)]
    reading = span_reading(0.5, span, pairs, frame)
    assert not reading.has_answer and reading.answer_score == pytest.approx(7.0)


def test_without_a_fitting_pair_the_best_plausible_one_is_kept() -> None:
    span = "Officials said the strike would end soon."
    assert _chosen(span, ["Officials", "the strike"], "How many nurses joined?") == "Officials"
    pairs = [(0, 9, 3.0)]
    reading = span_reading(0.0, span, pairs, AnswerFrame.of("How many nurses joined?"))
    assert reading.has_answer and not reading.answer_fits


def test_a_one_word_name_cut_short_is_completed_over_its_capitalised_neighbours() -> None:
    frame = AnswerFrame.of("Which actor voices Mario in the new film?")
    span = "The film stars Chris Pratt as Mario. Jack Black plays Bowser."
    chris = span.index("Chris")
    assert span[slice(*complete_name(span, chris, chris + 5, frame))] == "Chris Pratt"
    # never over a question word ("Mario"), never over a sentence's first word ("Jack")
    black = span.index("Black")
    assert span[slice(*complete_name(span, black, black + 5, frame))] == "Black"
    assert _chosen(span, ["Pratt"], "Which actor voices Mario in the new film?") \
        == "Chris Pratt"
    taiwan = "A quake hit Taiwan's east coast."
    start = taiwan.index("Taiwan")
    assert taiwan[slice(*complete_name(taiwan, start, start + 8, frame))] == "Taiwan"
    long_name = "They met Ana Maria Luisa Sofia Perez there."
    ana = long_name.index("Luisa")
    completed = long_name[slice(*complete_name(long_name, ana, ana + 5, frame))]
    assert len(completed.split()) == 4 and "Luisa" in completed


@pytest.mark.skipif(not TRAIN_DIR.is_dir(), reason="the RealTime QA training set is absent")
def test_the_committed_weights_are_measured_on_held_out_weeks_without_training() -> None:
    from qa.eval.train_reader import evaluate_reader

    figures = evaluate_reader(TRAIN_DIR, limit=4)
    assert set(figures) == {"shipped", "answerer typed", "ranker untyped"}
    shipped = figures["shipped"]
    for values in figures.values():
        assert 1 <= values["questions"] == shipped["questions"] <= 4
        assert values["hit_at_1"] == shipped["hit_at_1"]  # decoding never moves the ranking
    for values in figures.values():
        assert all(0.0 <= values[k] <= 1.0 for k in ("short_em", "short_f1", "short_support"))


def _weights_without(tmp_path: Path, prefix: str, config_key: str) -> Path:
    """A copy of the packaged weights without the tensors under `prefix`, its config saying
    so (`config_key` False): like the weights before that part existed."""
    import torch

    from index.artifacts import record_weights

    copy = tmp_path / f"without-{config_key}"
    shutil.copytree(WEIGHTS_DIR, copy)
    state = torch.load(copy / WEIGHTS_FILE, weights_only=True)
    torch.save({k: v for k, v in state.items() if not k.startswith(prefix)},
               copy / WEIGHTS_FILE)
    metadata = json.loads((copy / METADATA_FILE).read_text(encoding="utf-8"))
    metadata["config"][config_key] = False
    record_weights(copy, WEIGHTS_FILE, SHA_FILE, METADATA_FILE, metadata)
    return copy


def test_weights_without_an_answer_head_still_load_and_give_no_short_answer(
        tmp_path: Path) -> None:
    reader = Reader(_weights_without(tmp_path, "answer.", "answer_head"))
    readings = reader.read(QUESTION, SPANS)
    assert all(r.answer_start is None and r.answer_end is None for r in readings)
    assert all(r.answer_score == 0.0 for r in readings)
    assert [r.score for r in readings] == pytest.approx(list(Reader().score(QUESTION, SPANS)),
                                                        abs=1e-4)


def _answerer_without_its_adapter(reader: Reader) -> tuple[object, object, object]:
    """The packaged answerer's head over the encoder WITHOUT the answerer's adapter."""
    import torch

    state = torch.load(reader.folder / WEIGHTS_FILE, weights_only=True)
    tokenizer, encoder, _ = build_encoder(ReaderConfig(variant="frozen"))
    head = build_answer_head(encoder)
    head.load_state_dict({k[len("answerer.answer."):]: v for k, v in state.items()
                          if k.startswith("answerer.answer.")})
    encoder.eval()
    head.eval()
    return tokenizer, encoder, head


ANSWERER_CASES = [(QUESTION, SPANS[0]),
                  ("Who won the election in Brazil?",
                   "Luiz Inacio Lula da Silva won the run-off against Jair Bolsonaro on Sunday."),
                  ("How many people died in the flood?",
                   "Officials said at least 43 people died when the river burst its banks."),
                  ("Where will the summit be held?",
                   "The leaders agreed that the summit will be held in Nairobi next spring.")]


#: Short answers the answerer must find (the ranker's own head: "43 people died when the
#: river", and the whole clause for the last).
ANSWERER_ANSWERS = [(*ANSWERER_CASES[2], "43"), (*ANSWERER_CASES[3], "Nairobi"),
                    ("Who told the Corriere della Sera that Italy opposed intervention?",
                     SPANS[0], "Trenta")]


def test_packaged_answerer_reads_the_lead_span_through_its_own_adapter(tmp_path: Path) -> None:
    import torch

    reader = Reader()
    assert reader.config.answer_adapter
    without = Reader(_weights_without(tmp_path, "answerer.", "answer_adapter"))
    # the second adapter leaves the ranking alone: same scores, same ranker answers
    assert list(reader.score(QUESTION, SPANS)) == pytest.approx(
        list(without.score(QUESTION, SPANS)), abs=1e-5)
    assert reader.read(QUESTION, SPANS) == without.read(QUESTION, SPANS)
    bare = _answerer_without_its_adapter(reader)
    differs = 0
    for question, span in ANSWERER_CASES:
        reading = reader.read(question, [span])[0]
        refined = reader.short_answer(question, span, reading)
        assert (refined.score, refined.answer_score) == (reading.score, reading.answer_score)
        assert refined.answerer_margin is not None
        assert refined.answer_start is not None and refined.answer_end is not None
        assert _word_aligned(span, refined.answer_start, refined.answer_end)
        assert without.short_answer(question, span, reading) == reading
        with torch.inference_mode():
            plain = refine_answer(bare, question, span, reading)
        differs += (plain.answer_start, plain.answer_end, plain.answerer_margin) != (
            refined.answer_start, refined.answer_end, refined.answerer_margin)
    assert differs == len(ANSWERER_CASES)  # the adapter is applied: its margins are its own
    for question, span, expected in ANSWERER_ANSWERS:
        refined = reader.short_answer(question, span, reader.read(question, [span])[0])
        assert span[refined.answer_start:refined.answer_end] == expected


#: Sentences of our own where the typed decoding stretches the answerer's answer over a
#: neighbouring name or clause; the shipped decoding (its best pair) does not.
UNTYPED_ANSWERS = [
    ("Which company is being sued for failing to pay rent?",
     "A landlord sued Musk's Twitter Inc on Monday for failing to pay rent at its San Francisco "
     "offices.", "Twitter", "Musk's Twitter Inc"),
    ("Which state banned food dyes in schools?",
     "Schools in Southern California must drop the dyes after the state banned them, the "
     "California Department of Education said.", "California", "Southern California"),
]


def test_the_answerers_short_answer_is_its_best_pair_not_the_typed_choice() -> None:
    shipped, typed = Reader(), Reader(typed_answerer=True)
    assert not shipped.typed_answerer and shipped.typed_answers  # the ranker's head stays typed
    for question, span, best, stretched in UNTYPED_ANSWERS:
        reading = shipped.read(question, [span])[0]
        answer = shipped.short_answer(question, span, reading)
        longer = typed.short_answer(question, span, reading)
        assert span[answer.answer_start:answer.answer_end] == best
        assert span[longer.answer_start:longer.answer_end] == stretched
        assert answer.answerer_margin == pytest.approx(longer.answerer_margin)


def test_the_answerers_margin_enters_the_confidence() -> None:
    reader = Reader()
    weight = dict(zip(FEATURES, reader.calibrator.weights, strict=True))["answerer_margin"]
    assert weight > 0.0
    readings = reader.read(QUESTION, SPANS)
    refined = [reader.short_answer(QUESTION, SPANS[0], readings[0]), *readings[1:]]
    low = [replace(refined[0], answerer_margin=-20.0), *refined[1:]]
    assert reader.confidence(QUESTION, SPANS, refined) > reader.confidence(QUESTION, SPANS, low)


# --- confidence ----------------------------------------------------------------------------


def _readings(top: float) -> list[SpanReading]:
    return [SpanReading(top, 0, 6, 4.0), SpanReading(-1.0, 0, 8, 1.0),
            SpanReading(-2.0, None, None)]


def test_packaged_confidence_is_a_probability_never_lowered_by_the_top_score() -> None:
    reader = Reader()
    confidences = [reader.confidence(QUESTION, SPANS, _readings(top))
                   for top in (-1.0, 0.0, 1.0, 2.0, 4.0, 8.0)]
    assert all(0.0 <= c <= 1.0 for c in confidences)
    assert confidences == sorted(confidences)
    weights = dict(zip(FEATURES, reader.calibrator.weights, strict=True))
    assert min(weights["top_score"], weights["margin"], weights["top_probability"]) >= 0.0
    assert any(w != 0.0 for w in weights.values())
    metadata = json.loads((WEIGHTS_DIR / METADATA_FILE).read_text(encoding="utf-8"))
    assert reader.threshold == metadata["calibration"]["threshold"]
    assert 0.0 < reader.threshold < 1.0


def test_confidence_rises_with_the_top_score_under_a_calibrator_that_weighs_it(
        tmp_path: Path) -> None:
    copy = tmp_path / "reader"
    shutil.copytree(WEIGHTS_DIR, copy)
    metadata = json.loads((copy / METADATA_FILE).read_text(encoding="utf-8"))
    metadata["calibration"]["weights"] = [1.0] + [0.0] * (len(FEATURES) - 1)
    (copy / METADATA_FILE).write_text(json.dumps(metadata), encoding="utf-8")
    reader = Reader(copy)
    confidences = [reader.confidence(QUESTION, SPANS, _readings(top))
                   for top in (-1.0, 0.0, 1.0, 2.0, 4.0, 8.0)]
    assert all(0.0 < c < 1.0 for c in confidences)
    assert all(a < b for a, b in itertools.pairwise(confidences))


def test_the_fit_never_gives_a_reader_score_a_negative_weight() -> None:
    from qa.eval.train_reader import fit_logistic

    rng = np.random.default_rng(1)
    features = rng.normal(size=(200, len(FEATURES)))
    labels = (features[:, 0] < 0).astype(float)   # the top score predicts the WRONG way
    calibrator = fit_logistic(features, labels)
    assert calibrator.weights[0] == 0.0
    assert calibrator.weights[FEATURES.index("answer_score")] != 0.0


def test_confidence_needs_one_reading_per_span() -> None:
    with pytest.raises(ReaderWeightsError, match="one reading per span"):
        Reader().confidence(QUESTION, SPANS, _readings(1.0)[:2])


def test_a_calibrator_that_does_not_fit_the_features_is_refused() -> None:
    with pytest.raises(ReaderWeightsError, match="features"):
        Calibrator(mean=(0.0,), scale=(1.0,), weights=(1.0,), bias=0.0, threshold=0.5)
    calibrator = Calibrator(mean=(0.0,) * len(FEATURES), scale=(1.0,) * len(FEATURES),
                            weights=(1.0,) + (0.0,) * (len(FEATURES) - 1), bias=0.0,
                            threshold=0.5)
    assert calibrator.probability((0.0,) * len(FEATURES)) == pytest.approx(0.5)
    assert Calibrator.from_dict(calibrator.to_dict()) == calibrator


def test_weights_without_calibration_say_so(tmp_path: Path) -> None:
    copy = _weights_without(tmp_path, "answer.", "answer_head")
    metadata = json.loads((copy / METADATA_FILE).read_text(encoding="utf-8"))
    del metadata["calibration"]
    (copy / METADATA_FILE).write_text(json.dumps(metadata), encoding="utf-8")
    with pytest.raises(ReaderWeightsError, match="no calibration"):
        _ = Reader(copy).threshold


# --- training helpers ----------------------------------------------------------------------


def test_the_answer_is_located_with_the_answer_normalisation() -> None:
    from qa.eval.train_reader import locate_answer

    text = "Fans of the Buffalo Bills, and the Bills' coach, said so."
    found = locate_answer("buffalo bills", text)
    assert found is not None and text[found[0]:found[1]] == "Buffalo Bills"
    found = locate_answer("The Bills' coach", text)
    assert found is not None and text[found[0]:found[1]] == "Bills' coach"
    assert locate_answer("Buffalo Sabres", text) is None
    assert locate_answer("Bill", text) is None


def test_the_calibrator_fit_and_the_threshold_on_a_fixture() -> None:
    from qa.eval.train_reader import fit_logistic, refusal_threshold

    rng = np.random.default_rng(0)
    score = rng.normal(size=200)
    features = np.column_stack([score, rng.normal(size=(200, len(FEATURES) - 1))])
    labels = (score + 0.3 * rng.normal(size=200) > 0).astype(float)
    calibrator = fit_logistic(features, labels)
    assert calibrator.weights[0] > 1.0
    low, high = (calibrator.probability([v] + [0.0] * (len(FEATURES) - 1)) for v in (-2.0, 2.0))
    assert low < 0.2 < 0.8 < high
    confidences = np.linspace(0.0, 1.0, 21)
    threshold = refusal_threshold(confidences)
    assert (confidences < threshold).mean() <= 0.10
    assert (confidences < np.nextafter(threshold, 2.0)).mean() > 0.10
