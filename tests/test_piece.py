"""Piece converters: round trips, the snapping rule, bad input, bars."""
from __future__ import annotations

import dataclasses
import importlib.util
import io
import subprocess
import sys
from fractions import Fraction

import mido
import pretty_midi
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import HAND_PIECES, SAMPLE_PATHS
from mstoolkit.piece import (
    MIDI_RESOLUTION,
    MidiError,
    Note,
    Piece,
    TempoChange,
    TimeSignature,
    _from_midi_mido,
    _from_midi_symusic,
    load_piece,
    sample_paths,
    samples_dir,
)

music21 = pytest.importorskip("music21")
from music21 import bar, chord, corpus, instrument, key, meter, note, stream, tempo  # noqa: E402


def assert_same_piece(got: Piece, want: Piece, *, name: bool = True) -> None:
    """Same notes, time signatures and key (exactly), tempi within 1e-3 bpm."""
    assert got.notes == want.notes
    assert got.time_signatures == want.time_signatures
    assert [t.tick for t in got.tempos] == [t.tick for t in want.tempos]
    assert [t.bpm for t in got.tempos] == pytest.approx([t.bpm for t in want.tempos], abs=1e-3)
    assert got.key == want.key
    if name:
        assert got.name == want.name


def via_bytes(p: Piece) -> Piece:
    return Piece.from_midi(p.to_midi_bytes())


def via_music21(p: Piece) -> Piece:
    return Piece.from_music21(p.to_music21())


def read_both(data: bytes, name: str = "") -> tuple[Piece, Piece]:
    """The piece as the symusic reader and as the fallback (mido + pretty_midi) reader give it."""
    fast = _from_midi_symusic(data, "<bytes>", name)
    assert fast is not None, "symusic did not read the file"
    return fast, _from_midi_mido(data, "<bytes>", name)


def mido_rewrite(data: bytes) -> bytes:
    """The file parsed and saved again by mido: the bytes mido writes for the same messages."""
    out = io.BytesIO()
    mido.MidiFile(file=io.BytesIO(data)).save(file=out)
    return out.getvalue()


ROUTES = {  # name -> (piece, tmp_path) -> piece read back
    "bytes": lambda p, tmp: via_bytes(p),
    "file": lambda p, tmp: Piece.from_midi(p.save_midi(tmp / "out.mid"), name=p.name),
    "pretty_midi": lambda p, tmp: Piece.from_pretty_midi(p.to_pretty_midi(), name=p.name),
    "music21": lambda p, tmp: via_music21(p),
}


# ----------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("route", ROUTES)
def test_sample_round_trip(route, sample_path, tmp_path):
    piece = Piece.from_midi(sample_path)
    assert len(piece) > 100 and piece.name == sample_path.stem
    assert_same_piece(ROUTES[route](piece, tmp_path), piece)


@pytest.mark.parametrize("route", ROUTES)
def test_hand_made_round_trip(route, hand_piece, tmp_path):
    assert_same_piece(ROUTES[route](hand_piece, tmp_path), hand_piece)


def test_midi_written_by_music21_reads_back(hand_piece):
    """An independent writer: music21's own MIDI export of ``to_music21()``."""
    from music21 import midi

    data = midi.translate.streamToMidiFile(hand_piece.to_music21()).writestr()
    assert_same_piece(Piece.from_midi(data, name=hand_piece.name), hand_piece)


def test_midi_written_by_pretty_midi_at_220_ticks_per_quarter_snaps_back():
    """pretty_midi's writer from seconds, at a resolution that is not a multiple of 12."""
    piece = HAND_PIECES["swing"]  # 140 bpm, triplet-based swing: 8 ticks = 146.67 MIDI ticks at 220
    pm = pretty_midi.PrettyMIDI(resolution=220, initial_tempo=140.0)
    for program in (32, 65):
        inst = pretty_midi.Instrument(program)
        inst.notes = [pretty_midi.Note(n.velocity, n.pitch, piece.tick_to_seconds(n.start), piece.tick_to_seconds(n.end))
                      for n in piece.notes if n.program == program]
        pm.instruments.append(inst)
    pm.key_signature_changes.append(pretty_midi.KeySignature(10, 0.0))  # Bb major
    out = io.BytesIO()
    pm.write(out)
    assert_same_piece(Piece.from_midi(out.getvalue(), name="swing"), piece)


def test_hand_made_pieces_are_already_normal(hand_piece):
    assert hand_piece.normalize() == hand_piece


def test_converters_return_normal_pieces(sample_path):
    piece = Piece.from_midi(sample_path)
    assert piece.normalize() == piece


def test_written_midi_layout():
    piece = HAND_PIECES["drums and programs"]
    midi = mido.MidiFile(file=io.BytesIO(piece.to_midi_bytes()))
    assert midi.type == 1 and midi.ticks_per_beat == MIDI_RESOLUTION and MIDI_RESOLUTION % 12 == 0
    # conductor track + one track per (program, is_drum): piano, guitar, strings, drums
    assert len(midi.tracks) == 1 + 4
    channels = [{m.channel for m in t if m.type == "note_on"} for t in midi.tracks[1:]]
    programs = [[m.program for m in t if m.type == "program_change"] for t in midi.tracks[1:]]
    assert programs == [[0], [25], [48], [0]] and channels[-1] == {9} and {9}.isdisjoint(set().union(*channels[:-1]))
    assert {m.note for m in midi.tracks[-1] if m.type == "note_on"} == {36, 38, 42}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_pieces_round_trip_through_midi(data):
    note_st = st.builds(
        Note,
        start=st.integers(0, 400), duration=st.integers(1, 60), pitch=st.integers(0, 127),
        velocity=st.integers(1, 127), program=st.sampled_from([0, 5, 40, 127]), is_drum=st.booleans(),
    )
    notes = data.draw(st.lists(note_st, min_size=1, max_size=30))
    tempos = [TempoChange(0, data.draw(st.integers(20_000, 240_000)) / 1000)]
    tempos += [TempoChange(t, b / 1000) for t, b in data.draw(
        st.lists(st.tuples(st.integers(1, 400), st.integers(20_000, 240_000)), max_size=3))]
    sigs = [TimeSignature(t, n, d) for t, n, d in data.draw(st.lists(
        st.tuples(st.integers(0, 400), st.integers(1, 13), st.sampled_from([2, 4, 8, 16])), min_size=1, max_size=3))]
    sigs[0] = dataclasses.replace(sigs[0], tick=0)
    key_name = data.draw(st.sampled_from([None, "C major", "a minor", "F# major", "eb minor", "Bb major"]))
    piece = Piece(notes, tempos, sigs, key_name, "random").normalize()
    assert_same_piece(via_bytes(piece), piece)
    data = piece.to_midi_bytes()
    assert mido_rewrite(data) == data
    fast, fallback = read_both(data)
    assert fast == fallback


def _plain_tidy(notes: list[Note]) -> list[Note]:
    """The note rules of ``normalize`` written plainly, one note at a time."""
    merged: dict[tuple, Note] = {}
    for n in notes:
        key = (n.program, n.is_drum, n.pitch, n.start)
        old = merged.get(key, n)
        merged[key] = dataclasses.replace(n, duration=max(old.duration, n.duration),
                                          velocity=max(old.velocity, n.velocity))
    tidy = []
    for n in merged.values():
        later = [m.start for m in merged.values()
                 if (m.program, m.is_drum, m.pitch) == (n.program, n.is_drum, n.pitch) and m.start > n.start]
        tidy.append(dataclasses.replace(n, duration=min([n.duration] + [s - n.start for s in later])))
    return sorted(tidy)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.builds(Note, start=st.integers(0, 30), duration=st.integers(1, 20), pitch=st.integers(60, 62),
                          velocity=st.integers(1, 127), program=st.sampled_from([0, 1]), is_drum=st.booleans()),
                max_size=40))
def test_normalize_follows_the_rule(notes):
    assert Piece(notes).normalize().notes == _plain_tidy(notes)


def test_to_midi_writes_the_normalized_piece():
    messy = Piece([Note(0, 24, 60, 50), Note(0, 12, 60, 90), Note(12, 24, 60, 70), Note(12, 24, 60, 70, is_drum=True)],
                  [TempoChange(0, 100.0), TempoChange(24, 100.0)])
    assert via_bytes(messy) == messy.normalize()
    assert messy.normalize().notes == [Note(0, 12, 60, 90), Note(12, 24, 60, 70), Note(12, 24, 60, 70, is_drum=True)]
    assert messy.normalize().tempos == [TempoChange(0, 100.0)]


@pytest.mark.parametrize("key_name, via_midi", [
    ("F# major", "F# major"), ("Gb major", "Gb major"), ("c# minor", "c# minor"),
    ("db minor", "c# minor"), ("A# major", "Bb major"),  # no MIDI key signature spelled Dbm / A#: respelled
])
def test_key_spelling(key_name, via_midi):
    piece = Piece([Note(0, 12, 60)], key=key_name)
    assert via_bytes(piece).key == via_midi
    assert via_music21(piece).key == key_name


def test_bad_key_is_rejected():
    with pytest.raises(MidiError, match="key 'H major'"):
        Piece([Note(0, 12, 60)], key="H major").validate()


# ----------------------------------------------------------------------------- samples
def test_samples_folder():
    paths = sample_paths()
    assert 4 <= len(paths) <= 6 and paths == SAMPLE_PATHS
    assert sum(p.stat().st_size for p in paths.values()) < 200_000
    readme = (samples_dir() / "README.md").read_text()
    assert all(f"`{p.name}`" in readme for p in paths.values())
    metres = {name: [(ts.numerator, ts.denominator) for ts in Piece.from_midi(p).time_signatures]
              for name, p in paths.items()}
    assert metres["bwv269"] == [(3, 4)] and metres["bwv248.23-2"] == [(12, 8)]
    assert metres["bwv304"] == [(4, 4), (3, 4)]


def _make_samples_module():
    spec = importlib.util.spec_from_file_location("make_samples", samples_dir() / "make_samples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_samples_match_the_music21_corpus():
    """Each sample equals Piece.from_music21 of its corpus score, and rewriting it gives the same bytes."""
    samples = _make_samples_module().SAMPLES
    assert set(samples) == set(SAMPLE_PATHS)
    for name, corpus_path in samples.items():
        from_score = Piece.from_music21(corpus.parse(corpus_path), name=name)
        assert Piece.from_midi(SAMPLE_PATHS[name]) == from_score
        assert from_score.to_midi_bytes() == SAMPLE_PATHS[name].read_bytes()


def test_chorale_facts(chorale):
    assert chorale.key == "f# minor" and chorale.tempos == [TempoChange(0, 96.0)]
    # the one-beat pickup is padded: the first note starts on beat 4 of bar 1
    assert chorale.notes[0].start == 36 and chorale.bar_starts()[:3] == [0, 48, 96]
    assert {n.program for n in chorale.notes} == {0}


# ----------------------------------------------------------------------------- snapping
def test_off_grid_pretty_midi_is_snapped_by_the_documented_rule():
    q = 0.6  # seconds per quarter note at 100 bpm; MIDI ticks = seconds / q * 480, grid = ticks * 12 / 480
    pm = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=100.0)
    piano, drums = pretty_midi.Instrument(program=0), pretty_midi.Instrument(program=0, is_drum=True)
    piano.notes += [
        pretty_midi.Note(velocity=70, pitch=60, start=1.02 * q, end=1.49 * q),  # grid 12.25 -> 12, 17.875 -> 18
        pretty_midi.Note(velocity=90, pitch=60, start=0.99 * q, end=2.2 * q),  # 11.875 -> 12, 26.4 -> 26: merged
        pretty_midi.Note(velocity=60, pitch=60, start=2.0 * q, end=2.5 * q),  # 24 -> 30: cuts the merged C at 24
        pretty_midi.Note(velocity=50, pitch=64, start=2.0 * q, end=2.01 * q),  # 24 -> 24.125: 0 ticks -> 1 tick
        pretty_midi.Note(velocity=60, pitch=67, start=q / 24, end=5 * q / 24),  # 0.5 -> 1, 2.5 -> 3: halves up
    ]
    drums.notes.append(pretty_midi.Note(velocity=100, pitch=36, start=0.0, end=0.1 * q))  # 0 -> 1.2
    pm.instruments += [piano, drums]
    pm.time_signature_changes.append(pretty_midi.TimeSignature(3, 4, 0.0))
    piece = Piece.from_pretty_midi(pm, name="off grid")
    assert piece.notes == [
        Note(0, 1, 36, 100, is_drum=True),
        Note(1, 2, 67, 60),
        Note(12, 12, 60, 90),  # the longer (12-26) and louder of the two merged notes, cut at 24
        Note(24, 1, 64, 50),
        Note(24, 6, 60, 60),
    ]
    assert piece.tempos == [TempoChange(0, 100.0)] and piece.time_signatures == [TimeSignature(0, 3, 4)]
    assert piece.name == "off grid" and piece.key is None


def _note_events(spans: list[tuple[int, int]], pitch: int = 60) -> list:
    """Delta-timed messages for one note per (start, end) span in MIDI ticks (offs before ons)."""
    events = sorted([(end, 0, mido.Message("note_off", note=pitch)) for _, end in spans]
                    + [(start, 1, mido.Message("note_on", note=pitch, velocity=80)) for start, _ in spans],
                    key=lambda e: e[:2])
    ticks = [0] + [tick for tick, _, _ in events]
    return [msg.copy(time=tick - before) for (tick, _, msg), before in zip(events, ticks)]


def test_grid_position_does_not_depend_on_tempo_or_resolution():
    pieces = []
    for tempo_us in (250_000, 1_000_000):
        for res in (96, 100, 480):
            spans = [(0, res // 3), (res // 3, res), (res * 7 // 5, res * 2)]
            data = _midi_bytes([mido.MetaMessage("set_tempo", tempo=tempo_us)] + _note_events(spans), resolution=res)
            pieces.append(Piece.from_midi(data))
    assert [(n.start, n.duration) for n in pieces[0].notes] == [(0, 4), (4, 8), (17, 7)]  # 7/5 q = 16.8 -> 17
    assert all(p.notes == pieces[0].notes for p in pieces)


def test_off_grid_tempo_and_meter_events_are_snapped_and_read_from_any_track():
    mid = mido.MidiFile(ticks_per_beat=96)
    conductor = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500_000)])
    notes = mido.MidiTrack([
        mido.Message("note_on", note=60, velocity=80, time=0),
        mido.MetaMessage("time_signature", numerator=3, denominator=4, time=383),  # tick 383 -> grid 48 (47.875)
        mido.MetaMessage("set_tempo", tempo=750_000, time=2),  # tick 385 -> grid 48 (48.125)
        mido.MetaMessage("key_signature", key="Ebm", time=0),
        mido.Message("note_off", note=60, time=5),
    ])
    mid.tracks += [conductor, notes]
    out = io.BytesIO()
    mid.save(file=out)
    piece = Piece.from_midi(out.getvalue(), name="off grid")
    assert piece.time_signatures == [TimeSignature(0, 4, 4), TimeSignature(48, 3, 4)]
    assert piece.tempos == [TempoChange(0, 120.0), TempoChange(48, 80.0)]
    assert piece.key == "eb minor" and piece.notes == [Note(0, 49, 60, 80)]


# ----------------------------------------------------------------------------- bad input
def _midi_bytes(*tracks: list, resolution: int = 96, midi_type: int = 1) -> bytes:
    mid = mido.MidiFile(ticks_per_beat=resolution, type=midi_type)
    mid.tracks += [mido.MidiTrack(t) for t in tracks]
    out = io.BytesIO()
    mid.save(file=out)
    return out.getvalue()


def _sample_bytes() -> bytes:
    return SAMPLE_PATHS["bwv438"].read_bytes()


def _patched(data: bytes, old: bytes, new: bytes) -> bytes:
    assert old in data
    return data.replace(old, new, 1)


BAD_BYTES = {
    "empty": (b"", "empty input"),
    "garbage": (bytes(range(7, 250, 3)) * 4, "not a MIDI file"),
    "wav": (b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00" + b"\x00" * 40, "not a MIDI file"),
    "text": (b"X:1\nT:a tune\nK:G\nGABc|\n", "not a MIDI file"),
    "truncated header": (b"MThd\x00\x00\x00\x06\x00", "truncated"),
    "truncated track": (_sample_bytes()[:700], "truncated"),
    "missing track": (_sample_bytes()[:_sample_bytes().rindex(b"MTrk")], "truncated"),
    "only meta events": (_midi_bytes([mido.MetaMessage("set_tempo", tempo=400_000),
                                      mido.MetaMessage("time_signature", numerator=3, denominator=4),
                                      mido.MetaMessage("track_name", name="no notes")]), "contains no notes"),
    "data byte above 127": (_patched(_sample_bytes(), bytes([0x90, 65, 80]), bytes([0x90, 65, 200])), "data byte"),
    "undefined status byte": (_patched(_sample_bytes(), bytes([0x90, 65, 80]), bytes([0xF4, 65, 80])), "status byte"),
    "zero tempo": (_midi_bytes([mido.MetaMessage("set_tempo", tempo=0), mido.Message("note_on", note=60, velocity=9),
                                mido.Message("note_off", note=60, time=96)]), "unreadable MIDI data"),
    "huge tick": (_midi_bytes([mido.Message("note_on", note=60, velocity=9),
                               mido.Message("note_off", note=60, time=50_000_000)]), "likely corrupt"),
    "smpte division": (_patched(_midi_bytes([mido.Message("note_on", note=60, velocity=9)]),
                                b"\x00\x01\x00\x01\x00\x60", b"\x00\x01\x00\x01\xe7\x28"), "SMPTE"),
    "time signature 3/64": (_midi_bytes([mido.MetaMessage("time_signature", numerator=3, denominator=64),
                                         mido.Message("note_on", note=60, velocity=9),
                                         mido.Message("note_off", note=60, time=96)]), "3/64"),
}


@pytest.mark.parametrize("case", BAD_BYTES)
def test_bad_bytes_raise_midi_error_naming_the_source(case):
    data, reason = BAD_BYTES[case]
    with pytest.raises(MidiError, match=f"<bytes>: .*{reason}"):
        Piece.from_midi(data)
    with pytest.raises(MidiError, match=f"upload.mid: .*{reason}"):
        load_piece(data, name="upload.mid")


@pytest.mark.parametrize("case", BAD_BYTES)
def test_bad_files_raise_midi_error_naming_the_file(case, tmp_path):
    path = tmp_path / f"{case.replace(' ', '_').replace('/', '-')}.mid"
    path.write_bytes(BAD_BYTES[case][0])
    with pytest.raises(MidiError, match=f"{path.name}: .*{BAD_BYTES[case][1]}"):
        load_piece(str(path))


def test_missing_path_and_directory(tmp_path):
    with pytest.raises(MidiError, match="nowhere.mid: cannot read the file"):
        Piece.from_midi(tmp_path / "nowhere.mid")
    with pytest.raises(MidiError, match=f"{tmp_path.name}: cannot read the file"):
        load_piece(tmp_path)


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(0, 1212), flips=st.lists(st.tuples(st.integers(0, 1212), st.integers(0, 255)), max_size=4))
def test_damaged_files_give_midi_error_or_a_valid_piece(cut, flips):
    data = bytearray(_sample_bytes())
    for position, value in flips:
        data[position % len(data)] = value
    try:
        piece = Piece.from_midi(bytes(data[: max(cut, 1)] if cut < len(data) else data))
    except MidiError as e:
        assert str(e).startswith("<bytes>: ")
    else:
        assert len(piece) > 0 and piece.validate() is piece


def test_bad_pretty_midi_and_music21_input():
    pm = pretty_midi.PrettyMIDI()
    with pytest.raises(MidiError, match="<PrettyMIDI>: contains no notes"):
        Piece.from_pretty_midi(pm)
    inst = pretty_midi.Instrument(0)
    inst.notes.append(pretty_midi.Note(velocity=80, pitch=60, start=-1.0, end=0.5))
    pm.instruments.append(inst)
    with pytest.raises(MidiError, match="mine: time -1.0 s is negative"):
        Piece.from_pretty_midi(pm, name="mine")
    inst.notes[0] = pretty_midi.Note(velocity=80, pitch=130, start=0.0, end=0.5)
    with pytest.raises(MidiError, match="<PrettyMIDI>: note .* out of MIDI range"):
        load_piece(pm)
    rests = stream.Stream([note.Rest(quarterLength=4)])
    with pytest.raises(MidiError, match="<music21 Stream>: contains no notes"):
        Piece.from_music21(rests)
    with pytest.raises(MidiError, match="empty score: contains no notes"):
        load_piece(stream.Score(), name="empty score")


def test_load_piece_rejects_other_types():
    with pytest.raises(TypeError, match="cannot load a int"):
        load_piece(42)


def test_empty_piece_in_code_is_allowed():
    assert len(Piece([])) == 0 and Piece([]).end_tick == 0
    assert Piece([]).to_midi_bytes().startswith(b"MThd")


# ----------------------------------------------------------------------------- load_piece
def test_load_piece_accepts_every_kind_of_input(tmp_path):
    path = SAMPLE_PATHS["bwv438"]
    want = Piece.from_midi(path)
    assert load_piece(want) is want
    assert load_piece(want, name="renamed").name == "renamed"
    assert load_piece(path) == want and load_piece(str(path)) == want
    assert load_piece(path.read_bytes(), name="bwv438") == want
    assert load_piece(bytearray(path.read_bytes()), name="bwv438") == want
    with open(path, "rb") as f:
        assert load_piece(f) == want
    assert_same_piece(load_piece(pretty_midi.PrettyMIDI(str(path)), name="bwv438"), want)
    score = want.to_music21()
    assert load_piece(score) == want
    assert load_piece(score.parts[0]).notes == want.notes  # one part: program 0 holds every note


def test_bytes_take_their_name_from_track_0():
    piece = HAND_PIECES["swing"]
    assert Piece.from_midi(piece.to_midi_bytes()).name == "swing"
    assert Piece.from_midi(piece.to_midi_bytes(), name="other").name == "other"


def test_import_is_light():
    code = ("import sys, mstoolkit.piece; "
            "print(sorted(m for m in ('music21', 'pretty_midi', 'mido', 'symusic') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"


# ----------------------------------------------------------------------------- the two MIDI readers
def test_readers_agree_on_samples(sample_path):
    fast, fallback = read_both(sample_path.read_bytes(), sample_path.stem)
    assert fast == fallback == Piece.from_midi(sample_path)


def test_readers_agree_on_hand_made_pieces(hand_piece):
    from music21 import midi

    for data in (hand_piece.to_midi_bytes(),
                 midi.translate.streamToMidiFile(hand_piece.to_music21()).writestr()):  # music21's own writer
        fast, fallback = read_both(data)
        assert fast == fallback
        assert fast.notes == hand_piece.notes


def test_readers_agree_on_files_from_other_writers():
    """Off-grid times at 220 ticks per quarter (pretty_midi's writer), format 0 and 2, running
    status, channels and programs sharing a track, conductor events in a note track, a track name
    after note events (in running status)."""
    on = lambda pitch, channel=0, velocity=80: mido.Message("note_on", note=pitch, velocity=velocity, channel=channel)
    off = lambda pitch, channel=0: mido.Message("note_off", note=pitch, channel=channel)
    tracks = [
        [mido.Message("program_change", program=40), mido.Message("program_change", program=33, channel=3),
         on(60), on(64), on(40, channel=3), on(36, channel=9), mido.MetaMessage("track_name", name="late name", time=5),
         off(60).copy(time=91), off(64), on(62, velocity=0), off(40, channel=3), off(36, channel=9).copy(time=7)],
        [mido.MetaMessage("set_tempo", tempo=750_000, time=48), mido.MetaMessage("key_signature", key="Gb"),
         mido.MetaMessage("time_signature", numerator=6, denominator=8), on(64), off(64).copy(time=200)],
    ]
    files = [_midi_bytes(*tracks), _midi_bytes(tracks[0] + tracks[1], midi_type=0), _midi_bytes(*tracks, midi_type=2)]
    pm = pretty_midi.PrettyMIDI(resolution=220, initial_tempo=133.0)
    inst = pretty_midi.Instrument(program=11)
    inst.notes = [pretty_midi.Note(90, 60 + i % 7, 0.123 * i, 0.123 * i + 0.3) for i in range(40)]
    pm.instruments.append(inst)
    out = io.BytesIO()
    pm.write(out)
    files.append(out.getvalue())
    for data in files:
        fast, fallback = read_both(data)
        assert fast == fallback and len(fast) > 0
    assert Piece.from_midi(files[0]).name == "late name" and Piece.from_midi(files[1]).key == "Gb major"


def test_where_the_readers_differ_as_documented():
    """Overlapping notes of one pitch on one channel: symusic pairs note-ons and note-offs first in,
    first out; pretty_midi ends every sounding note of the pitch at the first note-off. A
    note-off at its note-on's tick: symusic gives a 1-tick note, pretty_midi drops the note."""
    overlap = _midi_bytes([
        mido.Message("note_on", note=60, velocity=80), mido.Message("note_on", note=60, velocity=90, time=24),
        mido.Message("note_off", note=60, time=24), mido.Message("note_off", note=60, time=24)])
    fast, fallback = read_both(overlap)  # at 96 ticks per quarter: ons at 0 and 3, offs at 6 and 9 grid ticks
    assert fast.notes == [Note(0, 3, 60, 80), Note(3, 6, 60, 90)]  # 0-6 cut at 3, then 3-9
    assert fallback.notes == [Note(0, 3, 60, 80), Note(3, 3, 60, 90)]  # both end at 6
    instant = _midi_bytes(_note_events([(0, 96)], pitch=67) + [
        mido.Message("note_on", note=60, velocity=80, time=48), mido.Message("note_off", note=60)])
    fast, fallback = read_both(instant)
    assert fast.notes == [Note(0, 12, 67, 80), Note(18, 1, 60, 80)] and fallback.notes == [Note(0, 12, 67, 80)]


def test_the_fallback_reader_serves_without_symusic(monkeypatch):
    want = {name: Piece.from_midi(path) for name, path in SAMPLE_PATHS.items()}
    monkeypatch.setitem(sys.modules, "symusic", None)  # `import symusic` now raises ImportError
    assert _from_midi_symusic(SAMPLE_PATHS["bwv438"].read_bytes(), "<bytes>", "") is None
    assert {name: Piece.from_midi(path) for name, path in SAMPLE_PATHS.items()} == want


def test_symusic_reads_well_formed_files(monkeypatch, sample_path):
    """The fallback reader is not called for a good file (it would be 10x slower)."""
    def no_fallback(*args):
        raise AssertionError("the fallback reader was called")

    monkeypatch.setattr("mstoolkit.piece._from_midi_mido", no_fallback)
    assert len(Piece.from_midi(sample_path)) > 100


@pytest.mark.parametrize("case", BAD_BYTES)
def test_bad_bytes_give_the_same_error_without_symusic(case, monkeypatch):
    data, reason = BAD_BYTES[case]
    monkeypatch.setitem(sys.modules, "symusic", None)
    with pytest.raises(MidiError, match=f"<bytes>: .*{reason}"):
        Piece.from_midi(data)


def test_files_symusic_rejects_are_read_by_the_fallback():
    data = _sample_bytes()
    longer_header = data[:4] + b"\x00\x00\x00\x08" + data[8:14] + b"\x00\x00" + data[14:]  # legal, rare
    assert Piece.from_midi(longer_header) == Piece.from_midi(data)


def test_a_missing_track_is_an_error_not_a_smaller_piece():
    notes = _note_events([(0, 96)])
    data = _midi_bytes(notes, notes, notes)
    with pytest.raises(MidiError, match="<bytes>: .*truncated"):
        Piece.from_midi(data[:data.rindex(b"MTrk")])


def test_unknown_chunks_are_skipped():
    """The MIDI standard asks readers to skip chunks they do not know (symusic does; mido would not)."""
    data = _sample_bytes()
    track = data.index(b"MTrk")
    with_alien = data[:track] + b"XTRA\x00\x00\x00\x03abc" + data[track:]
    assert Piece.from_midi(with_alien) == Piece.from_midi(data)


# ----------------------------------------------------------------------------- the MIDI writer
def test_written_bytes_are_what_mido_writes(hand_piece):
    data = hand_piece.to_midi_bytes()
    assert mido_rewrite(data) == data


@pytest.mark.parametrize("change, reason", [
    (dict(time_signatures=[TimeSignature(0, 300, 4)]), "numerator 300 > 255"),
    (dict(tempos=[TempoChange(0, 3.0)]), "tempo 3.0 bpm"),
    (dict(name="\u591c\u66f2"), "not Latin-1"),
])
def test_what_midi_cannot_hold_raises_midi_error(change, reason):
    with pytest.raises(MidiError, match=f"cannot be written as MIDI .*{reason}"):
        Piece([Note(0, 12, 60)]).replace(**change).to_midi_bytes()


# ----------------------------------------------------------------------------- music21 details
def _measure(number: int, *elements) -> stream.Measure:
    m = stream.Measure(number=number)
    for el in elements:
        m.append(el)
    return m


def test_music21_ties_chords_rests_pickup_tempo_and_instrument():
    part = stream.Part()
    part.insert(0, instrument.Violin())
    pickup = stream.Measure(number=0)
    pickup.append([meter.TimeSignature("3/4"), key.Key("E-"), tempo.MetronomeMark(number=72),
                   note.Note("B-4", quarterLength=1)])
    pickup.paddingLeft = 2.0  # a one-beat pickup in 3/4
    tied_a, tied_b = note.Note("C5", quarterLength=2), note.Note("C5", quarterLength=1)
    tied_a.tie, tied_b.tie = music21.tie.Tie("start"), music21.tie.Tie("stop")
    loud = chord.Chord(["E-4", "G4"], quarterLength=1)
    loud.volume.velocity = 110
    m1 = _measure(1, note.Rest(quarterLength=1), tied_a)
    m2 = _measure(2, tied_b, loud, note.Note("D5", quarterLength=Fraction(1, 3)),
                  note.Note("E-5", quarterLength=Fraction(1, 3)), note.Note("F5", quarterLength=Fraction(1, 3)))
    m3 = _measure(3, meter.TimeSignature("2/4"), note.Note("G5", quarterLength=2))
    for m in (pickup, m1, m2, m3):
        part.append(m)
    piece = Piece.from_music21(part, name="hand score")
    assert piece.notes == [
        Note(24, 12, 70, 80, program=40),  # the pickup beat is padded to beat 3 of bar 1
        Note(48, 36, 72, 80, program=40),  # C5 half tied to a quarter across the bar line
        Note(84, 12, 63, 110, program=40), Note(84, 12, 67, 110, program=40),  # the chord
        Note(96, 4, 74, 80, program=40), Note(100, 4, 75, 80, program=40), Note(104, 4, 77, 80, program=40),
        Note(108, 24, 79, 80, program=40),
    ]
    assert piece.time_signatures == [TimeSignature(0, 3, 4), TimeSignature(108, 2, 4)]
    assert piece.tempos == [TempoChange(0, 72.0)] and piece.key == "Eb major" and piece.name == "hand score"
    assert piece.bar_starts() == [0, 36, 72, 108]


def test_music21_repeats_are_written_out():
    part = stream.Part()
    m1 = _measure(1, meter.TimeSignature("2/4"), note.Note("C4", quarterLength=2))
    m2 = _measure(2, note.Note("D4", quarterLength=2))
    m2.rightBarline = bar.Repeat(direction="end")
    m3 = _measure(3, note.Note("E4", quarterLength=2))
    for m in (m1, m2, m3):
        part.append(m)
    piece = Piece.from_music21(part)
    assert [(n.start, n.pitch) for n in piece.notes] == [(0, 60), (24, 62), (48, 60), (72, 62), (96, 64)]


def test_music21_drums():
    part = stream.Part()
    part.insert(0, instrument.UnpitchedPercussion())
    kick = note.Unpitched(quarterLength=1)
    kick.storedInstrument = instrument.BassDrum()
    part.append([kick, note.Note(38, quarterLength=1)])
    piece = Piece.from_music21(part)
    assert piece.notes == [Note(0, 12, 35, 80, is_drum=True), Note(12, 12, 38, 80, is_drum=True)]  # 35: bass drum


def test_music21_corpus_score_and_its_part(chorale):
    score = corpus.parse("bach/bwv66.6")
    assert Piece.from_music21(score) == chorale
    soprano = Piece.from_music21(score.parts[0])
    assert soprano.name == "bwv66.6" and len(soprano) == 36 and soprano.notes[0] == Note(36, 6, 73, 80)


def test_to_music21_builds_parts_per_program():
    score = HAND_PIECES["drums and programs"].to_music21()
    insts = [p.getInstrument() for p in score.parts]
    assert [i.midiProgram for i in insts] == [0, 25, 48, 0]
    assert isinstance(insts[-1], instrument.UnpitchedPercussion)
    assert [ts.ratioString for ts in score.parts[0].recurse().getElementsByClass(meter.TimeSignature)] == ["4/4"]
    mark = score.parts[0].recurse().getElementsByClass(tempo.MetronomeMark).first()
    assert mark.getQuarterBPM() == pytest.approx(104.0)
    chords = score.parts[0].recurse().getElementsByClass(chord.Chord)
    assert len(chords) == 4 and [p.midi for p in chords[0].pitches] == [60, 64, 67]


def test_music21_notation_with_measures_and_ties_reads_back():
    piece = HAND_PIECES["waltz 3/4"].replace(notes=[Note(0, 60, 57), Note(60, 48, 60), Note(108, 6, 62)])
    score = piece.to_music21()
    score.makeNotation(inPlace=True)  # split into measures, notes across bar lines become tied
    assert score.parts[0].recurse().notes[1].tie is not None
    assert Piece.from_music21(score) == piece


# ----------------------------------------------------------------------------- bars
def test_bar_starts_and_slice_bars_with_a_time_signature_change():
    piece = HAND_PIECES["meter changes"]  # 2 bars 4/4, 2 bars 3/4 (from 96), 6/8 (from 168)
    assert piece.bar_starts() == [0, 48, 96, 132, 168]
    assert piece.bar_starts(until=240) == [0, 48, 96, 132, 168, 204]
    middle = piece.slice_bars(1, 2)  # bar 2 (4/4) and bar 3 (3/4)
    assert middle.time_signatures == [TimeSignature(0, 4, 4), TimeSignature(48, 3, 4)]
    assert middle.tempos == [TempoChange(0, 120.0), TempoChange(48, 90.5)]
    assert [n.start for n in middle.notes] == [0, 12, 24, 36, 48, 60, 72]
    assert middle.bar_starts() == [0, 48]
    last = piece.slice_bars(3, 2)
    assert last.time_signatures == [TimeSignature(0, 3, 4), TimeSignature(36, 6, 8)]
    assert last.tempos == [TempoChange(0, 90.5), TempoChange(36, 132.125)]
    assert_same_piece(via_bytes(middle), middle)


def test_time_signature_change_off_the_bar_line_waits_for_the_next_bar():
    sigs = [TimeSignature(0, 4, 4), TimeSignature(60, 3, 4)]  # 3/4 from the middle of bar 2
    piece = Piece([Note(0, 12, 60), Note(150, 12, 60)], time_signatures=sigs)
    assert piece.bar_starts() == [0, 48, 96, 132]
