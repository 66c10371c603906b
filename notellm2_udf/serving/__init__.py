"""What readers of the published tables rely on: the day's `_SUCCESS` marker and the
newest-day table properties."""
