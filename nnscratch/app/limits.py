"""The web app's limits on what a client sends, apart from `serve` so that `nnscratch
serve --help` shows them without loading Starlette and Hypercorn."""

MAX_BYTES = 8_000_000  # a phone photo fits; the drawing pad sends ~10 KB
# 6000x4000, refused above before decoding: half of `nnscratch predict`'s limit, as a
# server decodes for several clients at once in one process
MAX_PIXELS = 25_000_000
