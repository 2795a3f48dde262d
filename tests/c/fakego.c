/* A C program dressed as Go, as a hostile target could be: symbols named
 * like the Go runtime's (runtime.allm, runtime.gomaxprocs...), Go build
 * info, and DWARF structs that the test renames from runtime_m to runtime.m
 * (same length) after the build. PAD puts lockedExt that far into the M:
 * 1<<40 is a layout no runtime has. It waits until killed. */
#include <unistd.h>

#ifndef PAD
#define PAD 8
#endif

struct runtime_gFreeM { int n; };
struct runtime_m {
    unsigned long procid;
    char pad[PAD];
    unsigned int lockedExt;
    unsigned int lockedInt;
    void (*mstartfn)(void);
    struct runtime_m *alllink;
    unsigned long lockedg;
    void *curg;
    unsigned long p;
    _Bool spinning;
    _Bool incgo;
};
struct runtime_g { unsigned long startpc; unsigned long goid; unsigned int atomicstatus; };
struct runtime_schedt { int runqsize; int nmidle; int nmspinning; int npidle; int ngsys; struct runtime_gFreeM gFree; };
struct runtime_p {
    unsigned int status; unsigned int runqhead; unsigned int runqtail;
    unsigned long runnext; struct runtime_gFreeM gFree; unsigned int schedtick;
};

/* One M, whose thread ID is set at start: the list pintrace walks. */
struct runtime_m *allm __asm__("runtime.allm");
struct runtime_g g0 __asm__("runtime.g0");
struct runtime_schedt sched __asm__("runtime.sched");
struct runtime_p *allp[3] __asm__("runtime.allp");
unsigned long allglen __asm__("runtime.allglen");
int gomaxprocs __asm__("runtime.gomaxprocs") = 2;
int ncpu __asm__("runtime.ncpu") = 2;
__attribute__((section(".go.buildinfo"), aligned(16), used)) const unsigned char buildinfo[64] =
    "\xff Go buildinf:\x08\x02" "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0" "\x09go1.99.9z\x00";
void runtime_main(void) __asm__("runtime.main");
void runtime_main(void) {}

static unsigned long m0[64];

int main(void) {
    m0[0] = (unsigned long)getpid();
    allm = (struct runtime_m *)m0;
    for (;;) pause();
    return (int)g0.goid + sched.runqsize + (allp[0] != 0) + (int)allglen + ncpu;
}
