"""Drive the widgets without a browser: set values, check figures, labels and error messages."""
import datetime
import subprocess
import sys

import pytest

pytest.importorskip("ipywidgets")

from mstoolkit.piece import load_piece, sample_paths  # noqa: E402
from mstoolkit.widgets import StyleGallery, TokenizerExplorer  # noqa: E402


def _upload(content: bytes, name: str = "upload.mid") -> tuple:
    return ({"name": name, "type": "audio/midi", "size": len(content), "content": memoryview(content),
             "last_modified": datetime.datetime(2026, 1, 1)},)


def _hover_tokens(fig) -> list[str]:
    """The token names in the strip's hover texts (``"#i name"``), in reading order."""
    cells = [t for row in fig.data[0].hovertext for t in row if t]
    assert [int(t.split(" ", 1)[0][1:]) for t in cells] == list(range(len(cells)))
    return [t.split(" ", 1)[1] for t in cells]


@pytest.fixture(scope="module")
def explorer():
    return TokenizerExplorer(sample="bwv66.6", bars=2)


def test_import_mstoolkit_does_not_import_ipywidgets():
    code = "import sys, mstoolkit; print(sorted(m for m in ('ipywidgets', 'IPython') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_explorer_hover_texts_match_tokenizer(explorer):
    assert _hover_tokens(explorer.strip) == explorer.tokenizer.tokens(explorer.ids)
    assert explorer.ids == explorer.tokenizer.encode(explorer.piece)


def test_explorer_sample_change_updates_figures(explorer):
    before_strip, before_roll = _hover_tokens(explorer.strip), explorer.roll.to_dict()["data"]
    explorer.sample.value = "bwv269"
    assert explorer.piece.name == "bwv269"
    assert _hover_tokens(explorer.strip) != before_strip
    assert _hover_tokens(explorer.strip) == explorer.tokenizer.tokens(explorer.ids)
    assert explorer.roll.to_dict()["data"] != before_roll
    assert explorer.round_trip_ok is True and "Round trip OK" in explorer.round_trip.value
    assert explorer.original_audio is not None and explorer.decoded_audio is not None
    expected = load_piece(sample_paths()["bwv269"]).slice_bars(0, explorer.bars.value)
    assert explorer.piece.notes == expected.notes


def test_figure_state_for_a_late_view_matches_the_figure(explorer):
    """A front end that opens the widget after an update (a reloaded page, a view whose plotly module
    was still loading when the update's messages went by) draws from the synced state, not from
    the messages: that state must hold the new traces and title, not the empty figure of __init__."""
    explorer.sample.value = "bwv66.6"
    explorer.sample.value = "bwv269"
    for fig in (explorer.roll, explorer.strip):
        state = fig.get_state()  # what ipywidgets sends to a view that starts now
        assert [t["type"] for t in state["_widget_data"]] == [t.type for t in fig.data]
        assert state["_widget_layout"]["title"]["text"] == fig.layout.title.text
    assert "bwv269" in explorer.roll.get_state()["_widget_layout"]["title"]["text"]


def test_explorer_bars_slider_changes_length(explorer):
    n = len(explorer.ids)
    explorer.bars.value += 2
    assert len(explorer.ids) > n
    assert len(_hover_tokens(explorer.strip)) == len(explorer.ids)


def test_explorer_upload_good_midi(explorer):
    data = sample_paths()["bwv438"].read_bytes()
    explorer.upload.value = _upload(data, "mine.mid")
    assert explorer.piece.name == "mine"
    assert "mine" in explorer.status.value and "color:#333" in explorer.status.value


def test_explorer_bad_upload_shows_error_and_keeps_figures(explorer):
    before = _hover_tokens(explorer.strip)
    explorer.upload.value = _upload(b"this is not midi", "broken.mid")
    assert "Could not read the upload" in explorer.status.value
    assert "broken.mid" in explorer.status.value and "not a MIDI file" in explorer.status.value
    assert _hover_tokens(explorer.strip) == before


def test_explorer_empty_selection_shows_message(explorer):
    explorer.sample.value = None
    assert "Pick a sample" in explorer.status.value


def test_gallery_renders_lazily_per_tab():
    gallery = StyleGallery(sample="bwv66.6", styles=["straight", "swing", "staccato"], bars=2)
    assert gallery.tabs.titles == ("straight", "swing", "staccato")
    assert list(gallery.rendered) == ["straight"]
    gallery.tabs.selected_index = 2
    assert list(gallery.rendered) == ["straight", "staccato"]
    roll, spec = gallery.figures["staccato"]
    assert roll.data and spec.data[0].type == "heatmap"
    straight_durations = sorted(n.duration for n in gallery.rendered["straight"].notes)
    staccato_durations = sorted(n.duration for n in gallery.rendered["staccato"].notes)
    assert sum(staccato_durations) < sum(straight_durations)
    assert len(gallery.tabs.children[1].children) == 0  # swing never opened: never rendered


def test_gallery_style_change_and_empty_selection():
    gallery = StyleGallery(sample="bwv66.6", styles=["straight"], bars=1)
    gallery.styles.value = ("swing", "waltz")
    assert gallery.tabs.titles == ("swing", "waltz") and list(gallery.rendered) == ["swing"]
    gallery.styles.value = ()
    assert gallery.tabs.children == () and "at least one style" in gallery.status.value
    gallery.styles.value = ("bossa",)
    assert list(gallery.rendered) == ["bossa"] and "color:#333" in gallery.status.value
