"""Clue rules (issue 8): features of reports, monthly mining, matching (docs/clues.md)."""
