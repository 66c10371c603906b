"""The input tables as jobs read them: a day's notes, their contract types and the
duplicate / null-id rule."""
