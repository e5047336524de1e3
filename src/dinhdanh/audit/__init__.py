"""Who read which person's data, for what purpose, and when."""
