"""Tests for mstoolkit.data: corpora + caches, windows, splits, StyleBench triplets, Dataset/collate."""
from __future__ import annotations

import collections
import dataclasses
import json
import pickle

import numpy as np
import pytest
import torch

from mstoolkit import data
from mstoolkit.config import UserError
from mstoolkit.data import (
    StyleBenchConfig,
    StyleBenchDataset,
    build_stylebench,
    collate,
    collection_of,
    cut_windows,
    load_corpus,
    load_test_split,
    midi_folder,
    music21_corpus,
    piece_from_dict,
    piece_of,
    piece_to_dict,
    split_of,
)
from mstoolkit.piece import Note, Piece, TempoChange, TimeSignature
from pieces import make_piece




PIECES = [make_piece(f"piece{i:02d}", i) for i in range(8)]
# with seed 0 these names split 3 train / 3 val / 2 test (asserted in test_split_by_piece)
TINY = StyleBenchConfig(corpus="tiny", styles=("straight", "swing", "staccato", "waltz"), window_bars=2,
                        split_fractions=(0.5, 0.25, 0.25), triplets_per_window=3, eval_triplets_per_window=2,
                        max_eval_triplets=6)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return build_stylebench(TINY, tmp_path_factory.mktemp("cache"), pieces=PIECES, progress=False)


# ----------------------------------------------------------------------------- pieces, windows, splits
def test_piece_dict_round_trip_is_exact_and_json():
    p = Piece([Note(0, 5, 60, 33, 40), Note(3, 2, 36, 100, 0, True)], [TempoChange(0, 96.5), TempoChange(24, 80.0)],
              [TimeSignature(0, 3, 4), TimeSignature(36, 6, 8)], key="a minor", name="x")
    assert piece_from_dict(json.loads(json.dumps(piece_to_dict(p)))) == p


def test_cut_windows_bars_names_and_sparse_windows():
    piece = make_piece("p", 0, n_bars=9)  # 9 bars -> windows at bars 0, 4 (the 9th bar is left over)
    windows = cut_windows(piece, 4)
    assert [b for b, _ in windows] == [0, 4]
    assert [w.name for _, w in windows] == ["p@0", "p@4"]
    assert windows[1][1].notes == piece.slice_bars(4, 4).notes
    assert all(n.start < 4 * 48 for _, w in windows for n in w.notes)
    sparse = piece.replace(notes=[n for n in piece.notes if n.start < 4 * 48 or n.start >= 8 * 48])
    assert [b for b, _ in cut_windows(sparse, 4)] == [0]  # bars 4-7 are empty
    assert [b for b, _ in cut_windows(piece, 2, max_windows=3)] == [0, 2, 4]
    with pytest.raises(ValueError, match="n_bars"):
        cut_windows(piece, 0)


def test_split_is_stable_when_pieces_are_added_and_follows_fractions():
    names = [f"work{i}" for i in range(4000)]
    splits = {n: split_of(n, 7) for n in names}
    assert {n: split_of(n, 7) for n in names[:100]} == {n: splits[n] for n in names[:100]}
    counts = collections.Counter(splits.values())
    assert abs(counts["train"] / 4000 - 0.8) < 0.03 and abs(counts["test"] / 4000 - 0.1) < 0.02
    assert [split_of(n, 8) for n in names[:50]] != [splits[n] for n in names[:50]]  # the seed matters
    with pytest.raises(ValueError, match="fractions"):
        split_of("x", 0, (0.5, 0.5, 0.5))


# ----------------------------------------------------------------------------- corpora and caches
def _count_calls(monkeypatch, owner, attr):
    calls = []
    original = getattr(owner, attr)

    def counted(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, attr, counted)
    return calls


def test_midi_folder_caches_skips_corrupt_files_and_names_them(tmp_path, monkeypatch):
    folder = tmp_path / "midi"
    (folder / "sub").mkdir(parents=True)
    PIECES[0].save_midi(folder / "a.mid")
    PIECES[1].save_midi(folder / "sub" / "b.MIDI")
    (folder / "garbage.mid").write_bytes(b"MThd this is not midi")
    (folder / "notes.txt").write_text("ignored")
    cache = tmp_path / "cache"
    calls = _count_calls(monkeypatch, Piece, "from_midi")
    with pytest.warns(UserWarning, match="garbage.mid"):
        first = midi_folder(folder, cache_dir=cache, progress=False)
    assert [p.name for p in first] == ["a.mid", "sub/b.MIDI"] and len(calls) == 3
    assert [n.pitch for n in first[0].notes] == [n.pitch for n in PIECES[0].notes]
    with pytest.warns(UserWarning, match="garbage.mid"):  # the failure is cached too, and still reported
        second = midi_folder(folder, cache_dir=cache, progress=False)
    assert second == first and len(calls) == 3  # nothing parsed again
    PIECES[2].save_midi(folder / "a.mid")  # a changed file is parsed again, the others are not
    with pytest.warns(UserWarning):
        third = midi_folder(folder, cache_dir=cache, progress=False)
    assert len(calls) == 4 and third[0].notes != first[0].notes
    with pytest.warns(UserWarning):  # a folder given as a StyleBench corpus goes the same way
        assert data.load_corpus(str(folder), cache_dir=cache, progress=False) == third
    assert not list(cache.rglob("*.pkl")) and all(json.loads(f.read_text()) for f in cache.rglob("*.json"))


def test_midi_folder_bad_input_raises_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="not a folder"):
        midi_folder(tmp_path / "missing", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="no .mid"):
        midi_folder(tmp_path, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="existing folder of MIDI files"):
        data.load_corpus(tmp_path / "typo", cache_dir=tmp_path)
    (tmp_path / "x.mid").write_bytes(b"")
    with pytest.warns(UserWarning, match="x.mid"), pytest.raises(ValueError, match="no readable pieces"):
        midi_folder(tmp_path, cache_dir=tmp_path / "cache")


def test_music21_corpus_names_limits_caches_and_skips(tmp_path, monkeypatch):
    from music21 import converter, exceptions21

    calls = _count_calls(monkeypatch, converter, "parse")
    pieces = music21_corpus("bach/chorales", limit=2, cache_dir=tmp_path, progress=False)
    assert len(pieces) == 2 and all(p.name.startswith("bach/bwv") and len(p) > 50 for p in pieces)
    assert len(calls) == 2
    assert music21_corpus("bach/chorales", limit=2, cache_dir=tmp_path, progress=False) == pieces
    assert len(calls) == 2  # served from the cache

    def broken(path, *args, **kwargs):
        raise exceptions21.StreamException("bad measure")

    monkeypatch.setattr(converter, "parse", broken)
    with pytest.warns(UserWarning, match=r"bach/bwv.*StreamException: bad measure"):
        got = music21_corpus("bach/chorales", limit=3, cache_dir=tmp_path, progress=False)
    assert got == pieces  # the third chorale was skipped, the cached two were kept
    monkeypatch.undo()
    tunes = music21_corpus("essenFolksong/han1", limit=2, cache_dir=tmp_path, progress=False)  # one ABC file
    assert [p.name for p in tunes] == ["essenFolksong/han1#1", "essenFolksong/han1#2"]
    assert tunes[0].notes != tunes[1].notes
    with pytest.raises(ValueError, match="nothing for query 'no_such_composer'"):
        music21_corpus("no_such_composer", cache_dir=tmp_path)


def test_cache_dir_follows_argument_then_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MSTOOLKIT_CACHE", str(tmp_path / "env"))
    assert data.cache_dir() == tmp_path / "env"
    assert data.cache_dir(tmp_path / "arg") == tmp_path / "arg"


# ----------------------------------------------------------------------------- StyleBench
def test_split_by_piece_and_triplet_rules(bench):
    from mstoolkit.styles import render_style

    assert {s: v["pieces"] for s, v in bench.summary().items()} == {"train": 3, "val": 3, "test": 2}
    assert len(bench.windows) == 16
    pieces_in = {s: {piece_of(w) for w in bench.window_ids(s)} for s in data.SPLITS}
    assert not (pieces_in["train"] & pieces_in["val"] or pieces_in["train"] & pieces_in["test"]
                or pieces_in["val"] & pieces_in["test"])
    assert len(bench.triplets["train"]) == 6 * 3  # 6 windows x triplets_per_window
    assert len(bench.triplets["val"]) == len(bench.triplets["test"]) == 6  # 6 and 4 windows x 2, capped at 6
    capped = {t.content_id for t in bench.triplets["test"]}
    assert len(capped) == 3  # whole windows, taken in seeded hash order
    for split, triplets in bench.triplets.items():
        for t in triplets:
            assert t.style_a != t.style_b and {t.style_a, t.style_b} <= set(TINY.styles)
            assert piece_of(t.reference_id) != piece_of(t.content_id)
            assert piece_of(t.reference_id) in pieces_in[split] and piece_of(t.content_id) in pieces_in[split]
    t = bench.triplets["test"][0]
    plain = PIECES[int(piece_of(t.content_id)[-2:])].slice_bars(int(t.content_id.rpartition("@")[2]), 2)
    assert bench.target(t).notes == render_style(plain, t.style_b, seed=0).notes
    assert bench.content(t).notes == render_style(plain, t.style_a, seed=0).notes
    assert bench.reference(t).notes == render_style(bench.windows[t.reference_id], t.style_b, seed=0).notes


def test_several_collections_join_with_their_own_limits(tmp_path):
    for folder, count in (("reels", 3), ("hymns", 2)):
        (tmp_path / folder).mkdir()
        for i in range(count):
            make_piece(f"{folder}{i}", i).save_midi(tmp_path / folder / f"{folder}{i}.mid")
    joined = load_corpus(f"{tmp_path / 'reels'}:2+{tmp_path / 'hymns'}", cache_dir=tmp_path / "cache", progress=False)
    assert len(joined) == 4  # two of the three reels, both hymns
    assert len(load_corpus(f"{tmp_path / 'reels'}+{tmp_path / 'hymns'}", 4, cache_dir=tmp_path / "cache",
                           progress=False)) == 4  # the total limit
    tunes = load_corpus("essenFolksong/han1:2+bach/chorales:1", cache_dir=tmp_path / "cache", progress=False)
    assert [collection_of(p.name) for p in tunes] == ["essenFolksong", "essenFolksong", "bach"]
    assert data.CORPUS_ALIASES["stylebench-v2"].startswith("bach/chorales+")  # v1's chorales stay in v2
    with pytest.raises(UserError, match="empty source"):
        load_corpus("bach/chorales++joplin", cache_dir=tmp_path / "cache")


def test_a_held_out_collection_is_all_test_and_is_counted_by_collection(tmp_path):
    held_out = StyleBenchConfig(**{**TINY.to_dict(), "split_fractions": (0.0, 0.0, 1.0), "max_eval_triplets": None})
    pieces = [p.replace(name=f"reels/{p.name}") for p in PIECES[:4]] + [p.replace(name=f"jigs/{p.name}") for p in PIECES[4:]]
    bench = build_stylebench(held_out, tmp_path, pieces=pieces, progress=False)
    assert set(bench.piece_splits.values()) == {"test"} and not bench.triplets["train"] and not bench.triplets["val"]
    counts = bench.collection_summary()
    assert sorted(counts) == ["jigs", "reels"] and counts["reels"]["test"]["pieces"] == 4
    assert sum(c["test"]["triplets"] for c in counts.values()) == len(bench.triplets["test"]) > 0
    assert sum(c["test"]["windows"] for c in counts.values()) == len(bench.windows)


def test_build_is_deterministic_and_the_manifest_reproduces_the_test_split(bench, tmp_path):
    again = build_stylebench(TINY, tmp_path, pieces=list(reversed(PIECES)), progress=False)
    assert again.triplets == bench.triplets
    other_seed = build_stylebench(StyleBenchConfig(**{**TINY.to_dict(), "seed": 9}), tmp_path,
                                  pieces=PIECES, progress=False)
    assert other_seed.piece_splits != bench.piece_splits
    manifest = json.loads(bench.test_split_path.read_text())
    assert manifest["seed"] == 0 and manifest["data_version"] == data.DATA_VERSION
    assert manifest["config"]["styles"] == list(TINY.styles)
    assert {w["n_bars"] for w in manifest["windows"].values()} == {2}
    loaded = load_test_split(bench.test_split_path, tmp_path, pieces=PIECES, progress=False)
    assert loaded.triplets["test"] == bench.triplets["test"]
    manifest["triplets"] = manifest["triplets"][::-1]  # the file, not a rebuild, decides the triplets
    (tmp_path / "m.json").write_text(json.dumps(manifest))
    assert load_test_split(tmp_path / "m.json", tmp_path, pieces=PIECES, progress=False).triplets["test"] == \
        bench.triplets["test"][::-1]
    changed = [p.transpose(1) if p.name == piece_of(bench.triplets["test"][0].content_id) else p for p in PIECES]
    with pytest.raises(ValueError, match="differ from the corpus"):
        load_test_split(bench.test_split_path, tmp_path, pieces=changed, progress=False)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="not a StyleBench split manifest"):
        load_test_split(tmp_path / "bad.json", tmp_path)


def test_config_errors_and_json_round_trip():
    assert StyleBenchConfig.from_dict(json.loads(json.dumps(TINY.to_dict()))) == TINY
    with pytest.raises(UserError, match="StyleBenchConfig: unknown field 'window_bar'; did you mean window_bars"):
        StyleBenchConfig.from_dict({"window_bar": 4})
    with pytest.raises(ValueError, match="unknown styles"):
        build_stylebench(StyleBenchConfig(styles=("swing", "polka")), pieces=PIECES)
    with pytest.raises(ValueError, match=r"split of 'tiny' has windows from [01] piece"):
        build_stylebench(StyleBenchConfig(**{**TINY.to_dict(), "seed": 3}), pieces=PIECES[:3], progress=False)


def test_reference_mel_is_cached_on_disk(bench, monkeypatch):
    from mstoolkit import audio

    t = bench.triplets["test"][0]
    first = bench.reference_mel(t)
    assert first.dtype == np.float32 and first.shape[0] == TINY.n_mels and first.shape[1] > 100
    monkeypatch.setattr(audio, "render", lambda *a, **k: pytest.fail("rendered again"))
    fresh = build_stylebench(TINY, bench.cache_dir, pieces=PIECES, progress=False)  # no in-memory state
    np.testing.assert_array_equal(fresh.reference_mel(t), first)
    assert len(list(bench.cache_dir.glob("mels/*/*.npy"))) >= 1


# ----------------------------------------------------------------------------- Dataset / collate
def test_dataset_items_and_collate_shapes(bench):
    from mstoolkit.tokenizer import RemiTokenizer

    tok = RemiTokenizer()
    ds = StyleBenchDataset(bench, "test", tok)
    assert not ds.augment and len(ds) == len(bench.triplets["test"])
    items = [ds[i] for i in range(3)]
    t = bench.triplets["test"][0]
    assert items[0]["content_ids"].tolist() == tok.encode(bench.content(t))
    assert items[0]["target_ids"].tolist() == tok.encode(bench.target(t))
    assert ds.styles[items[0]["style_b"]] == t.style_b and items[0]["transpose"] == 0
    batch = collate(items, pad_id=tok.pad_id, mel_frames=64)
    lengths = [len(i["content_ids"]) for i in items]
    assert batch["content_ids"].shape == (3, max(lengths)) and batch["content_ids"].dtype == torch.long
    assert batch["content_padding_mask"].sum(1).tolist() == [max(lengths) - n for n in lengths]
    assert (batch["content_ids"][batch["content_padding_mask"]] == tok.pad_id).all()
    assert batch["target_ids"].shape[0] == 3 and batch["target_padding_mask"].dtype == torch.bool
    assert batch["reference_mel"].shape == (3, TINY.n_mels, 64) and batch["reference_frames"].tolist() == [64] * 3
    long = collate(items, mel_frames=1000)["reference_mel"]  # padded with silence (the dB floor)
    n = items[0]["reference_mel"].shape[1]
    assert torch.equal(long[0, :, :n], items[0]["reference_mel"]) and (long[0, :, n:] == long[0].min()).all()
    assert batch["style_b"].tolist() == [i["style_b"] for i in items]


def test_dataloader_with_a_worker_matches_direct_indexing(bench):
    ds = StyleBenchDataset(bench, "test", reference_tokens=True)
    copy = pickle.loads(pickle.dumps(ds))  # what a spawned worker receives (macOS / Windows)
    direct = collate([ds[0], ds[1]])
    assert torch.equal(collate([copy[0], copy[1]])["target_ids"], direct["target_ids"])
    loader = torch.utils.data.DataLoader(ds, batch_size=2, collate_fn=collate, num_workers=1)
    batch = next(iter(loader))
    for key in ("content_ids", "target_ids", "reference_ids", "reference_mel", "style_a", "style_b"):
        assert torch.equal(batch[key], direct[key]), key


def test_transposition_moves_content_and_target_together(bench):
    ds = StyleBenchDataset(bench, "train")
    plain = StyleBenchDataset(bench, "train", augment=False)
    tok, t = ds.tokenizer, bench.triplets["train"][0]
    torch.manual_seed(0)
    shifts = set()
    for _ in range(6):
        item = ds[0]
        k = item["transpose"]
        shifts.add(k)
        assert abs(k) <= TINY.max_transpose
        assert item["content_ids"].tolist() == tok.encode(bench.content(t).transpose(k))
        assert item["target_ids"].tolist() == tok.encode(bench.target(t).transpose(k))
        assert torch.equal(item["reference_mel"], plain[0]["reference_mel"])  # the reference is untouched
    assert len(shifts) > 1


def test_long_windows_are_cut_at_a_bar_boundary(bench):
    full = StyleBenchDataset(bench, "test", augment=False)[0]
    limit = max(len(full["content_ids"]), len(full["target_ids"])) - 1
    cut = StyleBenchDataset(bench, "test", max_tokens=limit)
    item, t = cut[0], bench.triplets["test"][0]
    assert max(len(item["content_ids"]), len(item["target_ids"])) <= limit
    assert item["content_ids"].tolist() == cut.tokenizer.encode(bench.content(t).slice_bars(0, 1))
    with pytest.raises(ValueError, match="max_tokens=8"):
        StyleBenchDataset(bench, "test", max_tokens=8)[0]


def test_meter_augmentation_rebars_content_and_target_together(bench):
    from mstoolkit.styles import render_style

    ds = StyleBenchDataset(bench, "train", rebar_meters=("5/4", "7/4"), rebar_prob=1.0)
    tok = ds.tokenizer
    torch.manual_seed(0)
    meters = set()
    for i in range(10):
        index = i % len(ds)
        item, t = ds[index], bench.triplets["train"][index]
        sigs = tok.decode(item["content_ids"].tolist()).time_signatures
        meter = f"{sigs[0].numerator}/{sigs[0].denominator}"
        meters.add(meter)
        window = data.rebar(bench.windows[t.content_id], meter)
        k = item["transpose"]
        # both sides re-barred into the same meter before rendering; the notes' times are not moved
        assert item["content_ids"].tolist() == tok.encode(render_style(window, t.style_a, seed=TINY.seed).transpose(k))
        assert item["target_ids"].tolist() == tok.encode(render_style(window, t.style_b, seed=TINY.seed).transpose(k))
    assert meters == {"5/4", "7/4"}
    # never outside training; about half the items at p = 0.5; never a compound meter
    val = StyleBenchDataset(bench, "val", rebar_meters=("5/4",), rebar_prob=1.0)
    assert val[0]["target_ids"].tolist() == tok.encode(bench.target(bench.triplets["val"][0]))
    half = StyleBenchDataset(bench, "train", rebar_meters=("5/4",), rebar_prob=0.5, augment=True)
    drawn = [half._random_meter(bench.triplets["train"][0].content_id) for _ in range(40)]
    assert 5 <= drawn.count("5/4") <= 35 and 5 <= drawn.count(None) <= 35
    compound = dataclasses.replace(bench, windows={w: p.replace(time_signatures=[TimeSignature(0, 6, 8)])
                                                    for w, p in bench.windows.items()})
    six_eight = StyleBenchDataset(compound, "train", rebar_meters=("5/4",), rebar_prob=1.0)
    assert {six_eight._random_meter(w) for w in compound.window_ids("train")} == {None}


def test_identity_items_give_the_target_as_content(bench):
    """identity_prob=1: every train item asks for its own notes back (content = target, same style index);
    the val split and p = 0 keep the triplet's two styles."""
    ds = StyleBenchDataset(bench, "train", identity_prob=1.0)
    torch.manual_seed(0)
    for index in range(4):
        item, t = ds[index], bench.triplets["train"][index]
        assert item["content_ids"].tolist() == item["target_ids"].tolist()
        assert item["style_a"] == item["style_b"] == ds.styles.index(t.style_b)
    val_item = StyleBenchDataset(bench, "val", identity_prob=1.0)[0]
    assert val_item["content_ids"].tolist() == ds.tokenizer.encode(bench.content(bench.triplets["val"][0]))
    plain = StyleBenchDataset(bench, "train", augment=False)[0]
    assert plain["content_ids"].tolist() != plain["target_ids"].tolist()
    with pytest.raises(UserError, match="identity_prob"):
        StyleBenchDataset(bench, "train", identity_prob=-0.1)


def test_plain_content_items_give_the_straight_rendering_as_content(bench):
    """plain_content_prob=1: every train item's content is its window rendered "straight" (what transfer()
    makes of a user's file), transposed with the target; the val split keeps the triplet's content."""
    ds = StyleBenchDataset(bench, "train", plain_content_prob=1.0)
    torch.manual_seed(0)
    for index in range(4):
        item, t = ds[index], bench.triplets["train"][index]
        straight = bench.render(t.content_id, "straight").transpose(item["transpose"])
        assert item["content_ids"].tolist() == ds.tokenizer.encode(straight)
        assert item["style_a"] == ds.styles.index("straight") and item["style_b"] == ds.styles.index(t.style_b)
    val_item = StyleBenchDataset(bench, "val", plain_content_prob=1.0)[0]
    assert val_item["content_ids"].tolist() == ds.tokenizer.encode(bench.content(bench.triplets["val"][0]))
    with pytest.raises(UserError, match="plain_content_prob"):
        StyleBenchDataset(bench, "train", plain_content_prob=2.0)


def test_meter_augmentation_errors_name_the_argument(bench):
    with pytest.raises(UserError, match="meter 'five'"):
        StyleBenchDataset(bench, "train", rebar_meters=("five",), rebar_prob=0.2)
    with pytest.raises(UserError, match="meter '5/3'"):
        data.parse_meter("5/3")
    with pytest.raises(UserError, match="rebar_prob"):
        StyleBenchDataset(bench, "train", rebar_meters=("5/4",), rebar_prob=1.5)
    with pytest.raises(UserError, match="rebar_prob"):
        StyleBenchDataset(bench, "train", rebar_prob=0.2)


# ----------------------------------------------------------------------------- a named style's reference
def test_a_named_style_reference_is_another_sample_piece_in_the_style():
    """The one policy the CLI, the widgets, the live session and the notebooks share: StyleBench's rule
    (a window of *another* piece, rendered in the style) on the shipped samples."""
    from mstoolkit.piece import load_piece, sample_paths
    from mstoolkit.styles import render_style

    names = sorted(sample_paths())
    reference = data.style_reference("swing", avoid="bwv66.6")
    first = names[0] if names[0] != "bwv66.6" else names[1]
    assert reference.name == first and len(reference.bar_starts()) == data.REFERENCE_BARS
    assert reference.notes == render_style(load_piece(sample_paths()[first]).slice_bars(0, 4), "swing").notes
    # the content may be a name, a Piece or a path (compared by name, wherever the file lies)
    for avoid in (first, load_piece(sample_paths()[first]), sample_paths()[first], f"/elsewhere/{first}.mid"):
        assert data.style_reference("waltz", avoid=avoid).name != first
    assert data.style_reference("waltz", bars=2, seed=1).notes == render_style(
        load_piece(sample_paths()[names[0]]).slice_bars(0, 2), "waltz", seed=1).notes
    with pytest.raises(UserError, match="unknown style 'polka'"):
        data.style_reference("polka")


def test_reference_windows_span_every_sample_before_a_second_window():
    from mstoolkit.piece import sample_paths

    windows = data.reference_windows(8, 4)
    assert len(windows) == 8 and len({s for s, _ in windows}) == len(sample_paths())
    assert [first for _, first in windows[: len(sample_paths())]] == [0] * len(sample_paths())
    assert data.reference_windows(2, 4, samples=["bwv66.6"]) == [("bwv66.6", 0), ("bwv66.6", 4)]
