/* fault_shim.c -- an LD_PRELOAD library that makes chosen I/O calls fail, for
 * fault-injection tests of real processes (issue 14: "every case ends with
 * zero acked events lost").
 *
 * HOMEIQ_FAULT="call:pattern:nth[:errno]" -- the nth call (1-based) of `call`
 * whose path (or, for write/fdatasync, the path of the descriptor) contains
 * `pattern` fails with errno (default EIO); all other calls go through. call
 * is one of open_rdonly (open without O_WRONLY/O_RDWR), open_write, write
 * (write, pwrite), fdatasync (fdatasync, fsync), rename. Each firing is logged to stderr.
 * errno "stall" instead of a number: that call never returns (the thread sleeps
 * until the process is killed) -- a disk that hangs, e.g. in the middle of a
 * commit, so a test can kill the process there and see what was acknowledged.
 * With HOMEIQ_FAULT_STALL_UNTIL=path the stall ends when that file appears and
 * the call then goes through -- a disk that hangs for a while, then recovers.
 *
 * HOMEIQ_FAULT="alloc:MINBYTES:nth" -- the nth malloc/calloc/realloc of at
 * least MINBYTES bytes fails with ENOMEM (large buffers: spool reads, batch
 * bodies, request copies; small ones are everywhere, in libc and libevent
 * too). With HOMEIQ_FAULT_ARM=path, allocations count only while that file
 * exists, so a test can aim past start-up and the accepting POST (the I/O
 * calls above count only while it exists, too).
 *
 * HOMEIQ_FAULT_FREE_BYTES=N -- statvfs() of any path says N bytes are free to
 * the caller (f_bavail), so a "refuses when the disk is short" check can be
 * seen without filling a disk. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <execinfo.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <unistd.h>

static char f_call[32], f_pat[256];
static long f_nth, f_count;
static int f_errno = EIO, f_ready, f_stall;
static pthread_mutex_t f_mu = PTHREAD_MUTEX_INITIALIZER;
static size_t f_alloc_min; /* alloc: the smallest size that counts (0: no alloc fault) */
static const char *f_arm;  /* alloc: count only while this file exists */
static const char *f_until; /* stall: until this file exists (NULL: forever) */

static void fault_init(void) {
    if (f_ready) return;
    f_ready = 1;
    const char *v = getenv("HOMEIQ_FAULT");
    if (!v) return;
    char buf[400];
    snprintf(buf, sizeof buf, "%s", v);
    char *call = strtok(buf, ":"), *pat = strtok(NULL, ":"), *nth = strtok(NULL, ":"), *en = strtok(NULL, ":");
    if (!call || !pat || !nth) return;
    snprintf(f_call, sizeof f_call, "%s", call);
    snprintf(f_pat, sizeof f_pat, "%s", pat);
    f_nth = atol(nth);
    if (en && !strcmp(en, "stall")) f_stall = 1;
    else if (en) f_errno = atoi(en);
    f_arm = getenv("HOMEIQ_FAULT_ARM");
    f_until = getenv("HOMEIQ_FAULT_STALL_UNTIL");
    if (!strcmp(f_call, "alloc")) {
        f_alloc_min = (size_t)atol(f_pat);
        f_errno = ENOMEM;
    }
}

/* 1 when this call must fail. */
static int fault_hit(const char *call, const char *path) {
    int hit = 0;
    pthread_mutex_lock(&f_mu);
    fault_init();
    if (f_call[0] && !strcmp(call, f_call) && path && strstr(path, f_pat) && (!f_arm || access(f_arm, F_OK) == 0) &&
        ++f_count == f_nth)
        hit = 1;
    long count = f_count;
    pthread_mutex_unlock(&f_mu);
    if (getenv("HOMEIQ_FAULT_TRACE") && path) fprintf(stderr, "fault_shim: trace %s(%s) #%ld\n", call, path, count);
    if (hit && f_stall) fprintf(stderr, "fault_shim: %s(%s) stalls (call #%ld)\n", call, path, f_nth);
    else if (hit) fprintf(stderr, "fault_shim: %s(%s) fails with errno %d (call #%ld)\n", call, path, f_errno, f_nth);
    if (hit && f_stall && f_until) { /* a stall that ends: the call then goes through */
        while (access(f_until, F_OK) != 0) usleep(20000);
        fprintf(stderr, "fault_shim: %s(%s) resumes\n", call, path);
        return 0;
    }
    return hit;
}

/* What a call that was hit returns: -1 with f_errno, or never (stall). */
static int fault_fire(void) {
    while (f_stall) pause();
    errno = f_errno;
    return -1;
}

static const char *fd_path(int fd, char *buf, size_t n) {
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t l = readlink(link, buf, n - 1);
    if (l < 0) return NULL;
    buf[l] = '\0';
    return buf;
}

static int open_common(const char *path, int flags) {
    int w = (flags & O_ACCMODE) != O_RDONLY;
    return fault_hit(w ? "open_write" : "open_rdonly", path);
}

int open(const char *path, int flags, ...) {
    static int (*real)(const char *, int, ...);
    if (!real) real = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");
    mode_t mode = 0;
    if (flags & O_CREAT) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    if (open_common(path, flags)) return fault_fire();
    return real(path, flags, mode);
}

int open64(const char *path, int flags, ...) {
    static int (*real)(const char *, int, ...);
    if (!real) real = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open64");
    mode_t mode = 0;
    if (flags & O_CREAT) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    if (open_common(path, flags)) return fault_fire();
    return real(path, flags, mode);
}

ssize_t write(int fd, const void *b, size_t n) {
    static ssize_t (*real)(int, const void *, size_t);
    if (!real) real = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    char p[512];
    if (fd > 2 && f_ready && f_call[0] && !strcmp(f_call, "write") && fault_hit("write", fd_path(fd, p, sizeof p)))
        return fault_fire();
    if (!f_ready) fault_init();
    return real(fd, b, n);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    char p[512];
    if (fault_hit("fdatasync", fd_path(fd, p, sizeof p))) return fault_fire();
    return real(fd);
}

ssize_t pwrite(int fd, const void *b, size_t n, off_t off) {
    static ssize_t (*real)(int, const void *, size_t, off_t);
    if (!real) real = (ssize_t(*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
    char p[512];
    if (fault_hit("write", fd_path(fd, p, sizeof p))) return fault_fire();
    return real(fd, b, n, off);
}

ssize_t pwrite64(int fd, const void *b, size_t n, off_t off) {
    static ssize_t (*real)(int, const void *, size_t, off_t);
    if (!real) real = (ssize_t(*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite64");
    char p[512];
    if (fault_hit("write", fd_path(fd, p, sizeof p))) return fault_fire();
    return real(fd, b, n, off);
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    char p[512];
    if (fault_hit("fdatasync", fd_path(fd, p, sizeof p))) return fault_fire();
    return real(fd);
}

int rename(const char *a, const char *b) {
    static int (*real)(const char *, const char *);
    if (!real) real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    if (fault_hit("rename", b)) return fault_fire();
    return real(a, b);
}

/* ---- allocation ----------------------------------------------------------
 * glibc's own entry points are the real allocator (dlsym may allocate, so it
 * cannot be used here); memory from them is freed by the ordinary free(). */
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t m);
extern void *__libc_realloc(void *p, size_t n);

static int alloc_hit(size_t n) {
    if (!f_ready) fault_init();
    if (!f_alloc_min || n < f_alloc_min) return 0;
    if (f_arm && access(f_arm, F_OK) != 0) return 0;
    pthread_mutex_lock(&f_mu);
    int hit = ++f_count == f_nth;
    pthread_mutex_unlock(&f_mu);
    if (hit) {
        char msg[128];
        int l = snprintf(msg, sizeof msg, "fault_shim: alloc(%zu) fails with ENOMEM (call #%ld)\n", n, f_nth);
        if (l > 0) (void)!write(2, msg, (size_t)l);
        void *bt[16]; /* where: the test prints it, so a reader sees which path failed */
        int nbt = backtrace(bt, 16);
        backtrace_symbols_fd(bt, nbt, 2);
    }
    return hit;
}

void *malloc(size_t n) {
    if (alloc_hit(n)) return errno = ENOMEM, NULL;
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t m) {
    if (m && n <= (size_t)-1 / m && alloc_hit(n * m)) return errno = ENOMEM, NULL;
    return __libc_calloc(n, m);
}

void *realloc(void *p, size_t n) {
    if (alloc_hit(n)) return errno = ENOMEM, NULL;
    return __libc_realloc(p, n);
}

/* HOMEIQ_FAULT_FREE_BYTES: the free space statvfs reports. */
static void free_bytes(struct statvfs *v) {
    const char *n = getenv("HOMEIQ_FAULT_FREE_BYTES");
    if (!n || !v->f_frsize) return;
    v->f_bavail = v->f_bfree = (fsblkcnt_t)(strtoull(n, NULL, 10) / v->f_frsize);
    fprintf(stderr, "fault_shim: statvfs says %s bytes are free\n", n);
}

int statvfs(const char *path, struct statvfs *v) {
    static int (*real)(const char *, struct statvfs *);
    if (!real) real = (int (*)(const char *, struct statvfs *))dlsym(RTLD_NEXT, "statvfs");
    int rc = real(path, v);
    if (rc == 0) free_bytes(v);
    return rc;
}
