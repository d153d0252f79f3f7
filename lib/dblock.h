/* dblock.h -- "a process is using this database file", as an advisory lock.
 *
 * Why: data-storage keeps DATA_DIR/events.db open for as long as it runs, and
 * `homeiqctl restore` must never swap the file under it (the running process
 * would keep writing into the replaced inode and the restore would silently
 * vanish). Asking data-storage over HTTP is not enough: it may listen on
 * another port or not answer yet. Both take an exclusive flock(2) on
 * "<db>.lock"; the kernel drops it when the holder exits, even on SIGKILL, so
 * a crash never leaves a stale lock behind. */
#ifndef HOMEIQ_DBLOCK_H
#define HOMEIQ_DBLOCK_H

#include <sys/types.h>

/* Takes the lock for `db_path` without waiting. Returns the lock's fd (the
 * caller owns it: close() releases the lock), or -1: *holder is then the pid
 * written by the holder (0 when unknown) and errno is EWOULDBLOCK when another
 * process holds it, or the error of open(2). */
int dblock_acquire(const char *db_path, pid_t *holder);

#endif
