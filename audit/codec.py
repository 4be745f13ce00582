"""Compressed documents: a decision's stored JSON (request, facts reference, reply) as zstd frames.

Each frame is compressed with a raw-content dictionary made of what the file already holds for the
decision's ruleset: its source and one sample reply (the first decision recorded under that digest,
kept beside the source in `rulesets.sample`). Rule ids, descriptions, questions and route names then
cost a few bytes each, and a reply of ~3.7 KB stores in ~0.5 KB.

Since migration 14 a digest gets a second dictionary once its writer has recorded `SAMPLES` decisions:
the source and, for each, its summary and reply and the shape of its request and facts (their keys
and word-like values; free text, names, numbers and times left out, so no personal value is copied
there), kept in `rulesets.samples`. A decision of another lead resembles sixteen far more than one:
~570 bytes for its four documents instead of ~700 with the replies alone (bench mix, level 6). A frame says which dictionary it needs in
its first byte (`V1`, `V2`, followed by a zstd frame without its 4-byte magic number; a frame
written before starts with that magic number and uses the first dictionary). The writer adopts the
second dictionary only once a later transaction reads back the `samples` it stored, so a frame never
needs a dictionary that a rolled-back transaction took away.

A stored value is TEXT (written before compression, or never compressed) or a BLOB (a zstd frame);
`unpack` gives the exact text back either way, and the hash chain covers that text, so compressing
a row in place (migration 11) changes no payload hash.
"""

from __future__ import annotations

import json
import re
import threading
import weakref

import zstandard

LEVEL = 6
SAMPLES = 16  # decisions of a digest in its second dictionary
_WORD = re.compile(r"[a-z][a-z0-9_\-]*\Z")  # an enumeration's value (a stage, a country code…), not free text
COMPRESSED = ("input", "facts", "decision", "summary")  # the decisions columns stored as zstd frames
V1, V2 = 1, 2  # first byte of a frame written since migration 14: the dictionary it needs
_MAGIC = b"\x28\xb5\x2f\xfd"  # a frame written before: the first dictionary
_codecs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _shape(value):
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    if isinstance(value, str):
        return value if _WORD.match(value) else ("pii:" if value.startswith("pii:") else "")
    return value if value is None or isinstance(value, bool) else 0


def sample_of(input_: str | None, facts: str, summary: str, decision: str) -> str:
    """What one decision gives the second dictionary (see the module's docstring)."""
    shapes = [json.dumps(_shape(json.loads(t)), separators=(",", ":")) for t in (input_, facts) if t]
    return "".join(shapes) + (summary or "") + decision


def _pair(data: str, magicless: bool) -> tuple:
    d = zstandard.ZstdCompressionDict(data.encode(), dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    fmt = zstandard.FORMAT_ZSTD1_MAGICLESS if magicless else zstandard.FORMAT_ZSTD1
    params = zstandard.ZstdCompressionParameters.from_level(
        LEVEL, format=fmt, write_checksum=0, write_dict_id=0, write_content_size=1
    )
    packer = zstandard.ZstdCompressor(dict_data=d, compression_params=params)
    return packer, zstandard.ZstdDecompressor(dict_data=d, format=fmt)


class Codec:
    """Packs and unpacks one database's documents; dictionaries cached by ruleset digest.

    zstandard's compressor and decompressor objects are not thread-safe, and a trail is shared by
    the threads of a worker: every use of them holds the codec's lock (each call takes microseconds).
    """

    def __init__(self, db):
        self._db = weakref.ref(db)  # not the key's own strong reference: the registry could never let go
        self._dicts: dict[str, dict[int | bytes, tuple]] = {}
        self._seen: dict[str, list[str]] = {}  # replies recorded under a digest with no second dictionary
        self._stored: dict[str, tuple] = {}  # digest -> (samples, transaction) written, not yet read back
        self._lock = threading.RLock()

    def know(self, digest: str, source: str, sample: str | None, samples: str | None = None) -> None:
        """The dictionaries of `digest` as the rulesets row holds them (no need to read it again)."""
        first = source + (sample or "")
        pairs = {_MAGIC: _pair(first, False), V1: _pair(first, True)}
        if samples:
            pairs[V2] = _pair(source + samples, True)
        with self._lock:
            self._dicts[digest] = pairs

    def _pairs(self, digest: str, again: bool = False) -> dict:
        if again or digest not in self._dicts:
            cursor = self._db().execute("SELECT * FROM rulesets WHERE digest = ?", (digest,))
            row = dict(zip([d[0] for d in cursor.description], cursor.fetchone() or (), strict=False))
            # `samples` is missing while migration 11 runs, before migration 14 adds it
            self.know(digest, row.get("source", ""), row.get("sample"), row.get("samples"))
        return self._dicts[digest]

    def pack(self, text: str | None, digest: str) -> bytes | None:
        if text is None:
            return None
        with self._lock:
            pairs = self._pairs(digest)
            version = V2 if V2 in pairs else V1
            return bytes([version]) + pairs[version][0].compress(text.encode())

    def pack_ahead(self, texts: dict, digest: str) -> tuple | None:
        """(dictionaries, {name: frame}) of `texts` packed with the dictionaries held now for `digest`,
        or None when none are held yet (reading them is the writer's, under the lock). The frames
        are good for as long as `holds(digest, dictionaries)`."""
        with self._lock:
            pairs = self._dicts.get(digest)
            if pairs is None:
                return None
            version = V2 if V2 in pairs else V1
            packer = pairs[version][0]
            return pairs, {
                name: None if text is None else bytes([version]) + packer.compress(text.encode())
                for name, text in texts.items()
            }

    def holds(self, digest: str, dictionaries) -> bool:
        """Whether frames made with `dictionaries` (`pack_ahead`) are still those the writer would
        make: no dictionary of `digest` was learned since (a source stored, a second dictionary)."""
        return dictionaries is not None and self._dicts.get(digest) is dictionaries

    def unpack(self, value, digest: str) -> str | None:
        if value is None or isinstance(value, str):
            return value
        value = bytes(value)
        if len(value) < 2:
            return value.hex()  # no frame at all (edited)
        version, frame = (_MAGIC, value) if value[:4] == _MAGIC else (value[0], value[1:])
        try:
            with self._lock:
                pairs = self._pairs(digest)
                if version not in pairs and version == V2:  # made second since this codec read the row
                    pairs = self._pairs(digest, again=True)
                data = pairs[version][1].decompress(frame)
            return data.decode()
        except (KeyError, zstandard.ZstdError, UnicodeDecodeError):
            return value.hex()  # a frame that does not decode (edited): its bytes, for the hash to differ

    def recorded(self, digest: str, documents: tuple, transaction) -> None:
        """A decision's documents (input, facts, summary, decision) recorded under `digest` in
        `transaction` (an object that is the same for one write transaction only): after `SAMPLES`
        of them, store the second dictionary's samples; in a later transaction read them back and use
        them (one statement each, once per digest)."""
        with self._lock:
            if V2 in self._pairs(digest):
                return
            stored = self._stored.get(digest)
            if stored is not None:
                if stored[1] is not transaction:
                    del self._stored[digest]
                    self._seen.pop(digest, None)
                    self._pairs(digest, again=True)  # committed, or rolled back: whatever the file says
                return
            seen = self._seen.setdefault(digest, [])
            seen.append(sample_of(*documents))
            if len(seen) >= SAMPLES:
                samples = "".join(seen)
                self._db().execute(
                    "UPDATE rulesets SET samples = ? WHERE digest = ? AND samples IS NULL", (samples, digest)
                )
                self._stored[digest] = (samples, transaction)

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
