"""Corrupted-core corpus: deterministic variants of real cores (stdlib only).

Used by scripts/corrupt-cores (CLI) and tests/integration/test_corrupt.py.

A *source* is a real core plus what is known about it independently of
mixstack: its ELF structure (program headers, notes, NT_PRSTATUS
registers, NT_FILE), and from the files it maps, the address of the
interpreter's `_PyRuntime` (`nm -D` on the file that defines it + the load
bias from NT_FILE) and the writable segments of the interpreter and of
the extension (their program headers + the bias). A *variant* is a list of
edits of the source's bytes (patches and a truncation), named by a stable
id `<source>/<kind>/<n>`; it is regenerated from the seed, never stored.

Kinds of edits (see KINDS): truncation at structural and random offsets,
PT_LOAD data zeroed, bit flips in the interpreter's data (`_PyRuntime`
and the objects it points to), in the extension's data and in the crashed
thread's stack, pointers redirected (to themselves, to an earlier word of
the same block: cycles; to unmapped, misaligned, kernel, NULL addresses),
registers of NT_PRSTATUS replaced, notes removed or damaged, ELF and
program headers damaged.
"""
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PT_LOAD, PT_NOTE = 1, 4
NT_PRSTATUS, NT_PRPSINFO, NT_AUXV = 1, 3, 6
NT_SIGINFO, NT_FILE = 0x53494749, 0x46494C45
# offset of pr_reg in the 64-bit elf_prstatus, and of registers in it
PR_REG = 112
USER_REGS = {"r15": 0, "r14": 1, "r13": 2, "r12": 3, "rbp": 4, "rbx": 5,
             "r11": 6, "r10": 7, "r9": 8, "r8": 9, "rax": 10, "rcx": 11,
             "rdx": 12, "rsi": 13, "rdi": 14, "orig_rax": 15, "rip": 16,
             "cs": 17, "eflags": 18, "rsp": 19, "ss": 20, "fs_base": 21}

KINDS = ["truncate", "zero-load", "zero-window", "bitflip", "pointer", "regs",
         "notes", "headers"]

# Values written over pointers: (name, function(word address, old value,
# block start, rng) -> new value)
UNMAPPED = 0x00000DEAD0000000


def _align(n, a):
    return (n + a - 1) & ~(a - 1)


# ---------------------------------------------------------------------------
# ELF
# ---------------------------------------------------------------------------

class Elf:
    """Program headers of an ELF64 little-endian file (core or object)."""

    def __init__(self, path):
        self.path = str(path)
        with open(self.path, "rb") as f:
            h = f.read(64)
            if len(h) < 64 or h[:4] != b"\x7fELF" or h[4] != 2 or h[5] != 1:
                raise ValueError("%s: not an ELF64 LE file" % path)
            self.e_type, self.e_machine = struct.unpack_from("<HH", h, 16)
            self.e_phoff = struct.unpack_from("<Q", h, 32)[0]
            self.e_phentsize, self.e_phnum = struct.unpack_from("<HH", h, 54)
            f.seek(self.e_phoff)
            raw = f.read(self.e_phentsize * self.e_phnum)
        self.size = os.path.getsize(self.path)
        self.phdrs = []
        for i in range(self.e_phnum):
            off = i * self.e_phentsize
            if off + 56 > len(raw):
                break
            (p_type, p_flags, p_offset, p_vaddr, _pa, p_filesz, p_memsz,
             p_align) = struct.unpack_from("<IIQQQQQQ", raw, off)
            self.phdrs.append({"index": i, "type": p_type, "flags": p_flags,
                               "offset": p_offset, "vaddr": p_vaddr,
                               "filesz": p_filesz, "memsz": p_memsz,
                               "align": p_align,
                               "at": self.e_phoff + off})

    def loads(self):
        return [p for p in self.phdrs if p["type"] == PT_LOAD]


class Core(Elf):
    """A core: program headers, notes (with file offsets), threads, NT_FILE."""

    def __init__(self, path):
        super().__init__(path)
        self.notes = []
        with open(self.path, "rb") as f:
            for ph in self.phdrs:
                if ph["type"] != PT_NOTE:
                    continue
                f.seek(ph["offset"])
                data = f.read(ph["filesz"])
                off = 0
                while off + 12 <= len(data):
                    namesz, descsz, ntype = struct.unpack_from("<III", data, off)
                    name = data[off + 12:off + 12 + namesz].rstrip(b"\0")
                    desc_off = off + 12 + _align(namesz, 4)
                    self.notes.append({"at": ph["offset"] + off, "namesz": namesz,
                                       "descsz": descsz, "type": ntype, "name": name,
                                       "desc_at": ph["offset"] + desc_off,
                                       "desc": data[desc_off:desc_off + descsz]})
                    off = desc_off + _align(descsz, 4)
        self.threads = []
        self.files = []
        for n in self.notes:
            if n["name"] == b"CORE" and n["type"] == NT_PRSTATUS and len(n["desc"]) >= PR_REG + 27 * 8:
                regs = struct.unpack_from("<27Q", n["desc"], PR_REG)
                self.threads.append({"tid": struct.unpack_from("<i", n["desc"], 32)[0],
                                     "note": n, "regs": dict((k, regs[v]) for k, v in USER_REGS.items())})
            elif n["name"] == b"CORE" and n["type"] == NT_FILE and not self.files:
                self.files = parse_nt_file(n["desc"])

    def vaddr_to_offset(self, addr, size=1):
        for p in self.loads():
            if p["vaddr"] <= addr and addr + size <= p["vaddr"] + p["filesz"]:
                return p["offset"] + (addr - p["vaddr"])
        return None

    def load_of(self, addr):
        for p in self.loads():
            if p["vaddr"] <= addr < p["vaddr"] + max(p["memsz"], 1):
                return p
        return None

    def read(self, addr, size):
        off = self.vaddr_to_offset(addr, size)
        if off is None:
            return None
        with open(self.path, "rb") as f:
            f.seek(off)
            return f.read(size)

    def is_mapped(self, value):
        for p in self.loads():
            if p["vaddr"] <= value < p["vaddr"] + p["memsz"]:
                return True
        return False


def parse_nt_file(desc):
    if len(desc) < 16:
        return []
    count, page = struct.unpack_from("<QQ", desc, 0)
    if count > 100000 or 16 + 24 * count > len(desc):
        return []
    names = desc[16 + 24 * count:].split(b"\0")
    out = []
    for i in range(count):
        start, end, pgoff = struct.unpack_from("<QQQ", desc, 16 + 24 * i)
        out.append({"start": start, "end": end, "offset": pgoff * page,
                    "path": names[i].decode("utf-8", "replace") if i < len(names) else ""})
    return out


def module_bias(core, path):
    """Load bias of the file mapped from path in the core: where its file
    offset 0 is mapped, minus its first PT_LOAD's page-aligned vaddr."""
    maps = [f for f in core.files if f["path"] == path]
    starts = [f["start"] for f in maps if f["offset"] == 0]
    if not starts or not os.path.exists(path):
        return None
    # A file mapped whole (a symbolizer reading it) is not the loaded
    # module: the module is the offset-0 mapping followed by its segments.
    elf = Elf(path)
    loads = elf.loads()
    if not loads:
        return None
    span = max(p["vaddr"] + p["memsz"] for p in loads) - (loads[0]["vaddr"] & ~0xfff)
    starts.sort(key=lambda s: (-sum(1 for f in maps if s <= f["start"] < s + span), s))
    return starts[0] - (loads[0]["vaddr"] & ~0xfff)


def writable_segments(core, path):
    """(vaddr, size) of the writable PT_LOADs of path as mapped in core."""
    bias = module_bias(core, path)
    if bias is None:
        return []
    return [(bias + p["vaddr"], p["memsz"]) for p in Elf(path).loads() if p["flags"] & 2]


def nm_symbol(path, name):
    """(value, size) of a defined dynamic (else static) symbol, or None."""
    for args in (["nm", "-D", "-S", "--defined-only"], ["nm", "-S", "--defined-only"]):
        try:
            out = subprocess.run(args + [path], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, timeout=60).stdout.decode()
        except (OSError, subprocess.TimeoutExpired):
            return None
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 4 and parts[3] == name:
                return int(parts[0], 16), int(parts[1], 16)
    return None


# ---------------------------------------------------------------------------
# sources
# ---------------------------------------------------------------------------

class Source:
    """A real core and the regions of it that variants aim at."""

    def __init__(self, sid, core_path, interp_path=None, executable=None):
        self.id = sid
        self.path = str(core_path)
        self.core = Core(core_path)
        self.executable = executable or interp_path
        self.regions = {}  # name -> (vaddr, size)
        files = sorted(set(f["path"] for f in self.core.files))
        # _PyRuntime: in the executable (static) or libpython (shared)
        for path in files:
            base = os.path.basename(path)
            if not (base.startswith("python") or base.startswith("libpython")):
                continue
            sym = nm_symbol(path, "_PyRuntime")
            bias = module_bias(self.core, path)
            if sym and bias is not None:
                self.regions["runtime"] = (bias + sym[0], min(sym[1], 0x20000))
                segs = writable_segments(self.core, path)
                if segs:
                    self.regions["interp-data"] = max(segs, key=lambda s: s[1])
                break
        for path in files:
            if "mixsample" in os.path.basename(path) or "native-demo" in os.path.basename(path):
                segs = writable_segments(self.core, path)
                if segs:
                    self.regions["ext-data"] = (segs[0][0], sum(s[1] for s in segs))
                break
        if self.core.threads:
            rsp = self.core.threads[0]["regs"]["rsp"]
            p = self.core.load_of(rsp)
            if p:
                end = min(p["vaddr"] + p["filesz"], rsp + 0x8000)
                self.regions["stack"] = (rsp, max(0, end - rsp))
            if len(self.core.threads) > 1:
                rsp = self.core.threads[-1]["regs"]["rsp"]
                p = self.core.load_of(rsp)
                if p:
                    end = min(p["vaddr"] + p["filesz"], rsp + 0x4000)
                    self.regions["stack-last"] = (rsp, max(0, end - rsp))
        # Blocks reached from _PyRuntime by following pointers (interpreter
        # state, thread states, frames, code objects...): no layout needed.
        if "runtime" in self.regions:
            self.regions.update(self._chase(self.regions["runtime"]))
        self.regions = {k: v for k, v in self.regions.items()
                        if v[1] > 0 and self.core.vaddr_to_offset(v[0], 8) is not None}

    def _chase(self, root, depth=3, per_level=6, block=0x200):
        """Blocks at pointer targets, breadth first from root (seeded by the
        source id so every run picks the same ones)."""
        rng = random.Random("chase:" + self.id)
        out = {}
        frontier = [root]
        seen = set()
        for d in range(1, depth + 1):
            targets = []
            for vaddr, size in frontier:
                data = self.core.read(vaddr, min(size, 0x4000)) or b""
                for i in range(0, len(data) - 7, 8):
                    v = struct.unpack_from("<Q", data, i)[0]
                    if v & 7 or v in seen or not self.core.is_mapped(v):
                        continue
                    if self.core.vaddr_to_offset(v, 64) is None:
                        continue
                    seen.add(v)
                    targets.append(v)
            rng.shuffle(targets)
            frontier = [(v, block) for v in sorted(targets[:per_level])]
            for j, (v, size) in enumerate(frontier):
                out["heap%d.%d" % (d, j)] = (v, size)
        return out

    def describe(self):
        return {"id": self.id, "core": self.path, "size": self.core.size,
                "threads": len(self.core.threads), "files": len(self.core.files),
                "regions": {k: [hex(v[0]), v[1]] for k, v in sorted(self.regions.items())}}


def find_sources(samples_dir=None, interps=None, scenarios=None):
    """Crash-sample artefacts (core + manifest) as Sources."""
    samples_dir = Path(samples_dir or os.environ.get("MIXSTACK_SAMPLES_DIR")
                       or REPO / "build" / "samples")
    out = []
    for man in sorted(samples_dir.glob("artefacts/*/*/manifest.json")):
        interp, scenario = man.parent.parent.name, man.parent.name
        if interps and not any(i in interp for i in interps):
            continue
        if scenarios and scenario not in scenarios:
            continue
        core = man.parent / "core"
        if not core.exists():
            continue
        m = json.loads(man.read_text())
        out.append(("%s:%s" % (interp, scenario), core, m["interpreter"]["path"]))
    return out


def native_demo_source(workdir):
    """A gcore of `native-demo wait` (C + Rust, no Python), made once."""
    workdir = Path(workdir)
    core = workdir / "native-demo.core"
    exe = REPO / "build" / "native-demo" / "native-demo"
    if core.exists() and exe.exists() and core.stat().st_mtime > exe.stat().st_mtime:
        return ("native-demo:wait", core, str(exe))
    subprocess.run([str(REPO / "scripts" / "build-native-demo")], check=True,
                   stdout=subprocess.DEVNULL)
    workdir.mkdir(parents=True, exist_ok=True)
    p = subprocess.Popen([str(exe), "wait"], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        line = p.stdout.readline()
        if b"ready" not in line:
            raise RuntimeError("native-demo did not get ready: %r" % line)
        time.sleep(0.2)
        prefix = str(workdir / "native-demo.tmp")
        subprocess.run(["gcore", "-o", prefix, str(p.pid)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        os.replace("%s.%d" % (prefix, p.pid), str(core))
    finally:
        p.kill()
        p.wait()
    return ("native-demo:wait", core, str(exe))


# ---------------------------------------------------------------------------
# variants
# ---------------------------------------------------------------------------

class Variant:
    def __init__(self, vid, kind, what, patches=(), truncate=None):
        self.id = vid
        self.kind = kind
        self.what = what
        self.patches = list(patches)  # [(file offset, bytes)]
        self.truncate = truncate

    def materialize(self, source, dest):
        """Write the variant to dest (a sparse copy of the source + edits)."""
        dest = str(dest)
        if os.path.exists(dest):
            os.unlink(dest)
        r = subprocess.run(["cp", "--sparse=always", "--reflink=auto", source.path, dest],
                           stderr=subprocess.PIPE)
        if r.returncode != 0:
            shutil.copyfile(source.path, dest)
        fd = os.open(dest, os.O_WRONLY)
        try:
            for off, data in self.patches:
                if 0 <= off < source.core.size:
                    os.pwrite(fd, data[:max(0, source.core.size - off)], off)
            if self.truncate is not None:
                os.ftruncate(fd, self.truncate)
        finally:
            os.close(fd)
        return dest


def _u64(v):
    return struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)


def _u32(v):
    return struct.pack("<I", v & 0xFFFFFFFF)


def _u16(v):
    return struct.pack("<H", v & 0xFFFF)


POINTER_MODES = ["self", "cycle", "unmapped", "misaligned", "kernel", "null", "max", "swap"]


def _pointer_value(mode, addr, old, block_start, rng):
    if mode == "self":
        return addr
    if mode == "cycle":  # an earlier word of the same block
        return block_start + 8 * rng.randrange(0, max(1, (addr - block_start) // 8 + 1))
    if mode == "unmapped":
        return UNMAPPED + 8 * rng.randrange(0, 1 << 16)
    if mode == "misaligned":
        return old + rng.randrange(1, 8)
    if mode == "kernel":
        return 0xFFFF800000000000 + 8 * rng.randrange(0, 1 << 20)
    if mode == "null":
        return 0
    if mode == "max":
        return 0xFFFFFFFFFFFFFFF8
    return old ^ 0x1000  # "swap": a neighbouring page


def _gen_truncate(src, rng):
    c = src.core
    offs = {0, 1, 4, 16, 52, 63, 64, c.e_phoff + 1, c.e_phoff + 56 * c.e_phnum - 1,
            c.size - 1, c.size // 2}
    for n in c.notes[:40]:
        offs.update({n["at"] + 1, n["at"] + 12, n["desc_at"] + n["descsz"] // 2})
    for p in c.loads():
        offs.update({p["offset"], p["offset"] + 1, p["offset"] + p["filesz"] // 2})
    offs.update(rng.randrange(0, c.size) for _ in range(40))
    out = []
    for off in sorted(o for o in offs if 0 <= o < c.size):
        out.append(("at %d" % off, [], off))
    return out


def _region_offset(src, name):
    vaddr, size = src.regions[name]
    return src.core.vaddr_to_offset(vaddr), size


def _gen_zero_load(src, rng):
    out = []
    loads = src.core.loads()
    chosen = {}
    for name in ("runtime", "stack", "ext-data", "heap1.0", "heap2.0"):
        if name in src.regions:
            p = src.core.load_of(src.regions[name][0])
            if p:
                chosen[p["index"]] = name
    for p in rng.sample(loads, min(4, len(loads))):
        chosen.setdefault(p["index"], "random")
    for idx, why in sorted(chosen.items()):
        p = src.core.phdrs[idx]
        size = min(p["filesz"], 16 << 20)
        patches = [(p["offset"] + o, b"\0" * min(1 << 20, size - o)) for o in range(0, size, 1 << 20)]
        out.append(("PT_LOAD %d (%s, %d bytes)" % (idx, why, size), patches, None))
    return out


def _gen_zero_window(src, rng):
    out = []
    for name in sorted(src.regions):
        off, size = _region_offset(src, name)
        for w in (64, 512):
            start = off + 8 * rng.randrange(0, max(1, (size - w) // 8))
            out.append(("%s: %d bytes at +%d" % (name, w, start - off), [(start, b"\0" * w)], None))
    return out


def _flip(src, off, size, n, rng):
    with open(src.path, "rb") as f:
        f.seek(off)
        data = bytearray(f.read(size))
    if not data:
        return []
    touched = {}
    for _ in range(n):
        i = rng.randrange(0, len(data))
        data[i] ^= 1 << rng.randrange(8)
        touched[i] = data[i]
    return [(off + i, bytes([b])) for i, b in sorted(touched.items())]


def _gen_bitflip(src, rng):
    out = []
    for name in sorted(src.regions):
        off, size = _region_offset(src, name)
        size = min(size, 0x4000)
        for n in (1, 8, 64):
            out.append(("%s: %d bit(s)" % (name, n), _flip(src, off, size, n, rng), None))
    # notes
    for n in (1, 16):
        for note in src.core.notes:
            if note["type"] in (NT_FILE, NT_PRSTATUS):
                out.append(("note %x: %d bit(s)" % (note["type"], n),
                            _flip(src, note["at"], 12 + _align(note["namesz"], 4) + note["descsz"], n, rng),
                            None))
                break
    return out


def _gen_pointer(src, rng):
    out = []
    for name in sorted(src.regions):
        vaddr, size = src.regions[name]
        size = min(size, 0x2000)
        data = src.core.read(vaddr, size) or b""
        words = [i for i in range(0, len(data) - 7, 8)
                 if src.core.is_mapped(struct.unpack_from("<Q", data, i)[0])]
        if not words:
            continue
        for mode in POINTER_MODES:
            for count in (1, 4, len(words)):
                pick = sorted(rng.sample(words, min(count, len(words))))
                patches = []
                for i in pick:
                    old = struct.unpack_from("<Q", data, i)[0]
                    new = _pointer_value(mode, vaddr + i, old, vaddr, rng)
                    patches.append((src.core.vaddr_to_offset(vaddr + i), _u64(new)))
                out.append(("%s: %d pointer(s) -> %s" % (name, len(pick), mode), patches, None))
    return out


def _gen_regs(src, rng):
    out = []
    threads = src.core.threads
    if not threads:
        return out
    pick = [threads[0], threads[-1]] if len(threads) > 1 else [threads[0]]
    stack = src.regions.get("stack", (threads[0]["regs"]["rsp"], 0))[0]
    for t in pick:
        base = t["note"]["desc_at"] + PR_REG
        for reg in ("rip", "rsp", "rbp"):
            for label, value in (("0", 0), ("unmapped", UNMAPPED), ("misaligned", t["regs"][reg] + 3),
                                 ("kernel", 0xFFFFFFFFFF600000), ("max", 0xFFFFFFFFFFFFFFFF),
                                 ("stack", stack), ("random", rng.getrandbits(64))):
                out.append(("tid %d %s=%s" % (t["tid"], reg, label),
                            [(base + 8 * USER_REGS[reg], _u64(value))], None))
        # rsp on a word that points at itself: an unwinder must not loop
        if "stack" in src.regions:
            off = src.core.vaddr_to_offset(stack)
            out.append(("tid %d rsp/rbp on a self-loop" % t["tid"],
                        [(base + 8 * USER_REGS["rsp"], _u64(stack)),
                         (base + 8 * USER_REGS["rbp"], _u64(stack)),
                         (off, _u64(stack) * 4)], None))
    return out


def _retype(note, new_type=0x4E4F4E45):
    return (note["at"] + 8, _u32(new_type))


def _gen_notes(src, rng):
    c = src.core
    out = []
    by_type = {}
    for n in c.notes:
        by_type.setdefault(n["type"], []).append(n)
    for t, label in ((NT_FILE, "NT_FILE"), (NT_PRPSINFO, "NT_PRPSINFO"), (NT_AUXV, "NT_AUXV"),
                     (NT_SIGINFO, "NT_SIGINFO")):
        if t in by_type:
            out.append(("remove %s" % label, [_retype(n) for n in by_type[t]], None))
    prs = by_type.get(NT_PRSTATUS, [])
    if prs:
        out.append(("remove all NT_PRSTATUS", [_retype(n) for n in prs], None))
        out.append(("remove the first NT_PRSTATUS", [_retype(prs[0])], None))
        if len(prs) > 1:
            tid0 = prs[0]["desc"][32:36]
            out.append(("every NT_PRSTATUS with the first tid", [(n["desc_at"] + 32, tid0) for n in prs], None))
        for descsz in (0, 8, 112, 0x7FFFFFFF, 0xFFFFFFFF):
            out.append(("first NT_PRSTATUS descsz %#x" % descsz, [(prs[0]["at"] + 4, _u32(descsz))], None))
        for namesz in (0, 3, 0xFFFFFFF0):
            out.append(("first NT_PRSTATUS namesz %#x" % namesz, [(prs[0]["at"], _u32(namesz))], None))
        out.append(("tid 0 and -1", [(prs[0]["desc_at"] + 32, struct.pack("<i", 0))] +
                    ([(prs[-1]["desc_at"] + 32, struct.pack("<i", -1))] if len(prs) > 1 else []), None))
    for n in by_type.get(NT_FILE, [])[:1]:
        d = n["desc_at"]
        count = struct.unpack_from("<Q", n["desc"], 0)[0]
        out.append(("NT_FILE count huge", [(d, _u64(0xFFFFFFFFFFFF))], None))
        out.append(("NT_FILE count +1", [(d, _u64(count + 1))], None))
        out.append(("NT_FILE count 0", [(d, _u64(0))], None))
        out.append(("NT_FILE page size 0", [(d + 8, _u64(0))], None))
        out.append(("NT_FILE page size huge", [(d + 8, _u64(1 << 62))], None))
        if count:
            out.append(("NT_FILE entry start > end", [(d + 16, _u64(0xFFFFFFFFFFFFF000))], None))
            out.append(("NT_FILE entries all at 0", [(d + 16 + 24 * i, _u64(0) * 2) for i in range(count)], None))
            names_at = d + 16 + 24 * count
            out.append(("NT_FILE names without NUL",
                        [(names_at, b"A" * max(0, n["descsz"] - 16 - 24 * count))], None))
            out.append(("NT_FILE names point elsewhere",
                        [(names_at, b"/nonexistent/" + bytes(rng.randrange(97, 123) for _ in range(8)))], None))
        out.append(("NT_FILE descsz 20", [(n["at"] + 4, _u32(20))], None))
        # Mappings nothing backs: readers that scan mapped memory (the
        # exhaustive runtime search) must bound their work.
        out.append(("NT_FILE entries moved to 60 MiB unbacked ranges",
                    [(d + 16 + 24 * i, struct.pack("<QQQ", 0x100000000000 + (i << 27),
                                                   0x100000000000 + (i << 27) + (60 << 20), 1))
                     for i in range(min(count, 4096))], None))
        out.append(("NT_FILE entry at the top of the address space",
                    [(d + 16 + 24 * i, struct.pack("<QQ", 0xFFFFFFFFFFFF0000, 0xFFFFFFFFFFFFFFFF))
                     for i in range(min(count, 4096)) if c.files and i < len(c.files)
                     and c.files[i]["offset"]][:1], None))
    for p in c.phdrs:
        if p["type"] == PT_NOTE:
            at = p["at"]
            for label, value in (("0", 0), ("1", 1), ("huge", 1 << 60), ("past EOF", c.size + 4096),
                                 ("odd", p["filesz"] - 3)):
                out.append(("PT_NOTE filesz %s" % label, [(at + 32, _u64(value))], None))
            out.append(("PT_NOTE offset past EOF", [(at + 8, _u64(c.size + 1))], None))
            out.append(("PT_NOTE offset into a PT_LOAD", [(at + 8, _u64(c.loads()[0]["offset"]))], None))
            break
    return out


def _gen_headers(src, rng):
    c = src.core
    out = [
        ("e_type ET_EXEC", [(16, _u16(2))], None),
        ("ELFCLASS32", [(4, b"\x01")], None),
        ("big endian", [(5, b"\x02")], None),
        ("e_machine aarch64", [(18, _u16(183))], None),
        ("e_phnum 0", [(56, _u16(0))], None),
        ("e_phnum 0xffff", [(56, _u16(0xFFFF))], None),
        ("e_phnum +1", [(56, _u16(c.e_phnum + 1))], None),
        ("e_phoff past EOF", [(32, _u64(c.size + 8))], None),
        ("e_phoff huge", [(32, _u64(0xFFFFFFFFFFFFFFF0))], None),
        ("e_phoff misaligned", [(32, _u64(c.e_phoff + 3))], None),
        ("e_phentsize 0", [(54, _u16(0))], None),
        ("e_phentsize 1", [(54, _u16(1))], None),
        ("e_phentsize 100", [(54, _u16(100))], None),
        ("bad magic", [(0, b"\x7fELG")], None),
    ]
    loads = c.loads()
    for p in rng.sample(loads, min(6, len(loads))):
        at = p["at"]
        out += [
            ("PT_LOAD %d offset past EOF" % p["index"], [(at + 8, _u64(c.size + 0x1000))], None),
            ("PT_LOAD %d offset wraps" % p["index"], [(at + 8, _u64(0xFFFFFFFFFFFFF000))], None),
            ("PT_LOAD %d filesz > memsz" % p["index"], [(at + 32, _u64(p["memsz"] + 0x10000))], None),
            ("PT_LOAD %d filesz huge" % p["index"], [(at + 32, _u64(1 << 62))], None),
            ("PT_LOAD %d vaddr wraps" % p["index"], [(at + 16, _u64(0xFFFFFFFFFFFFF000))], None),
            ("PT_LOAD %d memsz huge" % p["index"], [(at + 40, _u64(0xFFFFFFFFFFFFFFFF))], None),
            ("PT_LOAD %d on top of PT_LOAD %d" % (p["index"], loads[0]["index"]),
             [(at + 16, _u64(loads[0]["vaddr"]))], None),
            ("PT_LOAD %d type PT_NOTE" % p["index"], [(at, _u32(PT_NOTE))], None),
        ]
    if loads:
        # every PT_LOAD at the same address: maximal overlap
        out.append(("every PT_LOAD at one address",
                    [(p["at"] + 16, _u64(loads[0]["vaddr"])) for p in loads], None))
    return out


GENERATORS = {
    "truncate": _gen_truncate,
    "zero-load": _gen_zero_load,
    "zero-window": _gen_zero_window,
    "bitflip": _gen_bitflip,
    "pointer": _gen_pointer,
    "regs": _gen_regs,
    "notes": _gen_notes,
    "headers": _gen_headers,
}


def variants(source, seed=0, kinds=None, per_source=None):
    """Every variant of source (or per_source of them, spread over the
    kinds), deterministic for (seed, source id)."""
    by_kind = {}
    for kind in kinds or KINDS:
        rng = random.Random("%s:%s:%s" % (seed, source.id, kind))
        items = GENERATORS[kind](source, rng)
        by_kind[kind] = [Variant("%s/%s/%d" % (source.id, kind, i), kind, what, patches, trunc)
                         for i, (what, patches, trunc) in enumerate(items)]
    if per_source is None:
        return [v for k in by_kind for v in by_kind[k]]
    rng = random.Random("%s:%s:pick" % (seed, source.id))
    out = []
    ks = [k for k in by_kind if by_kind[k]]
    share = {k: per_source // len(ks) if ks else 0 for k in ks}
    for k in ks[:per_source - sum(share.values())]:
        share[k] += 1
    spare = 0
    for k in ks:
        n = share[k] + spare
        take = min(n, len(by_kind[k]))
        spare = n - take
        out += sorted(rng.sample(by_kind[k], take), key=lambda v: v.id)
    return out


# ---------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------

def is_sanitized(build_dir):
    cache = Path(build_dir) / "CMakeCache.txt"
    try:
        return "MIXSTACK_SANITIZE:BOOL=ON" in cache.read_text()
    except OSError:
        return False


def sanitizer_env():
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=99")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1:exitcode=99")
    env.pop("DEBUGINFOD_URLS", None)
    return env


SANITIZER_RE = re.compile(rb"ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:|"
                          rb"AddressSanitizer|LeakSanitizer")


def run_cli(mixstack, core, json_mode, timeout, extra=()):
    """One mixstack run: a dict with rc, seconds, and what is wrong (None
    when it behaved: exit 0/1 with a report, valid JSON in --json mode,
    or exit 2 with a one-line error; no signal, no sanitizer report, in
    time)."""
    cmd = [mixstack, "core", core] + (["--json"] if json_mode else []) + list(extra)
    t0 = time.monotonic()
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout, env=sanitizer_env())
    except subprocess.TimeoutExpired:
        return {"rc": None, "s": timeout, "problem": "timeout (> %ss)" % timeout}
    s = time.monotonic() - t0
    res = {"rc": r.returncode, "s": round(s, 3)}
    problem = None
    if r.returncode < 0:
        problem = "killed by signal %d" % -r.returncode
    elif SANITIZER_RE.search(r.stderr):
        problem = "sanitizer: " + r.stderr.decode(errors="replace")[-2000:]
    elif r.returncode not in (0, 1, 2):
        problem = "exit status %d" % r.returncode
    elif r.returncode in (0, 1):
        if not r.stdout:
            problem = "exit %d without a report" % r.returncode
        elif json_mode:
            try:
                json.loads(r.stdout)
            except ValueError as e:
                problem = "invalid JSON: %s" % e
    else:
        err = r.stderr.decode(errors="replace").strip()
        if not err.startswith("mixstack: ") or "\n" in err:
            problem = "exit 2 without a one-line error: %r" % err[:300]
    if problem:
        res["problem"] = problem
        res["stderr"] = r.stderr.decode(errors="replace")[-3000:]
    else:
        res["error"] = r.stderr.decode(errors="replace").strip()[:200] if r.returncode == 2 else None
    return res


def gdb_plugin_problem(build_dir):
    """Why the gdb plugin of build_dir cannot be used, or None."""
    plugin = Path(build_dir) / "gdb-plugin" / "mixstack-gdb.py"
    if not shutil.which("gdb"):
        return "gdb not installed"
    if not plugin.exists():
        return "%s not built" % plugin
    r = subprocess.run(["gdb", "-batch", "-nx", "-ex", "source %s" % plugin,
                        "-ex", "help mixstack", "-ex", "echo ALIVE\\n"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60, env=sanitizer_env())
    out = r.stdout.decode(errors="replace")
    if "ALIVE" not in out or "Undefined command" in out or "Error" in out.split("ALIVE")[0]:
        return "the gdb plugin does not load: %s" % out.strip()[-500:]
    return None


def run_gdb(build_dir, executable, core, timeout):
    plugin = Path(build_dir) / "gdb-plugin" / "mixstack-gdb.py"
    cmd = ["gdb", "-batch", "-nx", "-ex", "source %s" % plugin, "-ex", "mixstack bt all",
           "-ex", "echo ALIVE\\n"] + ([executable] if executable else []) + ([core] if executable else ["-c", core])
    t0 = time.monotonic()
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout, env=sanitizer_env())
    except subprocess.TimeoutExpired:
        return {"rc": None, "s": timeout, "problem": "gdb timeout (> %ss)" % timeout}
    out = r.stdout.decode(errors="replace")
    res = {"rc": r.returncode, "s": round(time.monotonic() - t0, 3)}
    if r.returncode < 0 or "ALIVE" not in out or SANITIZER_RE.search(r.stdout):
        res["problem"] = "gdb did not survive (rc %s): %s" % (r.returncode, out[-1500:])
    return res
