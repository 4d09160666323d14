"""Metrics: known cases for each measure, the style classifier, and identity vs oracle."""
from __future__ import annotations

import math

import numpy as np
import pytest

from mstoolkit.metrics import (
    StyleClassifier,
    chroma,
    chroma_dtw_similarity,
    content_similarity,
    descriptors,
    empty_beat_rate,
    error_breakdown,
    error_shares,
    groove_consistency,
    nearest_neighbour_agreement,
    note_prf,
    pitch_class_entropy,
    polyphony,
    score_pair,
    score_transfer,
    style_profile_similarity,
    swing_ratio,
    train_style_classifier,
)
from mstoolkit.piece import Note, Piece, TimeSignature
from mstoolkit.styles import list_styles, render_style

PROGRESSIONS = [(0, "maj"), (5, "maj"), (7, "maj"), (9, "min"), (2, "min"), (4, "min")]


def random_chorale(seed: int, n_bars: int = 4, numerator: int = 4) -> Piece:
    """A chorale-like piece: one chord per beat in four voices, soprano in quarters and eighth pairs."""
    rng = np.random.default_rng(seed)
    notes = []
    for beat in range(n_bars * numerator):
        t = 12 * beat
        root, quality = PROGRESSIONS[0] if beat in (0, n_bars * numerator - 1) else PROGRESSIONS[rng.integers(6)]
        third = 4 if quality == "maj" else 3
        pcs = [root, (root + third) % 12, (root + 7) % 12]
        notes.append(Note(t, 12, 36 + (root - 36) % 12 + 12))  # bass, 48-59
        for low, pc in zip((55, 60), rng.permutation(pcs)[:2]):
            notes.append(Note(t, 12, low + (int(pc) - low) % 12))  # tenor, alto
        top = 67 + (int(rng.choice(pcs)) - 67) % 12  # soprano, 67-78
        if rng.random() < 0.4:  # an eighth pair: chord tone, then a step
            notes += [Note(t, 6, top), Note(t + 6, 6, top + int(rng.choice([-2, -1, 1, 2])))]
        else:
            notes.append(Note(t, 12, top))
    return Piece(notes, time_signatures=[TimeSignature(0, numerator, 4)], name=f"random{seed}")


def eighths(starts_durations, pitch=60):
    return Piece([Note(s, d, pitch + i % 5) for i, (s, d) in enumerate(starts_durations)])


# ----------------------------------------------------------------------------- note F1


def test_note_prf_known_cases():
    p = random_chorale(0)
    assert note_prf(p, p) == (1.0, 1.0, 1.0)
    shifted = Piece([Note(n.start + 2, n.duration, n.pitch) for n in p.notes])
    assert note_prf(shifted, p).f1 == 0.0
    assert note_prf(shifted, p, onset_tolerance=2).f1 == 1.0
    assert note_prf(p.transpose(1), p).f1 == 0.0
    # one-to-one: a doubled note matches once
    doubled = Piece([Note(0, 12, 60), Note(0, 12, 60)])
    assert note_prf(doubled, Piece([Note(0, 12, 60)])) == (0.5, 1.0, pytest.approx(2 / 3))
    # maximal matching: out 1 could take target 0 or 2; out 3 only target 2 -> two matches
    out, ref = Piece([Note(1, 1, 60), Note(3, 1, 60)]), Piece([Note(0, 1, 60), Note(2, 1, 60)])
    assert note_prf(out, ref).f1 == 1.0
    assert note_prf(Piece(), Piece()) == (1.0, 1.0, 1.0) and note_prf(Piece(), p).f1 == 0.0
    with pytest.raises(ValueError, match="onset_tolerance"):
        note_prf(p, p, onset_tolerance=-1)


# ----------------------------------------------------------------------------- error breakdown

TARGET = Piece([Note(0, 12, 60), Note(12, 12, 64), Note(24, 12, 67), Note(36, 12, 72)])  # C4 E4 G4 C5


def breakdown(*notes: Note, target: Piece = TARGET, **kwargs) -> dict:
    return error_breakdown(Piece(list(notes)), target, **kwargs)


def test_error_breakdown_one_note_of_each_kind():
    cases = {
        "exact": Note(1, 12, 60),        # C4, one tick late: within the tolerance
        "octave": Note(12, 12, 52),      # E3 where the target has E4
        "wrong_pitch": Note(24, 12, 66),  # F#4 where the target has G4
        "timing": Note(42, 6, 72),       # C5 half a beat late
        "other": Note(60, 12, 61),       # C#4 after the target's last note
    }
    for kind, note in cases.items():
        counts = breakdown(note)
        assert counts == {"n_output": 1, "exact": 0, "octave": 0, "wrong_pitch": 0, "timing": 0, "other": 0,
                          "n_target": 4, "missed": 4 - (kind == "exact"), kind: 1}, kind
    counts = breakdown(*cases.values())
    assert counts == {"n_output": 5, "exact": 1, "octave": 1, "wrong_pitch": 1, "timing": 1, "other": 1,
                      "n_target": 4, "missed": 3}
    shares = error_shares(counts)
    assert shares == {"exact": 0.2, "octave": 0.2, "wrong_pitch": 0.2, "timing": 0.2, "other": 0.2, "missed": 0.75}
    assert sum(shares[k] for k in ("exact", "octave", "wrong_pitch", "timing", "other")) == pytest.approx(1.0)


def test_error_breakdown_edges_of_each_rule():
    # two octaves down still counts as an octave error; the same onset but two ticks off does not
    assert breakdown(Note(12, 12, 40))["octave"] == 1
    assert breakdown(Note(14, 12, 76))["other"] == 1
    assert breakdown(Note(14, 12, 76), onset_tolerance=2)["octave"] == 1
    # timing: up to one beat (12 ticks) off, either way; 13 ticks is too far
    assert breakdown(Note(12, 12, 60))["wrong_pitch"] == 1  # E4's onset: the right beat wins over timing
    assert breakdown(Note(6, 6, 60))["timing"] == 1 and breakdown(Note(48, 12, 72))["timing"] == 1
    assert breakdown(Note(49, 12, 72))["other"] == 1
    # one-to-one: a second copy of a matched note finds its beat but no pitch left to take
    assert breakdown(Note(0, 12, 60), Note(0, 6, 60)) == {
        "n_output": 2, "exact": 1, "octave": 0, "wrong_pitch": 1, "timing": 0, "other": 0, "n_target": 4, "missed": 3}
    # the exact class is note_prf's matching: precision = exact / n_output, recall = exact / n_target
    p = random_chorale(3)
    shifted = Piece([Note(n.start + (n.pitch % 2), n.duration, n.pitch) for n in p.notes])
    counts, prf = error_breakdown(shifted, p, onset_tolerance=0), note_prf(shifted, p, onset_tolerance=0)
    assert 0 < counts["exact"] < counts["n_output"]
    assert prf.precision == counts["exact"] / counts["n_output"] and prf.recall == counts["exact"] / counts["n_target"]
    with pytest.raises(ValueError, match="onset_tolerance"):
        breakdown(Note(0, 12, 60), onset_tolerance=-1)


def test_error_breakdown_identical_empty_and_drums():
    p = random_chorale(4)
    n = len(p.notes)
    assert error_breakdown(p, p) == {"n_output": n, "exact": n, "octave": 0, "wrong_pitch": 0, "timing": 0,
                                     "other": 0, "n_target": n, "missed": 0}
    assert error_shares(error_breakdown(p, p))["exact"] == 1.0
    empty = error_breakdown(Piece(), p)
    assert empty == {"n_output": 0, "exact": 0, "octave": 0, "wrong_pitch": 0, "timing": 0, "other": 0,
                     "n_target": n, "missed": n}
    shares = error_shares(empty)
    assert math.isnan(shares["exact"]) and shares["missed"] == 1.0
    assert error_breakdown(Piece(), Piece())["n_output"] == 0
    drums = [Note(0, 3, 36, is_drum=True), Note(12, 3, 60, is_drum=True)]  # 60 on the drum channel: not a C4
    assert error_breakdown(Piece([Note(0, 12, 60), *drums]), Piece([Note(0, 12, 60), *drums])) == {
        "n_output": 1, "exact": 1, "octave": 0, "wrong_pitch": 0, "timing": 0, "other": 0, "n_target": 1, "missed": 0}


# ----------------------------------------------------------------------------- chroma


def test_chroma_counts_sounding_ticks_per_pitch_class():
    c = chroma(Piece([Note(0, 6, 60), Note(3, 3, 64), Note(0, 6, 72)]), step=3)
    assert c.shape == (12, 2)
    assert c[0].tolist() == [6.0, 6.0] and c[4].tolist() == [0.0, 3.0] and c.sum() == 15.0


def test_chroma_dtw_similarity():
    p = random_chorale(1)
    assert chroma_dtw_similarity(p, p) == pytest.approx(1.0)
    slower = Piece([Note(2 * n.start, 2 * n.duration, n.pitch) for n in p.notes])
    other = random_chorale(2).transpose(6)
    assert chroma_dtw_similarity(slower, p) > 0.95  # warping absorbs the tempo change
    assert chroma_dtw_similarity(other, p) < 0.7
    assert 0.0 <= chroma_dtw_similarity(Piece([Note(0, 12, 60)]), Piece([Note(0, 12, 61)])) <= 0.01


def test_content_similarity():
    triad = Piece([Note(0, 48, p) for p in (60, 64, 67)])
    assert content_similarity(triad, triad) == pytest.approx(1.0)
    assert content_similarity(triad.transpose(12), triad) == pytest.approx(1.0)  # octaves do not matter
    assert content_similarity(triad.transpose(6), triad) == 0.0  # F# A# C# shares nothing with C E G
    half = Piece([Note(0, 24, p) for p in (60, 64, 67)])
    assert content_similarity(half, triad) == pytest.approx(0.5)  # beats 3-4 sound in one piece only


# ----------------------------------------------------------------------------- style profiles, swing


def test_style_profile_similarity():
    p = random_chorale(3)
    assert style_profile_similarity(p, p) == pytest.approx(
        {"onset_position": 1.0, "onset_duration": 1.0, "onset_velocity": 1.0, "mean": 1.0})
    straight = eighths([(6 * i, 6) for i in range(8)])
    swung = eighths([(12 * i + o, d) for i in range(4) for o, d in ((0, 8), (8, 4))])
    s = style_profile_similarity(swung, straight)
    assert s["onset_position"] == pytest.approx(0.5)  # the on-beats agree, the off-beats do not
    assert s["onset_duration"] == 0.0 and s["onset_velocity"] == pytest.approx(0.5)


def test_swing_ratio():
    assert swing_ratio(eighths([(6 * i, 6) for i in range(8)])) == 1.0
    assert swing_ratio(eighths([(12 * i + o, 4) for i in range(4) for o in (0, 8)])) == 2.0
    assert swing_ratio(eighths([(12 * i + o, 3) for i in range(4) for o in (0, 9)])) == 3.0
    assert swing_ratio(eighths([(12 * i, 12) for i in range(4)])) is None  # quarters: no evidence
    assert swing_ratio(eighths([(3 * i, 3) for i in range(8)])) is None  # sixteenths: no evidence
    assert swing_ratio(Piece()) is None
    p = random_chorale(4)
    assert swing_ratio(p) == 1.0
    assert swing_ratio(render_style(p, "swing")) == 2.0
    assert swing_ratio(render_style(p, "shuffle")) == 3.0


# ----------------------------------------------------------------------------- MusPy descriptors


def test_descriptors_known_values():
    triad = Piece([Note(0, 48, p) for p in (60, 64, 67)])
    assert pitch_class_entropy(triad) == pytest.approx(math.log2(3))
    assert pitch_class_entropy(Piece([Note(12 * i, 12, 60 + i) for i in range(12)])) == pytest.approx(math.log2(12))
    assert pitch_class_entropy(Piece([Note(0, 12, 60), Note(12, 12, 72)])) == 0.0
    assert polyphony(triad) == 3.0
    assert polyphony(Piece([Note(0, 12, 60), Note(0, 6, 64)])) == 1.5
    assert empty_beat_rate(Piece([Note(0, 12, 60), Note(24, 24, 62)])) == pytest.approx(0.25)  # beat 2 of 4
    repeated = Piece([Note(48 * b + t, 6, 60) for b in range(4) for t in (0, 6, 24)])
    assert groove_consistency(repeated) == 1.0
    alternating = Piece([Note(48 * b + (0 if b % 2 == 0 else 12), 6, 60) for b in range(3)])
    assert groove_consistency(alternating) == pytest.approx(1 - 2 / 48)
    assert all(math.isnan(v) for v in descriptors(Piece()).values())


# ----------------------------------------------------------------------------- style classifier


@pytest.fixture(scope="module")
def classifier() -> StyleClassifier:
    meters = [4, 4, 3, 4, 4, 3]
    train = [(render_style(random_chorale(s, numerator=n), style, seed=s), style)
             for s, n in enumerate(meters) for style in list_styles()]
    return train_style_classifier(train)


def test_style_classifier_predicts_held_out_pieces(classifier):
    test = [(render_style(random_chorale(s, numerator=n), style, seed=s), style)
            for s, n in ((100, 4), (101, 4), (102, 4), (103, 3)) for style in list_styles()]
    assert classifier.accuracy(test) >= 0.95  # different pieces from the training ones


def test_style_classifier_save_load_round_trip(classifier, tmp_path):
    path = tmp_path / "clf.json"
    classifier.save(path)
    loaded = StyleClassifier.load(path)
    pieces = [render_style(random_chorale(7), s) for s in list_styles()]
    assert loaded.predict(pieces) == classifier.predict(pieces)
    np.testing.assert_allclose(loaded.decision(pieces), classifier.decision(pieces))
    (tmp_path / "bad.json").write_text("{\"classes\": 3}")
    with pytest.raises(ValueError, match="bad.json: not a style classifier"):
        StyleClassifier.load(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="at least two styles"):
        train_style_classifier([(pieces[0], "swing")])


# ----------------------------------------------------------------------------- one triplet


def test_score_pair_oracle_beats_identity(classifier):
    window, other = random_chorale(20), random_chorale(21)
    content = render_style(window, "waltz")
    for style in ("swing", "alberti"):
        target, reference = render_style(window, style), render_style(other, style, seed=1)
        oracle = score_pair(target, target, content, reference, style=style, classifier=classifier)
        identity = score_pair(content, target, content, reference, style=style, classifier=classifier)
        assert oracle["note_f1"] == 1.0 and oracle["dtw_similarity"] == pytest.approx(1.0)
        assert oracle["style_correct"] == 1.0 and identity["style_correct"] == 0.0
        assert identity["content_similarity"] == pytest.approx(1.0)
        for key in ("note_f1", "dtw_similarity", "style_profile_similarity"):
            assert identity[key] < oracle[key] - 0.1, key
        if style == "swing":
            assert oracle["swing_ratio_error"] == 0.0 and identity["swing_ratio_error"] == 1.0
        else:
            assert oracle["swing_ratio_error"] is None
    assert set(oracle) >= {"note_f1", "note_precision", "note_recall", "dtw_similarity", "content_similarity",
                           "style_profile_similarity", "swing_ratio_error", "pitch_class_entropy",
                           "groove_consistency", "empty_beat_rate", "polyphony"}
    # the error breakdown, as counts under notes_*
    n = len(target.notes)
    assert {k: v for k, v in oracle.items() if k.startswith("notes_")} == {
        "notes_output": n, "notes_exact": n, "notes_octave": 0, "notes_wrong_pitch": 0, "notes_timing": 0,
        "notes_other": 0, "notes_target": n, "notes_missed": 0}
    counts = error_breakdown(content, target)
    assert [identity[f"notes_{k}"] for k in ("output", "exact", "wrong_pitch", "missed")] == [
        counts["n_output"], counts["exact"], counts["wrong_pitch"], counts["missed"]]
    assert identity["notes_exact"] < n


def test_score_transfer_with_and_without_a_ground_truth(classifier):
    """What the Transfer Studio shows: every measure against a target for a named style; for an uploaded
    reference (no target) only what needs none; the classifier's verdict when there are notes."""
    window, other = random_chorale(30), random_chorale(31)
    content, target, reference = render_style(window, "straight"), render_style(window, "swing"), \
        render_style(other, "swing")
    named = score_transfer(target, content, reference, style="swing", target=target, classifier=classifier)
    assert named == {**score_pair(target, target, content, reference, style="swing"),
                     "predicted_style": "swing", "style_correct": 1.0}
    uploaded = score_transfer(content, content, reference, classifier=classifier)
    assert "note_f1" not in uploaded and "style_correct" not in uploaded and uploaded["predicted_style"] in list_styles()
    assert uploaded["content_similarity"] == pytest.approx(1.0) and 0 <= uploaded["style_profile_similarity"] <= 1
    audio_reference = np.zeros(22050, dtype=np.float32)  # an audio upload: no notes to profile
    assert "style_profile_similarity" not in score_transfer(content, content, audio_reference)
    assert "predicted_style" not in score_transfer(Piece([]), content, reference, classifier=classifier)


def test_nearest_neighbour_agreement():
    points = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0], [5.0, 5.2]])
    assert nearest_neighbour_agreement(points, list("aabbb")) == 1.0
    assert nearest_neighbour_agreement(points, list("ababa")) == pytest.approx(1 / 5)
    with pytest.raises(ValueError, match="expected"):
        nearest_neighbour_agreement(points, list("ab"))
