"""Compressed documents: a decision's stored JSON (request, facts reference, reply) as zstd frames.

Each frame is compressed with a raw-content dictionary made of what the file already holds for the
decision's ruleset: its source and one sample reply (the first decision recorded under that digest,
kept beside the source in `rulesets.sample`). Rule ids, descriptions, questions and route names then
cost a few bytes each, and a reply of ~3.7 KB stores in ~0.5 KB.

A stored value is TEXT (written before compression, or never compressed) or a BLOB (a zstd frame);
`unpack` gives the exact text back either way, and the hash chain covers that text, so compressing
a row in place (migration 11) changes no payload hash.
"""

from __future__ import annotations

import threading
import weakref

import zstandard

LEVEL = 3
COMPRESSED = ("input", "facts", "decision", "summary")  # the decisions columns stored as zstd frames
_codecs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class Codec:
    """Packs and unpacks one database's documents; dictionaries cached by ruleset digest.

    zstandard's compressor and decompressor objects are not thread-safe, and a trail is shared by
    the threads of a worker: every use of them holds the codec's lock (each call takes microseconds).
    """

    def __init__(self, db):
        self._db = db
        self._dicts: dict[str, tuple] = {}
        self._lock = threading.RLock()

    def know(self, digest: str, source: str, sample: str | None) -> None:
        """The dictionary of `digest` as the rulesets row holds it (no need to read it again)."""
        data = (source + (sample or "")).encode()
        d = zstandard.ZstdCompressionDict(data, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
        packer = zstandard.ZstdCompressor(
            level=LEVEL, dict_data=d, write_checksum=False, write_dict_id=False, write_content_size=True
        )
        with self._lock:
            self._dicts[digest] = (packer, zstandard.ZstdDecompressor(dict_data=d))

    def _pair(self, digest: str) -> tuple:
        if digest not in self._dicts:
            row = self._db.execute(
                "SELECT source, sample FROM rulesets WHERE digest = ?", (digest,)
            ).fetchone()
            self.know(digest, *(row or ("", None)))
        return self._dicts[digest]

    def pack(self, text: str | None, digest: str) -> bytes | None:
        if text is None:
            return None
        with self._lock:
            return self._pair(digest)[0].compress(text.encode())

    def unpack(self, value, digest: str) -> str | None:
        if value is None or isinstance(value, str):
            return value
        try:
            with self._lock:
                data = self._pair(digest)[1].decompress(value)
            return data.decode()
        except (zstandard.ZstdError, UnicodeDecodeError):
            return value.hex()  # a frame that does not decode (edited): its bytes, for the hash to differ

    def text_row(self, row: dict) -> dict:
        """A decisions row with its documents as text."""
        digest = row.get("ruleset_digest")
        return {k: self.unpack(v, digest) if k in COMPRESSED else v for k, v in row.items()}


_registry_lock = threading.Lock()


def codec_for(db) -> Codec:
    """The codec of one open database (its dictionaries read once per connection)."""
    with _registry_lock:
        codec = _codecs.get(db)
        if codec is None:
            codec = _codecs[db] = Codec(db)
        return codec
