"""Chord recognition example: synthetic features, CTC and AR heads, mir_eval metrics.

Trainable: ``components.chord.train:run``; inference-only evaluation:
``components.chord.train:evaluate``; study: ``configs/chord_heads.yaml``.
"""
