"""mstoolkit: symbolic music style transfer with Transformers."""
from mstoolkit.piece import MidiError, Note, Piece, TempoChange, TimeSignature, TICKS_PER_QUARTER

__version__ = "0.1.0"
__all__ = ["MidiError", "Note", "Piece", "TempoChange", "TimeSignature", "TICKS_PER_QUARTER"]
