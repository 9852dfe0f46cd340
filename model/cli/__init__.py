"""The model's command-line verbs (``bincount train``, ``eval``, ``export``, ``golden``, ...):
argument parsing and checks; the work is done by the modules of the other folders."""
