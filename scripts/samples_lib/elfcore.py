"""Minimal ELF core-file reader (stdlib only): header type, NT_PRSTATUS,
NT_FILE. Enough for the samples harness and its tests to check cores
independently of mixstack. x86_64 / aarch64 little-endian ELF64 only."""

import struct

ET_CORE = 4
PT_NOTE = 4
NT_PRSTATUS = 1
NT_PRPSINFO = 3
NT_SIGINFO = 0x53494749
NT_FILE = 0x46494C45


class NotACore(Exception):
    pass


def _align4(n):
    return (n + 3) & ~3


def read_header(path):
    with open(path, "rb") as f:
        h = f.read(64)
    if len(h) < 64 or h[:4] != b"\x7fELF":
        raise NotACore("%s: not an ELF file" % path)
    if h[4] != 2 or h[5] != 1:
        raise NotACore("%s: not ELF64 little-endian" % path)
    e_type, e_machine = struct.unpack_from("<HH", h, 16)
    e_phoff = struct.unpack_from("<Q", h, 32)[0]
    e_phentsize, e_phnum = struct.unpack_from("<HH", h, 54)
    return {"e_type": e_type, "e_machine": e_machine, "e_phoff": e_phoff,
            "e_phentsize": e_phentsize, "e_phnum": e_phnum}


def iter_notes(path):
    """Yield (name, type, desc bytes) for every note of every PT_NOTE."""
    hdr = read_header(path)
    with open(path, "rb") as f:
        f.seek(hdr["e_phoff"])
        ph = f.read(hdr["e_phentsize"] * hdr["e_phnum"])
        for i in range(hdr["e_phnum"]):
            p_type, _flags, p_offset, _va, _pa, p_filesz = struct.unpack_from(
                "<IIQQQQ", ph, i * hdr["e_phentsize"])
            if p_type != PT_NOTE:
                continue
            f.seek(p_offset)
            data = f.read(p_filesz)
            off = 0
            while off + 12 <= len(data):
                namesz, descsz, ntype = struct.unpack_from("<III", data, off)
                off += 12
                name = data[off:off + namesz].rstrip(b"\0").decode("ascii", "replace")
                off += _align4(namesz)
                desc = data[off:off + descsz]
                off += _align4(descsz)
                yield name, ntype, desc


def parse_prstatus(desc):
    # struct elf_prstatus (64-bit): elf_siginfo{si_signo, si_code, si_errno}
    # @0, short pr_cursig @12, ulong pr_sigpend @16, pr_sighold @24,
    # pid_t pr_pid @32, pr_ppid @36, pr_pgrp @40, pr_sid @44, ...
    signo, code, errno = struct.unpack_from("<iii", desc, 0)
    cursig = struct.unpack_from("<h", desc, 12)[0]
    pid, ppid, pgrp, sid = struct.unpack_from("<iiii", desc, 32)
    return {"si_signo": signo, "si_code": code, "cursig": cursig, "tid": pid,
            "ppid": ppid, "pgrp": pgrp, "sid": sid}


def parse_nt_file(desc):
    count, page_size = struct.unpack_from("<QQ", desc, 0)
    entries = []
    off = 16
    for _ in range(count):
        start, end, pgoff = struct.unpack_from("<QQQ", desc, off)
        entries.append([start, end, pgoff * page_size])
        off += 24
    names = desc[off:].split(b"\0")
    out = []
    for i, e in enumerate(entries):
        name = names[i].decode("utf-8", "replace") if i < len(names) else ""
        out.append({"start": e[0], "end": e[1], "offset": e[2], "path": name})
    return out


def core_info(path):
    """Summary of a core: e_type, threads (NT_PRSTATUS in file order; for a
    kernel core the first one is the thread that took the signal), the
    signal, and the mapped files (NT_FILE)."""
    hdr = read_header(path)
    threads = []
    files = []
    siginfo = None
    for name, ntype, desc in iter_notes(path):
        if name == "CORE" and ntype == NT_PRSTATUS:
            threads.append(parse_prstatus(desc))
        elif name == "CORE" and ntype == NT_FILE:
            files = parse_nt_file(desc)
        elif name == "CORE" and ntype == NT_SIGINFO and siginfo is None:
            signo, errno, code = struct.unpack_from("<iii", desc, 0)
            addr = struct.unpack_from("<Q", desc, 16)[0] if len(desc) >= 24 else None
            siginfo = {"si_signo": signo, "si_code": code, "si_addr": addr}
    return {
        "e_type": hdr["e_type"],
        "is_core": hdr["e_type"] == ET_CORE,
        "threads": threads,
        "tids": [t["tid"] for t in threads],
        "signal": threads[0]["cursig"] if threads else None,
        "siginfo": siginfo,
        "files": files,
    }


def section_names(path):
    """Section names of an ELF64 little-endian file (empty set if none)."""
    with open(path, "rb") as f:
        h = f.read(64)
        if h[:4] != b"\x7fELF" or h[4] != 2:
            raise NotACore("%s: not an ELF64 file" % path)
        shoff = struct.unpack_from("<Q", h, 0x28)[0]
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", h, 0x3A)
        if not shoff or not shnum:
            return set()
        f.seek(shoff)
        table = f.read(shentsize * shnum)
        str_off, str_size = struct.unpack_from("<QQ", table, shstrndx * shentsize + 24)
        f.seek(str_off)
        names = f.read(str_size)
        out = set()
        for i in range(shnum):
            off = struct.unpack_from("<I", table, i * shentsize)[0]
            out.add(names[off:names.find(b"\0", off)].decode("ascii", "replace"))
        return out
