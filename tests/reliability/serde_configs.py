"""Every documented way to configure a saver's serializer, for the tests that plant
payloads under each (``test_serde_configs``, ``test_encryption``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from langgraph.checkpoint.serde.base import CipherProtocol
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from langgraph_unified_store.core.serde import AesGcmCipher, SafeSerializer

PASSPHRASE = "tr0ub4dor&3-encryption-passphrase"
RAW_KEY = bytes(range(100, 132))
AES128_KEY = b"sixteen byte key"
CHACHA_KEY = bytes(range(32))


class UserCipher(CipherProtocol):
    """A cipher of the user's own (authenticated), plugged into EncryptedSerializer."""

    def __init__(self, key: bytes) -> None:
        self._aead = ChaCha20Poly1305(key)

    def encrypt(self, plaintext: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(12)
        return "chacha", nonce + self._aead.encrypt(nonce, plaintext, None)

    def decrypt(self, ciphername: str, ciphertext: bytes) -> bytes:
        assert ciphername == "chacha"
        return self._aead.decrypt(ciphertext[:12], ciphertext[12:], None)


def _pycryptodome() -> dict[str, Any]:
    return {"serde": EncryptedSerializer.from_pycryptodome_aes(key=AES128_KEY)}


# name -> saver options (a fresh serde object each time: a reader gets its own).
CONFIGS: dict[str, Callable[[], dict[str, Any]]] = {
    "default": dict,
    "encryption_key": lambda: {"encryption_key": PASSPHRASE},
    "encryption_key-raw": lambda: {"encryption_key": RAW_KEY},
    "EncryptedSerializer-AesGcm": lambda: {"serde": EncryptedSerializer(AesGcmCipher(PASSPHRASE))},
    "EncryptedSerializer-user-cipher": lambda: {
        "serde": EncryptedSerializer(UserCipher(CHACHA_KEY), SafeSerializer())
    },
    "EncryptedSerializer-pycryptodome": _pycryptodome,
    "JsonPlusSerializer": lambda: {"serde": JsonPlusSerializer()},
    "JsonPlusSerializer-allowlist": lambda: {
        "serde": JsonPlusSerializer(allowed_msgpack_modules=[("tests.reliability.user_types", "Quacks")])
    },
}
ENCRYPTED = frozenset(name for name in CONFIGS if name.startswith(("Encrypted", "encryption")))
