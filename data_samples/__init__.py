"""mstoolkit's shipped files, installed as the package ``mstoolkit.data_samples``: the sample MIDI
files (see README.md), the demo checkpoint (``checkpoints/demo/``) and StyleBench's fixed test split
(``stylebench/``). Find them with :func:`mstoolkit.shipped.shipped_path`, never by a path of your own.
"""
