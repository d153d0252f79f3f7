/* ctl_backup.c -- `homeiqctl backup` / `homeiqctl restore`.
 *
 * Why this way:
 *  - SQLite (the default store, DATA_DIR/events.db in WAL mode) is copied
 *    with SQLite's online backup API while data-storage keeps writing:
 *    copying the file with cp can tear a page or miss the WAL. The source is
 *    opened read-only; in WAL mode one read transaction is held for the whole
 *    copy, so every chunk comes from the same snapshot (a consistent copy that
 *    contains every transaction committed before the backup began) while the
 *    writer keeps committing to the WAL. The copy goes in chunks of pages with
 *    a short sleep in between so the reader never monopolises the disk or, for
 *    a rollback-journal database, the lock (there a concurrent write restarts
 *    the copy; after a few restarts the rest is copied in one step). The
 *    result is a single self-contained file (journal_mode=DELETE) that has
 *    passed PRAGMA integrity_check, written to a temporary name, fsync'ed and
 *    renamed, so a crash never leaves a half backup under the final name.
 *  - Backup never writes over the live store's files, nor over an existing
 *    file without --force.
 *  - Restore refuses while a data-storage holds the store's lock (dblock: it
 *    holds the file open and would keep writing to the replaced one; no
 *    --force for that), or answers at its URL unless --force; checks the backup
 *    with integrity_check first; keeps the current store (and its -wal/-shm,
 *    which must never be applied to another database) under a
 *    .pre-restore-<time> name instead of deleting it.
 *  - InfluxDB has its own, documented tools: `influxd backup -portable` and
 *    `influxd restore -portable`; homeiqctl prints and runs them. */
#include "ctl.h"
#include "config.h"
#include "dblock.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <sqlite3.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define CTL_DB_NAME "events.db"
#define CTL_MAX_RESTARTS 3

typedef struct ctl_backup_opts {
    const char *path;       /* --out / --from */
    const char *data_dir;
    const char *backend;
    const char *newdb;      /* influxdb restore: restore into this new database */
    int force, dry_run;
    int step_pages;
    long sleep_ms;
} ctl_backup_opts;

/* ---- small helpers ---------------------------------------------------- */

static int ctl_fsync_path(const char *path, int dir) {
    int fd = open(path, (dir ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* The directory part of `path` ("." when none), into out. */
static void ctl_dirname(const char *path, char *out, size_t outlen) {
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(out, outlen, ".");
    else if (slash == path) snprintf(out, outlen, "/");
    else snprintf(out, outlen, "%.*s", (int)(slash - path), path);
}

/* Runs PRAGMA integrity_check; 0 when it says "ok", else -1 with the first
 * problem in err. */
static int ctl_integrity_check(sqlite3 *db, char *err, size_t errlen) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(db));
        return -1;
    }
    int rc = sqlite3_step(st);
    const char *res = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    int ok = res && strcmp(res, "ok") == 0;
    if (!ok) snprintf(err, errlen, "%s", res ? res : sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return ok ? 0 : -1;
}

/* One-row, one-column text query into out ("" when no row). 0/-1. */
static int ctl_sql_text(sqlite3 *db, const char *sql, char *out, size_t outlen) {
    sqlite3_stmt *st;
    out[0] = '\0';
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_text(st, 0))
        snprintf(out, outlen, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/* "N events" when the store has an `events` table, for the summary line. */
static void ctl_describe_store(sqlite3 *db, char *out, size_t outlen) {
    char n[32];
    if (ctl_sql_text(db, "SELECT count(*) FROM events", n, sizeof n) == 0 && n[0])
        snprintf(out, outlen, ", %s events", n);
    else
        out[0] = '\0';
}

/* Copies src into dst with the online backup API. hold_snapshot: src is in
 * WAL mode and already inside a read transaction. 0/-1 (message printed). */
static int ctl_sqlite_copy(sqlite3 *src, sqlite3 *dst, const ctl_backup_opts *o, int hold_snapshot) {
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
    if (!b) {
        fprintf(stderr, "homeiqctl: backup: %s\n", sqlite3_errmsg(dst));
        return -1;
    }
    int rc, restarts = 0, step = o->step_pages, last_remaining = -1, busy = 0;
    for (;;) {
        rc = sqlite3_backup_step(b, step);
        if (rc == SQLITE_DONE) break;
        if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
            if (++busy > 500) break; /* ~5 s of a held lock: give up */
            ctl_sleep_ms(10);
            continue;
        }
        if (rc != SQLITE_OK) break;
        int remaining = sqlite3_backup_remaining(b);
        if (!hold_snapshot && last_remaining >= 0 && remaining > last_remaining && ++restarts >= CTL_MAX_RESTARTS)
            step = -1; /* a writer keeps restarting us: copy the rest at once */
        last_remaining = remaining;
        if (o->sleep_ms > 0) ctl_sleep_ms(o->sleep_ms);
    }
    sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE) {
        fprintf(stderr, "homeiqctl: backup failed: %s\n", rc == SQLITE_BUSY ? "database busy" : sqlite3_errstr(rc));
        return -1;
    }
    return 0;
}

/* ---- sqlite backup ---------------------------------------------------- */

/* 1 when `path` names the same file as `other`: the same inode when both
 * exist, else the same canonical directory and name. */
static int ctl_same_file(const char *path, const char *other) {
    struct stat a, b;
    if (stat(path, &a) == 0 && stat(other, &b) == 0) return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
    char d1[4096], d2[4096], r1[PATH_MAX], r2[PATH_MAX];
    ctl_dirname(path, d1, sizeof d1);
    ctl_dirname(other, d2, sizeof d2);
    const char *n1 = strrchr(path, '/'), *n2 = strrchr(other, '/');
    n1 = n1 ? n1 + 1 : path;
    n2 = n2 ? n2 + 1 : other;
    return realpath(d1, r1) && realpath(d2, r2) && strcmp(r1, r2) == 0 && strcmp(n1, n2) == 0;
}

/* Refuses a backup target that is the live store (or one of its -wal, -shm,
 * -journal, .lock files), always, and an existing file unless --force. */
static int ctl_backup_target_ok(const ctl_backup_opts *o, const char *src_path) {
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal", ".lock"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char live[4200];
        snprintf(live, sizeof live, "%s%s", src_path, suffixes[i]);
        if (ctl_same_file(o->path, live)) {
            fprintf(stderr, "homeiqctl: refusing to back up over the live store file %s\n", live);
            return -1;
        }
    }
    if (!o->force && access(o->path, F_OK) == 0) {
        fprintf(stderr, "homeiqctl: %s exists; choose another --out or add --force to replace it\n", o->path);
        return -1;
    }
    return 0;
}

static int ctl_sqlite_backup(const ctl_backup_opts *o) {
    char src_path[4096], tmp[4200], mode[32], err[512], what[64], dir[4096];
    snprintf(src_path, sizeof src_path, "%s/%s", o->data_dir, CTL_DB_NAME);
    struct stat stt;
    if (stat(src_path, &stt) != 0) {
        fprintf(stderr, "homeiqctl: no SQLite store at %s (%s); set DATA_DIR or --data-dir\n", src_path,
                strerror(errno));
        return CTL_FAIL;
    }
    if (ctl_backup_target_ok(o, src_path) != 0) return CTL_FAIL;
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", o->path, (long)getpid());
    unlink(tmp);
    sqlite3 *src = NULL, *dst = NULL;
    int ret = CTL_FAIL, in_txn = 0;
    struct timespec ts0, ts1;
    clock_gettime(CLOCK_MONOTONIC, &ts0);
    if (sqlite3_open_v2(src_path, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(stderr, "homeiqctl: cannot open %s: %s\n", src_path, sqlite3_errmsg(src));
        goto out;
    }
    sqlite3_busy_timeout(src, 5000);
    if (ctl_sql_text(src, "PRAGMA journal_mode", mode, sizeof mode) != 0) {
        fprintf(stderr, "homeiqctl: cannot read %s: %s\n", src_path, sqlite3_errmsg(src));
        goto out;
    }
    int wal = strcmp(mode, "wal") == 0;
    if (wal) {
        /* One snapshot for the whole copy; WAL writers are not blocked by it. */
        char dummy[32];
        if (sqlite3_exec(src, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
            ctl_sql_text(src, "SELECT count(*) FROM sqlite_master", dummy, sizeof dummy) != 0) {
            fprintf(stderr, "homeiqctl: cannot start a read transaction on %s: %s\n", src_path, sqlite3_errmsg(src));
            goto out;
        }
        in_txn = 1;
    }
    if (sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        fprintf(stderr, "homeiqctl: cannot create %s: %s\n", tmp, sqlite3_errmsg(dst));
        goto out;
    }
    if (ctl_sqlite_copy(src, dst, o, wal) != 0) goto out;
    if (in_txn) sqlite3_exec(src, "COMMIT", NULL, NULL, NULL);
    in_txn = 0;
    if (ctl_sql_text(dst, "PRAGMA journal_mode=DELETE", mode, sizeof mode) != 0 ||
        ctl_integrity_check(dst, err, sizeof err) != 0) {
        fprintf(stderr, "homeiqctl: the copy fails PRAGMA integrity_check: %s\n", err);
        goto out;
    }
    ctl_describe_store(dst, what, sizeof what);
    sqlite3_close(dst);
    dst = NULL;
    ctl_dirname(o->path, dir, sizeof dir);
    if (ctl_fsync_path(tmp, 0) != 0 || rename(tmp, o->path) != 0 || ctl_fsync_path(dir, 1) != 0) {
        fprintf(stderr, "homeiqctl: cannot write %s: %s\n", o->path, strerror(errno));
        goto out;
    }
    clock_gettime(CLOCK_MONOTONIC, &ts1);
    stat(o->path, &stt);
    printf("backup: %s -> %s (%lld bytes%s, integrity_check ok) in %.2f s\n", src_path, o->path,
           (long long)stt.st_size, what,
           (double)(ts1.tv_sec - ts0.tv_sec) + (double)(ts1.tv_nsec - ts0.tv_nsec) / 1e9);
    ret = CTL_OK;
out:
    if (in_txn) sqlite3_exec(src, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(dst);
    sqlite3_close(src);
    if (ret != CTL_OK) unlink(tmp);
    return ret;
}

/* ---- sqlite restore --------------------------------------------------- */

/* Moves DATA_DIR/events.db{,-wal,-shm} aside as *.pre-restore-<stamp>. */
static int ctl_move_aside(const char *db_path, const char *stamp, char *kept, size_t keptlen) {
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    kept[0] = '\0';
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char from[4200], to[4300];
        snprintf(from, sizeof from, "%s%s", db_path, suffixes[i]);
        snprintf(to, sizeof to, "%s.pre-restore-%s%s", db_path, stamp, suffixes[i]);
        if (access(from, F_OK) != 0) continue;
        if (rename(from, to) != 0) {
            fprintf(stderr, "homeiqctl: cannot move %s aside: %s\n", from, strerror(errno));
            return -1;
        }
        if (i == 0) snprintf(kept, keptlen, "%s", to);
    }
    return 0;
}

static int ctl_sqlite_restore(const ctl_backup_opts *o) {
    char db_path[4096], tmp[4200] = "", err[512], what[64], stamp[32], kept[4400];
    ctl_reply r;
    ctl_http("GET", ctl_service_url(CTL_STORAGE), "/health", NULL, 2000, &r);
    int running = r.status != 0;
    ctl_reply_free(&r);
    if (running && !o->force) {
        fprintf(stderr,
                "homeiqctl: data-storage is running at %s; stop it first (it holds the store open), "
                "or use --force and restart it right after\n",
                ctl_service_url(CTL_STORAGE));
        return CTL_FAIL;
    }
    snprintf(db_path, sizeof db_path, "%s/%s", o->data_dir, CTL_DB_NAME);
    sqlite3 *from = NULL, *dst = NULL;
    int ret = CTL_FAIL, lock = -1;
    pid_t holder;
    if (mkdir(o->data_dir, 0750) != 0 && errno != EEXIST) {
        fprintf(stderr, "homeiqctl: cannot create %s: %s\n", o->data_dir, strerror(errno));
        goto out;
    }
    /* Held for the whole restore: no data-storage may have the store open
     * (even with --force), and none can start until the new file is in place. */
    lock = dblock_acquire(db_path, &holder);
    if (lock < 0) {
        if (errno == EWOULDBLOCK)
            fprintf(stderr, "homeiqctl: %s is in use by data-storage (pid %ld); stop it before restoring\n", db_path,
                    (long)holder);
        else fprintf(stderr, "homeiqctl: %s.lock: %s\n", db_path, strerror(errno));
        goto out;
    }
    if (sqlite3_open_v2(o->path, &from, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        ctl_integrity_check(from, err, sizeof err) != 0) {
        fprintf(stderr, "homeiqctl: %s is not a usable backup: %s\n", o->path,
                from ? sqlite3_errmsg(from) : "cannot open");
        goto out;
    }
    snprintf(tmp, sizeof tmp, "%s.restore-tmp", db_path);
    unlink(tmp);
    if (sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        fprintf(stderr, "homeiqctl: cannot create %s: %s\n", tmp, sqlite3_errmsg(dst));
        goto out;
    }
    ctl_backup_opts whole = *o;
    whole.step_pages = -1;
    whole.sleep_ms = 0;
    if (ctl_sqlite_copy(from, dst, &whole, 1) != 0) goto out;
    if (ctl_integrity_check(dst, err, sizeof err) != 0) {
        fprintf(stderr, "homeiqctl: the restored copy fails integrity_check: %s\n", err);
        goto out;
    }
    ctl_describe_store(dst, what, sizeof what);
    sqlite3_close(dst);
    dst = NULL;
    time_t now = time(NULL);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", gmtime(&now));
    if (ctl_fsync_path(tmp, 0) != 0 || ctl_move_aside(db_path, stamp, kept, sizeof kept) != 0 ||
        rename(tmp, db_path) != 0 || ctl_fsync_path(o->data_dir, 1) != 0) {
        fprintf(stderr, "homeiqctl: cannot install %s: %s\n", db_path, strerror(errno));
        goto out;
    }
    printf("restore: %s -> %s (integrity_check ok%s)\n", o->path, db_path, what);
    if (kept[0]) printf("restore: the previous store is kept as %s\n", kept);
    printf(running ? "restore: restart data-storage NOW: it still has the previous file open\n"
                   : "restore: start data-storage to serve the restored events\n");
    ret = CTL_OK;
out:
    sqlite3_close(dst);
    sqlite3_close(from);
    if (ret != CTL_OK && tmp[0]) unlink(tmp);
    if (lock >= 0) close(lock);
    return ret;
}

/* ---- influxdb --------------------------------------------------------- */

/* Prints and (unless dry_run) runs `influxd backup|restore -portable ...`. */
static int ctl_influx_run(const ctl_backup_opts *o, int restore) {
    const char *db = config_text(NULL, "INFLUXDB_DATABASE");
    const char *host = config_text(NULL, "INFLUXDB_BACKUP_HOST");
    char *argv[12] = {"influxd", restore ? "restore" : "backup", "-portable", restore ? "-db" : "-database",
                      (char *)db, "-host", (char *)host};
    int n = 7;
    if (restore && o->newdb) argv[n++] = "-newdb", argv[n++] = (char *)o->newdb;
    argv[n++] = (char *)o->path;
    argv[n] = NULL;
    printf("%s:", o->dry_run ? "command" : "running");
    for (char **a = argv; *a; a++) printf(" %s", *a);
    putchar('\n');
    if (restore && !o->newdb)
        printf("note: influxd restore refuses a database that exists; drop it first, or use --newdb NAME\n"
               "      and copy back with SELECT * INTO <db>..home_assistant_events FROM NAME..home_assistant_events"
               " GROUP BY *\n");
    fflush(stdout);
    if (o->dry_run) return CTL_OK;
    pid_t pid;
    int rc = posix_spawnp(&pid, "influxd", NULL, NULL, argv, environ);
    if (rc != 0) {
        fprintf(stderr, "homeiqctl: cannot run influxd: %s (run the command above on the InfluxDB host)\n",
                strerror(rc));
        return CTL_FAIL;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return CTL_OK;
    fprintf(stderr, "homeiqctl: influxd %s failed (status %d)\n", argv[1], WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return CTL_FAIL;
}

/* ---- command lines ---------------------------------------------------- */

static void ctl_backup_usage(FILE *out, int restore) {
    if (!restore)
        fprintf(out,
                "usage: homeiqctl backup --out PATH [--force] [--data-dir DIR] [--backend sqlite|influxdb]\n"
                "                        [--step-pages N] [--sleep DURATION] [--dry-run]\n"
                "  sqlite (default): consistent copy of DATA_DIR/events.db into the file PATH while\n"
                "    data-storage runs (SQLite online backup API, N pages per step, default 256, with\n"
                "    --sleep between steps, default 10ms); checked with PRAGMA integrity_check.\n"
                "    Refuses an existing PATH unless --force, and always the live store's own files.\n"
                "  influxdb: runs `influxd backup -portable -database $INFLUXDB_DATABASE\n"
                "    -host $INFLUXDB_BACKUP_HOST PATH` (PATH is a directory; --dry-run only prints it).\n");
    else
        fprintf(out,
                "usage: homeiqctl restore --from PATH [--force] [--data-dir DIR] [--backend sqlite|influxdb]\n"
                "                         [--newdb NAME] [--dry-run]\n"
                "  sqlite (default): checks PATH with PRAGMA integrity_check and installs it as\n"
                "    DATA_DIR/events.db; the current store is kept as events.db.pre-restore-<time>.\n"
                "    Refuses while a data-storage has this store open (its lock, events.db.lock), and\n"
                "    while data-storage answers at DATA_STORAGE_URL unless --force.\n"
                "  influxdb: runs `influxd restore -portable -db $INFLUXDB_DATABASE\n"
                "    -host $INFLUXDB_BACKUP_HOST [-newdb NAME] PATH` (--dry-run only prints it).\n");
}

static int ctl_backup_main(int argc, char **argv, int restore) {
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},        {"from", required_argument, NULL, 'F'},
        {"data-dir", required_argument, NULL, 'd'},   {"backend", required_argument, NULL, 'b'},
        {"force", no_argument, NULL, 'f'},            {"dry-run", no_argument, NULL, 'n'},
        {"step-pages", required_argument, NULL, 'p'}, {"sleep", required_argument, NULL, 's'},
        {"newdb", required_argument, NULL, 'N'},      {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    ctl_backup_opts o = {
        .data_dir = config_text(NULL, "DATA_DIR"),
        .backend = config_text(NULL, "STORAGE_BACKEND"),
        .step_pages = 256,
        .sleep_ms = 10,
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:F:d:b:fnp:s:N:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': if (restore) goto usage; o.path = optarg; break;
        case 'F': if (!restore) goto usage; o.path = optarg; break;
        case 'd': o.data_dir = optarg; break;
        case 'b': o.backend = optarg; break;
        case 'f': o.force = 1; break;
        case 'n': o.dry_run = 1; break;
        case 'N': if (!restore) goto usage; o.newdb = optarg; break;
        case 'p':
            o.step_pages = atoi(optarg);
            if (o.step_pages < 1) goto usage;
            break;
        case 's':
            if (ctl_parse_duration_ms(optarg, &o.sleep_ms) != 0) goto usage;
            break;
        case 'h': ctl_backup_usage(stdout, restore); return CTL_OK;
        default: goto usage;
        }
    }
    if (optind < argc || !o.path) goto usage;
    if (strcmp(o.backend, "influxdb") == 0) return ctl_influx_run(&o, restore);
    if (strcmp(o.backend, "sqlite") != 0) {
        fprintf(stderr, "homeiqctl: backend '%s': expected sqlite or influxdb\n", o.backend);
        return CTL_USAGE;
    }
    if (o.dry_run) {
        printf("would %s %s/%s %s %s\n", restore ? "restore" : "back up", o.data_dir, CTL_DB_NAME,
               restore ? "from" : "to", o.path);
        return CTL_OK;
    }
    return restore ? ctl_sqlite_restore(&o) : ctl_sqlite_backup(&o);
usage:
    ctl_backup_usage(stderr, restore);
    return CTL_USAGE;
}

int ctl_cmd_backup(int argc, char **argv) { return ctl_backup_main(argc, argv, 0); }
int ctl_cmd_restore(int argc, char **argv) { return ctl_backup_main(argc, argv, 1); }
