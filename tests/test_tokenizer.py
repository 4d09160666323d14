"""REMI tokenizer: config, vocabulary, round trips (hand-written and hypothesis), quantization, grammar."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mstoolkit.config import UserError
from mstoolkit.piece import Note, Piece, TempoChange, TimeSignature
from mstoolkit.tokenizer import BOS, EOS, PAD, Grammar, RemiTokenizer, TokenizerConfig, bar_ticks

TOK = RemiTokenizer()
HYPO = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def same_music(a: Piece, b: Piece) -> bool:
    return a.notes == b.notes and a.tempos == b.tempos and a.time_signatures == b.time_signatures


def ids_of(*names: str) -> list[int]:
    return [TOK.vocab[name] for name in names]


# ---------------------------------------------------------------------------- strategies
@st.composite
def grid_pieces(draw, tok: RemiTokenizer = TOK, max_notes: int = 30) -> Piece:
    """Pieces already on the tokenizer's grid: time-signature changes at bar lines, tempi on bins,
    velocities on bin centres, durations within the maximum, drums and several programs."""
    cfg = tok.config
    signatures = draw(st.lists(st.sampled_from(cfg.time_signatures), min_size=1, max_size=5))
    bars_each = draw(st.lists(st.integers(1, 3), min_size=len(signatures), max_size=len(signatures)))
    sigs, tick = [], 0
    for (n, d), bars in zip(signatures, bars_each):
        if not sigs or (sigs[-1].numerator, sigs[-1].denominator) != (n, d):
            sigs.append(TimeSignature(tick, n, d))
        tick += bars * int(bar_ticks(n, d))
    total = tick
    tempo_ticks = sorted(set(draw(st.lists(st.integers(1, total - 1), max_size=4)) if total > 1 else []))
    tempos = []
    for t in [0] + tempo_ticks:
        bpm = draw(st.sampled_from(cfg.tempos))
        if not tempos or tempos[-1].bpm != bpm:
            tempos.append(TempoChange(t, bpm))
    low, high = cfg.pitch_range
    note = st.builds(
        lambda start, duration, pitch, velocity, program, drum: Note(start, duration, pitch, velocity,
                                                                     0 if drum else program, drum),
        st.integers(0, total - 1), st.integers(1, cfg.max_duration), st.integers(low, high),
        st.sampled_from(cfg.velocities), st.sampled_from([0, 0, 24, 40, 127]), st.booleans())
    return Piece(draw(st.lists(note, max_size=max_notes)), tempos, sigs)


@st.composite
def any_pieces(draw) -> Piece:
    """Off-grid pieces: any velocity, tempo, duration, pitch; time signatures anywhere, some unsupported."""
    meters = st.sampled_from([(3, 4), (6, 8), (7, 8), (18, 8), (32, 16), (5, 4), (2, 2)])
    sig = st.builds(lambda tick, meter: TimeSignature(tick, *meter), st.integers(0, 300), meters)
    sigs = [TimeSignature(0, 4, 4)] + draw(st.lists(sig, max_size=3))
    tempos = draw(st.lists(st.builds(TempoChange, st.integers(0, 400), st.floats(10, 400)), min_size=1, max_size=4))
    note = st.builds(Note, st.integers(0, 400), st.integers(1, 400), st.integers(0, 127), st.integers(1, 127),
                     st.integers(0, 127), st.booleans())
    return Piece(draw(st.lists(note, max_size=25)), tempos, sigs)


# ---------------------------------------------------------------------------- config
def test_config_json_round_trip_and_equality(tmp_path):
    config = TokenizerConfig(pitch_range=(21, 108), velocities=(32, 64, 96, 127), max_duration=96,
                             tempos=(60.0, 90.0, 120.0), time_signatures=((4, 4), (3, 4), (6, 8)))
    assert TokenizerConfig.from_json(config.to_json()) == config
    config.save(tmp_path / "config.json")
    assert TokenizerConfig.load(tmp_path / "config.json") == config
    assert config != TokenizerConfig()
    assert hash(TokenizerConfig()) == hash(TokenizerConfig())


@pytest.mark.parametrize("kwargs, match", [
    ({"pitch_range": (60, 65)}, "octave"),
    ({"velocities": (80, 40)}, "increasing"),
    ({"max_duration": 0}, "max_duration"),
    ({"tempos": (120.0, 60.0)}, "tempos"),
    ({"time_signatures": ((3, 32),)}, "3/32"),
    ({"time_signatures": ()}, "non-empty"),
])
def test_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TokenizerConfig(**kwargs)


def test_config_from_json_errors():
    with pytest.raises(UserError, match="TokenizerConfig: unknown field 'pitch_rnage'; did you mean pitch_range"):
        TokenizerConfig.from_json('{"pitch_rnage": [0, 127]}')
    with pytest.raises(ValueError, match="not valid JSON"):
        TokenizerConfig.from_json("{nope")


def test_default_config_covers_common_meters_and_documented_bins():
    cfg = TokenizerConfig()
    for sig in [(2, 4), (3, 4), (4, 4), (5, 4), (6, 8), (7, 8), (9, 8), (12, 8), (2, 2), (3, 8), (3, 2), (4, 1)]:
        assert sig in cfg.time_signatures
    assert cfg.max_bar_ticks == 192 and cfg.positions_per_quarter == 12
    assert len(cfg.velocities) == 32 and {64, 80, 100, 127} <= set(cfg.velocities)
    assert {30.0, 60.0, 120.0, 240.0} <= set(cfg.tempos) and cfg.tempos[0] >= 24 and cfg.tempos[-1] == 240


# ---------------------------------------------------------------------------- vocabulary, save/load
def test_vocabulary_layout():
    assert (TOK.pad_id, TOK.bos_id, TOK.eos_id) == (PAD, BOS, EOS) == (0, 1, 2)
    assert len(TOK.token_types) == len(TOK.vocab) == TOK.vocab_size
    assert TOK.tokens(range(TOK.vocab_size)) == list(TOK.vocab)  # names unique and ordered by id
    assert TOK.token_types[TOK.vocab["Pitch_60"]] == "Pitch"
    assert TOK.token_types[TOK.vocab["Program_drums"]] == "Program"
    assert TOK.bar_ids == tuple(i for i, kind in enumerate(TOK.token_types) if kind == "Bar") == (TOK.vocab["Bar"],)
    assert set(TOK.token_types) == {"PAD", "BOS", "EOS", "Bar", "TimeSig", "Tempo", "Position", "Program",
                                    "Pitch", "Velocity", "Duration"}
    small = RemiTokenizer(TokenizerConfig(pitch_range=(21, 108), max_duration=48))
    assert small.vocab_size == TOK.vocab_size - 40 - 144


def test_tokens_rejects_bad_ids():
    with pytest.raises(ValueError, match="index 1"):
        TOK.tokens([1, TOK.vocab_size])


def test_save_load_and_pickle(tmp_path):
    tok = RemiTokenizer(TokenizerConfig(pitch_range=(21, 108)))
    tok.save(tmp_path / "tok.json")
    loaded = RemiTokenizer.load(tmp_path / "tok.json")
    assert loaded == tok and loaded != TOK and loaded.vocab == tok.vocab
    _ = tok.grammar  # built, but not pickled
    clone = pickle.loads(pickle.dumps(tok))
    assert clone == tok and "grammar" not in clone.__dict__
    (tmp_path / "bad.json").write_text('{"hello": 1}')
    with pytest.raises(ValueError, match="bad.json"):
        RemiTokenizer.load(tmp_path / "bad.json")


# ---------------------------------------------------------------------------- hand-written round trips
def test_encode_gives_readable_tokens():
    piece = Piece([Note(0, 12, 60, 80), Note(12, 6, 64, 100, program=40), Note(40, 3, 36, 64, is_drum=True)],
                  [TempoChange(0, 120.0), TempoChange(30, 60.0)], [TimeSignature(0, 3, 4), TimeSignature(36, 6, 8)])
    assert TOK.tokens(TOK.encode(piece)) == [
        "BOS", "Bar", "TimeSig_3/4", "Position_0", "Tempo_120.0", "Program_0", "Pitch_60", "Velocity_80",
        "Duration_12", "Position_12", "Program_40", "Pitch_64", "Velocity_100", "Duration_6",
        "Position_30", "Tempo_60.0",
        "Bar", "TimeSig_6/8", "Position_4", "Program_drums", "Pitch_36", "Velocity_64", "Duration_3", "EOS"]
    assert same_music(TOK.decode(TOK.encode(piece)), piece)


@pytest.mark.parametrize("meters", [[(3, 4)], [(6, 8)], [(5, 4)], [(7, 8)], [(4, 4), (3, 4), (7, 8), (4, 4)],
                                    [(2, 2), (12, 8)], [(9, 8), (3, 8), (16, 16)]])
def test_round_trip_meters_and_changes(meters):
    sigs, notes, tick = [], [], 0
    for i, (n, d) in enumerate(meters):
        sigs.append(TimeSignature(tick, n, d))
        length = int(bar_ticks(n, d))
        for bar in range(2):  # two bars of each meter, a note on every beat-ish and the last tick
            notes += [Note(tick + p, 3, 60 + i, 64) for p in range(0, length, 6)] + [Note(tick + length - 1, 1, 50, 4)]
            tick += length
    piece = Piece(notes, [TempoChange(0, 60.0), TempoChange(tick // 2, 240.0)], sigs)
    ids = TOK.encode(piece)
    assert TOK.tokens(ids).count("Bar") == 2 * len(meters)
    assert same_music(TOK.decode(ids), piece)


def test_empty_bars_keep_timing_and_empty_piece_round_trips():
    piece = Piece([Note(0, 12, 60, 80), Note(48 * 3 + 5, 12, 62, 80)])
    tokens = TOK.tokens(TOK.encode(piece))
    assert tokens.count("Bar") == 4 and tokens[tokens.index("Duration_12") + 1:][:3] == ["Bar", "Bar", "Bar"]
    assert same_music(TOK.decode(TOK.encode(piece)), piece)
    empty = Piece(tempos=[TempoChange(0, 90.0)], time_signatures=[TimeSignature(0, 6, 8)])
    assert TOK.tokens(TOK.encode(empty)) == ["BOS", "Bar", "TimeSig_6/8", "Position_0",
                                             f"Tempo_{TOK.quantize_tempo(90)}", "EOS"]
    assert same_music(TOK.decode(TOK.encode(empty)), TOK.quantize(empty))


def test_tempo_and_time_signature_after_the_last_note_are_kept():
    piece = Piece([Note(0, 6, 60, 80)], [TempoChange(0, 120.0), TempoChange(200, 60.0)],
                  [TimeSignature(0, 4, 4), TimeSignature(240, 3, 4)])
    assert same_music(TOK.decode(TOK.encode(piece)), piece)


def test_several_notes_on_one_position_are_ordered_and_kept():
    chord = [Note(0, 12, p, 80, program=prog) for prog in (0, 40) for p in (67, 60, 64)] + [Note(0, 12, 60, 80)]
    ids = TOK.encode(Piece(chord))
    assert TOK.tokens(ids).count("Position_0") == 1
    pitches = [t for t in TOK.tokens(ids) if t.startswith("Pitch")]
    assert pitches == ["Pitch_60", "Pitch_60", "Pitch_64", "Pitch_67", "Pitch_60", "Pitch_64", "Pitch_67"]
    assert TOK.decode(ids).notes == sorted(chord)  # duplicates kept: a multiset


# ---------------------------------------------------------------------------- quantization rules
def test_off_grid_values_follow_the_documented_rules():
    tok = RemiTokenizer(TokenizerConfig(pitch_range=(21, 108), max_duration=96))
    piece = Piece([Note(0, 500, 10, 81), Note(1, 5, 120, 82), Note(2, 5, 10, 60, is_drum=True),
                   Note(3, 5, 40, 126, program=7, is_drum=True)],
                  [TempoChange(0, 100.0), TempoChange(5, 10.0), TempoChange(5, 500.0), TempoChange(9, 24.9)],
                  [TimeSignature(0, 18, 8), TimeSignature(50, 3, 4)])
    expected = Piece([Note(0, 96, 22, 80), Note(1, 5, 108, 80), Note(3, 5, 40, 127, 0, True)],
                     # two tempi on tick 5: the last in piece.tempos (sorted, so 500) wins, clipped to 240
                     [TempoChange(0, 100.91), TempoChange(5, 240.0), TempoChange(9, tok.config.tempos[0])],
                     [TimeSignature(0, 9, 4), TimeSignature(108, 3, 4)])  # 3/4 waits for the bar line at 108
    assert same_music(tok.quantize(piece), expected)
    assert same_music(tok.decode(tok.encode(piece)), expected)
    assert tok.quantize_velocity(2) == 4 and tok.quantize_velocity(126) == 127 and tok.quantize_velocity(0) == 4


def test_unsupported_time_signature_raises():
    for n, d in [(3, 32), (20, 4)]:
        with pytest.raises(ValueError, match=f"{n}/{d}"):
            TOK.encode(Piece([Note(0, 1, 60)], time_signatures=[TimeSignature(0, n, d)]))


def test_bad_notes_raise_value_error_naming_the_piece():
    with pytest.raises(ValueError, match="chorale"):
        TOK.encode(Piece([Note(-3, 1, 60)], name="chorale"))


@HYPO
@given(grid_pieces())
def test_hypothesis_grid_pieces_round_trip_exactly(piece):
    assert same_music(TOK.quantize(piece), piece)
    ids = TOK.encode(piece)
    assert ids[0] == BOS and ids[-1] == EOS and TOK.grammar.accepts(ids)
    assert same_music(TOK.decode(ids), piece)


CUSTOM = RemiTokenizer(TokenizerConfig(pitch_range=(21, 108), velocities=(40, 80, 120), max_duration=24,
                                      tempos=(50.0, 100.0, 200.0), time_signatures=((4, 4), (3, 8), (5, 16), (2, 1))))


@HYPO
@given(grid_pieces(tok=CUSTOM))
def test_hypothesis_round_trip_with_a_custom_config(piece):
    assert same_music(CUSTOM.decode(CUSTOM.encode(piece)), piece)


@HYPO
@given(any_pieces())
def test_hypothesis_any_piece_decodes_to_its_quantized_form(piece):
    tok = RemiTokenizer(TokenizerConfig(pitch_range=(21, 108)))
    expected = tok.quantize(piece)  # written independently of encode (per-note Python, Piece's bar rule)
    decoded = tok.decode(tok.encode(piece))
    assert same_music(decoded, expected)
    assert same_music(tok.quantize(expected), expected)  # quantize is idempotent


# ---------------------------------------------------------------------------- grammar
def test_grammar_arrays_and_start():
    g = TOK.grammar
    assert isinstance(g, Grammar)
    assert g.next_state.dtype == np.int32 and g.next_state.shape == (g.n_states, TOK.vocab_size)
    assert g.accepting.dtype == bool and g.accepting.shape == (g.n_states,)
    assert np.flatnonzero(g.allowed(g.start_state)).tolist() == [TOK.vocab["Bar"]]
    assert not g.accepting[g.start_state]
    end = g.state_after(TOK.encode(Piece()))
    assert g.accepting[end] and np.flatnonzero(g.allowed(end)).tolist() == [PAD]  # finished rows pad


def test_grammar_positions_stay_inside_the_current_bar():
    g = TOK.grammar
    state = g.state_after(ids_of("BOS", "Bar", "TimeSig_3/4", "Position_0", "Tempo_120.0", "Bar"))
    positions = [TOK.tokens([v])[0] for v in np.flatnonzero(g.allowed(state)) if TOK.token_types[v] == "Position"]
    assert positions == [f"Position_{p}" for p in range(36)]
    state = g.state_after(ids_of("BOS", "Bar", "TimeSig_3/4", "Position_0", "Tempo_120.0", "Bar", "TimeSig_4/2"))
    assert g.allowed(state)[TOK.vocab["Position_95"]] and not g.allowed(state)[TOK.vocab["Position_96"]]


HEAD = ["BOS", "Bar", "TimeSig_4/4", "Position_0", "Tempo_120.0"]


@pytest.mark.parametrize("names, index, token", [
    (["BOS", "Bar", "TimeSig_4/4", "Pitch_60"], 3, "Pitch_60"),  # Pitch without Position (and no tempo)
    (HEAD + ["Position_3", "Duration_4"], 6, "Duration_4"),  # Duration before Pitch
    (HEAD + ["Program_0", "Pitch_60", "EOS"], 7, "EOS"),  # EOS mid-note
    (HEAD + ["Bar", "TimeSig_3/4", "Position_36"], 7, "Position_36"),  # outside the 3/4 bar
    (HEAD + ["PAD", "EOS"], 5, "PAD"),  # padding before the end
    (["BOS", "Position_0"], 1, "Position_0"),  # no Bar first
    (HEAD + ["EOS", "Bar"], 6, "Bar"),  # tokens after EOS
    (HEAD + ["BOS"], 5, "BOS"),
])
def test_decode_rejects_ungrammatical_sequences_naming_index_and_token(names, index, token):
    ids = ids_of(*names)
    assert not TOK.grammar.accepts(ids)
    with pytest.raises(ValueError, match=f"'{token}'\\) at index {index} "):
        TOK.decode(ids)


def test_decode_rules_for_free_order_sequences():
    note = ["Program_0", "Pitch_60", "Velocity_80", "Duration_3"]
    ids = ids_of(*HEAD, "Position_20", *note, "Position_5", "Tempo_60.0", "Position_5", "Tempo_240.0",
                 "Position_7", "Tempo_120.0", "Position_9", "Tempo_120.0", "Position_5", *note,
                 "Bar", "TimeSig_4/4", "Position_0", *note, "EOS")
    piece = TOK.decode(ids)
    assert [n.start for n in piece.notes] == [5, 20, 48]  # positions may go back inside a bar: notes sorted
    assert piece.tempos == [TempoChange(0, 120.0), TempoChange(5, 240.0), TempoChange(7, 120.0)]  # later wins
    assert piece.time_signatures == [TimeSignature(0, 4, 4)]  # a restated signature is no change


@pytest.mark.parametrize("bad", [9999, -1, 2.5, "Bar"])
def test_decode_rejects_unknown_ids(bad):
    with pytest.raises(ValueError, match="at index 5 is not an id"):
        TOK.decode(ids_of(*HEAD) + [bad])


def test_decode_rejects_truncated_sequences():
    for ids in ([], [BOS], ids_of(*HEAD, "Program_0", "Pitch_60"), ids_of("BOS", "Bar", "TimeSig_4/4")):
        assert not TOK.grammar.accepts(ids)
        with pytest.raises(ValueError, match="middle of an event: expected"):
            TOK.decode(ids)
    with pytest.raises(ValueError, match="nested"):
        TOK.decode([ids_of(*HEAD)])


def test_decode_framing_is_lenient_bos_eos_pad_optional_and_arrays_accepted():
    piece = Piece([Note(0, 12, 60, 80)])
    ids = TOK.encode(piece)
    for variant in (ids[1:], ids[:-1], ids + [PAD] * 3, np.array(ids), np.array(ids, dtype=np.int32)):
        assert TOK.grammar.accepts(variant)
        assert same_music(TOK.decode(variant), piece)
    torch = pytest.importorskip("torch")
    assert same_music(TOK.decode(torch.tensor(ids)), piece)


def _random_walk(data, grammar: Grammar, steps: int) -> list[int]:
    ids, state = [BOS], grammar.start_state
    for _ in range(steps):
        choices = [v for v in np.flatnonzero(grammar.allowed(state)) if v not in (EOS, PAD)]
        token = data.draw(st.sampled_from(choices))
        ids.append(token)
        state = int(grammar.next_state[state, token])
    while not grammar.accepting[state]:  # finish the event: the lowest allowed id always gets there
        token = int(np.flatnonzero(grammar.allowed(state))[0])
        ids.append(token)
        state = int(grammar.next_state[state, token])
    return ids + [EOS]


@HYPO
@given(st.data())
def test_hypothesis_any_grammar_walk_decodes_to_a_valid_canonical_piece(data):
    g = TOK.grammar
    ids = _random_walk(data, g, data.draw(st.integers(0, 120)))
    assert g.accepts(ids)
    piece = TOK.decode(ids).validate("decoded walk")
    assert same_music(TOK.quantize(piece), piece)  # decoded pieces are already on the grid
    assert same_music(TOK.decode(TOK.encode(piece)), piece)


@HYPO
@given(grid_pieces(max_notes=8), st.data())
def test_hypothesis_mutated_sequences_decode_or_raise_value_error(piece, data):
    ids = TOK.encode(piece)
    where = data.draw(st.integers(0, len(ids)))
    token = data.draw(st.integers(-1, TOK.vocab_size))
    mutated = data.draw(st.sampled_from([ids[:where] + [token] + ids[where:],  # insert
                                         ids[:where] + [token] + ids[where + 1:],  # replace
                                         ids[:where] + ids[where + 1:]]))  # delete
    if TOK.grammar.accepts(mutated):
        TOK.decode(mutated).validate("mutated")
    else:
        with pytest.raises(ValueError, match="index|middle"):
            TOK.decode(mutated)


# ---------------------------------------------------------------------------- real MIDI input
def _samples() -> list:
    from mstoolkit.piece import sample_paths

    try:
        return sorted(sample_paths().values())
    except FileNotFoundError:
        return []


@pytest.mark.parametrize("path", _samples(), ids=lambda p: p.stem)
def test_sample_midi_files_round_trip_after_snapping(path):
    from mstoolkit.piece import load_piece

    piece = load_piece(path)
    ids = TOK.encode(path)
    assert ids == TOK.encode(path.read_bytes()) == TOK.encode_piece(piece)
    assert len(piece) > 0 and TOK.grammar.accepts(ids)
    assert same_music(TOK.decode(ids), TOK.quantize(piece))


def test_encode_takes_midi_bytes_paths_pretty_midi_and_music21(tmp_path):
    from mstoolkit.piece import load_piece

    piece = Piece([Note(0, 12, 60, 80), Note(12, 6, 64, 100, program=40), Note(18, 3, 38, 64, is_drum=True)],
                  [TempoChange(0, 100.91)], [TimeSignature(0, 3, 4)])
    data = piece.to_midi_bytes()
    (tmp_path / "p.mid").write_bytes(data)
    ids = TOK.encode_piece(load_piece(data))
    assert same_music(TOK.decode(ids), piece)
    assert TOK.encode(data) == TOK.encode(tmp_path / "p.mid") == TOK.encode(str(tmp_path / "p.mid")) == ids
    assert TOK.encode(piece.to_pretty_midi()) == ids
    music21 = pytest.importorskip("music21")
    stream = music21.stream.Stream([music21.meter.TimeSignature("3/4"), music21.note.Note("C4", quarterLength=1),
                                    music21.note.Note("E4", quarterLength=0.5)])
    assert TOK.tokens(TOK.encode(stream))[2] == "TimeSig_3/4"
    assert [n.pitch for n in TOK.decode(TOK.encode(stream)).notes] == [60, 64]


@pytest.mark.parametrize("bad", [b"", b"garbage bytes", b"MThd\x00\x00\x00\x06\x00\x01"])
def test_encode_bad_midi_raises_midi_error(bad):
    from mstoolkit.piece import MidiError

    with pytest.raises(MidiError, match="<bytes>"):
        TOK.encode(bad)


# ---------------------------------------------------------------------------- MidiTok adapter
def test_miditok_adapter_round_trips_and_matches_our_api(tmp_path):
    pytest.importorskip("miditok")
    from mstoolkit.miditok_adapter import MidiTokAdapter

    tok = MidiTokAdapter()
    velocity, bpm = int(tok.tokenizer.velocities[20]), float(tok.tokenizer.tempos[20])
    piece = Piece([Note(0, 12, 60, velocity), Note(6, 6, 64, velocity, program=40),
                   Note(40, 3, 36, velocity, is_drum=True)],
                  [TempoChange(0, bpm)], [TimeSignature(0, 3, 4), TimeSignature(36, 4, 4)])
    ids = tok.encode(piece)
    assert (ids[0], ids[-1]) == (tok.bos_id, tok.eos_id) == (BOS, EOS) and tok.pad_id == PAD
    assert tok.tokens(ids)[1:4] == ["Bar_None", "TimeSig_3/4", "Position_0"]
    assert len(tok.token_types) == tok.vocab_size == len(tok.vocab) and tok.token_types[ids[1]] == "Bar"
    assert same_music(tok.decode(ids + [PAD, PAD]), piece)
    assert tok.encode(piece.to_midi_bytes()) == ids
    tok.save(tmp_path / "miditok.json")
    assert MidiTokAdapter.load(tmp_path / "miditok.json") == tok
    assert tok.grammar is None
    with pytest.raises(ValueError, match="index 2"):
        tok.decode([BOS, ids[1], 10**6])
