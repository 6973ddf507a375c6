"""Encryption that binds each stored value to its place: ciphers, sealing, key derivation.

Split from ``core.serde`` so that reading stored data safely (``core.serde``) and
encrypting it (here) can each be read alone; ``core.serde`` re-exports these names.

With encryption, every stored value is sealed by a ``Sealer`` with its *place* (thread,
namespace, checkpoint, channel...) as associated data, so a value copied elsewhere
fails to open, and an unencrypted value is refused. ``AesGcmCipher`` is the native
cipher (a raw key, or a passphrase stretched with scrypt, salt stored per value);
``SealedSerializer`` is what ``saver.serde`` is under encryption. Which cipher a saver
uses is decided by ``core.serde.resolve_serde``.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from typing import Any

import ormsgpack
from langgraph.checkpoint.serde.base import CipherProtocol, SerializerProtocol
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer

from ..errors import UnsafeDeserializationError, missing_extra

# Type prefix of a value sealed by format v2: "lus2:<serde type>+<cipher name>".
SEALED_PREFIX = "lus2:"
_AAD_PREFIX = b"lus2\0"
# Key derivation of a v2 ciphertext of AesGcmCipher (its first byte).
_KDF_RAW = 0  # the key was a 16/24/32-byte key, used as it is
_KDF_SCRYPT = 1  # scrypt(passphrase, salt), the 16-byte salt follows
SALT_BYTES = 16
NONCE_BYTES = 12
# scrypt cost: about 50 ms and 16 MiB per derivation; derived keys are cached per salt.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 14, 8, 1
DERIVED_KEYS_MAX = 32


class SealError(Exception):
    """A stored value could not be opened; the codec adds where it sits."""


def place_bytes(plain_type: str, place: tuple[Any, ...]) -> bytes:
    """The associated data of a sealed value: its serde type (so a value cannot be
    re-tagged to be read another way) and its place, canonically packed."""
    return _AAD_PREFIX + ormsgpack.packb([plain_type, place])


class AesGcmCipher(CipherProtocol):
    """AES-GCM through the ``cryptography`` package, a fresh nonce per value.

    A 16/24/32-byte key is used as it is. Anything else is a passphrase: each saver draws
    a random salt (or adopts the salt of the first value it reads), derives key and
    item-hash key with scrypt, and stores the salt in every ciphertext so any process can
    derive the key again (once per salt: derived keys are cached).

    ``read_legacy=True`` also reads values encrypted by release 0.1 (cipher name
    "aesgcm", no associated data, a passphrase stretched with BLAKE2b): such values are
    not bound to their place, so one can be replayed from elsewhere.
    """

    name = "aesgcm"

    def __init__(self, key: bytes | str, *, read_legacy: bool = False) -> None:
        try:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError:
            raise missing_extra("encryption", "cryptography") from None
        self._aesgcm = AESGCM
        raw = key.encode() if isinstance(key, str) else bytes(key)
        self.read_legacy = read_legacy
        self._passphrase: bytes | None = None
        self._lock = threading.Lock()
        self._derived: OrderedDict[bytes, tuple[Any, bytes]] = OrderedDict()
        self._write_salt: bytes | None = None
        self._raw: tuple[Any, bytes] | None
        if len(raw) in (16, 24, 32):
            legacy_key = raw
            self._raw = (AESGCM(raw), hashlib.blake2b(raw, digest_size=32, person=b"lus-item-ref").digest())
        else:
            legacy_key = hashlib.blake2b(raw, digest_size=32, person=b"lus-aes-key").digest()
            self._passphrase = raw
            self._raw = None
        self._legacy_key = legacy_key

    # -- keys ---------------------------------------------------------------------------

    def _keys_for(self, salt: bytes) -> tuple[Any, bytes]:
        """(AEAD, item-hash key) derived from the passphrase with ``salt``; cached."""
        with self._lock:
            found = self._derived.get(salt)
            if found is not None:
                self._derived.move_to_end(salt)
                return found
        assert self._passphrase is not None
        derived = hashlib.scrypt(
            self._passphrase, salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
            maxmem=64 * 1024 * 1024, dklen=64,
        )
        keys = (self._aesgcm(derived[:32]), derived[32:])
        with self._lock:
            self._derived[salt] = keys
            while len(self._derived) > DERIVED_KEYS_MAX:
                self._derived.popitem(last=False)
        return keys

    def _write_keys(self) -> tuple[bytes, Any, bytes]:
        """(header, AEAD, item-hash key) this cipher encrypts with."""
        if self._raw is not None:
            return bytes([_KDF_RAW]), *self._raw
        salt = self._write_salt
        if salt is None:
            with self._lock:
                if self._write_salt is None:
                    self._write_salt = os.urandom(SALT_BYTES)
                salt = self._write_salt
        return bytes([_KDF_SCRYPT]) + salt, *self._keys_for(salt)

    def hash_key(self) -> bytes:
        """The key of item references (a keyed hash of an item's plaintext)."""
        key: bytes = self._write_keys()[2]
        return key

    # -- format v2 ----------------------------------------------------------------------

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        header, aead, _ = self._write_keys()
        nonce = os.urandom(NONCE_BYTES)
        sealed: bytes = aead.encrypt(nonce, plaintext, aad)
        return header + nonce + sealed

    def open(self, data: bytes, aad: bytes) -> bytes:
        from cryptography.exceptions import InvalidTag

        data = bytes(data)
        if not data:
            raise SealError("the ciphertext is empty")
        kdf = data[0]
        if kdf == _KDF_RAW and self._raw is not None:
            aead, body, salt = self._raw[0], data[1:], None
        elif kdf == _KDF_SCRYPT and self._passphrase is not None and len(data) > 1 + SALT_BYTES:
            salt = data[1 : 1 + SALT_BYTES]
            aead, body = self._keys_for(salt)[0], data[1 + SALT_BYTES :]
        else:
            raise SealError("wrong key or tampered data (its key derivation does not match this key)")
        try:
            plain: bytes = aead.decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], aad)
        except (InvalidTag, ValueError):
            raise SealError("wrong key or tampered data") from None
        if salt is not None and self._write_salt is None:
            # Adopt the salt of data that opened: item references then stay the same
            # across processes, so a resumed thread keeps sharing its items.
            with self._lock:
                if self._write_salt is None:
                    self._write_salt = salt
        return plain

    # -- CipherProtocol (LangGraph's EncryptedSerializer) ---------------------------------

    def encrypt(self, plaintext: bytes) -> tuple[str, bytes]:
        return "aesgcm2", self.seal(plaintext, _AAD_PREFIX)

    def decrypt(self, ciphername: str, ciphertext: bytes) -> bytes:
        if ciphername == "aesgcm2":
            try:
                return self.open(ciphertext, _AAD_PREFIX)
            except SealError as exc:
                raise UnsafeDeserializationError(str(exc)) from None
        if ciphername == self.name and self.read_legacy:
            try:
                return self.open_legacy(ciphertext)
            except SealError as exc:
                raise UnsafeDeserializationError(str(exc)) from None
        if ciphername == self.name:
            raise UnsafeDeserializationError(
                "a value of release 0.1's format (no associated data): pass read_legacy=True to read it"
            )
        raise UnsafeDeserializationError(f"unknown cipher {ciphername!r}")

    def open_legacy(self, ciphertext: bytes) -> bytes:
        """A value of release 0.1's format: nonce + AES-GCM, no associated data."""
        from cryptography.exceptions import InvalidTag

        ciphertext = bytes(ciphertext)
        try:
            plain: bytes = self._aesgcm(self._legacy_key).decrypt(
                ciphertext[:NONCE_BYTES], ciphertext[NONCE_BYTES:], None
            )
        except (InvalidTag, ValueError):
            raise SealError("wrong key or tampered data") from None
        return plain

    def legacy_hash_key(self) -> bytes:
        return hashlib.blake2b(self._legacy_key, digest_size=32, person=b"lus-item-ref").digest()

    def __repr__(self) -> str:
        return "AesGcmCipher(key=<hidden>)"


class Sealer:
    """Seals and opens stored values, binding each to its place.

    With ``AesGcmCipher`` the place is AES-GCM's associated data. A cipher of the user's
    (LangGraph's ``CipherProtocol`` takes no associated data) encrypts a digest of the
    place in front of the plaintext, which opening checks: that binds as well as the
    cipher authenticates (an unauthenticated cipher binds nothing).
    """

    def __init__(self, cipher: CipherProtocol) -> None:
        self.cipher = cipher
        self._native = cipher if isinstance(cipher, AesGcmCipher) else None
        self.read_legacy = bool(getattr(cipher, "read_legacy", False))
        if self._native is None:
            # Item references of a foreign cipher are keyed only when it offers a key.
            self._foreign_hash_key = bytes(getattr(cipher, "hash_key", b""))[:64]

    def hash_key(self) -> bytes:
        if self._native is not None:
            return self._native.hash_key()
        return self._foreign_hash_key

    def seal(self, plain_type: str, plain: bytes, place: tuple[Any, ...]) -> tuple[str, bytes]:
        aad = place_bytes(plain_type, place)
        if self._native is not None:
            return f"{SEALED_PREFIX}{plain_type}+{AesGcmCipher.name}", self._native.seal(plain, aad)
        digest = hashlib.blake2b(aad, digest_size=32).digest()
        cipher_name, ciphertext = self.cipher.encrypt(digest + plain)
        return f"{SEALED_PREFIX}{plain_type}+{cipher_name}", ciphertext

    def open(self, type_: str, data: bytes, place: tuple[Any, ...]) -> tuple[str, bytes]:
        """(serde type, plaintext) of a stored value, or SealError saying why not."""
        if type_.startswith(SEALED_PREFIX):
            plain_type, plus, cipher_name = type_[len(SEALED_PREFIX) :].partition("+")
            if not plus:
                raise SealError(f"its type {type_[:40]!r} is damaged")
            aad = place_bytes(plain_type, place)
            if self._native is not None:
                if cipher_name != AesGcmCipher.name:
                    raise SealError(f"it was sealed by another cipher ({cipher_name[:40]!r})")
                return plain_type, self._native.open(data, aad)
            try:
                plain = self.cipher.decrypt(cipher_name, bytes(data))
            except Exception:
                raise SealError("wrong key or tampered data") from None
            digest = hashlib.blake2b(aad, digest_size=32).digest()
            if not isinstance(plain, bytes) or plain[:32] != digest:
                raise SealError("wrong key or tampered data (sealed for another place)")
            return plain_type, plain[32:]
        if "+" not in type_:
            raise SealError(
                "it is not encrypted, but this saver encrypts every value: refusing it "
                "(planted or tampered data)"
            )
        if not self.read_legacy:
            raise SealError(
                "it was encrypted by release 0.1's format, which does not bind a value to "
                "its place; to read such data, pass "
                "serde=EncryptedSerializer(AesGcmCipher(key, read_legacy=True))"
            )
        return self.open_legacy(type_, data)

    def open_legacy(self, type_: str, data: bytes) -> tuple[str, bytes]:
        plain_type, _, cipher_name = type_.partition("+")
        if self._native is not None:
            if cipher_name != AesGcmCipher.name:
                raise SealError(f"it was encrypted by another cipher ({cipher_name[:40]!r})")
            return plain_type, self._native.open_legacy(data)
        try:
            plain = self.cipher.decrypt(cipher_name, bytes(data))
        except Exception:
            raise SealError("wrong key or tampered data") from None
        if not isinstance(plain, bytes):
            raise SealError("the cipher returned no bytes")
        return plain_type, plain


class SealedSerializer(EncryptedSerializer):
    """What ``saver.serde`` is under encryption: the safe serde plus a ``Sealer``.

    The saver seals each stored value with its place; this object's own
    ``dumps_typed``/``loads_typed`` (for anyone calling them directly) use a fixed place
    and refuse unencrypted input.
    """

    def __init__(self, sealer: Sealer, serde: SerializerProtocol) -> None:
        super().__init__(sealer.cipher, serde)
        self.sealer = sealer

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        return self.sealer.seal(*self.serde.dumps_typed(obj), ("serde",))

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        try:
            opened = self.sealer.open(data[0], data[1], ("serde",))
        except SealError as exc:
            raise UnsafeDeserializationError(f"cannot read an encrypted value: {exc}") from None
        return self.serde.loads_typed(opened)

    def __repr__(self) -> str:
        return f"SealedSerializer(cipher={type(self.cipher).__name__}, serde={type(self.serde).__name__})"
