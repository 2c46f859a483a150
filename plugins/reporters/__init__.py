"""In-tree reporters: SORA files, IOTA forms, CSV for PyOTE, VizieR, plots."""
