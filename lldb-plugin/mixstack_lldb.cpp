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

bool is_core(lldb::SBProcess &process)
{
        const char *plugin = process.GetPluginName();
        return plugin && strstr(plugin, "core") != nullptr;
}

void add_thread(struct ms_target *target, lldb::SBThread thread, bool core)
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
        // A core names its process, not its threads: lldb gives that name
        // to the core's first thread (the one that crashed); the library
        // gives it to the main thread, as for the CLI and gdb.
        const char *name = core ? nullptr : thread.GetName();
        check(ms_target_add_thread(target, (pid_t)thread.GetThreadID(), name,
                                   regs, fs_base));
}

// A module by where lldb loaded it: the library adds the mappings of its
// file's segments. A module without a file here (the vdso) is added by its
// load address alone.
void add_module(struct ms_target *target, lldb::SBTarget &lldb_target,
                lldb::SBModule module)
{
        std::string path = file_spec_path(module.GetFileSpec());
        if (path.empty())
                return;
        uint64_t header =
                module.GetObjectFileHeaderAddress().GetLoadAddress(lldb_target);
        if (header == LLDB_INVALID_ADDRESS || header == 0)
                return;
        struct ms_error *err =
                ms_target_add_module(target, path.c_str(), nullptr, header);
        if (!err)
                return;
        ms_error_destroy(err);
        check(ms_target_add_mapping(target, path.c_str(), header, header, 0));
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

// What the commands ask of a report (reports and frame maps are cached by
// it); the library's own options are made from it (ms_options_set()).
struct ReportOptions {
        enum ms_stack_mode mode = MS_STACK_MIXED;
        bool all_frames = false;
        bool locals = false;
};

struct OptionsHolder {
        struct ms_options *options = nullptr;
        OptionsHolder()
        {
                check(ms_options_create(&options));
        }
        ~OptionsHolder()
        {
                ms_options_destroy(options);
        }
        void set(const char *name, const char *value)
        {
                check(ms_options_set(options, name, value));
        }
};

struct ms_report *make_report(lldb::SBTarget lldb_target,
                              lldb::SBProcess process,
                              const ReportOptions &options)
{
        OptionsHolder opts;
        opts.set("mode", ms_stack_mode_name(options.mode));
        opts.set("all-frames", options.all_frames ? "1" : "0");
        opts.set("locals", options.locals ? "1" : "0");
        Reader reader{process};
        TargetHolder holder;
        check(ms_target_create_debugger(read_memory, &reader, nullptr,
                                        &holder.target));
        uint32_t n_threads = process.GetNumThreads();
        bool core = is_core(process);
        for (uint32_t i = 0; i < n_threads; i++)
                add_thread(holder.target, process.GetThreadAtIndex(i), core);
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
        check(ms_report_create(holder.target, ms_options_report(opts.options),
                               &report));
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

void clear_maps();

void clear_cache()
{
        // Maps point into the reports.
        clear_maps();
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

const struct ms_report *get_report(Context &ctx, const ReportOptions &options)
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
        ReportOptions options;
        return get_report(ctx, options);
}

void require_python(const struct ms_report *report)
{
        if (!ms_report_python_version(report))
                fail(kNotPython);
}

// Print a section of a report with the library's printer.
void print_section(const struct ms_report *report, enum ms_section section,
                   enum ms_format format, const std::vector<pid_t> &tids,
                   lldb::SBCommandReturnObject &result)
{
        OptionsHolder opts;
        opts.set("format", format == MS_FORMAT_JSON ? "json" : "text");
        opts.set("section", ms_section_name(section));
        for (pid_t tid : tids)
                opts.set("thread", std::to_string(tid).c_str());
        char *text = nullptr;
        check(ms_report_format_section(report, ms_options_print(opts.options),
                                       &text));
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
// Frame maps: the library matches a thread's frames to lldb's, numbers
// them as lldb does and navigates Python frames (core/navigate/)
// ---------------------------------------------------------------------

// One map per thread and report options, for the current stop: it holds
// the Python frame chosen by up/down/frame.
struct MapEntry {
        lldb::tid_t tid;
        enum ms_stack_mode mode;
        bool all_frames;
        bool locals;
        struct ms_frame_map *map;
};

std::vector<MapEntry> g_maps;

void clear_maps()
{
        for (MapEntry &e : g_maps)
                ms_frame_map_destroy(e.map);
        g_maps.clear();
}

lldb::SBThread thread_by_tid(lldb::SBProcess &process, lldb::tid_t tid)
{
        uint32_t n = process.GetNumThreads();
        for (uint32_t i = 0; i < n; i++) {
                lldb::SBThread t = process.GetThreadAtIndex(i);
                if (t.GetThreadID() == tid)
                        return t;
        }
        return lldb::SBThread();
}

struct ms_frame_map *make_map(const struct ms_report *report,
                              lldb::SBThread &thread)
{
        struct ms_frame_map *map = nullptr;
        check(ms_frame_map_create(report, (pid_t)thread.GetThreadID(), &map));
        uint32_t n = thread.GetNumFrames();
        for (uint32_t i = 0; i < n; i++) {
                lldb::SBFrame frame = thread.GetFrameAtIndex(i);
                unsigned flags = 0;
                if (frame.IsInlined())
                        flags |= MS_DEBUGGER_FRAME_INLINED;
                if (frame.IsArtificial())
                        flags |= MS_DEBUGGER_FRAME_ARTIFICIAL;
                struct ms_error *err = ms_frame_map_add_debugger_frame(
                        map, frame.GetPC(), flags, frame.GetFunctionName());
                if (err) {
                        ms_frame_map_destroy(map);
                        check(err);
                }
        }
        return map;
}

// The frame map of thread tid for a report made with options, synced with
// lldb's selected frame. Maps of reports other than the default one
// follow the default map's current Python frame.
struct ms_frame_map *get_map(Context &ctx, lldb::tid_t tid,
                             const ReportOptions &options)
{
        const struct ms_report *report = get_report(ctx, options);
        lldb::SBThread thread = thread_by_tid(ctx.process, tid);
        if (!thread.IsValid())
                fail("no thread " + std::to_string(tid) + " in this process");
        struct ms_frame_map *map = nullptr;
        for (MapEntry &e : g_maps) {
                if (e.tid == tid && e.mode == options.mode &&
                    e.all_frames == options.all_frames &&
                    e.locals == options.locals)
                        map = e.map;
        }
        if (!map) {
                map = make_map(report, thread);
                try {
                        g_maps.push_back(MapEntry{tid, options.mode,
                                                  options.all_frames,
                                                  options.locals, map});
                } catch (...) {
                        ms_frame_map_destroy(map);
                        throw;
                }
        }
        ms_frame_map_sync(map, thread.GetSelectedFrame().GetFrameID());
        bool plain = options.mode == MS_STACK_MIXED && !options.all_frames &&
                     !options.locals;
        if (!plain && options.mode != MS_STACK_NATIVE_ONLY) {
                ReportOptions defaults;
                ms_frame_map_follow(map, get_map(ctx, tid, defaults));
        }
        return map;
}

lldb::tid_t selected_tid(Context &ctx)
{
        lldb::SBThread thread = ctx.process.GetSelectedThread();
        if (!thread.IsValid())
                fail("no thread selected");
        return thread.GetThreadID();
}

// A Python navigation map of the selected thread.
struct ms_frame_map *nav_map(Context &ctx, bool locals = false)
{
        ReportOptions options;
        options.locals = locals;
        require_python(default_report(ctx));
        return get_map(ctx, selected_tid(ctx), options);
}

void append_text(lldb::SBCommandReturnObject &result, char *text)
{
        if (text && *text)
                result.AppendMessage(text);
        free(text);
        result.SetStatus(lldb::eReturnStatusSuccessFinishResult);
}

long parse_count(const char *name, const std::vector<std::string> &args)
{
        if (args.empty())
                return 1;
        uint64_t n;
        if (args.size() != 1 || !parse_u64(args[0].c_str(), &n) || n == 0 ||
            n > 1000000)
                fail(std::string("usage: mixstack ") + name + " [COUNT]");
        return (long)n;
}

// Select lldb's frame of the current Python frame (the eval loop running
// it) and print the Python frame.
void show_current(Context &ctx, struct ms_frame_map *map,
                  lldb::SBCommandReturnObject &result)
{
        long frame = ms_frame_map_current_debugger_frame(map);
        if (frame >= 0) {
                lldb::SBThread thread = ctx.process.GetSelectedThread();
                thread.SetSelectedFrame((uint32_t)frame);
                ms_frame_map_sync(map, (size_t)frame);
        }
        char *text = nullptr;
        check(ms_frame_map_format_current(map, &text));
        append_text(result, text);
        if (frame < 0)
                result.AppendWarning("mixstack: lldb has no frame running "
                                     "this Python frame (its unwinder "
                                     "stopped earlier)");
}

void move(lldb::SBDebugger &debugger, const char *name, long count,
          lldb::SBCommandReturnObject &result)
{
        Context ctx = get_context(debugger);
        struct ms_frame_map *map = nav_map(ctx);
        size_t k;
        check(ms_frame_map_move(map, count, &k));
        show_current(ctx, map, result);
}

void cmd_up(lldb::SBDebugger &debugger, const std::vector<std::string> &args,
            lldb::SBCommandReturnObject &result)
{
        move(debugger, "py-up", parse_count("py-up", args), result);
}

void cmd_down(lldb::SBDebugger &debugger, const std::vector<std::string> &args,
              lldb::SBCommandReturnObject &result)
{
        move(debugger, "py-down", -parse_count("py-down", args), result);
}

void cmd_frame(lldb::SBDebugger &debugger, const std::vector<std::string> &args,
               lldb::SBCommandReturnObject &result)
{
        const char *usage = "usage: mixstack frame [N]";
        if (args.size() > 1)
                fail(usage);
        Context ctx = get_context(debugger);
        lldb::SBThread thread = ctx.process.GetSelectedThread();
        if (!thread.IsValid())
                fail("no thread selected");
        if (!args.empty()) {
                uint64_t n;
                if (!parse_u64(args[0].c_str(), &n))
                        fail(usage);
                if (n >= thread.GetNumFrames())
                        fail("no frame " + std::to_string(n) +
                             " (the outermost is #" +
                             std::to_string(thread.GetNumFrames() - 1) + ")");
                thread.SetSelectedFrame((uint32_t)n);
        }
        ReportOptions options;
        struct ms_frame_map *map = get_map(ctx, thread.GetThreadID(), options);
        long frame = ms_frame_map_current_debugger_frame(map);
        if (frame >= 0 &&
            (uint32_t)frame == thread.GetSelectedFrame().GetFrameID()) {
                char *text = nullptr;
                check(ms_frame_map_format_current(map, &text));
                append_text(result, text);
                return;
        }
        lldb::SBStream stream;
        thread.GetSelectedFrame().GetDescription(stream);
        result.AppendMessage(stream.GetData() ? stream.GetData() : "");
        result.SetStatus(lldb::eReturnStatusSuccessFinishResult);
}

void cmd_py_bt(lldb::SBDebugger &debugger, const std::vector<std::string> &args,
               bool full, lldb::SBCommandReturnObject &result)
{
        no_arguments(full ? "py-bt-full" : "py-bt", args);
        Context ctx = get_context(debugger);
        char *text = nullptr;
        check(ms_frame_map_format_stack(
                nav_map(ctx, full),
                MS_FRAME_MAP_PYTHON_ONLY | MS_FRAME_MAP_SOURCE, &text));
        append_text(result, text);
}

void cmd_py_bt_plain(lldb::SBDebugger &debugger,
                     const std::vector<std::string> &args,
                     lldb::SBCommandReturnObject &result)
{
        cmd_py_bt(debugger, args, false, result);
}

void cmd_py_bt_full(lldb::SBDebugger &debugger,
                    const std::vector<std::string> &args,
                    lldb::SBCommandReturnObject &result)
{
        cmd_py_bt(debugger, args, true, result);
}

void cmd_locals(lldb::SBDebugger &debugger,
                const std::vector<std::string> &args,
                lldb::SBCommandReturnObject &result)
{
        no_arguments("py-locals", args);
        Context ctx = get_context(debugger);
        char *text = nullptr;
        check(ms_frame_map_format_locals(nav_map(ctx, true), &text));
        append_text(result, text);
}

void cmd_print(lldb::SBDebugger &debugger, const std::vector<std::string> &args,
               lldb::SBCommandReturnObject &result)
{
        if (args.size() != 1)
                fail("usage: mixstack py-print NAME");
        Context ctx = get_context(debugger);
        char *text = nullptr;
        check(ms_frame_map_lookup(nav_map(ctx, true), args[0].c_str(), &text));
        append_text(result, text);
}

// Source around the current Python frame's line, or START.. / START,END;
// run again without arguments, the next lines.
void cmd_list(lldb::SBDebugger &debugger, const std::vector<std::string> &args,
              lldb::SBCommandReturnObject &result)
{
        const char *usage = "usage: mixstack py-list [START | START,END]";
        std::string words;
        for (const std::string &a : args)
                words += a;
        long first = 0, last = 0;
        if (!words.empty()) {
                size_t comma = words.find(',');
                char *rest;
                errno = 0;
                first = strtol(words.c_str(), &rest, 10);
                if (comma == std::string::npos) {
                        if (errno || rest == words.c_str() || *rest)
                                fail(usage);
                } else {
                        if (errno || rest != words.c_str() + comma)
                                fail(usage);
                        const char *second = words.c_str() + comma + 1;
                        last = strtol(second, &rest, 10);
                        if (errno || rest == second || *rest)
                                fail(usage);
                }
                if (first <= 0)
                        fail(usage);
        }
        Context ctx = get_context(debugger);
        char *text = nullptr;
        check(ms_frame_map_format_list(nav_map(ctx), first, last, &text));
        append_text(result, text);
}

// ---------------------------------------------------------------------
// Report commands
// ---------------------------------------------------------------------

void cmd_bt(lldb::SBDebugger &debugger, const std::vector<std::string> &args,
            lldb::SBCommandReturnObject &result)
{
        ReportOptions options;
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

        unsigned flags = 0;
        if (python_only) {
                // The mixed stack's Python frames, numbered as lldb's.
                options.mode = MS_STACK_MIXED;
                flags = MS_FRAME_MAP_PYTHON_ONLY;
        }
        Context ctx = get_context(debugger);
        const struct ms_report *report = get_report(ctx, options);
        if (python_only)
                require_python(report);
        std::vector<pid_t> tids;
        if (all) {
                for (size_t i = 0; i < ms_report_thread_count(report); i++)
                        tids.push_back(
                                ms_thread_tid(ms_report_thread(report, i)));
        } else if (ids.empty()) {
                lldb::SBThread thread = ctx.process.GetSelectedThread();
                if (!thread.IsValid())
                        fail("no thread selected");
                tids.push_back((pid_t)thread.GetThreadID());
        }
        for (uint64_t id : ids) {
                // A thread id (LWP), or else lldb's thread index.
                if (id <= INT32_MAX &&
                    ms_report_find_thread(report, (pid_t)id)) {
                        tids.push_back((pid_t)id);
                        continue;
                }
                lldb::SBThread thread =
                        id <= UINT32_MAX
                                ? ctx.process.GetThreadByIndexID((uint32_t)id)
                                : lldb::SBThread();
                if (thread.IsValid() &&
                    ms_report_find_thread(report,
                                          (pid_t)thread.GetThreadID())) {
                        tids.push_back((pid_t)thread.GetThreadID());
                        continue;
                }
                fail("no thread " + std::to_string(id) + " in this process");
        }
        // Numbered as lldb numbers the frames: `frame select N` selects #N.
        std::string out;
        for (pid_t tid : tids) {
                char *text = nullptr;
                check(ms_frame_map_format_stack(get_map(ctx, tid, options),
                                                flags, &text));
                out += text ? text : "";
                free(text);
        }
        if (!out.empty())
                result.AppendMessage(out.c_str());
        result.SetStatus(lldb::eReturnStatusSuccessFinishResult);
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
        "                            the mixed stack, numbered as lldb's\n"
        "  mixstack frame [N]        select frame #N of `mixstack bt`\n"
        "  mixstack py-bt            Python frames with their source lines\n"
        "  mixstack py-bt-full       the same with arguments and locals\n"
        "  mixstack py-list [N|A,B]  source of the current Python frame\n"
        "                            (again: the next lines)\n"
        "  mixstack py-up [N]        the Nth older Python frame (also: up)\n"
        "  mixstack py-down [N]      the Nth newer Python frame (also: down)\n"
        "  mixstack py-locals        locals of the current Python frame\n"
        "  mixstack py-print NAME    NAME in the current Python frame\n"
        "  mixstack threads          one line per thread\n"
        "  mixstack gil              who holds the GIL, who waits for it\n"
        "  mixstack err              pending and handled Python exceptions\n"
        "  mixstack panic            Rust panic state\n"
        "  mixstack phase            the interpreter's lifecycle phase\n"
        "  mixstack tasks            asyncio tasks: what each awaits, who\n"
        "                            awaits it, where each is suspended\n"
        "  mixstack report [--json]  the whole report\n"
        "\n"
        "THREAD is a thread id (LWP) or an lldb thread index. The current\n"
        "Python frame (marked '*' by `mixstack bt`) is the one py-up,\n"
        "py-down or frame selected, else the innermost one at or above\n"
        "lldb's selected frame.\n";

void add(lldb::SBCommand &parent, const char *name,
         lldb::SBCommandPluginInterface *impl, const char *help,
         const char *syntax)
{
        lldb::SBCommand cmd = parent.AddCommand(name, impl, help, syntax);
        (void)cmd;
}

bool initialize(lldb::SBDebugger &debugger)
{
        // The library loaded must have the interface this plugin was built
        // against (an older libmixstack found first on the library path).
        if (ms_abi_version() != MS_ABI_VERSION) {
                fprintf(stderr,
                        "mixstack: libmixstack %s has interface version %u; "
                        "this plugin needs %u\n",
                        ms_version(), ms_abi_version(), MS_ABI_VERSION);
                return false;
        }
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
        add(mixstack, "frame", new HandlerCommand(cmd_frame),
            "Select frame N as `mixstack bt` numbers it (lldb's own numbers: "
            "`frame select N`), and print the Python frame it runs.",
            "mixstack frame [N]");
        add(mixstack, "py-bt", new HandlerCommand(cmd_py_bt_plain),
            "The Python frames of the selected thread with their source "
            "lines, the current one marked '*' (libpython.py's py-bt).",
            "mixstack py-bt");
        add(mixstack, "py-bt-full", new HandlerCommand(cmd_py_bt_full),
            "py-bt with the arguments and locals of every Python frame.",
            "mixstack py-bt-full");
        const char *list_help =
                "Show the Python source around the current Python frame's "
                "line (again without arguments: the next lines), or lines "
                "START to START+10, or START to END.";
        add(mixstack, "py-list", new HandlerCommand(cmd_list), list_help,
            "mixstack py-list [START | START,END]");
        add(mixstack, "list", new HandlerCommand(cmd_list), list_help,
            "mixstack list [START | START,END]");
        const char *up_help = "Select the COUNTth older Python frame (lldb "
                              "selects the eval loop running it).";
        const char *down_help = "Select the COUNTth newer Python frame (lldb "
                                "selects the eval loop running it).";
        add(mixstack, "py-up", new HandlerCommand(cmd_up), up_help,
            "mixstack py-up [COUNT]");
        add(mixstack, "up", new HandlerCommand(cmd_up), up_help,
            "mixstack up [COUNT]");
        add(mixstack, "py-down", new HandlerCommand(cmd_down), down_help,
            "mixstack py-down [COUNT]");
        add(mixstack, "down", new HandlerCommand(cmd_down), down_help,
            "mixstack down [COUNT]");
        add(mixstack, "py-locals", new HandlerCommand(cmd_locals),
            "The arguments and locals of the current Python frame.",
            "mixstack py-locals");
        add(mixstack, "py-print", new HandlerCommand(cmd_print),
            "NAME in the current Python frame: its locals, then its "
            "module's globals, then the builtins.",
            "mixstack py-print NAME");
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
