"""The cases and model of ``scripts/bad_inputs.py`` (the runner)."""
