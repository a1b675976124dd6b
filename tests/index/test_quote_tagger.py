"""The learned attribution tagger: committed weights (sha256, size, sensible tags on a
hand-written sentence), decoding and linking, training labels, and a tiny real training run."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from index.quote_tagger import (
    FEATURES,
    METADATA_FILE,
    SHA_FILE,
    TAGS,
    WEIGHTS_DIR,
    WEIGHTS_FILE,
    Pieces,
    QuoteTagger,
    TaggedSpan,
    TaggerConfig,
    TaggerWeightsError,
    after_colon,
    article_states,
    build_head,
    decode_tags,
    file_sha256,
    link,
    nearest,
    owner_window,
    same_sentence,
    snap_to_words,
    token_features,
    windows,
    word_pieces,
)
from index.settings import OFFLINE_ENV
from qa.errors import EvalError
from qa.eval.train_quotes import (
    Encoded,
    GoldArticle,
    TrainSettings,
    labels,
    load_articles,
    train_epoch,
)
from tests.conftest import ROOT, require

POLNEAR_TRAIN = ROOT.parent / "shared" / "eval" / "polnear" / "train.jsonl"
SENTENCE = ("“We will not send troops to Libya,” the defense minister said on Monday. "
            "Paolo Rossi told reporters that the evacuation plans were ready.")


def _text_of(text: str, spans: tuple[tuple[int, int], ...]) -> str:
    return " ".join(text[start:end] for start, end in spans)


def test_committed_weights_load_by_path_and_match_their_sha256() -> None:
    tagger = QuoteTagger()
    assert tagger.folder == WEIGHTS_DIR
    assert tagger.sha256 == file_sha256(WEIGHTS_DIR / WEIGHTS_FILE)
    assert (WEIGHTS_DIR / WEIGHTS_FILE).stat().st_size <= 10 * 1024 * 1024
    metadata = json.loads((WEIGHTS_DIR / METADATA_FILE).read_text(encoding="utf-8"))
    assert metadata["weights_sha256"] == tagger.sha256
    assert metadata["limit"] is None and len(metadata["data_sha256"]) == 64
    assert metadata["held_out"]["content_overlap_f1"] > 0.5


def test_committed_tagger_tags_a_punctuated_sentence_sensibly(embedder) -> None:
    found = QuoteTagger(embedder=embedder).attributions(SENTENCE)
    by_content = {_text_of(SENTENCE, a.content): a for a in found}
    direct = next(a for c, a in by_content.items() if "send troops to Libya" in c)
    assert "minister" in _text_of(SENTENCE, direct.source)
    assert _text_of(SENTENCE, direct.cue) == "said"
    indirect = next(a for c, a in by_content.items() if "evacuation plans were ready" in c)
    assert "Rossi" in _text_of(SENTENCE, indirect.source)
    assert _text_of(SENTENCE, indirect.cue).startswith("told")  # PolNeAR cues keep "reporters"
    assert "Rossi" not in _text_of(SENTENCE, indirect.content)


def test_tags_from_states_the_caller_already_has_equal_a_fresh_pass(embedder) -> None:
    tagger = QuoteTagger(embedder=embedder)
    pieces = word_pieces(embedder.tokenizer, SENTENCE)
    states = article_states(embedder, pieces)
    spans = decode_tags(tagger.tag_ids(SENTENCE, pieces.offsets, states), pieces.offsets)
    assert spans == tagger.spans(SENTENCE)


def test_a_corrupted_copy_fails_the_sha256_check(tmp_path: Path) -> None:
    copy = tmp_path / "quotes"
    shutil.copytree(WEIGHTS_DIR, copy)
    data = bytearray((copy / WEIGHTS_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / WEIGHTS_FILE).write_bytes(bytes(data))
    with pytest.raises(TaggerWeightsError, match="sha256"):
        QuoteTagger(copy).head()
    (copy / SHA_FILE).unlink()
    with pytest.raises(TaggerWeightsError, match="sha256 missing"):
        QuoteTagger(copy).head()


def test_windows_cover_every_token_and_each_token_takes_its_most_central_window() -> None:
    ranges = windows(600, window=256, stride=192)
    assert ranges[0] == (0, 254) and ranges[-1][1] == 600
    owners = owner_window(600, ranges)
    assert owners[0] == 0 and owners[-1] == len(ranges) - 1
    assert owners[200] == 0 and owners[250] == 1  # 250 is 3 from window 0's end, 58 into 1's
    assert windows(10) == [(0, 10)]


def test_features_read_casing_and_quotes_from_the_cased_text() -> None:
    text = "“Go home,” said Smith."
    offsets = [(0, 1), (1, 3), (4, 8), (8, 9), (9, 10), (11, 15), (16, 21), (21, 22)]
    rows = token_features(text, offsets)
    assert rows.shape == (len(offsets), FEATURES)
    assert rows[0, 3] == 1 and rows[4, 4] == 1  # opening and closing mark
    assert rows[1, 5] == 1 and rows[5, 5] == 0  # "Go" inside the quote, "said" outside
    assert rows[6, 0] == 1 and rows[6, 10] == 1 and rows[5, 0] == 0  # "Smith" capitalised


def test_decoding_repairs_a_stray_inside_tag_and_splits_kinds() -> None:
    tag = {name: number for number, name in enumerate(TAGS)}
    offsets = [(0, 2), (3, 5), (6, 8), (9, 11), (12, 14)]
    tags = [tag["I-SOURCE"], tag["B-CUE"], tag["B-CONTENT"], tag["I-CONTENT"], tag["O"]]
    assert decode_tags(tags, offsets) == [TaggedSpan("SOURCE", 0, 2), TaggedSpan("CUE", 3, 5),
                                          TaggedSpan("CONTENT", 6, 11)]


def test_a_two_part_quote_around_its_cue_is_one_attribution() -> None:
    text = "“We will stay,” he said, “and we will fight.” Later, the police said nothing."
    spans = [TaggedSpan("CONTENT", 0, 15), TaggedSpan("SOURCE", 16, 18),
             TaggedSpan("CUE", 19, 23), TaggedSpan("CONTENT", 25, 45),
             TaggedSpan("SOURCE", 53, 63), TaggedSpan("CUE", 64, 68),
             TaggedSpan("CONTENT", 69, 76)]
    found = link(text, spans)
    assert [a.content for a in found] == [((0, 15), (25, 45)), ((69, 76),)]
    assert _text_of(text, found[0].source) == "he" and _text_of(text, found[0].cue) == "said"
    assert _text_of(text, found[1].source) == "the police"


def test_training_labels_are_bio_tags_of_the_gold_spans(embedder) -> None:
    text = "Smith said the plan works."
    article = GoldArticle("a", text, ({"source": ((0, 5),), "cue": ((6, 10),),
                                       "content": ((11, 25),)},))
    pieces = word_pieces(embedder.tokenizer, text)
    names = [TAGS[t] for t in labels(article, pieces.offsets)]
    assert names == ["B-SOURCE", "B-CUE", "B-CONTENT", "I-CONTENT", "I-CONTENT", "O"]


def test_malformed_training_data_names_file_and_line(tmp_path: Path) -> None:
    data = tmp_path / "train.jsonl"
    data.write_text('{"id": "a", "text": "x", "attributions": []}\nnot json\n', "utf-8")
    with pytest.raises(EvalError, match=r"train\.jsonl:2: not JSON"):
        load_articles(data)
    data.write_text('{"id": "a", "text": "x", "attributions": [{"cue": [[0]]}]}\n', "utf-8")
    with pytest.raises(EvalError, match=r"train\.jsonl:1 attribution 0 cue"):
        load_articles(data)
    with pytest.raises(EvalError, match="PolNeAR file missing"):
        load_articles(tmp_path / "absent.jsonl")


def test_tiny_training_run_through_the_cli_writes_weights_and_sha256(tmp_path: Path) -> None:
    require(POLNEAR_TRAIN.is_file(), "../shared/eval/polnear/train.jsonl")
    out = tmp_path / "quotes"
    env = {**os.environ, **OFFLINE_ENV, "TMPDIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "ui.cli", "train", "quotes", "--limit", "3", "--out", str(out),
         "--data", str(POLNEAR_TRAIN), "--quiet", "--json"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr
    metadata = json.loads(result.stdout)
    assert metadata["limit"] == 3 and metadata["training_articles"] == 2
    assert metadata["held_out_articles"] == 1
    tagger = QuoteTagger(out)
    assert tagger.sha256 == metadata["weights_sha256"] == file_sha256(out / WEIGHTS_FILE)
    assert tagger.metadata["data_sha256"] == metadata["data_sha256"]
    assert list((tmp_path / "newsqa-quote-states").glob("states-*.npy"))
    tags = tagger.tag_ids("Smith said so.", [(0, 5), (6, 10), (11, 13), (13, 14)],
                          np.zeros((4, 384), dtype=np.float32))
    assert len(tags) == 4


def test_content_spans_snap_to_whole_words() -> None:
    text = "He called the county a bellwether of elections."
    piece = (text.index("bell"), text.index("bell") + 4)
    assert text[slice(*snap_to_words(text, piece))] == "bellwether"
    assert snap_to_words(text, (0, 2)) == (0, 2), "a whole word stays as it is"


def test_a_stray_phrase_beside_a_quotation_does_not_hide_that_it_is_direct() -> None:
    text = "Well, the mayor said: “The ferry runs again in May, and it will be cheaper.”"
    quote = text.index("“")
    spans = [TaggedSpan("CONTENT", 0, 4), TaggedSpan("SOURCE", 6, 15),
             TaggedSpan("CUE", 16, 20), TaggedSpan("CONTENT", quote, len(text))]
    (found,) = link(text, spans)
    assert found.content == ((quote, len(text)),), "the one-word stray 'Well' is dropped"
    longer = "Well, as everyone on the pier knows by now, the mayor said: “It runs in May.”"
    quote = longer.index("“")
    spans = [TaggedSpan("CONTENT", 6, 42), TaggedSpan("SOURCE", 44, 53),
             TaggedSpan("CUE", 54, 58), TaggedSpan("CONTENT", quote, len(longer))]
    found = link(longer, spans)
    assert [a.content for a in found] == [((6, 42),), ((quote, len(longer)),)], \
        "an unquoted content of five words or more is its own attribution"


def test_a_cue_in_the_contents_sentence_wins_over_a_nearer_one_across_a_full_stop() -> None:
    text = ("Ruiz said no. The plan, which the council approved after a long night, was said "
            "to fail.")
    content = (text.index("The plan"), text.index(", which"))
    said = (text.index("said"), text.index("said") + 4)
    later = (text.index("said to"), text.index("said to") + 4)
    assert nearest(text, content, [said, later]) == later
    assert nearest(text, content, [said]) == said, "else the nearest within reach"


def test_words_leading_into_a_quotation_with_a_colon_are_trimmed_off() -> None:
    text = "She told the crowd in Reno: “This one is for you.” Later she left."
    content = (0, text.index(" Later"))
    assert text[slice(*after_colon(text, content))] == "“This one is for you.”"
    indirect = "He called the plan “a crucial step forward.”"
    assert after_colon(indirect, (3, len(indirect))) == (3, len(indirect)), \
        "without a colon the words are part of an indirect content"


def test_a_quotation_without_a_cue_of_its_own_continues_the_previous_speaker() -> None:
    text = ("“The pier is safe,” Ruiz said.\n\n“We checked it twice.” Dahl said later that the "
            "vote would wait.")
    second = (text.index("“We"), text.index(" Dahl"))
    dahl, cue = text.index("Dahl"), text.index("said later")
    spans = [TaggedSpan("CONTENT", 0, 19), TaggedSpan("SOURCE", 20, 24),
             TaggedSpan("CUE", 25, 29), TaggedSpan("CONTENT", *second),
             TaggedSpan("SOURCE", dahl, dahl + 4), TaggedSpan("CUE", cue, cue + 4),
             TaggedSpan("CONTENT", text.index("that the"), len(text) - 1)]
    found = {a.content[0]: a for a in link(text, spans)}
    assert _text_of(text, found[second].source) == "Ruiz", \
        "not Dahl, whose cue starts a sentence of its own"
    assert _text_of(text, found[(text.index("that the"), len(text) - 1)].source) == "Dahl"


def _tagged(text: str, *parts: tuple[str, str]) -> list[TaggedSpan]:
    """TaggedSpans for (kind, phrase) pairs, each phrase at its first occurrence."""
    return [TaggedSpan(kind, text.index(phrase), text.index(phrase) + len(phrase))
            for kind, phrase in parts]


def _source_of(text: str, *parts: tuple[str, str]) -> str:
    """The source `link` gives the one attribution of hand-tagged spans."""
    (found,) = link(text, _tagged(text, *parts))
    return _text_of(text, found.source)


def test_a_passive_cue_takes_its_agent_after_by() -> None:
    text = "Ana Ruiz spoke first. The fare rise was criticised by local fishermen for weeks."
    assert _source_of(text, ("SOURCE", "Ana Ruiz"), ("CUE", "was criticised"),
                      ("CONTENT", "The fare rise")) == "local fishermen"
    inside = "Her remarks were interpreted by some as a threat."
    assert _source_of(inside, ("CUE", "were interpreted"),
                      ("CONTENT", "by some as a threat")) == "some", \
        "the agent may sit inside the content"
    split = "The vote was called by the harbour board."
    assert _source_of(split, ("CUE", "called"), ("CONTENT", "The vote")) == \
        "the harbour board", "the 'was' before the tagged cue makes it passive"
    tagged = "The plan was rejected by most voters."
    assert _source_of(tagged, ("SOURCE", "most voters"), ("CUE", "was rejected"),
                      ("CONTENT", "The plan")) == "most voters", \
        "a tagged agent is kept, not dropped as an agentless passive"


def test_a_passive_without_an_agent_and_a_leading_asked_have_no_source() -> None:
    text = "Paul Vance was announced the winner on Monday."
    assert _source_of(text, ("SOURCE", "Paul Vance"), ("CUE", "was announced"),
                      ("CONTENT", "the winner")) == ""
    asked = "Asked about the fares, Ruiz said nothing."
    assert _source_of(asked, ("SOURCE", "Ruiz"), ("CUE", "Asked about"),
                      ("CONTENT", "the fares")) == "", "the asker is not named"
    when = "Ruiz smiled when asked about the fares."
    assert _source_of(when, ("SOURCE", "Ruiz"), ("CUE", "asked about"),
                      ("CONTENT", "the fares")) == ""
    convinced = "Ruiz was convinced that the fares would fall."
    assert _source_of(convinced, ("SOURCE", "Ruiz"), ("CUE", "was convinced"),
                      ("CONTENT", "that the fares would fall")) == "Ruiz", \
        "an inner state's holder is its source"


def test_an_evidential_cue_alone_has_no_source_but_a_verb_after_it_keeps_one() -> None:
    text = "The ferry plan seemed doomed from the start."
    assert _source_of(text, ("SOURCE", "The ferry plan"), ("CUE", "seemed"),
                      ("CONTENT", "doomed from the start")) == ""
    polls = "The harbour polls appear to favour Dahl."
    assert _source_of(polls, ("SOURCE", "The harbour polls"), ("CUE", "appear to"),
                      ("CONTENT", "favour Dahl")) == ""
    implied = "Ruiz appeared to imply that the fares would fall."
    assert _source_of(implied, ("SOURCE", "Ruiz"), ("CUE", "appeared to imply"),
                      ("CONTENT", "that the fares would fall")) == "Ruiz", \
        "a speech verb after the evidential is the speaker's"


def test_criticism_received_and_a_modified_or_auxiliary_passive_have_no_source() -> None:
    fire = "Dahl came under fire for the fare rise."
    assert _source_of(fire, ("SOURCE", "Dahl"), ("CUE", "came under"),
                      ("CONTENT", "fire for the fare rise")) == ""
    fielded = "Nora Quist has fielded sharp criticism on the ferry contract."
    assert _source_of(fielded, ("SOURCE", "Nora Quist"),
                      ("CUE", "has fielded sharp criticism on"),
                      ("CONTENT", "the ferry contract")) == ""
    named = "Dahl faced criticism from the harbour board over the fares."
    assert _source_of(named, ("SOURCE", "Dahl"), ("CUE", "faced criticism from"),
                      ("CONTENT", "over the fares")) == "Dahl", \
        "with 'from', the rule leaves the linked source alone"
    negated = "Ruiz is not expected to win the harbour seat."
    assert _source_of(negated, ("SOURCE", "Ruiz"), ("CUE", "is not expected"),
                      ("CONTENT", "to win the harbour seat")) == ""
    also = "Dahl is also expected to resign."
    assert _source_of(also, ("SOURCE", "Dahl"), ("CUE", "is also expected"),
                      ("CONTENT", "to resign")) == ""
    asked = "Dahl has been asked about the fares twice."
    assert _source_of(asked, ("SOURCE", "Dahl"), ("CUE", "has been asked about"),
                      ("CONTENT", "the fares")) == "", "a passive after an auxiliary"
    being = "The mayor was being challenged on the ferry contract."
    assert _source_of(being, ("SOURCE", "The mayor"), ("CUE", "was being challenged on"),
                      ("CONTENT", "the ferry contract")) == ""
    outspoken = "The harbour board has been outspoken in its opposition to the fares."
    assert _source_of(outspoken, ("SOURCE", "The harbour board"),
                      ("CUE", "has been outspoken in its opposition"),
                      ("CONTENT", "to the fares")) == "The harbour board", \
        "'outspoken' is not a passive"
    state = "Ruiz is not convinced that the fares will fall."
    assert _source_of(state, ("SOURCE", "Ruiz"), ("CUE", "is not convinced"),
                      ("CONTENT", "that the fares will fall")) == "Ruiz", \
        "an inner state's holder is its source, negated or not"


def test_a_participle_cue_takes_its_sentence_subject() -> None:
    text = "The mayor left early. Dahl closed the meeting, saying the ferries would run."
    assert _source_of(text, ("SOURCE", "The mayor"), ("CUE", "saying"),
                      ("CONTENT", "the ferries would run")) == "Dahl"


def test_a_source_in_another_sentence_gives_way_to_the_subject_before_the_cue() -> None:
    text = "Nora Quist spoke first. The company balked at the price."
    assert _source_of(text, ("SOURCE", "Nora Quist"), ("CUE", "balked at"),
                      ("CONTENT", "the price")) == "The company"
    alone = "Nora Quist left early. Then came the warning that the fares would fall."
    assert _source_of(alone, ("SOURCE", "Nora Quist"), ("CUE", "warning"),
                      ("CONTENT", "that the fares would fall")) == "", \
        "a source across a full stop from its cue, with none written by the cue, is dropped"
    memo = "Nora Quist left early. The fares would fall, according to a leaked memo."
    assert _source_of(memo, ("SOURCE", "Nora Quist"), ("CUE", "according to"),
                      ("CONTENT", "The fares would fall")) == "a leaked memo", \
        "a source across a full stop gives way to the one after 'according to'"
    toured = "Nora Quist left early. Dahl toured the pier and called the fares too high."
    assert _source_of(toured, ("SOURCE", "Nora Quist"), ("CUE", "called"),
                      ("CONTENT", "the fares too high")) == "Dahl", \
        "... and to the subject of a cue after 'and'"
    same = "Nora Quist said the company balked."
    assert _source_of(same, ("SOURCE", "Nora Quist"), ("CUE", "said"),
                      ("CONTENT", "the company balked")) == "Nora Quist", \
        "a source in the cue's own sentence is kept"


def test_a_tagged_source_of_function_words_names_no_one() -> None:
    text = "Ruiz met the board and said the fares would fall."
    spans = _tagged(text, ("SOURCE", "Ruiz"), ("CUE", "said"),
                    ("CONTENT", "the fares would fall"))
    spans.append(TaggedSpan("SOURCE", text.index(" and ") + 1, text.index(" and ") + 4))
    (found,) = link(text, spans)
    assert _text_of(text, found.source) == "Ruiz", "not the nearer 'and'"


def test_a_content_with_neither_cue_nor_source_continues_the_previous_speaker() -> None:
    filler = "The ferry left at noon with forty passengers aboard and a crew of six. " * 2
    text = f"Ruiz said the fares would fall.\n\n{filler}Ferries will run all winter."
    spans = _tagged(text, ("SOURCE", "Ruiz"), ("CUE", "said"),
                    ("CONTENT", "the fares would fall"), ("CONTENT", "Ferries will run"))
    found = link(text, spans)
    assert [_text_of(text, a.source) for a in found] == ["Ruiz", "Ruiz"]
    far = f"Ruiz said the fares would fall.\n\n{filler * 3}Ferries will run all winter."
    found = link(far, _tagged(far, ("SOURCE", "Ruiz"), ("CUE", "said"),
                              ("CONTENT", "the fares would fall"),
                              ("CONTENT", "Ferries will run")))
    assert [_text_of(far, a.source) for a in found] == ["Ruiz", ""], "too far to continue"


def test_a_possessive_source_widens_to_its_noun_phrase_unless_the_noun_is_the_cue() -> None:
    text = "The port closed. His attorney said the case was weak."
    assert _source_of(text, ("SOURCE", "His"), ("CUE", "said"),
                      ("CONTENT", "the case was weak")) == "His attorney"
    after = "The case was weak, according to their attorneys."
    assert _source_of(after, ("SOURCE", "their"), ("CUE", "according to"),
                      ("CONTENT", "The case was weak")) == "their attorneys"
    nominal = "Vance repeated his promise of lower fares."
    assert _source_of(nominal, ("SOURCE", "his"), ("CUE", "promise of"),
                      ("CONTENT", "lower fares")) == "his", "the noun is the cue itself"


def test_a_cue_without_a_source_takes_the_one_after_according_to_or_before_and() -> None:
    text = "The fares will fall next year, according to the harbour board."
    assert _source_of(text, ("CUE", "according to"),
                      ("CONTENT", "The fares will fall next year")) == "the harbour board"
    coordinated = "Dahl toured the pier on Monday and called the fares too high."
    assert _source_of(coordinated, ("CUE", "called"),
                      ("CONTENT", "the fares too high")) == "Dahl"


def test_a_relative_source_whose_clause_closes_before_the_cue_is_its_antecedent() -> None:
    text = "Nora Quist, who rarely sails, said the ferries should run all winter."
    assert _source_of(text, ("SOURCE", "who"), ("CUE", "said"),
                      ("CONTENT", "the ferries should run all winter")) == "Nora Quist", \
        "the main clause's cue, not the relative's"
    which = "The harbour board, which meets monthly, approved the fare rise."
    assert _source_of(which, ("SOURCE", "which"), ("CUE", "approved"),
                      ("CONTENT", "the fare rise")) == "The harbour board"
    own = "Ruiz thanked Paul Vance, who has vowed to keep the pier open."
    assert _source_of(own, ("SOURCE", "who"), ("CUE", "has vowed"),
                      ("CONTENT", "to keep the pier open")) == "who", \
        "a cue inside the relative clause is the relative's"
    aside = "Ruiz met Paul Vance, who, on a call Friday, criticised the fares."
    assert _source_of(aside, ("SOURCE", "who"), ("CUE", "criticised"),
                      ("CONTENT", "the fares")) == "who", "a comma right after 'who' opens an aside"


def test_an_abbreviation_does_not_end_the_sentence_of_a_cue() -> None:
    text = "Nora Quist backed Sen. Paul Vance on Monday, saying the fares would fall."
    assert _source_of(text, ("SOURCE", "Nora Quist"), ("CUE", "saying"),
                      ("CONTENT", "the fares would fall")) == "Nora Quist", \
        "not a source across a full stop: 'Sen.' ends no sentence"
    assert not same_sentence(text, (0, 4), (len(text) - 5, len(text)))
    assert same_sentence(text, (0, 4), (len(text) - 5, len(text)), past_abbreviations=True)
    stop = "Nora Quist left early. The pier closed, saying nothing."
    assert not same_sentence(stop, (0, 4), (len(stop) - 5, len(stop)),
                             past_abbreviations=True), "a real full stop still ends one"


def test_a_passive_after_an_auxiliary_or_adverb_takes_its_agent() -> None:
    text = "The closure was first reported by the harbour gazette."
    assert _source_of(text, ("CUE", "was first reported"),
                      ("CONTENT", "The closure")) == "the harbour gazette"
    aux = "Dahl has been criticised by some of his rivals for the fares."
    assert _source_of(aux, ("SOURCE", "Dahl"), ("CUE", "has been criticised by"),
                      ("CONTENT", "for the fares")) == "some of his rivals"
    startled = "The board members have been startled by the fare rise."
    assert _source_of(startled, ("SOURCE", "The board members"),
                      ("CUE", "have been startled by"),
                      ("CONTENT", "the fare rise")) == "The board members", \
        "an inner state ('startled') is not a passive: its holder is the source"


def test_the_epoch_choice_reads_only_the_heads_token_f1() -> None:
    """A change to the linking rules moves the post-processed figures, never the epoch."""
    from qa.eval.train_quotes import selection_score

    head = {"token_f1_source": 0.81, "token_f1_cue": 0.66, "token_f1_content": 0.89}
    assert selection_score({**head, "content_overlap_f1": 0.2, "speaker_match": 0.1}) == \
        selection_score({**head, "content_overlap_f1": 0.9, "speaker_match": 0.9})
    assert selection_score({**head, "token_f1_cue": 0.7}) > selection_score(head)


def test_an_article_tagged_alone_before_a_noun_verb_cue_takes_the_noun() -> None:
    """ "the" + "statement said": the source is "the statement", the cue "said" (else the
    article names no one and the quotation has no speaker)."""
    text = "The ferry company replied on Monday. “Fares will fall,” the statement said."
    (found,) = link(text, _tagged(text, ("CONTENT", "“Fares will fall,”"), ("SOURCE", "the"),
                                  ("CUE", "statement said")))
    assert _text_of(text, found.source) == "the statement"
    assert _text_of(text, found.cue) == "said"
    auxiliary = "“Fares will fall,” the board has said."
    (kept,) = link(auxiliary, _tagged(auxiliary, ("CONTENT", "“Fares will fall,”"),
                                      ("SOURCE", "the board"), ("CUE", "has said")))
    assert _text_of(auxiliary, kept.cue) == "has said", "a source with its noun is untouched"


def test_source_and_cue_tags_weigh_more_in_the_loss() -> None:
    """The loss weights SOURCE and CUE tags (B and I) above the others, and the weights
    change what one training step does."""
    import torch

    weights = dict(zip(TAGS, TrainSettings().tag_weights(), strict=True))
    assert weights["B-SOURCE"] == weights["I-CUE"] == 2.0
    assert weights["O"] == weights["I-CONTENT"] == 1.0
    tag = {name: number for number, name in enumerate(TAGS)}
    text = "Ruiz said so."
    offsets = ((0, 4), (5, 9), (10, 12), (12, 13))
    item = Encoded(GoldArticle("a", text, ()), Pieces((1, 2, 3, 4), offsets),
                   np.random.default_rng(1).standard_normal((4, 384)).astype(np.float16),
                   token_features(text, offsets),
                   np.array([tag["B-SOURCE"], tag["B-CUE"], tag["B-CONTENT"], tag["O"]]))
    losses = []
    for settings in (TrainSettings(), TrainSettings(class_weights=())):
        torch.manual_seed(0)
        head = build_head(TaggerConfig())
        optimiser = torch.optim.SGD(head.parameters(), lr=0.1)
        losses.append(train_epoch(head, optimiser, [item], settings, random.Random(0)))
    assert losses[0] != pytest.approx(losses[1])
