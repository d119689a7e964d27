// mixstack for lldb: the `mixstack` commands.
//
// A thin bridge: lldb's view of the process (memory, threads, registers,
// modules) becomes a libmixstack debugger-fed target; the report is made and
// printed by the library, with the same printer as the CLI and the gdb
// plugin. No CPython or Rust knowledge lives here.
//
// Load with `plugin load /path/to/libmixstack-lldb.so` (or that line in
// ~/.lldbinit). Every command runs inside one try/catch: nothing thrown
// here, and no library error, reaches lldb other than as a one-line
// "mixstack: ..." command error.

#include <lldb/API/LLDB.h>

#include <cerrno>
#include <cinttypes>
#include <climits>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "mixstack/mixstack.h"

namespace
{

// A one-line failure of a command; its text follows "mixstack: ".
struct CommandError {
        std::string message;
};

[[noreturn]] void fail(std::string message)
{
        throw CommandError{std::move(message)};
}

// Throw a library error as a command error (err is freed).
void check(struct ms_error *err)
{
        if (!err)
                return;
        std::string message = err->message ? err->message : "unknown error";
        ms_error_destroy(err);
        fail(message);
}

// The wording of the gdb plugin, where both say the same thing.
const char kNotPython[] = "no Python interpreter found in this process";

// ---------------------------------------------------------------------
// Text helpers
// ---------------------------------------------------------------------

// Like the library's printer: control bytes of target data as \xNN, so a
// core cannot send escape sequences to the terminal.
void append_safe(std::string &out, const char *s, bool keep_tabs = false)
{
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                if ((*p < 0x20 && !(keep_tabs && *p == '\t')) || *p == 0x7f) {
                        char buf[8];
                        snprintf(buf, sizeof(buf), "\\x%02x", *p);
                        out += buf;
                } else {
                        out += (char)*p;
                }
        }
}

std::string file_spec_path(const lldb::SBFileSpec &spec)
{
        if (!spec.IsValid())
                return std::string();
        std::vector<char> buf(PATH_MAX + 1);
        uint32_t n = spec.GetPath(buf.data(), buf.size());
        if (n == 0 || n >= buf.size())
                return std::string();
        return std::string(buf.data());
}

bool parse_u64(const char *s, uint64_t *ret)
{
        if (!s || *s < '0' || *s > '9')
                return false;
        errno = 0;
        char *end;
        unsigned long long v = strtoull(s, &end, 0);
        if (errno || *end)
                return false;
        *ret = v;
        return true;
}

// ---------------------------------------------------------------------
// The bridge: lldb's process as a libmixstack debugger-fed target
// ---------------------------------------------------------------------

struct Reader {
        lldb::SBProcess process;
};

// ms_read_memory_fn: every byte or failure. Never throws.
int read_memory(void *arg, uint64_t address, void *buf, size_t size) noexcept
{
        try {
                if (size == 0)
                        return 0;
                Reader *reader = static_cast<Reader *>(arg);
                lldb::SBError error;
                size_t n =
                        reader->process.ReadMemory(address, buf, size, error);
                return error.Success() && n == size ? 0 : -1;
        } catch (...) {
                return -1;
        }
}

// The x86-64 DWARF registers 0-16, the order ms_target_add_thread wants.
const char *const kRegNames[MS_NUM_REGS] = {
        "rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp", "r8",
        "r9",  "r10", "r11", "r12", "r13", "r14", "r15", "rip",
};

bool register_value(lldb::SBFrame &frame, lldb::SBValue &gpr, const char *name,
                    uint64_t *ret)
{
        lldb::SBValue value;
        if (gpr.IsValid())
                value = gpr.GetChildMemberWithName(name);
        if (!value.IsValid())
                value = frame.FindRegister(name);
        if (!value.IsValid())
                return false;
        lldb::SBError error;
        uint64_t v = value.GetValueAsUnsigned(error, 0);
        if (error.Fail())
                return false;
        *ret = v;
        return true;
}

void add_thread(struct ms_target *target, lldb::SBThread thread)
{
        uint64_t regs[MS_NUM_REGS] = {0};
        uint64_t fs_base = 0;
        lldb::SBFrame frame = thread.GetFrameAtIndex(0);
        if (frame.IsValid()) {
                lldb::SBValueList sets = frame.GetRegisters();
                lldb::SBValue gpr =
                        sets.GetFirstValueByName("General Purpose Registers");
                for (int i = 0; i < MS_NUM_REGS; i++)
                        register_value(frame, gpr, kRegNames[i], &regs[i]);
                register_value(frame, gpr, "fs_base", &fs_base);
        }
        // A thread without registers is still a thread: the library says
        // why it has no frames.
        const char *name = thread.GetName();
        check(ms_target_add_thread(target, (pid_t)thread.GetThreadID(), name,
                                   regs, fs_base));
}

// A module's file-backed PT_LOAD segments as mappings (page-aligned, as the
// kernel maps them), or its load address alone when lldb shows no segment.
void add_module(struct ms_target *target, lldb::SBTarget &lldb_target,
                lldb::SBModule module)
{
        std::string path = file_spec_path(module.GetFileSpec());
        if (path.empty())
                return;
        const uint64_t page = 4096;
        bool added = false;
        size_t n = module.GetNumSections();
        for (size_t i = 0; i < n; i++) {
                lldb::SBSection section = module.GetSectionAtIndex(i);
                const char *name = section.GetName();
                if (!name || strncmp(name, "PT_LOAD[", 8) != 0)
                        continue;
                uint64_t load = section.GetLoadAddress(lldb_target);
                uint64_t offset = section.GetFileOffset();
                uint64_t size = section.GetFileByteSize();
                if (load == LLDB_INVALID_ADDRESS || size == 0 ||
                    load + size < load)
                        continue;
                uint64_t start = load, file_offset = offset;
                if ((load & (page - 1)) == (offset & (page - 1))) {
                        start = load & ~(page - 1);
                        file_offset = offset & ~(page - 1);
                }
                uint64_t end = (load + size + page - 1) & ~(page - 1);
                check(ms_target_add_mapping(target, path.c_str(), start, end,
                                            file_offset));
                added = true;
        }
        if (added)
                return;
        uint64_t header =
                module.GetObjectFileHeaderAddress().GetLoadAddress(lldb_target);
        if (header != LLDB_INVALID_ADDRESS && header != 0)
                check(ms_target_add_mapping(target, path.c_str(), header,
                                            header, 0));
}

// The process's writable memory, where a Rust panic that aborted leaves its
// exception object (and so its message).
void add_regions(struct ms_target *target, lldb::SBProcess &process)
{
        lldb::SBMemoryRegionInfoList regions = process.GetMemoryRegions();
        uint32_t n = regions.GetSize();
        for (uint32_t i = 0; i < n; i++) {
                lldb::SBMemoryRegionInfo info;
                if (!regions.GetMemoryRegionAtIndex(i, info) ||
                    !info.IsMapped() || !info.IsReadable())
                        continue;
                uint64_t start = info.GetRegionBase(),
                         end = info.GetRegionEnd();
                if (end > start)
                        check(ms_target_add_region(target, start, end,
                                                   info.IsWritable()));
        }
}

bool is_core(lldb::SBProcess &process)
{
        const char *plugin = process.GetPluginName();
        return plugin && strstr(plugin, "core") != nullptr;
}

// The signal that stopped the process and the thread it hit: for a core,
// the first thread stopped by a crash signal (the kernel writes the thread
// that dumped first); 0 for snapshots and debugger stops.
void stop_signal(lldb::SBProcess &process, int *signo, pid_t *tid)
{
        bool core = is_core(process);
        *signo = 0;
        *tid = 0;
        uint32_t n = process.GetNumThreads();
        for (uint32_t i = 0; i < n; i++) {
                lldb::SBThread thread = process.GetThreadAtIndex(i);
                if (thread.GetStopReason() != lldb::eStopReasonSignal ||
                    thread.GetStopReasonDataCount() < 1)
                        continue;
                uint64_t sig = thread.GetStopReasonDataAtIndex(0);
                if (sig == 0 || sig >= 65)
                        continue;
                if (!ms_signal_is_crash((int)sig, core))
                        continue;
                *signo = (int)sig;
                *tid = (pid_t)thread.GetThreadID();
                return;
        }
}

struct TargetHolder {
        struct ms_target *target = nullptr;
        ~TargetHolder()
        {
                ms_target_destroy(target);
        }
};

struct ms_report *make_report(lldb::SBTarget lldb_target,
                              lldb::SBProcess process,
                              const struct ms_report_options &options)
{
        Reader reader{process};
        TargetHolder holder;
        check(ms_target_create_debugger(read_memory, &reader, nullptr,
                                        &holder.target));
        uint32_t n_threads = process.GetNumThreads();
        for (uint32_t i = 0; i < n_threads; i++)
                add_thread(holder.target, process.GetThreadAtIndex(i));
        uint32_t n_modules = lldb_target.GetNumModules();
        for (uint32_t i = 0; i < n_modules; i++)
                add_module(holder.target, lldb_target,
                           lldb_target.GetModuleAtIndex(i));
        add_regions(holder.target, process);
        int signo;
        pid_t signal_tid;
        stop_signal(process, &signo, &signal_tid);
        std::string exe = file_spec_path(lldb_target.GetExecutable());
        lldb::pid_t pid = process.GetProcessID();
        check(ms_target_set_process(
                holder.target, pid == LLDB_INVALID_PROCESS_ID ? 0 : (pid_t)pid,
                exe.empty() ? nullptr : exe.c_str(), signo, signal_tid));
        struct ms_report *report = nullptr;
        check(ms_report_create(holder.target, &options, &report));
        return report;
}

// ---------------------------------------------------------------------
// Reports, cached per stop of the process
// ---------------------------------------------------------------------

struct CacheEntry {
        uint32_t process_uid;
        lldb::pid_t pid;
        uint32_t stop_id;
        enum ms_stack_mode mode;
        bool all_frames;
        bool locals;
        struct ms_report *report;
};

std::vector<CacheEntry> g_cache;

void clear_cache()
{
        for (CacheEntry &e : g_cache)
                ms_report_destroy(e.report);
        g_cache.clear();
}

struct Context {
        lldb::SBTarget target;
        lldb::SBProcess process;
        uint32_t process_uid;
        uint32_t stop_id;
};

Context get_context(lldb::SBDebugger &debugger)
{
        Context ctx;
        const char *none = "no process: run a program, attach to one "
                           "(lldb -p) or open a core file first";
        ctx.target = debugger.GetSelectedTarget();
        if (!ctx.target.IsValid())
                fail(none);
        ctx.process = ctx.target.GetProcess();
        if (!ctx.process.IsValid())
                fail(none);
        switch (ctx.process.GetState()) {
        case lldb::eStateStopped:
        case lldb::eStateCrashed:
        case lldb::eStateSuspended:
                break;
        case lldb::eStateRunning:
        case lldb::eStateStepping:
        case lldb::eStateLaunching:
        case lldb::eStateAttaching:
                fail("the process is running: stop it first (process "
                     "interrupt)");
        default:
                fail(none);
        }
        ctx.process_uid = ctx.process.GetUniqueID();
        ctx.stop_id = ctx.process.GetStopID(true);
        return ctx;
}

const struct ms_report *get_report(Context &ctx,
                                   const struct ms_report_options &options)
{
        lldb::pid_t pid = ctx.process.GetProcessID();
        if (!g_cache.empty() &&
            (g_cache[0].process_uid != ctx.process_uid ||
             g_cache[0].pid != pid || g_cache[0].stop_id != ctx.stop_id))
                clear_cache();
        for (CacheEntry &e : g_cache) {
                if (e.mode == options.mode &&
                    e.all_frames == options.all_frames &&
                    e.locals == options.locals)
                        return e.report;
        }
        struct ms_report *report =
                make_report(ctx.target, ctx.process, options);
        try {
                g_cache.push_back(CacheEntry{ctx.process_uid, pid, ctx.stop_id,
                                             options.mode, options.all_frames,
                                             options.locals, report});
        } catch (...) {
                ms_report_destroy(report);
                throw;
        }
        return report;
}

const struct ms_report *default_report(Context &ctx)
{
        struct ms_report_options options = {};
        return get_report(ctx, options);
}

void require_python(const struct ms_report *report)
{
        if (!report->python_version)
                fail(kNotPython);
}

// Print a section of a report with the library's printer.
void print_section(const struct ms_report *report, enum ms_section section,
                   enum ms_format format, const std::vector<pid_t> &tids,
                   lldb::SBCommandReturnObject &result)
{
        struct ms_print_options options = {};
        options.format = format;
        options.section = section;
        options.tids = tids.empty() ? nullptr : tids.data();
        options.n_tids = tids.size();
        char *text = nullptr;
        check(ms_report_format_section(report, &options, &text));
        if (text && *text)
                result.AppendMessage(text);
        free(text);
        result.SetStatus(lldb::eReturnStatusSuccessFinishResult);
}

std::vector<std::string> args_of(char **command)
{
        std::vector<std::string> args;
        for (char **p = command; p && *p; p++)
                args.emplace_back(*p);
        return args;
}

void no_arguments(const char *name, const std::vector<std::string> &args)
{
        if (!args.empty())
                fail(std::string("`mixstack ") + name + "` takes no arguments");
}

// ---------------------------------------------------------------------
// Python frame navigation (up, down, list)
// ---------------------------------------------------------------------

const struct ms_thread_report *find_thread(const struct ms_report *report,
                                           pid_t tid)
{
        for (size_t i = 0; i < report->n_threads; i++) {
                if (report->threads[i].tid == tid)
                        return &report->threads[i];
        }
        return nullptr;
}

// Where `mixstack up/down` left the user: valid while the process has not
// moved and lldb's selected frame is still the one mixstack selected.
struct NavState {
        bool valid = false;
        uint32_t process_uid = 0;
        uint32_t stop_id = 0;
        lldb::tid_t tid = 0;
        uint32_t lldb_frame = 0;
        size_t python_pos = 0; // index into the thread's Python frames
};

NavState g_nav;

// The thread's Python frames (indices into t->frames), innermost first.
std::vector<size_t> python_frames(const struct ms_thread_report *t)
{
        std::vector<size_t> out;
        for (size_t i = 0; i < t->n_frames; i++) {
                if (t->frames[i].kind == MS_FRAME_PYTHON)
                        out.push_back(i);
        }
        return out;
}

// Physical frames: a function and the functions inlined into it share one
// stack frame and one pc. mixstack lists a physical frame as its inlined
// frames (innermost first) then the concrete one. lldb does the same, but
// its inlined chains can differ (lldb 19 drops them in the cold part of a
// function split by the compiler), so frames are matched physical frame by
// physical frame: lldb's are runs of frames with one CFA (less its
// artificial tail-call frames), mixstack's end at each frame that is not
// inlined.
struct Physical {
        uint32_t first; // index of its innermost frame
        uint32_t last;  // index of its concrete (outermost) frame
        uint64_t pc;
};

std::vector<Physical> lldb_physical(lldb::SBThread &thread)
{
        std::vector<Physical> out;
        uint32_t n = thread.GetNumFrames();
        uint64_t cfa = 0;
        for (uint32_t i = 0; i < n; i++) {
                lldb::SBFrame frame = thread.GetFrameAtIndex(i);
                // Tail calls lldb infers from call-site debug info: no
                // stack frame of their own.
                if (frame.IsArtificial())
                        continue;
                uint64_t this_cfa = frame.GetCFA();
                if (!out.empty() && this_cfa == cfa &&
                    this_cfa != LLDB_INVALID_ADDRESS) {
                        out.back().last = i;
                        continue;
                }
                out.push_back(Physical{i, i, frame.GetPC()});
                cfa = this_cfa;
        }
        return out;
}

std::vector<Physical> mixstack_physical(const struct ms_thread_report *nt)
{
        std::vector<Physical> out;
        uint32_t first = 0;
        for (size_t i = 0; i < nt->n_frames; i++) {
                if (nt->frames[i].inlined && i + 1 < nt->n_frames)
                        continue;
                out.push_back(Physical{first, (uint32_t)i, nt->frames[i].pc});
                first = (uint32_t)i + 1;
        }
        return out;
}

// The physical frame of `to` matching physical frame `ordinal` of the other
// stack: the one at the same position when its pc agrees, else the nearest
// one with that pc; -1 when none has it.
long match_physical(const std::vector<Physical> &to, size_t ordinal,
                    uint64_t pc)
{
        if (ordinal < to.size() && to[ordinal].pc == pc)
                return (long)ordinal;
        long best = -1;
        for (size_t i = 0; i < to.size(); i++) {
                if (to[i].pc != pc)
                        continue;
                if (best < 0 ||
                    labs((long)i - (long)ordinal) < labs(best - (long)ordinal))
                        best = (long)i;
        }
        return best;
}

// Index of the physical frame holding frame index i.
size_t physical_of(const std::vector<Physical> &frames, uint32_t i)
{
        for (size_t k = 0; k < frames.size(); k++) {
                if (i >= frames[k].first && i <= frames[k].last)
                        return k;
        }
        return frames.size();
}

const struct ms_thread_report *native_thread(Context &ctx, pid_t tid)
{
        struct ms_report_options options = {};
        options.mode = MS_STACK_NATIVE_ONLY;
        const struct ms_report *native = get_report(ctx, options);
        return find_thread(native, tid);
}

// The lldb frame of mixstack native frame native_index: in the matching
// physical frame, as far from its concrete frame as in mixstack. -1, with
// *why set, when lldb has no such frame (its unwinder stopped earlier).
long lldb_frame_for(Context &ctx, lldb::SBThread &thread,
                    const struct ms_thread_report *t, int native_index,
                    const std::string &what, std::string *why)
{
        const struct ms_thread_report *nt = native_thread(ctx, t->tid);
        std::vector<Physical> ms;
        size_t k = 0;
        if (nt && native_index >= 0 && (size_t)native_index < nt->n_frames) {
                ms = mixstack_physical(nt);
                k = physical_of(ms, (uint32_t)native_index);
        }
        if (k >= ms.size()) {
                *why = "no eval-loop frame is known to run " + what;
                return -1;
        }
        std::vector<Physical> ll = lldb_physical(thread);
        long m = match_physical(ll, k, ms[k].pc);
        if (m < 0) {
                char buf[64];
                snprintf(buf, sizeof(buf), "0x%016" PRIx64, ms[k].pc);
                *why = std::string("lldb has no frame at ") + buf +
                       " (the eval loop running " + what +
                       "): its unwinder stopped at frame #" +
                       std::to_string(ll.empty() ? 0 : ll.back().last);
                return -1;
        }
        uint32_t from_end = ms[k].last - (uint32_t)native_index;
        const Physical &p = ll[m];
        return p.last - p.first >= from_end ? p.last - from_end : p.first;
}

// The mixstack native index of lldb frame lldb_index (the inverse).
int native_index_for(Context &ctx, lldb::SBThread &thread,
                     const struct ms_thread_report *t, uint32_t lldb_index)
{
        const struct ms_thread_report *nt = native_thread(ctx, t->tid);
        if (!nt)
                return (int)lldb_index;
        std::vector<Physical> ll = lldb_physical(thread);
        size_t k = physical_of(ll, lldb_index);
        if (k >= ll.size())
                return (int)lldb_index;
        std::vector<Physical> ms = mixstack_physical(nt);
        long m = match_physical(ms, k, ll[k].pc);
        if (m < 0)
                return (int)lldb_index;
        uint32_t from_end = ll[k].last - lldb_index;
        const Physical &p = ms[m];
        return (int)(p.last - p.first >= from_end ? p.last - from_end
                                                  : p.first);
}

// "#N   [python] name (file:line)", N the lldb frame selected for it (as
// the gdb plugin prints gdb's level), "#?" when lldb has none.
std::string python_frame_line(const struct ms_frame *f, long lldb_frame)
{
        char head[32];
        if (lldb_frame >= 0)
                snprintf(head, sizeof(head), "#%-3ld [python] ", lldb_frame);
        else
                snprintf(head, sizeof(head), "#?   [python] ");
        std::string line = head;
        append_safe(line, f->qualname   ? f->qualname
                          : f->function ? f->function
                                        : "??");
        if (f->file) {
                line += " (";
                append_safe(line, f->file);
                if (f->line > 0)
                        line += ":" + std::to_string(f->line);
                line += ")";
        }
        return line;
}

struct NavTarget {
        lldb::SBThread thread;
        const struct ms_thread_report *t;
        std::vector<size_t> py;
        uint32_t selected_lldb; // lldb's selected frame index
        int selected;           // the same as a mixstack native index
        bool have_state;
        size_t state_pos;
};

NavTarget nav_target(Context &ctx)
{
        const struct ms_report *report = default_report(ctx);
        require_python(report);
        NavTarget nav;
        nav.thread = ctx.process.GetSelectedThread();
        if (!nav.thread.IsValid())
                fail("no thread selected");
        nav.t = find_thread(report, (pid_t)nav.thread.GetThreadID());
        if (!nav.t)
                fail("thread " + std::to_string(nav.thread.GetThreadID()) +
                     " is not in the report");
        nav.py = python_frames(nav.t);
        if (nav.py.empty())
                fail("no Python frames in this thread");
        nav.selected_lldb = nav.thread.GetSelectedFrame().GetFrameID();
        nav.have_state = g_nav.valid && g_nav.process_uid == ctx.process_uid &&
                         g_nav.stop_id == ctx.stop_id &&
                         g_nav.tid == nav.thread.GetThreadID() &&
                         g_nav.lldb_frame == nav.selected_lldb &&
                         g_nav.python_pos < nav.py.size();
        nav.selected = nav.have_state ? 0
                                      : native_index_for(ctx, nav.thread, nav.t,
                                                         nav.selected_lldb);
        nav.state_pos = nav.have_state ? g_nav.python_pos : 0;
        return nav;
}

int native_index_of(const NavTarget &nav, size_t pos)
{
        return nav.t->frames[nav.py[pos]].native_index;
}

// Make Python frame pos the current one: select the lldb frame of its eval
// loop and print it. When lldb cannot show that frame, the Python frame is
// still the current one (for list, up, down) and lldb's selection stays.
void select_python_frame(Context &ctx, NavTarget &nav, size_t pos,
                         lldb::SBCommandReturnObject &result)
{
        const struct ms_frame *f = &nav.t->frames[nav.py[pos]];
        std::string what;
        append_safe(what, f->qualname   ? f->qualname
                          : f->function ? f->function
                                        : "a Python frame");
        std::string why;
        long index = lldb_frame_for(ctx, nav.thread, nav.t, f->native_index,
                                    what, &why);
        if (index >= 0)
                nav.thread.SetSelectedFrame((uint32_t)index);
        g_nav.valid = true;
        g_nav.process_uid = ctx.process_uid;
        g_nav.stop_id = ctx.stop_id;
        g_nav.tid = nav.thread.GetThreadID();
        g_nav.lldb_frame = index >= 0 ? (uint32_t)index : nav.selected_lldb;
        g_nav.python_pos = pos;
        result.AppendMessage(python_frame_line(f, index).c_str());
        if (index < 0) {
                std::string line = "mixstack: " + why;
                result.AppendWarning(line.c_str());
        }
        result.SetStatus(lldb::eReturnStatusSuccessFinishResult);
}

void cmd_up(lldb::SBDebugger &debugger, const std::vector<std::string> &args,
            lldb::SBCommandReturnObject &result)
{
        no_arguments("up", args);
        Context ctx = get_context(debugger);
        NavTarget nav = nav_target(ctx);
        size_t pos;
        if (nav.have_state) {
                pos = nav.state_pos + 1;
        } else {
                // The innermost Python frame run at or above the selected
                // frame; when it runs in the selected frame itself, it is
                // the current one and up goes past it.
                pos = 0;
                while (pos < nav.py.size() &&
                       native_index_of(nav, pos) < nav.selected)
                        pos++;
                if (pos < nav.py.size() &&
                    native_index_of(nav, pos) == nav.selected)
                        pos++;
        }
        if (pos >= nav.py.size())
                fail("no older Python frame (the outermost is selected)");
        select_python_frame(ctx, nav, pos, result);
}

void cmd_down(lldb::SBDebugger &debugger, const std::vector<std::string> &args,
              lldb::SBCommandReturnObject &result)
{
        no_arguments("down", args);
        Context ctx = get_context(debugger);
        NavTarget nav = nav_target(ctx);
        long pos;
        if (nav.have_state) {
                pos = (long)nav.state_pos - 1;
        } else {
                // The oldest Python frame run by a newer native frame.
                pos = -1;
                for (size_t i = 0; i < nav.py.size(); i++) {
                        if (native_index_of(nav, i) >= 0 &&
                            native_index_of(nav, i) < nav.selected)
                                pos = (long)i;
                }
        }
        if (pos < 0)
                fail("no newer Python frame (the innermost is selected)");
        select_python_frame(ctx, nav, (size_t)pos, result);
}

// Lines around the current Python frame's line, or START.. / START,END,
// the current line marked (as the gdb plugin prints them).
void cmd_list(lldb::SBDebugger &debugger, const std::vector<std::string> &args,
              lldb::SBCommandReturnObject &result)
{
        const char *usage = "usage: mixstack list [START | START,END]";
        std::string words;
        for (const std::string &a : args)
                words += a;
        Context ctx = get_context(debugger);
        NavTarget nav = nav_target(ctx);
        size_t pos = nav.state_pos;
        if (!nav.have_state) {
                // The innermost Python frame at or above the selected frame.
                pos = 0;
                while (pos < nav.py.size() &&
                       native_index_of(nav, pos) < nav.selected)
                        pos++;
                if (pos >= nav.py.size())
                        pos = 0;
        }
        const struct ms_frame *f = &nav.t->frames[nav.py[pos]];
        if (!f->file)
                fail("the current Python frame has no file name");
        if (f->line <= 0)
                fail("the current Python frame's line is unknown");
        long start = f->line - 5, end = f->line + 5;
        if (!words.empty()) {
                size_t comma = words.find(',');
                char *rest;
                errno = 0;
                start = strtol(words.c_str(), &rest, 10);
                if (comma == std::string::npos) {
                        if (errno || rest == words.c_str() || *rest)
                                fail(usage);
                        end = start + 10;
                } else {
                        if (errno || rest != words.c_str() + comma)
                                fail(usage);
                        const char *second = words.c_str() + comma + 1;
                        end = strtol(second, &rest, 10);
                        if (errno || rest == second || *rest)
                                fail(usage);
                }
        }
        std::string path;
        append_safe(path, f->file);
        std::ifstream in(f->file, std::ios::binary);
        if (!in)
                fail("cannot read " + path + ": " +
                     strerror(errno ? errno : ENOENT));
        std::vector<std::string> lines;
        std::string text;
        // Up to the last line shown, and the count for the message below.
        while (std::getline(in, text)) {
                if (!text.empty() && text.back() == '\r')
                        text.pop_back();
                lines.push_back(text);
                if (lines.size() > 10000000)
                        break;
        }
        if (start < 1)
                start = 1;
        if (end > (long)lines.size())
                end = (long)lines.size();
        if (start > end)
                fail("line " + std::to_string(start) + " is past the end of " +
                     path + " (" + std::to_string(lines.size()) + " lines)");
        std::string out;
        for (long n = start; n <= end; n++) {
                char head[32];
                snprintf(head, sizeof(head), "%c%4ld    ",
                         n == f->line ? '>' : ' ', n);
                out += head;
                append_safe(out, lines[n - 1].c_str(), true);
                out += "\n";
        }
        result.AppendMessage(out.c_str());
        result.SetStatus(lldb::eReturnStatusSuccessFinishResult);
}

// ---------------------------------------------------------------------
// Report commands
// ---------------------------------------------------------------------

void cmd_bt(lldb::SBDebugger &debugger, const std::vector<std::string> &args,
            lldb::SBCommandReturnObject &result)
{
        struct ms_report_options options = {};
        bool all = false, native_only = false, python_only = false;
        std::vector<uint64_t> ids;
        for (const std::string &a : args) {
                uint64_t id;
                if (a == "all")
                        all = true;
                else if (a == "--locals")
                        options.locals = true;
                else if (a == "--all-frames")
                        options.all_frames = true;
                else if (a == "--native-only")
                        native_only = true;
                else if (a == "--python-only")
                        python_only = true;
                else if (parse_u64(a.c_str(), &id))
                        ids.push_back(id);
                else if (!a.empty() && a[0] == '-')
                        fail("unknown option " + a +
                             " (see `help mixstack bt`)");
                else
                        fail("bad thread '" + a +
                             "': give a thread id, an "
                             "lldb thread index or `all`");
        }
        if (native_only && python_only)
                fail("--native-only and --python-only exclude each other");
        if (all && !ids.empty())
                fail("give `all` or thread ids, not both");
        options.mode = native_only   ? MS_STACK_NATIVE_ONLY
                       : python_only ? MS_STACK_PYTHON_ONLY
                                     : MS_STACK_MIXED;

        Context ctx = get_context(debugger);
        const struct ms_report *report = get_report(ctx, options);
        if (python_only)
                require_python(report);
        std::vector<pid_t> tids;
        if (!all && ids.empty()) {
                lldb::SBThread thread = ctx.process.GetSelectedThread();
                if (!thread.IsValid())
                        fail("no thread selected");
                tids.push_back((pid_t)thread.GetThreadID());
        }
        for (uint64_t id : ids) {
                // A thread id (LWP), or else lldb's thread index.
                if (id <= INT32_MAX && find_thread(report, (pid_t)id)) {
                        tids.push_back((pid_t)id);
                        continue;
                }
                lldb::SBThread thread =
                        id <= UINT32_MAX
                                ? ctx.process.GetThreadByIndexID((uint32_t)id)
                                : lldb::SBThread();
                if (thread.IsValid() &&
                    find_thread(report, (pid_t)thread.GetThreadID())) {
                        tids.push_back((pid_t)thread.GetThreadID());
                        continue;
                }
                fail("no thread " + std::to_string(id) + " in this process");
        }
        print_section(report, MS_SECTION_STACKS, MS_FORMAT_TEXT, tids, result);
}

struct SectionCommand {
        const char *name;
        enum ms_section section;
        bool python_specific;
};

void cmd_section(const SectionCommand &sc, lldb::SBDebugger &debugger,
                 const std::vector<std::string> &args,
                 lldb::SBCommandReturnObject &result)
{
        enum ms_format format = MS_FORMAT_TEXT;
        for (const std::string &a : args) {
                if (sc.section == MS_SECTION_REPORT && a == "--json")
                        format = MS_FORMAT_JSON;
                else if (sc.section == MS_SECTION_REPORT)
                        fail("unknown option " + a +
                             " (usage: mixstack report [--json])");
                else
                        fail(std::string("`mixstack ") + sc.name +
                             "` takes no arguments");
        }
        Context ctx = get_context(debugger);
        const struct ms_report *report = default_report(ctx);
        if (sc.python_specific)
                require_python(report);
        print_section(report, sc.section, format, {}, result);
}

// ---------------------------------------------------------------------
// lldb commands
// ---------------------------------------------------------------------

using Handler = void (*)(lldb::SBDebugger &, const std::vector<std::string> &,
                         lldb::SBCommandReturnObject &);

// Run a command body: every failure, C++ exception included, becomes one
// "mixstack: ..." error line; nothing propagates into lldb.
// Commands share the report cache and the navigation state: one at a time,
// whichever thread lldb runs them on.
std::mutex g_lock;

template <typename Body>
bool guarded(lldb::SBCommandReturnObject &result, Body body)
{
        std::string error;
        try {
                std::lock_guard<std::mutex> hold(g_lock);
                body();
                return true;
        } catch (const CommandError &e) {
                error = e.message;
        } catch (const std::bad_alloc &) {
                error = "out of memory";
        } catch (const std::exception &e) {
                error = std::string("internal error: ") + e.what();
        } catch (...) {
                error = "internal error";
        }
        try {
                // One line, whatever the message held.
                for (char &c : error) {
                        if (c == '\n' || c == '\r')
                                c = ' ';
                }
                std::string line = "mixstack: " + error;
                result.SetError(line.c_str());
        } catch (...) {
                result.SetError("mixstack: out of memory");
        }
        return false;
}

class HandlerCommand : public lldb::SBCommandPluginInterface
{
      public:
        explicit HandlerCommand(Handler handler) : handler_(handler)
        {
        }

        bool DoExecute(lldb::SBDebugger debugger, char **command,
                       lldb::SBCommandReturnObject &result) override
        {
                return guarded(result, [&] {
                        handler_(debugger, args_of(command), result);
                });
        }

      private:
        Handler handler_;
};

class SectionPluginCommand : public lldb::SBCommandPluginInterface
{
      public:
        explicit SectionPluginCommand(SectionCommand sc) : sc_(sc)
        {
        }

        bool DoExecute(lldb::SBDebugger debugger, char **command,
                       lldb::SBCommandReturnObject &result) override
        {
                return guarded(result, [&] {
                        cmd_section(sc_, debugger, args_of(command), result);
                });
        }

      private:
        SectionCommand sc_;
};

const char kHelp[] = "Mixed CPython / Rust / C stacks of the process "
                     "(libmixstack " MIXSTACK_VERSION ").";

const char kHelpLong[] =
        "The same reports as the mixstack CLI and the gdb plugin, made from\n"
        "lldb's view of the process (a core, an attached or launched process\n"
        "stopped in lldb). Reports are cached until the process moves.\n"
        "\n"
        "  mixstack bt [all | THREAD...] [--locals] [--all-frames]\n"
        "              [--native-only | --python-only]\n"
        "  mixstack threads          one line per thread\n"
        "  mixstack gil              who holds the GIL, who waits for it\n"
        "  mixstack err              pending and handled Python exceptions\n"
        "  mixstack panic            Rust panic state\n"
        "  mixstack phase            the interpreter's lifecycle phase\n"
        "  mixstack tasks            asyncio tasks: what each awaits, who\n"
        "                            awaits it, where each is suspended\n"
        "  mixstack report [--json]  the whole report\n"
        "  mixstack up | down        select the frame of the next older /\n"
        "                            newer Python frame's eval loop\n"
        "  mixstack list [N | A,B]   Python source around the current Python\n"
        "                            frame's line\n"
        "\n"
        "THREAD is a thread id (LWP) or an lldb thread index.\n";

void add(lldb::SBCommand &parent, const char *name,
         lldb::SBCommandPluginInterface *impl, const char *help,
         const char *syntax)
{
        lldb::SBCommand cmd = parent.AddCommand(name, impl, help, syntax);
        (void)cmd;
}

bool initialize(lldb::SBDebugger &debugger)
{
        lldb::SBCommandInterpreter interpreter =
                debugger.GetCommandInterpreter();
        lldb::SBCommand mixstack =
                interpreter.AddMultiwordCommand("mixstack", kHelp);
        if (!mixstack.IsValid())
                return false;
        mixstack.SetHelpLong(kHelpLong);

        add(mixstack, "bt", new HandlerCommand(cmd_bt),
            "Print the mixed stack of the selected thread, of every thread "
            "(all) or of the given threads (THREAD: a thread id (LWP) or an "
            "lldb thread index). --locals: arguments and locals of Python "
            "frames; --all-frames: keep the CPython internals between "
            "Python frames; --native-only / --python-only: one kind of "
            "frame.",
            "mixstack bt [all | THREAD...] [--locals] [--all-frames] "
            "[--native-only | --python-only]");
        add(mixstack, "threads",
            new SectionPluginCommand({"threads", MS_SECTION_THREADS, false}),
            "One line per thread: tid, name, Python or not, where it is.",
            "mixstack threads");
        add(mixstack, "gil",
            new SectionPluginCommand({"gil", MS_SECTION_GIL, true}),
            "Who holds the GIL, who waits for it, and what that means.",
            "mixstack gil");
        add(mixstack, "err",
            new SectionPluginCommand({"err", MS_SECTION_ERRORS, true}),
            "Pending and handled Python exceptions, per thread.",
            "mixstack err");
        add(mixstack, "panic",
            new SectionPluginCommand({"panic", MS_SECTION_PANIC, false}),
            "Rust panic state (panicking threads, PanicException).",
            "mixstack panic");
        add(mixstack, "phase",
            new SectionPluginCommand({"phase", MS_SECTION_PHASE, true}),
            "The interpreter's lifecycle phase (starting, running, "
            "finalizing).",
            "mixstack phase");
        add(mixstack, "tasks",
            new SectionPluginCommand({"tasks", MS_SECTION_TASKS, true}),
            "asyncio tasks per event loop: suspended frames, what each "
            "awaits (a task, a future, a Rust future), who awaits it, and "
            "the diagnoses.",
            "mixstack tasks");
        add(mixstack, "report",
            new SectionPluginCommand({"report", MS_SECTION_REPORT, false}),
            "The whole report, as the mixstack CLI prints it (--json: "
            "schema mixstack/1).",
            "mixstack report [--json]");
        add(mixstack, "up", new HandlerCommand(cmd_up),
            "Select the lldb frame of the eval loop running the next older "
            "Python frame, and print that Python frame.",
            "mixstack up");
        add(mixstack, "down", new HandlerCommand(cmd_down),
            "Select the lldb frame of the eval loop running the next newer "
            "Python frame, and print that Python frame.",
            "mixstack down");
        add(mixstack, "list", new HandlerCommand(cmd_list),
            "Show the Python source around the current Python frame's line "
            "(the one `mixstack up/down` selected, else the innermost at or "
            "above the selected frame), or lines START to START+10, or "
            "START to END.",
            "mixstack list [START | START,END]");
        return true;
}

} // namespace

namespace lldb
{
// lldb's `plugin load` calls this.
__attribute__((visibility("default"))) bool PluginInitialize(
        lldb::SBDebugger debugger);
} // namespace lldb

bool lldb::PluginInitialize(lldb::SBDebugger debugger)
{
        try {
                return initialize(debugger);
        } catch (...) {
                return false;
        }
}
