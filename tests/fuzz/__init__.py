"""Fuzz harnesses for digitnet's loaders (atheris) and the driver that runs or replays them: see docs/fuzzing.md."""
