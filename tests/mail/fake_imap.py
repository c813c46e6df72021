"""A small in-process IMAP4rev1 server for the IMAP poller's tests (127.0.0.1 only).

It speaks just what imaplib and `mail.imap` use: CAPABILITY, STARTTLS, LOGIN, SELECT,
UID SEARCH UNSEEN, UID FETCH (RFC822.SIZE, BODY.PEEK[], RFC822), UID STORE ±FLAGS[.SILENT],
NOOP, LOGOUT; implicit TLS when given a server context (`tls_pair` makes one). It keeps every command it was sent
(`commands`, LOGIN's password masked), and can drop the connection instead of answering the
next STORE (`drop_next_store`): a poller that dies after processing, before its flag is stored.
"""

from __future__ import annotations

import re
import socket
import ssl
import threading
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|\([^)]*\)|[^\s()]+')


@dataclass
class Stored:
    uid: int
    raw: bytes
    flags: set[str] = field(default_factory=set)


@dataclass
class FakeImap:
    username: str = "relances@creancier.example"
    password: str = "imap-password-for-the-mail-tests-0123"
    folder: str = "INBOX"
    tls: ssl.SSLContext | None = None  # implicit TLS (the "tls" setting)
    starttls: ssl.SSLContext | None = None  # offered as STARTTLS
    messages: list[Stored] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    drop_next_store: int = 0
    _listener: socket.socket | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def port(self) -> int:
        assert self._listener is not None
        return int(self._listener.getsockname()[1])

    def deliver(self, raw: bytes) -> int:
        with self._lock:
            uid = max((m.uid for m in self.messages), default=0) + 1
            self.messages.append(Stored(uid, raw))
        return uid

    def unseen(self) -> list[int]:
        return [m.uid for m in self.messages if "\\Seen" not in m.flags]

    def flags(self, uid: int) -> set[str]:
        return next(m.flags for m in self.messages if m.uid == uid)

    def start(self) -> FakeImap:
        self._listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept, name="fake-imap", daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening (shutdown wakes the thread blocked in accept; close alone does not)."""
        if self._listener is not None:
            with suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()

    # -- server ---------------------------------------------------------------------------
    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return  # stopped
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        try:
            if self.tls is not None:
                connection = self.tls.wrap_socket(connection, server_side=True)
            _Session(self, connection).run()
        except (OSError, ssl.SSLError):
            pass
        finally:
            connection.close()


class _Session:
    def __init__(self, server: FakeImap, connection: socket.socket) -> None:
        self.server = server
        self.connection = connection
        self.reader: BinaryIO = connection.makefile("rb")
        self.user: str | None = None
        self.selected = False

    def send(self, line: bytes) -> None:
        self.connection.sendall(line + b"\r\n")

    def run(self) -> None:
        self.send(b"* OK fake IMAP4rev1 ready")
        while line := self.reader.readline():
            tag, _, rest = line.rstrip(b"\r\n").partition(b" ")
            words = _TOKEN.findall(rest)
            if not words:
                self.send(tag + b" BAD empty command")
                continue
            command = words[0].upper().decode()
            args = words[1:]
            if command == "UID" and args:
                command, args = "UID " + args[0].upper().decode(), args[1:]
            shown = "LOGIN" if command == "LOGIN" else b" ".join(words).decode()
            self.server.commands.append(shown)
            if not self.dispatch(tag, command, args):
                return

    def dispatch(self, tag: bytes, command: str, args: list[bytes]) -> bool:
        """False: the connection ends."""
        if command == "CAPABILITY":
            offered = " STARTTLS" if self.server.starttls is not None else ""
            self.send(f"* CAPABILITY IMAP4rev1{offered} AUTH=PLAIN".encode())
        elif command == "STARTTLS" and self.server.starttls is not None:
            self.send(tag + b" OK begin TLS negotiation now")
            self.connection = self.server.starttls.wrap_socket(self.connection, server_side=True)
            self.reader = self.connection.makefile("rb")
            return True
        elif command == "LOGIN" and len(args) == 2:
            user, password = (_unquote(a) for a in args)
            if (user, password) != (self.server.username, self.server.password):
                self.send(tag + b" NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)")
                return True
            self.user = user
        elif command == "SELECT" and self.user and args:
            if _unquote(args[0]) != self.server.folder:
                self.send(tag + b" NO [NONEXISTENT] Unknown Mailbox: " + args[0])
                return True
            self.selected = True
            self.send(f"* {len(self.server.messages)} EXISTS".encode())
            self.send(b"* 0 RECENT")
            self.send(b"* OK [UIDVALIDITY 7] UIDs valid")
            self.send(b"* FLAGS (\\Seen \\Flagged)")
            self.send(tag + b" OK [READ-WRITE] SELECT completed")
            return True
        elif command == "UID SEARCH" and self.selected:
            unseen = " ".join(str(uid) for uid in self.server.unseen())
            self.send(f"* SEARCH {unseen}".rstrip().encode())
        elif command == "UID FETCH" and self.selected and len(args) == 2:
            self.fetch(int(args[0]), args[1].upper())
        elif command == "UID STORE" and self.selected and len(args) == 3:
            if self.server.drop_next_store:
                self.server.drop_next_store -= 1
                return False  # the poller's process died before its flag was stored
            self.store(int(args[0]), args[1].upper(), args[2])
        elif command == "NOOP":
            pass
        elif command == "LOGOUT":
            self.send(b"* BYE logging out")
            self.send(tag + b" OK LOGOUT completed")
            return False
        else:
            self.send(tag + b" BAD unknown or out-of-state command")
            return True
        self.send(tag + b" OK " + command.encode() + b" completed")
        return True

    def fetch(self, uid: int, items: bytes) -> None:
        for number, message in enumerate(self.server.messages, start=1):
            if message.uid != uid:
                continue
            head = f"* {number} FETCH (UID {uid}".encode()
            if b"RFC822.SIZE" in items:
                self.send(head + f" RFC822.SIZE {len(message.raw)})".encode())
            elif b"BODY.PEEK[]" in items or items == b"(RFC822)":
                name = b"RFC822" if items == b"(RFC822)" else b"BODY[]"
                if name == b"RFC822":
                    message.flags.add("\\Seen")  # a plain fetch marks seen, as real servers do
                self.connection.sendall(
                    head + b" " + name + f" {{{len(message.raw)}}}\r\n".encode() + message.raw
                )
                self.send(b")")

    def store(self, uid: int, mode: bytes, flags: bytes) -> None:
        names = {f.decode() for f in flags.strip(b"()").split()}
        for number, message in enumerate(self.server.messages, start=1):
            if message.uid != uid:
                continue
            if mode.startswith(b"+"):
                message.flags |= names
            else:
                message.flags -= names
            if not mode.endswith(b".SILENT"):
                shown = " ".join(sorted(message.flags))
                self.send(f"* {number} FETCH (UID {uid} FLAGS ({shown}))".encode())


def _unquote(token: bytes) -> str:
    text = token.decode()
    if text.startswith('"') and text.endswith('"'):
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def tls_pair(folder: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a fresh self-signed certificate for localhost, and a client context
    that trusts it only (hostname checked, as `ssl.create_default_context` does)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "imap.crt", folder / "imap.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    return server, ssl.create_default_context(cafile=str(cert_file))
