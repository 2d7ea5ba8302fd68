"""Upstream servers for the daemon tests, all on 127.0.0.1 port 0.

EchoServer      python websockets (10.4) in a thread with its own asyncio loop, ws:// or wss://,
                or on a unix socket (unix_path: websockets.unix_serve, URL ws+unix://PATH:/echo).
                Records every connection: the messages it received, the close code it saw.
RawServer       a TCP server (TLS with ssl_context: wss://) in threads whose per-connection
                `script` answers the upgrade with scripted bytes (malformed responses and frames).
EchoSubprocess  the EchoServer in a child process (`python3 servers.py`), to be killed.
BacklogFull     a listening socket whose accept queue is full: SYNs to it are dropped, so a
                connect to it hangs until its timeout.

Every server stops by itself: threads are daemons stopped by stop(), the child exits when its
stdin reaches EOF or after its lifetime.

Commands the echo servers understand (text messages):
    "close-me"          close with 4000 "server closing"
    "send-big:N"        send one binary message of N bytes (pattern_bytes(N))
    "send-fragments"    send a text message in three fragments: "frag-one|", "frag-two|", "end"
    "ping-me"           ping, wait for the pong, then send "pong-received"
anything else is echoed with its type.
"""
import asyncio
import base64
import hashlib
import os
import select
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time

import websockets

MAX_MESSAGE = 16 * 1024 * 1024
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def pattern_bytes(n):
    block = bytes(range(256))
    return (block * (n // 256 + 1))[:n]


def accept_value(key):
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


# --- websockets echo server ---------------------------------------------------------------------

class Connection:
    """What one upstream connection saw."""

    def __init__(self, path, headers):
        self.path = path
        self.request_headers = headers
        self.received = []          # messages (str or bytes), in order
        self.sent = 0               # messages sent back (echoes and commands)
        self.close_code = None      # the close code the server received (1006: none)
        self.close_reason = None
        self.closed = threading.Event()
        self.subprotocol = None


async def _handle(ws, record, on_message=None):
    try:
        async for message in ws:
            record.received.append(message)
            if on_message is not None:
                on_message(record, message)
            if message == "close-me":
                await ws.close(code=4000, reason="server closing")
            elif isinstance(message, str) and message.startswith("send-big:"):
                await ws.send(pattern_bytes(int(message.split(":", 1)[1])))
            elif message == "send-fragments":
                await ws.send(iter(["frag-one|", "frag-two|", "end"]))
            elif message == "ping-me":
                pong = await ws.ping(b"srv-ping")
                await asyncio.wait_for(pong, timeout=10)
                await ws.send("pong-received")
            else:
                await ws.send(message)
            record.sent += 1
    except websockets.ConnectionClosed:
        pass
    finally:
        try:
            await asyncio.wait_for(ws.wait_closed(), timeout=10)
        except asyncio.TimeoutError:
            pass


def _serve_kwargs(ssl_context, subprotocols):
    kwargs = dict(max_size=MAX_MESSAGE, max_queue=256, compression=None, ping_interval=None,
                  close_timeout=5, ssl=ssl_context)
    if subprotocols:
        kwargs["subprotocols"] = subprotocols
    return kwargs


class EchoServer:
    def __init__(self, ssl_context=None, subprotocols=None, on_message=None, unix_path=None):
        self.unix_path = unix_path
        self.ssl_context = ssl_context
        self.subprotocols = subprotocols
        self.on_message = on_message
        self.connections = []
        self.port = None
        self._lock = threading.Condition()
        self._loop = None
        self._stop = None
        self._thread = None
        self._started = threading.Event()
        self._error = None

    @property
    def url(self):
        if self.unix_path:
            return "ws+unix://%s:/echo" % self.unix_path
        return "%s://127.0.0.1:%d/echo" % ("wss" if self.ssl_context else "ws", self.port)

    def start(self, timeout=10):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise AssertionError("the echo server did not start within %s s" % timeout)
        if self._error:
            raise self._error
        return self

    def _run(self):
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as e:  # reported by start()
            self._error = e
            self._started.set()
        finally:
            loop.close()

    async def _main(self):
        self._stop = asyncio.get_running_loop().create_future()

        async def handler(ws, path=None):
            record = Connection(path or getattr(ws, "path", None), ws.request_headers)
            record.subprotocol = ws.subprotocol
            with self._lock:
                self.connections.append(record)
                self._lock.notify_all()
            try:
                await _handle(ws, record, self.on_message)
            finally:
                record.close_code = ws.close_code
                record.close_reason = ws.close_reason
                record.closed.set()
                with self._lock:
                    self._lock.notify_all()

        kwargs = _serve_kwargs(self.ssl_context, self.subprotocols)
        if self.unix_path:
            serving = websockets.unix_serve(handler, self.unix_path, **kwargs)
        else:
            serving = websockets.serve(handler, "127.0.0.1", 0, **kwargs)
        async with serving as server:
            if not self.unix_path:
                self.port = server.sockets[0].getsockname()[1]
            self._started.set()
            await self._stop

    def wait_connections(self, n, timeout=10):
        """The first n connections, once they exist."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.connections) >= n, timeout):
                raise AssertionError("%d connection(s) expected within %s s, have %d"
                                     % (n, timeout, len(self.connections)))
            return list(self.connections[:n])

    def unique_url(self, tag="s"):
        """The server's URL with a path no other connection uses (see connection())."""
        with self._lock:
            self._counter = getattr(self, "_counter", 0) + 1
            return "%s/%s-%d" % (self.url, tag, self._counter)

    def connection(self, url, timeout=10):
        """The connection that asked for `url`'s path (and query), once it exists."""
        if self.unix_path:  # ws+unix://PATH:/request (the socket path has no ':')
            path = url.split(":", 2)[2]
        else:
            path = "/" + url.split("/", 3)[3]
        with self._lock:
            found = lambda: [c for c in self.connections if c.path == path]  # noqa: E731
            if not self._lock.wait_for(found, timeout):
                raise AssertionError("no connection to %s within %s s" % (path, timeout))
            return found()[0]

    def wait_until(self, predicate, timeout=10, what="server condition"):
        with self._lock:
            deadline = time.monotonic() + timeout
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("timed out waiting for " + what)
                # Notified on connect/close; message counters are polled at this interval.
                self._lock.wait(min(remaining, 0.02))

    def stop(self, timeout=15):
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(
                lambda: self._stop.done() or self._stop.set_result(None))
        if self._thread is not None:
            self._thread.join(timeout)


def wait_closed(connection, timeout=10):
    if not connection.closed.wait(timeout):
        raise AssertionError("the upstream connection did not close within %s s" % timeout)
    return connection.close_code


# --- echo server in a child process ---------------------------------------------------------

class EchoSubprocess:
    """EchoServer in `python3 servers.py LIFETIME`; kill() sends SIGKILL (no close frame)."""

    def __init__(self, lifetime=60):
        self.lifetime = lifetime
        self.proc = None
        self.port = None

    @property
    def url(self):
        return "ws://127.0.0.1:%d/echo" % self.port

    def start(self, timeout=15):
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), str(self.lifetime)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.kill()
            raise AssertionError("the echo subprocess printed no port within %s s" % timeout)
        line = self.proc.stdout.readline()
        self.port = int(line)
        return self

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        if self.proc:
            self.proc.wait(timeout=10)
            for f in (self.proc.stdin, self.proc.stdout):
                try:
                    f.close()
                except OSError:
                    pass


def _subprocess_main():
    lifetime = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0

    async def main():
        loop = asyncio.get_running_loop()
        stop = loop.create_future()

        def on_stdin():
            try:
                data = os.read(sys.stdin.fileno(), 4096)
            except OSError:
                data = b""
            if not data and not stop.done():
                stop.set_result(None)

        loop.add_reader(sys.stdin.fileno(), on_stdin)
        loop.call_later(lifetime, lambda: stop.done() or stop.set_result(None))

        async def handler(ws, path=None):
            await _handle(ws, Connection(path, ws.request_headers))

        async with websockets.serve(handler, "127.0.0.1", 0, **_serve_kwargs(None, None)) as s:
            print(s.sockets[0].getsockname()[1], flush=True)
            await stop

    asyncio.run(main())


# --- raw TCP server -----------------------------------------------------------------------------

class RawConnection:
    def __init__(self, sock):
        self.sock = sock
        self.request_line = None
        self.headers = {}        # lower-case name -> value
        self.result = {}         # what the script observed
        self.error = None
        self.done = threading.Event()
        self._buffer = b""

    def _read_more(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("raw server: read timed out")
        self.sock.settimeout(remaining)
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("raw server: the peer closed the connection")
        self._buffer += data

    def read_exactly(self, n, timeout=10):
        deadline = time.monotonic() + timeout
        while len(self._buffer) < n:
            self._read_more(deadline)
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out

    def read_request(self, timeout=10):
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self._buffer:
            self._read_more(deadline)
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.request_line = lines[0]
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        return self.headers

    def send(self, data):
        self.sock.sendall(data)

    def response_101(self, accept=None, headers=()):
        """A 101 answer for the request read by read_request(): the right Sec-WebSocket-Accept
        unless `accept` is given, plus `headers` ((name, value) pairs)."""
        if accept is None:
            accept = accept_value(self.headers["sec-websocket-key"])
        text = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n" % accept)
        for name, value in headers:
            text += "%s: %s\r\n" % (name, value)
        return (text + "\r\n").encode("latin-1")

    def read_frame(self, timeout=10):
        """(fin, opcode, payload unmasked, masked) of the next frame."""
        b0, b1 = self.read_exactly(2, timeout)
        length = b1 & 0x7F
        if length == 126:
            length = struct.unpack("!H", self.read_exactly(2, timeout))[0]
        elif length == 127:
            length = struct.unpack("!Q", self.read_exactly(8, timeout))[0]
        mask = self.read_exactly(4, timeout) if b1 & 0x80 else None
        payload = self.read_exactly(length, timeout)
        if mask:
            payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        return bool(b0 & 0x80), b0 & 0x0F, payload, mask is not None

    def read_end(self, timeout=10):
        """How the stream ends after what was read so far: "eof" (TCP end; on TLS, the client's
        close_notify), "truncated" (TLS: the TCP end without a close_notify) or "reset". Bytes
        before the end are kept in the buffer."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self._read_more(deadline)
        except EOFError:
            return "eof"
        except ssl.SSLError as e:
            # OpenSSL 3 reports the missing close_notify as this reason (SSLEOFError elsewhere).
            if isinstance(e, ssl.SSLEOFError) or e.reason == "UNEXPECTED_EOF_WHILE_READING":
                return "truncated"
            raise
        except ConnectionResetError:
            return "reset"

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def frame(opcode, payload=b"", fin=True, mask=None, rsv=0):
    """A WebSocket frame as a server would send it (unmasked unless `mask` is given)."""
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload)
    mask_bit = 0x80 if mask else 0
    if n < 126:
        head = bytes([b0, mask_bit | n])
    elif n < 65536:
        head = bytes([b0, mask_bit | 126]) + struct.pack("!H", n)
    else:
        head = bytes([b0, mask_bit | 127]) + struct.pack("!Q", n)
    if mask:
        payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        return head + mask + payload
    return head + payload


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


class RawServer:
    """Accepts connections and runs script(connection) in a thread for each one. With
    `ssl_context` (a server context) each connection is TLS first: wss://, and an end of stream
    without the client's close_notify is an ssl.SSLError in the script's reads ("truncated" for
    read_end; the context's OP_IGNORE_UNEXPECTED_EOF, on by default, is cleared)."""

    def __init__(self, script, ssl_context=None):
        self.script = script
        self.ssl_context = ssl_context
        if ssl_context is not None:
            ssl_context.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
        self.connections = []
        self._cond = threading.Condition()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    @property
    def url(self):
        scheme = "wss" if self.ssl_context is not None else "ws"
        return "%s://127.0.0.1:%d/raw" % (scheme, self.port)

    def start(self):
        self._thread.start()
        return self

    def _accept_loop(self):
        while not self._stopping.is_set():
            ready, _, _ = select.select([self._listener], [], [], 0.1)
            if not ready:
                continue
            try:
                sock, _ = self._listener.accept()
            except OSError:
                continue
            conn = RawConnection(sock)
            with self._cond:
                self.connections.append(conn)
                self._cond.notify_all()
            threading.Thread(target=self._run_script, args=(conn,), daemon=True).start()

    def _run_script(self, conn):
        try:
            if self.ssl_context is not None:
                conn.sock.settimeout(10)  # the handshake
                conn.sock = self.ssl_context.wrap_socket(conn.sock, server_side=True,
                                                         suppress_ragged_eofs=False)
            self.script(conn)
        except BaseException as e:  # reported through conn.error
            conn.error = e
        finally:
            conn.close()
            conn.done.set()

    def wait_connection(self, index=0, timeout=15):
        """The index-th connection, once its script has finished."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.connections) > index, timeout):
                raise AssertionError("raw server: no connection #%d within %s s" % (index, timeout))
            conn = self.connections[index]
        if not conn.done.wait(timeout):
            raise AssertionError("raw server: the script did not finish within %s s" % timeout)
        return conn

    def stop(self):
        self._stopping.set()
        self._thread.join(5)
        self._listener.close()
        for c in self.connections:
            c.close()


# --- a port that drops SYNs -------------------------------------------------------------------

class BacklogFull:
    """A listening socket (backlog 0, never accepting) whose accept queue is filled by our own
    connections, so further SYNs are dropped and connects hang (no RST, no SYN-ACK)."""

    def __init__(self):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port = self.listener.getsockname()[1]
        self.fillers = []

    @property
    def url(self):
        return "ws://127.0.0.1:%d/hang" % self.port

    def fill(self, attempts=8, probe_timeout=0.3):
        """Connects until a connect does not complete within probe_timeout: the queue is full.
        Returns True when it is."""
        for _ in range(attempts):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            self.fillers.append(s)
            try:
                s.connect(("127.0.0.1", self.port))
                continue  # connected at once
            except BlockingIOError:
                pass
            _, writable, _ = select.select([], [s], [], probe_timeout)
            if not writable:
                return True  # this SYN was dropped: the queue is full
        return False

    def close(self):
        for s in self.fillers:
            s.close()
        self.listener.close()


if __name__ == "__main__":
    _subprocess_main()
