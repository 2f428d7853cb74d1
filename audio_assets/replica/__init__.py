"""Local replica of the outside world (GWASI, Reddit, soundgasm, whyp.it, hotaudio,
scriptbin, image hosts) for tests and the demo: a deterministic corpus with its ground
truth (`corpus`) and an HTTP server that serves it (`server`)."""

from audio_assets.replica.corpus import (
    Corpus,
    ReleaseTruth,
    VariantTruth,
    build_corpus,
    render_media,
)

__all__ = [
    "Corpus",
    "ReleaseTruth",
    "VariantTruth",
    "build_corpus",
    "render_media",
    "ReplicaServer",
    "RequestRecord",
]


def __getattr__(name: str):
    # imported lazily so `python -m audio_assets.replica.server` runs without a double import
    if name in ("ReplicaServer", "RequestRecord"):
        from audio_assets.replica import server

        return getattr(server, name)
    raise AttributeError(name)
