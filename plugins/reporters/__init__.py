"""In-tree reporters."""
