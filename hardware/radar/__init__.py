"""Radar sources: the scene simulator (and, later, replay and the real HAT drivers)."""
