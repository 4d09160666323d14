"""Small hand-made pieces shared by the test modules (imported as ``from pieces import make_piece``)."""
from mstoolkit.piece import Note, Piece, TempoChange, TimeSignature


def make_piece(name: str, root: int, n_bars: int = 4) -> Piece:
    """A chorale-like 4/4 piece: three chord voices in quarters under an eighth-note melody."""
    notes = []
    for bar in range(n_bars):
        base = 48 + root + (0, 5, 7, 0)[bar % 4]  # I IV V I
        for beat in range(4):
            t = bar * 48 + beat * 12
            notes += [Note(t, 12, base), Note(t, 12, base + 4), Note(t, 12, base + 7)]
            notes += [Note(t, 6, base + 16, 90), Note(t + 6, 6, base + 19 - beat % 2, 70)]
    return Piece(notes, [TempoChange(0, 120.0)], [TimeSignature(0, 4, 4)], name=name)
