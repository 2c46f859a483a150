"""In-tree light-curve readers: occcore ECSV, PyMovie/PyOTE, Tangra, Limovie, SORA text."""
