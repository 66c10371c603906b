"""What several jobs share: the notes of a day and their duplicates, the embedding job's
output rows, the one window-corpus definition, the held-out split, validation and
publication of a day."""
