"""Seeded, replayable low-quality synthesis: operations, pipelines and published presets."""
