"""The real-world-like test set builder (``benchmarks/real_world_set.py``, issue 14), built from the
shipped sample pieces so the test needs no music21 corpus: valid MIDI files with the expected tracks,
humanised timing off the grid over a clean score on it, aligned time, determinism."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import mido
import numpy as np
import pytest

from mstoolkit import metrics
from mstoolkit.piece import Note, Piece, TempoChange, load_piece, sample_paths

ROOT = Path(__file__).resolve().parent.parent


def _load_module():
    spec = importlib.util.spec_from_file_location("real_world_set", ROOT / "benchmarks" / "real_world_set.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rws = _load_module()
COUNTS = {kind: 1 for kind in rws.KINDS}


def _build(folder: Path, seed: int) -> dict:
    pieces = [load_piece(path).replace(name=name) for name, path in sorted(sample_paths().items())]
    return rws.build_set(pieces, folder, seed=seed, counts=COUNTS, long_seconds=40.0, progress=False)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("real_world")
    manifest = _build(folder, seed=3)
    return folder, manifest, {it["kind"]: rws.load_item(folder, it) for it in manifest["items"]}


def test_every_kind_is_a_readable_midi_file_with_its_clean_score(built):
    folder, manifest, items = built
    assert [it["kind"] for it in manifest["items"]] == list(rws.KINDS)
    for kind, item in items.items():
        piece = load_piece(item["path"])
        clean = rws.pitched(item["score"])
        assert len(rws.pitched(piece).notes) >= 0.97 * len(clean.notes) > 0, kind
        assert item["pitched_notes"] == len(clean.notes)
        # the set's own alignment puts the clean score onto the file's grid, note for note
        placed = rws.place_on_grid(clean, item["time_map"], piece)
        assert metrics.note_prf(rws.pitched(piece), placed).f1 > (0.9 if kind == "humanised" else 0.999), kind
    assert items["long"]["seconds"] >= 40.0 and len(items["long"]["sources"]) >= 2


@pytest.mark.parametrize("kind", ["multitrack", "long"])
def test_arrangements_have_drums_on_channel_10_and_a_bass_track(built, kind):
    _, _, items = built
    item = items[kind]
    piece = load_piece(item["path"])
    drums = [n for n in piece.notes if n.is_drum]
    assert drums and {n.pitch for n in drums} >= {rws.KICK, rws.SNARE, rws.HIHAT}
    assert item["drum_notes"] == len(drums)
    raw = mido.MidiFile(item["path"])
    channels = {m.channel for track in raw.tracks for m in track if m.type == "note_on"}
    assert 9 in channels and len(channels) >= 4  # drums on channel 10 (index 9) + three pitched tracks
    programs = {n.program for n in piece.notes if not n.is_drum}
    bass = [p for p in programs if 32 <= p <= 39]
    assert len(programs) == 3 and len(bass) == 1
    # the bass track holds the lowest voice: no pitched note starts below a bass note at its onset
    lowest = {}
    for n in piece.notes:
        if not n.is_drum:
            lowest[n.start] = min(lowest.get(n.start, 128), n.pitch)
    bass_notes = [n for n in piece.notes if n.program == bass[0] and not n.is_drum]
    assert bass_notes and all(n.pitch == lowest[n.start] for n in bass_notes)
    # drums lie on the score's beat grid
    assert all(n.start % 6 == 0 for n in drums)


def test_humanised_onsets_are_off_the_grid_and_its_score_is_on_it(built):
    _, _, items = built
    item = items["humanised"]
    raw = mido.MidiFile(item["path"])
    tempos = [m.tempo for track in raw.tracks for m in track if m.type == "set_tempo"]
    assert tempos == [500000]  # one fixed 120 bpm header
    signatures = [(m.numerator, m.denominator, m.time) for t in raw.tracks for m in t if m.type == "time_signature"]
    assert signatures in ([], [(4, 4, 0)])  # at most the recorder's default 4/4
    piece = load_piece(item["path"])
    clean = rws.pitched(item["score"])
    assert all(n.start % 3 == 0 for n in clean.notes)  # the clean score is on the sixteenth grid
    on_grid = np.mean([n.start % 3 == 0 for n in piece.notes])
    assert on_grid < 0.6  # the file's onsets are not (a third would be by chance)
    # ... and far from the score's grid: read naively, the file does not match its score
    assert metrics.note_prf(piece, clean).f1 < 0.3
    # the tempo drifts: seconds per quarter vary by more than 10 % over the piece
    per_quarter = np.diff(rws.score_seconds(item["time_map"], np.arange(0, clean.end_tick, 12)))
    assert per_quarter.max() / per_quarter.min() > 1.1
    assert len({n.velocity for n in piece.notes}) > 10


def test_meter_pickup_and_tempo_variants(built):
    _, _, items = built
    odd = load_piece(items["odd_meter"]["path"])
    assert [(ts.numerator, ts.denominator) for ts in odd.time_signatures] == [(5, 4)]
    pickup = items["pickup"]
    shift = pickup["params"]["pickup_ticks"]
    assert shift > 0 and min(n.start for n in load_piece(pickup["path"]).notes) == 0
    assert min(n.start for n in pickup["score"].notes) == shift  # the clean score keeps the true bar lines
    tempo = load_piece(items["tempo_change"]["path"])
    assert len(tempo.tempos) > 2 and tempo.tempos[-1].bpm < tempo.tempos[0].bpm


def test_odd_meter_files_can_take_another_meter(tmp_path):
    pieces = [load_piece(path).replace(name=name) for name, path in sorted(sample_paths().items())]
    manifest = rws.build_set(pieces, tmp_path, counts={"odd_meter": 1}, odd_meter="7/8", progress=False)
    item = rws.load_item(tmp_path, manifest["items"][0])
    file = load_piece(item["path"])
    assert [(ts.numerator, ts.denominator) for ts in file.time_signatures] == [(7, 8)]
    assert item["params"]["meter"] == "7/8" and item["score"].notes == rws.pitched(item["score"]).notes
    assert metrics.note_prf(file, rws.place_on_grid(item["score"], item["time_map"], file)).f1 > 0.999
    with pytest.raises(SystemExit):
        rws.main(["--odd-meter", "seven", "--out", str(tmp_path / "bad")])


def test_seconds_to_ticks_inverts_the_tempo_map():
    piece = Piece([Note(0, 12, 60), Note(200, 12, 60)], [TempoChange(0, 90.0), TempoChange(48, 140.0)])
    ticks = np.array([0, 10, 48, 60, 199.5])
    seconds = [piece.tick_to_seconds(t) for t in ticks]
    assert np.allclose(rws.seconds_to_ticks(piece, seconds), ticks)


def test_the_build_is_deterministic_given_the_seed(built, tmp_path):
    folder, manifest, _ = built
    again = _build(tmp_path / "again", seed=3)
    assert again == manifest
    for item in manifest["items"]:
        for suffix in (".mid", ".json"):
            name = item["name"] + suffix
            assert (folder / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name
    other = _build(tmp_path / "other", seed=4)
    first = lambda m: next(it for it in m["items"] if it["kind"] == "humanised")  # noqa: E731
    assert (folder / first(manifest)["midi"]).read_bytes() != (tmp_path / "other" / first(other)["midi"]).read_bytes()


def test_a_grid_map_fitted_from_a_regridded_performance_places_the_score_back(built):
    """A re-gridding of the humanised file that is perfect -- its clean score -- gives back the
    performance's time map, so a target placed through the fitted map lands on the score's grid."""
    _, _, items = built
    item = items["humanised"]
    source = load_piece(item["path"])
    clean = rws.pitched(item["score"])
    grid_map = rws.fit_grid_map(clean, source)
    assert grid_map is not None and len(grid_map) > 0.5 * len({n.start for n in clean.notes})
    error = rws.score_seconds(grid_map, grid_map[:, 0]) - rws.score_seconds(item["time_map"], grid_map[:, 0])
    assert np.median(np.abs(error)) < 0.03  # seconds
    placed = rws.place_on_grid(clean, item["time_map"], clean, grid_map)
    assert metrics.note_prf(placed, clean).f1 > 0.95
