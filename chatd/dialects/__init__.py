"""Dialects: the words a connection speaks.  Each turns lines into session
commands and the room's events and answers into its own bytes."""
