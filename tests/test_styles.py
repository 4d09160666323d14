"""Style renderers: each idiom pinned on tiny hand-written pieces, plus the shared invariants."""
from __future__ import annotations

import pytest

from mstoolkit.piece import Note, Piece, TimeSignature
from mstoolkit.styles import (
    STYLES,
    Chord,
    estimate_chords,
    get_style,
    list_styles,
    melody,
    n_bars,
    render_style,
)

C_MAJOR, F_MAJOR, G7, A_MINOR = (48, 52, 55), (53, 57, 60), (43, 53, 59, 55), (45, 52, 60)


def block_chords(chords, bar_ticks=48, soprano=()):
    """One held chord per bar plus an optional soprano line [(start, duration, pitch), ...]."""
    notes = [Note(i * bar_ticks, bar_ticks, p) for i, chord in enumerate(chords) for p in chord]
    notes += [Note(s, d, p) for s, d, p in soprano]
    return notes


def chorale() -> Piece:
    """4 bars of 4/4, C F G7 C, soprano in eighths then quarters, with a syncopation."""
    soprano = [(6 * i, 6, p) for i, p in enumerate([72, 74, 76, 77, 79, 77, 76, 74])]
    soprano += [(48 + 12 * i, 12, p) for i, p in enumerate([72, 69, 72, 74])]
    soprano += [(96, 18, 74), (114, 6, 71), (120, 24, 74), (144, 48, 72)]
    return Piece(block_chords([C_MAJOR, F_MAJOR, G7, C_MAJOR], soprano=soprano), name="chorale")


def waltz_content() -> Piece:
    """2 bars of 3/4 (C, then F) under a soprano in quarters."""
    soprano = [(12 * i, 12, p) for i, p in enumerate([76, 79, 76, 77, 81, 77])]
    return Piece(block_chords([C_MAJOR, F_MAJOR], 36, soprano), time_signatures=[TimeSignature(0, 3, 4)])


def accompaniment(out: Piece) -> list[Note]:
    keys = {(n.start, n.pitch) for n in melody(out)}
    return [n for n in out.notes if (n.start, n.pitch) not in keys]


def onsets(notes, t):
    return sorted(n.pitch for n in notes if n.start == t)


# ----------------------------------------------------------------------------- definitions


def test_melody_is_the_skyline_cut_at_the_next_melody_onset():
    p = Piece([Note(0, 24, 72), Note(0, 12, 60), Note(12, 12, 62), Note(24, 12, 71), Note(24, 24, 50),
               Note(36, 12, 55)])
    assert [(n.start, n.duration, n.pitch) for n in melody(p)] == [(0, 24, 72), (24, 12, 71), (36, 12, 55)]
    # a unison entry under a held note of the same pitch is not a new melody note
    held = Piece([Note(0, 48, 67), Note(24, 12, 67), Note(24, 12, 60)])
    assert [(n.start, n.duration) for n in melody(held)] == [(0, 48)]


def test_estimate_chords_finds_triads_and_sevenths():
    p = Piece(block_chords([C_MAJOR, F_MAJOR, G7, A_MINOR], bar_ticks=12))
    assert [str(c) for _, _, c in estimate_chords(p)] == ["C", "F", "G7", "Am"]
    assert Chord(0, "maj").voicing(48, 4) == [48, 52, 55, 60]
    assert Chord(9, "min").with_color().pitch_classes == (9, 0, 4, 7)
    assert Chord(7, "maj").with_color().pitch_classes == (7, 11, 2, 4)  # G6


def test_registry():
    assert list_styles()[:9] == ["straight", "swing", "shuffle", "staccato", "waltz", "alberti", "arpeggio",
                                 "stride", "bossa"]
    for style in STYLES.values():
        assert style.description and 0 <= style.program < 128 and 0 <= style.accompaniment_program < 128
        assert style.kind in ("articulation", "accompaniment")
    with pytest.raises(ValueError, match="unknown style 'polka'"):
        get_style("polka")
    with pytest.raises(ValueError, match="unknown parameter.*'tempo'"):
        render_style(chorale(), "swing", tempo=3)
    with pytest.raises(ValueError, match="expected a Piece"):
        render_style([Note(0, 12, 60)], "swing")


# ----------------------------------------------------------------------------- articulation styles


def test_swing_turns_eighths_0_6_into_0_8_with_durations_8_4():
    p = Piece([Note(0, 6, 72), Note(6, 6, 74), Note(12, 12, 76), Note(24, 3, 60), Note(27, 3, 62), Note(30, 3, 64),
               Note(33, 3, 65)])
    out = render_style(p, "swing")
    assert [(n.start, n.duration, n.pitch) for n in out.notes] == [
        (0, 8, 72), (8, 4, 74), (12, 12, 76), (24, 4, 60), (28, 4, 62), (32, 2, 64), (34, 2, 65)]
    # a quarter whose 32nds (ticks 6, 7, 8) cannot all be swung apart on the grid stays straight
    ornament = render_style(Piece([Note(0, 6, 72), Note(6, 1, 74), Note(7, 1, 72), Note(8, 4, 71), Note(12, 6, 72)]),
                            "swing")
    assert [n.start for n in ornament.notes] == [0, 6, 7, 8, 12]
    heavy = render_style(p, "swing", ratio=3.0)
    assert [(n.start, n.duration) for n in heavy.notes[:2]] == [(0, 9), (9, 3)]
    assert out.notes[0].program == get_style("swing").program


def test_staccato_halves_durations_and_accents_strong_beats():
    p = Piece([Note(0, 12, 72), Note(12, 6, 74), Note(18, 3, 76), Note(24, 24, 77), Note(0, 48, 48)])
    out = render_style(p, "staccato", humanize=0)
    assert [(n.start, n.duration, n.pitch) for n in out.notes] == [
        (0, 6, 72), (0, 24, 48), (12, 3, 74), (18, 2, 76), (24, 12, 77)]
    velocity = {n.start: n.velocity for n in out.notes}
    assert velocity[0] > velocity[12] > velocity[18] and velocity[24] == velocity[0]
    tied_over = render_style(Piece([Note(0, 12, 72), Note(12, 48, 74)]), "staccato")  # into bar 2: held
    assert [n.duration for n in tied_over.notes] == [6, 48] and n_bars(tied_over) == 2


def test_straight_quantizes_and_plays_legato():
    p = Piece([Note(1, 4, 72), Note(7, 3, 74), Note(12, 6, 76), Note(24, 12, 77)])
    out = render_style(p, "straight")
    assert [(n.start, n.duration, n.pitch) for n in out.notes] == [(0, 6, 72), (6, 6, 74), (12, 12, 76),
                                                                  (24, 12, 77)]
    # 32nd-note ornaments: 62 and 63 would merge on the sixteenth grid, so they keep their ticks
    ornament = Piece([Note(54, 7, 77), Note(61, 1, 76), Note(62, 1, 74), Note(63, 9, 76), Note(48, 24, 60)])
    out = render_style(ornament, "straight")
    assert [n.start for n in out.notes] == [48, 54, 60, 62, 63]
    assert [n.pitch for n in melody(out)] == [60, 77, 76, 74, 76]


# ----------------------------------------------------------------------------- accompaniment styles


def test_waltz_in_three_four_bass_on_one_chords_on_two_and_three():
    out = render_style(waltz_content(), "waltz")
    acc = accompaniment(out)
    assert sorted({n.start for n in acc}) == [0, 12, 24, 36, 48, 60]
    for bar, (root, triad) in enumerate([(0, {0, 4, 7}), (5, {5, 9, 0})]):
        start = 36 * bar
        bass = onsets(acc, start)
        assert len(bass) == 1 and bass[0] < 48
        assert bass[0] % 12 == (root if bar == 0 else (root + 7) % 12)  # root, then the fifth on bar 2
        for beat in (12, 24):
            assert {x % 12 for x in onsets(acc, start + beat)} == triad
    assert all(n.program == get_style("waltz").accompaniment_program for n in acc)


def test_waltz_in_four_four_chords_on_beats_two_to_four():
    acc = accompaniment(render_style(chorale(), "waltz"))
    assert sorted({n.start for n in acc if n.start < 48}) == [0, 12, 24, 36]
    assert len(onsets(acc, 0)) == 1 and len(onsets(acc, 12)) == 3


def test_alberti_pattern_is_low_high_middle_high():
    p = Piece(block_chords([C_MAJOR], soprano=[(0, 48, 72)]))
    acc = accompaniment(render_style(p, "alberti"))
    assert [n.pitch for n in acc] == [48, 55, 52, 55] * 4
    assert [n.start for n in acc] == list(range(0, 48, 3))


def test_arpeggio_rises_and_falls_in_eighths():
    p = Piece(block_chords([C_MAJOR], soprano=[(0, 48, 72)]))
    acc = accompaniment(render_style(p, "arpeggio"))
    assert [(n.start, n.pitch) for n in acc] == list(zip(range(0, 48, 6), [36, 43, 48, 52, 55, 52, 48, 43]))


def test_stride_bass_on_one_and_three_chords_on_two_and_four():
    p = Piece(block_chords([C_MAJOR], soprano=[(0, 48, 76)]))
    acc = accompaniment(render_style(p, "stride"))
    assert onsets(acc, 0) == [36, 48] and onsets(acc, 24) == [31, 43]  # root octave, then fifth octave
    assert {x % 12 for x in onsets(acc, 12)} == {0, 4, 7} == {x % 12 for x in onsets(acc, 36)}
    assert sorted({n.start for n in acc}) == [0, 12, 24, 36]


def test_bossa_comps_on_the_clave():
    p = Piece(block_chords([C_MAJOR, C_MAJOR], soprano=[(0, 96, 77)]))
    acc = accompaniment(render_style(p, "bossa"))
    chords = sorted({n.start for n in acc if n.pitch >= 50})
    assert chords == [0, 18, 36, 60, 78]  # eighths 0 3 6 | 2 5
    assert {x % 12 for x in onsets(acc, 18)} == {4, 7, 9}  # C6 without the root
    assert sorted(n.start for n in acc if n.pitch < 50) == [0, 24, 48, 72]


def test_shuffle_swings_the_melody_and_plays_boogie_dyads():
    p = Piece(block_chords([C_MAJOR], soprano=[(0, 6, 72), (6, 6, 74), (12, 36, 76)]))
    out = render_style(p, "shuffle")
    assert [(n.start, n.duration, n.pitch) for n in melody(out)] == [(0, 9, 72), (9, 3, 74), (12, 36, 76)]
    acc = accompaniment(out)
    assert sorted({n.start for n in acc}) == [0, 9, 12, 21, 24, 33, 36, 45]
    assert onsets(acc, 0) == [36, 43] and onsets(acc, 12) == [36, 45]  # 1-5, then 1-6


def test_accompaniment_stays_below_the_melody_and_rests_with_it():
    # bar 1: soprano 67 64 over quarter chords, then everybody rests; bar 2: a held chord under 72
    notes = [Note(t, 12, p) for t in (0, 12) for p in C_MAJOR] + [Note(0, 12, 67), Note(12, 12, 62)]
    p = Piece(notes + block_chords([(), C_MAJOR], soprano=[(48, 48, 72)]))
    assert [n.pitch for n in melody(p)] == [67, 62, 72]
    for name in ("waltz", "alberti", "arpeggio", "stride", "bossa", "shuffle"):
        out = render_style(p, name)
        mel = melody(out)
        for n in accompaniment(out):
            under = [m for m in mel if m.start <= n.start < m.end]
            assert under and n.pitch < under[0].pitch, (name, n)
            assert not 24 <= n.start < 48, (name, n)  # the melody rests there


# ----------------------------------------------------------------------------- shared invariants


def assert_melody_kept(content: Piece, out: Piece, style: str) -> None:
    if style == "staccato":  # shortened notes may expose lower onsets: the content's melody stays on top
        for m in melody(content):
            assert max(n.pitch for n in out.notes if n.start == m.start) == m.pitch
    else:
        assert [n.pitch for n in melody(out)] == [n.pitch for n in melody(content)]


@pytest.mark.parametrize("style", list_styles())
@pytest.mark.parametrize("content", [chorale(), waltz_content()], ids=["4/4", "3/4"])
def test_every_style_keeps_bars_and_melody_and_is_deterministic(style, content):
    out = render_style(content, style, seed=3)
    out.validate(style)
    assert n_bars(out) == n_bars(content) and out.time_signatures == content.time_signatures
    assert out.tempos == content.tempos
    assert_melody_kept(content, out, style)
    assert render_style(content, style, seed=3) == out
    assert [n.velocity for n in render_style(content, style, seed=4).notes] != [n.velocity for n in out.notes]
    programs = {n.program for n in out.notes}
    assert programs <= {get_style(style).program, get_style(style).accompaniment_program}
    assert melody(out)[0].program == get_style(style).program


def test_every_style_on_a_real_chorale():
    music21 = pytest.importorskip("music21")
    if not hasattr(Piece, "from_music21"):
        pytest.skip("Piece.from_music21 not available yet")
    piece = Piece.from_music21(music21.corpus.parse("bach/bwv66.6"))
    for style in list_styles():
        out = render_style(piece, style, seed=0)
        assert n_bars(out) == n_bars(piece), style
        assert_melody_kept(piece, out, style)
        window = piece.slice_bars(1, 4)
        assert n_bars(render_style(window, style)) == 4, style
