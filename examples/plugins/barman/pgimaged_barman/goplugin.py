"""The host side of hashicorp/go-plugin's protocol, as a pgimaged plugin process speaks it.

Everything here is what any plugin, in any language, must do for pgimaged to start it and talk
to it (see README.md): check the magic cookie, pick the protocol version, serve gRPC on a unix
socket in PLUGIN_UNIX_SOCKET_DIR with mutual TLS, serve the health service and go-plugin's
controller, stdio and broker services, print the handshake line, and log hclog-style JSON to
stderr. The plugin's own service is registered by the caller.
"""

import base64
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from concurrent import futures

import grpc

# The handshake pgimaged expects (sdk.Handshake and sdk.ProtocolVersion in the Go SDK).
MAGIC_COOKIE_KEY = "PGIMAGED_PLUGIN"
MAGIC_COOKIE_VALUE = "replica-imaging"
# go-plugin's own protocol version: the first field of the handshake line.
CORE_PROTOCOL_VERSION = 1
# pgimaged hands the plugin a certificate and key (PEM) in this variable; see serve().
PLUGIN_TLS_ENV = "PGIMAGED_PLUGIN_TLS"

# Variables the host sets for the plugin alone: never passed on to children.
HOST_ENV = (
    MAGIC_COOKIE_KEY,
    PLUGIN_TLS_ENV,
    "PLUGIN_CLIENT_CERT",
    "PLUGIN_UNIX_SOCKET_DIR",
    "PLUGIN_UNIX_SOCKET_GROUP",
    "PLUGIN_PROTOCOL_VERSIONS",
    "PLUGIN_MIN_PORT",
    "PLUGIN_MAX_PORT",
)

_SERVING = b"\x08\x01"  # grpc.health.v1.HealthCheckResponse{status: SERVING}


class Logger:
    """Logs hclog-style JSON lines to stderr; go-plugin on the host parses them and logs each
    line at its level through pgimaged's logger."""

    def __init__(self, name):
        self.name = name
        self._lock = threading.Lock()

    def log(self, level, message, **fields):
        now = datetime.datetime.now(datetime.timezone.utc)
        rec = {
            "@level": level,
            "@message": message,
            "@timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z",
        }
        for k, v in fields.items():
            rec[k] = str(v)
        line = json.dumps(rec, ensure_ascii=False)
        with self._lock:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()

    def debug(self, message, **fields):
        self.log("debug", message, **fields)

    def info(self, message, **fields):
        self.log("info", message, **fields)

    def warn(self, message, **fields):
        self.log("warn", message, **fields)

    def error(self, message, **fields):
        self.log("error", message, **fields)


def _pem_blocks(text, kind):
    pat = r"-----BEGIN %s-----.*?-----END %s-----\n?" % (kind, kind)
    return [m.group(0).encode() for m in re.finditer(pat, text, re.S)]


def _handed_out_tls(bundle, host_pem):
    """pgimaged's variant: serve with the certificate and key pgimaged handed out, trust only
    pgimaged's certificate. The handshake then carries no certificate."""
    certs = _pem_blocks(bundle, "CERTIFICATE")
    keys = _pem_blocks(bundle, "(?:EC |RSA )?PRIVATE KEY")
    if not certs or not keys:
        raise RuntimeError(PLUGIN_TLS_ENV + " holds no certificate and key")
    creds = grpc.ssl_server_credentials(
        [(keys[0], certs[0])], root_certificates=host_pem.encode(), require_client_auth=True
    )
    return creds, ""


def _auto_mtls(host_pem):
    """go-plugin's AutoMTLS: make a self-signed certificate for "localhost", serve with it, trust
    only the host's certificate, and send ours (base64 DER, no padding) in the handshake line.
    Uses the openssl command, so that no Python crypto library is needed."""
    with tempfile.TemporaryDirectory(prefix="pgimaged-plugin-tls-") as d:
        key, crt = os.path.join(d, "key.pem"), os.path.join(d, "crt.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", key, "-out", crt, "-days", "3650", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost",
             "-addext", "extendedKeyUsage=serverAuth,clientAuth"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env={"PATH": "/usr/bin:/bin"},
        )
        with open(key, "rb") as f:
            key_pem = f.read()
        with open(crt, "rb") as f:
            crt_pem = f.read()
        der = subprocess.run(["openssl", "x509", "-in", crt, "-outform", "DER"], check=True,
                             stdout=subprocess.PIPE, env={"PATH": "/usr/bin:/bin"}).stdout
    creds = grpc.ssl_server_credentials(
        [(key_pem, crt_pem)], root_certificates=host_pem.encode(), require_client_auth=True
    )
    return creds, base64.b64encode(der).decode().rstrip("=")


def _raw(handler_kind, fn):
    # Requests and responses stay bytes: these services' messages are tiny and fixed.
    return handler_kind(fn, request_deserializer=None, response_serializer=None)


class Server:
    """One plugin process: serve({version: register}) registers the plugin's service for the
    protocol version agreed with the host and serves until the host stops it."""

    def __init__(self, name, logger=None):
        self.name = name
        self.protocol_version = 0
        self.log = logger or Logger(name)
        self.stopping = threading.Event()
        self._on_stop = []

    def on_stop(self, fn):
        """fn runs when the host asks the plugin to shut down or the plugin gets SIGTERM."""
        self._on_stop.append(fn)

    def _stop(self):
        if self.stopping.is_set():
            return
        self.stopping.set()
        for fn in self._on_stop:
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - best effort on the way out
                self.log.warn("while stopping: " + str(e))

    def _check_cookie(self):
        if os.environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
            sys.stderr.write(
                "This binary is a plugin of pgimaged. It is not meant to be run directly:\n"
                "pgimaged starts it (put it in pgimaged's plugin_dir, or name it in a plugin block).\n"
            )
            sys.exit(1)

    def _negotiate(self, supported):
        """The best version both the host (PLUGIN_PROTOCOL_VERSIONS, e.g. "1,2") and the plugin
        speak. With none in common, the plugin's best: the host then refuses it, naming both."""
        offered = set()
        for v in os.environ.get("PLUGIN_PROTOCOL_VERSIONS", "").split(","):
            if v.strip().isdigit():
                offered.add(int(v))
        common = [v for v in supported if v in offered]
        if common:
            return max(common)
        if offered:
            self.log.warn("the host offers protocol versions %s, this plugin speaks %s"
                          % (sorted(offered), sorted(supported)))
        return max(supported)

    def _credentials(self):
        host_pem = os.environ.get("PLUGIN_CLIENT_CERT", "")
        bundle = os.environ.get(PLUGIN_TLS_ENV, "")
        if not host_pem:
            if bundle:
                raise RuntimeError(PLUGIN_TLS_ENV + " is set but PLUGIN_CLIENT_CERT is not")
            return None, ""  # no TLS: a host that did not ask for it
        if bundle:
            return _handed_out_tls(bundle, host_pem)
        return _auto_mtls(host_pem)

    def _go_plugin_services(self, server):
        def health_check(_req, _ctx):
            return _SERVING

        def health_watch(_req, ctx):
            yield _SERVING
            while ctx.is_active() and not self.stopping.wait(1):
                pass

        def shutdown(_req, _ctx):
            threading.Thread(target=self._stop, daemon=True).start()
            return b""

        def stdio(_req, ctx):
            # Our stdout and stderr go to the host through the process's own pipes; the stream
            # stays open (empty) until the host closes it or the plugin stops.
            while ctx.is_active() and not self.stopping.wait(1):
                pass
            return
            yield  # a generator: a server stream

        def broker(reqs, _ctx):
            # This plugin offers no extra services through the broker: drain and end.
            for _ in reqs:
                pass
            return
            yield

        server.add_generic_rpc_handlers((
            grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
                "Check": _raw(grpc.unary_unary_rpc_method_handler, health_check),
                "Watch": _raw(grpc.unary_stream_rpc_method_handler, health_watch),
            }),
            grpc.method_handlers_generic_handler("plugin.GRPCController", {
                "Shutdown": _raw(grpc.unary_unary_rpc_method_handler, shutdown),
            }),
            grpc.method_handlers_generic_handler("plugin.GRPCStdio", {
                "StreamStdio": _raw(grpc.unary_stream_rpc_method_handler, stdio),
            }),
            grpc.method_handlers_generic_handler("plugin.GRPCBroker", {
                "StartStream": _raw(grpc.stream_stream_rpc_method_handler, broker),
            }),
        ))

    def serve(self, versions):
        self._check_cookie()
        if not versions:
            raise RuntimeError("no protocol version to serve (are the generated stubs missing?)")
        self.protocol_version = self._negotiate(versions)
        register = versions[self.protocol_version]
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C at the host's terminal is the host's
        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=self._stop, daemon=True).start())

        creds, cert_field = self._credentials()
        for k in HOST_ENV:
            os.environ.pop(k, None)

        sock_dir = os.environ.get("PLUGIN_UNIX_SOCKET_DIR") or tempfile.gettempdir()
        fd, path = tempfile.mkstemp(prefix="plugin", dir=sock_dir)
        os.close(fd)
        os.unlink(path)

        server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        self._go_plugin_services(server)
        register(server)
        addr = "unix:" + path
        port = server.add_secure_port(addr, creds) if creds else server.add_insecure_port(addr)
        if not port:
            raise RuntimeError("could not listen on " + path)
        server.start()
        self.on_stop(lambda: server.stop(grace=2))

        # The handshake line: CORE-PROTOCOL-VERSION|APP-PROTOCOL-VERSION|NETWORK-TYPE|
        # NETWORK-ADDR|PROTOCOL|SERVER-CERT
        sys.stdout.write("%d|%d|unix|%s|grpc|%s\n" % (CORE_PROTOCOL_VERSION, self.protocol_version, path, cert_field))
        sys.stdout.flush()
        self.log.debug("plugin serving", address=path, tls="handed out" if creds and not cert_field
                       else ("auto" if cert_field else "none"))

        while not self.stopping.wait(1):
            pass
        server.stop(grace=2).wait()
        try:
            os.unlink(path)
        except OSError:
            pass
