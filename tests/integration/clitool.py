"""Running the mixstack CLI from tests, and making cores of small programs."""
import json
import os
import resource
import shutil
import signal
import struct
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("MIXSTACK_BUILD_DIR", REPO / "build" / "dev"))
MIXSTACK = BUILD / "mixstack"


def run_mixstack(*args, timeout=120, env=None):
    """Run the CLI; returns CompletedProcess with text stdout/stderr."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return subprocess.run([str(MIXSTACK), *map(str, args)], capture_output=True,
                          text=True, errors="replace", timeout=timeout, env=full_env)


def report_json(*args, **kwargs):
    """Run the CLI with --json; returns (exit status, parsed document)."""
    proc = run_mixstack(*args, "--json", **kwargs)
    assert proc.returncode in (0, 1), f"exit {proc.returncode}: {proc.stderr}"
    return proc.returncode, json.loads(proc.stdout)


def gcore(pid, dest):
    """Snapshot a live process with gdb's gcore into dest."""
    dest = Path(dest)
    subprocess.run(["gcore", "-o", str(dest), str(pid)], check=True,
                   capture_output=True, timeout=120)
    produced = Path(f"{dest}.{pid}")
    produced.rename(dest)
    return dest


def _raise_core_limit():
    resource.setrlimit(resource.RLIMIT_CORE,
                       (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def core_pattern():
    return Path("/proc/sys/kernel/core_pattern").read_text().strip()


def crash_core(argv, workdir, sig=signal.SIGSEGV, ready_delay=0.3):
    """Start argv in workdir, kill it with a core-dumping signal, return the
    core's path, or None when the machine's core_pattern puts cores where a
    test cannot find them."""
    pattern = core_pattern()
    if pattern.startswith("|") or "/" in pattern:
        return None
    workdir = Path(workdir)
    proc = subprocess.Popen(argv, cwd=workdir, preexec_fn=_raise_core_limit,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(ready_delay)
    proc.send_signal(sig)
    proc.wait(timeout=60)
    for name in (f"core.{proc.pid}", "core"):
        if (workdir / name).exists():
            return workdir / name
    cores = sorted(workdir.glob("core*"))
    return cores[0] if cores else None


NT_FILE = 0x46494C45


def rewrite_note_type(core, out, note_type, new_type=0x7FFFFFFF):
    """Copy core to out with every note of note_type renamed to new_type."""
    data = bytearray(Path(core).read_bytes())
    e_phoff, = struct.unpack_from("<Q", data, 0x20)
    e_phentsize, e_phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(e_phnum):
        off = e_phoff + i * e_phentsize
        p_type, = struct.unpack_from("<I", data, off)
        if p_type != 4:  # PT_NOTE
            continue
        p_offset, = struct.unpack_from("<Q", data, off + 8)
        p_filesz, = struct.unpack_from("<Q", data, off + 32)
        pos, end = p_offset, p_offset + p_filesz
        while pos + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", data, pos)
            if ntype == note_type:
                struct.pack_into("<I", data, pos + 8, new_type)
            pos += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3)
    Path(out).write_bytes(data)
    return Path(out)


def process_state(pid):
    """The state letter of /proc/PID/stat and the TracerPid."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    state = stat[stat.rindex(")") + 2]
    tracer = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("TracerPid:"):
            tracer = int(line.split()[1])
    return state, tracer


def task_states(pid):
    """{tid: (state letter, TracerPid)} of every thread of pid."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            status = Path("/proc/%d/task/%s/status" % (pid, tid)).read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        out[int(tid)] = (fields["State"].split()[0], int(fields["TracerPid"]))
    return out


def which(tool):
    return shutil.which(tool)
