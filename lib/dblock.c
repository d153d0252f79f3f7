/* dblock.c -- see dblock.h. */
#include "dblock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

int dblock_acquire(const char *db_path, pid_t *holder) {
    char path[4200], buf[32];
    *holder = 0;
    if (snprintf(path, sizeof path, "%s.lock", db_path) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
        if (n > 0) buf[n] = '\0', *holder = (pid_t)atol(buf);
        close(fd);
        errno = e;
        return -1;
    }
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
        /* The lock holds without the pid; the pid only makes the refusal clearer. */
    }
    return fd;
}
