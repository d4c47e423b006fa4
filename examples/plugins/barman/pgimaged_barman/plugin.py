"""The barman method: clone a replica or bootstrap a cluster with `barman recover`, locally."""

import collections
import ctypes
import importlib
import json
import os
import pwd
import queue
import shlex
import shutil
import signal
import subprocess
import threading
import time

import grpc

from . import goplugin

# The plugin protocol versions this plugin speaks, best first. pgimaged offers its versions in
# PLUGIN_PROTOCOL_VERSIONS; the plugin answers with the best one both speak, using the stubs
# `make proto` generated into gen/pgimaged/plugin/v<N>/.
PROTOCOL_VERSIONS = (2,)


def _stubs(version):
    try:
        return (importlib.import_module("pgimaged.plugin.v%d.plugin_pb2" % version),
                importlib.import_module("pgimaged.plugin.v%d.plugin_pb2_grpc" % version))
    except ImportError:
        return None

NAME = "barman"
VERSION = "0.1.0"
DEFAULT_CONFIG = "/etc/barman.conf"
# pgimaged starts plugins with an environment of its own making (no PATH): children get this.
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"

# name: (required, default, description); all strings.
OPTIONS = {
    "server": (True, "", "The Barman server (its section in barman.conf) whose backups to recover."),
    "backup_id": (False, "latest", 'The backup to recover: a backup ID, or "latest", "oldest", "last-failed".'),
    "target_time": (False, "", "Bootstrap only: recover to this point in time (recovery_target_time, "
                               "with a time zone), then promote."),
    "barman_config": (False, DEFAULT_CONFIG, "Path of barman.conf."),
}

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def _child_setup():
    # A process group of its own, so that cancelling kills barman and everything it started
    # (rsync), and death with the plugin should the plugin be killed.
    os.setsid()
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class Options:
    def __init__(self, pb, opts):
        self.pb = pb
        self.values = {}
        self.unknown = []
        for o in opts:
            if o.name in OPTIONS:
                self.values[o.name] = "true" if o.flag else o.value
            else:
                self.unknown.append(o.name)

    @property
    def server(self):
        return self.values.get("server", "")

    @property
    def backup_id(self):
        return self.values.get("backup_id") or "latest"

    @property
    def target_time(self):
        return self.values.get("target_time", "")

    @property
    def config(self):
        return self.values.get("barman_config") or DEFAULT_CONFIG

    def diagnostics(self, path):
        pb = self.pb
        out = []

        def err(summary, detail="", option=""):
            out.append(pb.Diagnostic(severity=pb.Diagnostic.SEVERITY_ERROR, summary=summary,
                                     detail=detail, option=option))

        for name in self.unknown:
            err("Unknown option %r" % name,
                "The barman method accepts: " + ", ".join(sorted(OPTIONS)) + ".", name)
        if not self.server:
            err("Missing option \"server\"",
                "Name the Barman server (its section in barman.conf) whose backups to recover.", "server")
        if self.target_time:
            if path == pb.PATH_CLONE:
                err("target_time is for a bootstrap",
                    "A replica follows its primary to the end of the WAL; a point in time only makes sense "
                    "when bootstrapping a new cluster.", "target_time")
            else:
                try:
                    _parse_time(self.target_time)
                except ValueError as e:
                    err("target_time is not a time", str(e), "target_time")
        if "barman_config" in self.values and not os.path.isfile(self.config):
            err("barman_config %r is not a file" % self.config, "", "barman_config")
        return out


def _parse_time(s):
    from dateutil import parser  # barman depends on python3-dateutil

    t = parser.parse(s)
    if t.tzinfo is None:
        raise ValueError("%r has no time zone; write one (e.g. +00) so that it means one instant" % s)
    return t


class Aborted(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class Method:
    """The Method service of protocol version `version` (pb, pb_grpc: its generated stubs)."""

    def __init__(self, server, version, pb, pb_grpc):
        self.version, self.pb, self.pb_grpc = version, pb, pb_grpc
        self.log = server.log
        self._procs = set()
        self._lock = threading.Lock()
        server.on_stop(self._kill_all)

    # --- Describe, Validate, Plan -----------------------------------------------------------

    def register(self, grpc_server):
        self.pb_grpc.add_MethodServicer_to_server(self, grpc_server)

    def Describe(self, request, context):
        pb = self.pb
        resp = pb.DescribeResponse(
            name=NAME, version=VERSION, capabilities=["bootstrap", "clone"],
            works_without_source=True,
            description="Recovers a Barman backup (barman recover, on this host) as a replica or a new cluster",
        )
        for name, (required, default, description) in OPTIONS.items():
            resp.schema.options.add(name=name, type=pb.OPTION_TYPE_STRING, required=required,
                                    default=default, description=description)
        return resp

    def Validate(self, request, context):
        return self.pb.ValidateResponse(diagnostics=Options(self.pb, request.options).diagnostics(request.path))

    def Plan(self, request, context):
        pb = self.pb
        which = request.WhichOneof("request")
        req = getattr(request, which)
        opts = Options(pb, req.options)
        path = pb.PATH_CLONE if which == "clone" else pb.PATH_BOOTSTRAP
        _check(pb, opts, path, context)
        argv = self._recover_argv(opts, opts.backup_id, req.cluster.data_dir)
        settings = self._settings(opts, path)
        return pb.PlanResponse(commands=[pb.Command(argv=argv)],
                               notes=["recovery settings: %s" % json.dumps(settings, sort_keys=True)])

    # --- Clone and Bootstrap ----------------------------------------------------------------

    def Clone(self, request, context):
        yield from self._run(request, self.pb.PATH_CLONE, context)

    def Bootstrap(self, request, context):
        yield from self._run(request, self.pb.PATH_BOOTSTRAP, context)

    def _log(self, level, message, **fields):
        pb = self.pb
        level = {"trace": pb.LEVEL_TRACE, "debug": pb.LEVEL_DEBUG, "info": pb.LEVEL_INFO,
                 "warn": pb.LEVEL_WARN, "error": pb.LEVEL_ERROR}[level]
        return pb.Event(log=pb.LogLine(level=level, message=message,
                                       fields={k: str(v) for k, v in fields.items()}))

    def _progress(self, done, total):
        p = self.pb.Progress(phase="copying the backup", done=done, total=total, unit=self.pb.UNIT_BYTES)
        return self.pb.Event(progress=p)

    def _run(self, req, path, context):
        pb = self.pb
        opts = Options(pb, req.options)
        _check(pb, opts, path, context)
        data_dir = req.cluster.data_dir
        env = self._env(req.env)
        try:
            yield self._log("info", "looking up backup %s of Barman server %s" % (opts.backup_id, opts.server))
            info = self._show_backup(opts, env)
            backup_id = info["backup_id"]
            status = info.get("status", "")
            if status not in ("DONE", "WAITING_FOR_WALS"):
                raise Aborted(grpc.StatusCode.ABORTED,
                              "backup %s of Barman server %s has status %s" % (backup_id, opts.server, status))
            base = info.get("base_backup_information", {})
            if opts.target_time:
                end = base.get("end_time", "")
                if end and _parse_time(opts.target_time) < _parse_time(end):
                    raise Aborted(grpc.StatusCode.INVALID_ARGUMENT,
                                  "target_time %s is before the end of backup %s (%s): choose an older backup_id"
                                  % (opts.target_time, backup_id, end))
            total = int(base.get("disk_usage_bytes") or 0)
            argv = self._recover_argv(opts, backup_id, data_dir)
            yield self._log("info", "recovering backup %s of Barman server %s into %s" % (backup_id, opts.server, data_dir),
                       backup_id=backup_id, server=opts.server)
            yield from self._recover(argv, env, data_dir, total, context)
        except Aborted as e:
            context.abort(e.code, str(e))
        settings = self._settings(opts, path)
        what = "replica" if path == pb.PATH_CLONE else "new cluster"
        if opts.target_time:
            what += " (to %s)" % opts.target_time
        yield pb.Event(result=pb.Result(
            recovery_settings=settings,
            standby=(path == pb.PATH_CLONE),
            summary="backup %s of Barman server %s recovered as a %s" % (backup_id, opts.server, what),
        ))

    def _recover(self, argv, env, data_dir, total, context):
        events = queue.Queue()
        tail = collections.deque(maxlen=10)
        proc = self._start(argv, env)

        def read():
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip()
                if line:
                    events.put(line)
            events.put(None)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        context.add_callback(lambda: self._kill(proc))  # the call ended: cancelled, or done
        last, done_reading = 0.0, False
        try:
            while not done_reading:
                try:
                    line = events.get(timeout=0.5)
                except queue.Empty:
                    line = ""
                if line is None:
                    done_reading = True
                elif line:
                    tail.append(line)
                    yield self._log(_level(line), line)
                if not context.is_active():
                    self._kill(proc)
                    return
                now = time.monotonic()
                if now - last >= 1:
                    last = now
                    yield self._progress(_du(data_dir), total)
            code = proc.wait()
        finally:
            self._kill(proc)
        if not context.is_active():
            return
        if code != 0:
            raise Aborted(grpc.StatusCode.ABORTED, "barman recover exited with code %d: %s"
                          % (code, " | ".join(list(tail)[-3:])))
        size = _du(data_dir)
        yield self._progress(size, max(total, size))

    # --- helpers ------------------------------------------------------------------------------

    def _barman(self):
        return shutil.which("barman", path=DEFAULT_PATH) or "barman"

    def _recover_argv(self, opts, backup_id, data_dir):
        # No --target-*: barman copies the backup and the WAL it needs to be consistent, and
        # pgimaged writes the recovery settings this plugin returns (restore_command through
        # barman get-wal reaches all the WAL Barman archived since).
        return [self._barman(), "-c", opts.config, "recover", opts.server, backup_id, data_dir]

    def _settings(self, opts, path):
        restore = "%s -c %s get-wal %s %%f > %%p" % (
            shlex.quote(self._barman()), shlex.quote(opts.config), shlex.quote(opts.server))
        settings = {"restore_command": restore}
        if path == self.pb.PATH_BOOTSTRAP and opts.target_time:
            settings["recovery_target_time"] = opts.target_time
            settings["recovery_target_action"] = "promote"
        return settings

    def _env(self, extra):
        env = {"PATH": DEFAULT_PATH, "LANG": "C.UTF-8"}
        try:
            pw = pwd.getpwuid(os.geteuid())
            env["HOME"], env["USER"] = pw.pw_dir, pw.pw_name
        except KeyError:
            pass
        env.update(extra)
        return env

    def _show_backup(self, opts, env):
        argv = [self._barman(), "-c", opts.config, "-f", "json", "show-backup", opts.server, opts.backup_id]
        p = self._start(argv, env)
        try:
            out, _ = p.communicate(timeout=60)
        finally:
            self._kill(p)
        text = out.decode("utf-8", "replace")
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if p.returncode != 0 or not isinstance(doc, dict) or opts.server not in doc:
            msg = text.strip()
            if isinstance(doc, dict) and doc.get("_ERROR"):
                msg = "; ".join(doc["_ERROR"])
            raise Aborted(grpc.StatusCode.ABORTED, "while looking up backup %s of Barman server %s: %s"
                          % (opts.backup_id, opts.server, msg or "barman exited with code %d" % p.returncode))
        return doc[opts.server]

    def _start(self, argv, env):
        self.log.debug("running", argv=" ".join(argv))
        p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, preexec_fn=_child_setup, cwd="/")
        with self._lock:
            self._procs.add(p)
        return p

    def _kill(self, p):
        """Kill p's process group (p and everything it started) and reap p."""
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.log.error("barman (pid %d) did not end after SIGKILL" % p.pid)
        with self._lock:
            self._procs.discard(p)

    def _kill_all(self):
        with self._lock:
            procs = list(self._procs)
        for p in procs:
            self._kill(p)


def _check(pb, opts, path, context):
    errs = [d for d in opts.diagnostics(path) if d.severity == pb.Diagnostic.SEVERITY_ERROR]
    if errs:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "; ".join(d.summary for d in errs))


def _level(line):
    if line.startswith("ERROR"):
        return "error"
    if line.startswith("WARNING") or line.startswith("IMPORTANT"):
        return "warn"
    return "info"


def _du(path):
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def main():
    server = goplugin.Server(NAME)
    versions = {}
    for v in PROTOCOL_VERSIONS:
        stubs = _stubs(v)
        if stubs:
            versions[v] = (lambda v, stubs: lambda s: Method(server, v, *stubs).register(s))(v, stubs)
    server.serve(versions)
