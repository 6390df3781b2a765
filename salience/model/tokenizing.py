"""SentencePiece tokenization with character offsets into the original text."""

from __future__ import annotations

import re

import sentencepiece as spm

from salience.core.types import Tokenization

_BYTE_PIECE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
_META = "\u2581".encode()


class OffsetTokenizer:
    """Wraps a SentencePiece model proto; returns ids, pieces and character spans."""

    def __init__(self, proto: bytes, bos_id: int):
        self._sp = spm.SentencePieceProcessor(model_proto=proto)
        self.bos_id = bos_id
        self.vocabulary_size = self._sp.get_piece_size()

    def piece(self, token_id: int) -> str:
        return self._sp.id_to_piece(int(token_id))

    def token_id(self, piece: str) -> int | None:
        """Id of an exact piece, or None when the vocabulary lacks it."""
        token_id = self._sp.piece_to_id(piece)
        return None if token_id == self._sp.unk_id() and piece != self.piece(token_id) else token_id

    def decode(self, ids) -> str:
        return self._sp.decode([int(i) for i in ids])

    def _piece_bytes(self, token_id: int, encoded: bytes, cursor: int) -> int:
        """Bytes of the text that a token covers, starting at byte ``cursor``.

        SentencePiece writes a space as "▁", so a "▁" in a piece stands for a space or for
        a literal "▁" in the text: whichever the text has there.
        """
        if self._sp.is_control(token_id):
            return 0
        piece = self._sp.id_to_piece(token_id)
        if self._sp.is_byte(token_id) and _BYTE_PIECE.match(piece):
            return 1
        size = 0
        for char in piece:
            if char == "\u2581" and not encoded.startswith(_META, cursor + size):
                size += 1  # a space
            else:
                size += len(char.encode("utf-8"))
        return size

    def tokenize(self, text: str, add_bos: bool = False, offset: int = 0) -> Tokenization:
        """Tokenize ``text``; offsets are character positions shifted by ``offset``."""
        ids = [int(i) for i in self._sp.encode(text)]
        encoded = text.encode("utf-8")
        byte_to_char = _byte_to_char_index(text)
        spans: list[tuple[int, int]] = []
        cursor = 0
        for token_id in ids:
            size = self._piece_bytes(token_id, encoded, cursor)
            start_byte, end_byte = cursor, cursor + size
            cursor = end_byte
            start = byte_to_char[min(start_byte, len(encoded))]
            end = byte_to_char[end_byte - 1] + 1 if size else start
            spans.append((start + offset, end + offset))
        if cursor != len(encoded):
            raise ValueError("token byte lengths do not add up to the text; unexpected normalizer")
        pieces = [self.piece(i) for i in ids]
        if add_bos:
            ids.insert(0, self.bos_id)
            pieces.insert(0, self.piece(self.bos_id))
            spans.insert(0, (offset, offset))
        return Tokenization(tuple(ids), tuple(pieces), tuple(spans))


def _byte_to_char_index(text: str) -> list[int]:
    """For each UTF-8 byte of ``text`` (plus one past the end), the index of its character."""
    index: list[int] = []
    for position, char in enumerate(text):
        index.extend([position] * len(char.encode("utf-8")))
    index.append(len(text))
    return index
