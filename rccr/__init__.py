"""RCCR workbench."""
