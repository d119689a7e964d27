/*
 * The shape of CPython 3.14's tail-call interpreter (configure
 * --with-tail-call-interp, clang 19+; python-build-standalone's 3.14+): the
 * exported eval function keeps the entry frame as a local and calls the
 * first handler; every opcode is its own preserve_none function that
 * musttail-calls the next one through a table, so exactly one handler frame
 * lies above the eval function, and a handler calls out (CALL ->
 * PyObject_Vectorcall). No CPython source is reachable from these machines,
 * so this program stands in for the interpreter's native shape.
 *
 *   tailcall segv   crash (SIGSEGV) in callee, called from the CALL handler
 *   tailcall wait   print "ready" and block in read(0) from callee
 *
 * Built whole, or as python-build-standalone lays CPython out: the
 * interpreter in a shared library (-DTAILCALL_LIBRARY) and a small launcher
 * holding main (-DTAILCALL_LAUNCHER).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct iframe {
        struct iframe *previous;
        const unsigned char *ip;
} iframe;

long eval_frame_default(iframe *frame, const unsigned char *code);
extern int mode_segv;
extern unsigned char program[];

#ifndef TAILCALL_LAUNCHER

#define CC __attribute__((preserve_none))
#define HANDLER CC __attribute__((noinline))
typedef CC long handler(iframe *f, const unsigned char *ip, long acc);
static handler T_start_frame, T_LOAD, T_ADD, T_CALL, T_RETURN;
static handler *const table[] = {T_LOAD, T_ADD, T_CALL, T_RETURN};
#define DISPATCH(f, ip, acc)                                                   \
        __attribute__((musttail)) return table[*(ip)]((f), (ip) + 1, (acc))

int mode_segv;
iframe *volatile current_frame; /* like tstate->current_frame */
volatile long sink;
unsigned char program[] = {0, 1, 2, 3}; /* LOAD ADD CALL RETURN */

__attribute__((noinline)) long callee(long x)
{
        if (mode_segv)
                *(volatile int *)(x - x) = 1;
        char c;
        puts("ready");
        fflush(stdout);
        if (read(0, &c, 1) < 0)
                return -1;
        return x + 1;
}

static HANDLER long T_start_frame(iframe *f, const unsigned char *ip, long acc)
{
        DISPATCH(f, ip, acc);
}

static HANDLER long T_LOAD(iframe *f, const unsigned char *ip, long acc)
{
        sink = acc += 3;
        DISPATCH(f, ip, acc);
}

static HANDLER long T_ADD(iframe *f, const unsigned char *ip, long acc)
{
        sink = acc += 1;
        DISPATCH(f, ip, acc);
}

static HANDLER long T_CALL(iframe *f, const unsigned char *ip, long acc)
{
        acc = callee(acc) + sink;
        DISPATCH(f, ip, acc);
}

static HANDLER long T_RETURN(iframe *f, const unsigned char *ip, long acc)
{
        (void)f;
        (void)ip;
        return acc;
}

__attribute__((noinline)) long eval_frame_default(iframe *frame,
                                                  const unsigned char *code)
{
        iframe entry = {0, 0};
        frame->previous = &entry;
        current_frame = frame;
        long r = T_start_frame(frame, code, 0);
        current_frame = entry.previous;
        return r;
}

#endif

#ifndef TAILCALL_LIBRARY
int main(int argc, char **argv)
{
        mode_segv = argc > 1 && strcmp(argv[1], "segv") == 0;
        iframe f = {0, 0};
        return (int)eval_frame_default(&f, program) & 1;
}
#endif
