/* store_sqlite_writer.h -- SQLite batches written and committed by a thread off the loop.
 *
 * Why: a batch's transaction (inserts, the COMMIT's WAL frames and its fsync,
 * synchronous=FULL) was ~60 % of data-storage's CPU in a burst and ran on the
 * loop, so while it ran nothing else did: the next POST was neither read,
 * validated nor prepared, and storage stayed below one core (issue 15: 39.5k
 * events/s, storage busy 0.95 of a core). The writer thread runs each batch's
 * transaction while the loop reads, scans and prepares the next pieces
 * (storage_api.c keeps up to store_ops.pieces = 4 with the backend); batches
 * waiting together when the thread comes back for work are committed in one
 * transaction (group commit: one fsync, and the index pages both touch -- one
 * per entity in events_entity_series -- written once); if that transaction
 * fails, each batch is tried alone, so a batch the database refuses never
 * fails the ones it waited with.
 *
 * The ack contract: a batch's callback (and so its 200) runs on the loop, from
 * the thread's report through a pipe, after the transaction holding the batch
 * committed (COMMIT returned, i.e. the WAL fsynced); a failed transaction calls
 * back rc -1 for each of its batches (503, the caller retries).
 *
 * Ordering with everything else on the connection: one connection, one lock
 * (sqw_lock). The thread holds it for a whole transaction; the loop takes it
 * around every other use of the connection -- reads, retention's purge steps and
 * statistics catch-up (store_ops.maintain), /health's probe, info, releasing
 * memory, close -- so each of those runs between two batch transactions, never
 * inside one, exactly as when everything ran on the loop. Batches are committed
 * in the order they were submitted. The in-memory state the writes keep
 * (statistics cache, retention's counters and WAL hook, the registry's
 * prepared statements) is only touched under that lock. The loop waits at most
 * one transaction for the lock (the pieces queued behind it are not started
 * while the loop holds it) -- except when that transaction is stuck in the disk:
 * /health waits a bounded time (sqw_timedlock) and answers from its last
 * figures (and says for how long the transaction has run: sqw_busy_ms), reads
 * wait a bounded time and answer 503, the retention tick waits a bounded time
 * and skips its step, and releasing memory waits for an idle turn, so a hung
 * fsync makes /health say so instead of hanging the loop.
 *
 * Without an event base (tests, tools: store_sqlite_open_path) there is no
 * thread: sqw_submit writes inline and calls back before it returns, as before.
 *
 * Ownership: the writer owns its thread, pipe and jobs; a submitted batch stays
 * the caller's, untouched by the loop until its callback. */
#ifndef HOMEIQ_STORE_SQLITE_WRITER_H
#define HOMEIQ_STORE_SQLITE_WRITER_H

#include "store.h"

#include <event2/event.h>

typedef struct sqw sqw;

/* Writes batches b[0..n) in one transaction, on the writer thread with the
 * lock held (or inline). 0 committed, -1 nothing committed (err filled). */
typedef int (*sqw_write_fn)(void *ctx, store_batch **b, size_t n, char *err, size_t errlen);
/* On the loop after each transaction: rc as the write's. */
typedef void (*sqw_after_fn)(void *ctx, int rc);

/* Starts the thread when base is non-NULL (else *out is NULL: inline writes).
 * 0/-1. */
int sqw_open(struct event_base *base, sqw_write_fn write, sqw_after_fn after, void *ctx, sqw **out);
/* Stops taking work, lets a running transaction finish, calls back what it
 * committed with its result and what never started with rc -1, joins. */
void sqw_close(sqw *w);

/* Queues b (inline without a thread: writes it now, w may be NULL then, with
 * write/after/ctx given). cb runs on the loop after b's transaction. */
void sqw_submit(sqw *w, store_batch *b, store_write_cb cb, void *arg);
/* Inline submit when there is no writer (w NULL). */
void sqw_submit_inline(sqw_write_fn write, sqw_after_fn after, void *ctx, store_batch *b, store_write_cb cb,
                       void *arg);

/* The loop's hold of the connection (nestable; no-op for NULL). */
void sqw_lock(sqw *w);
void sqw_unlock(sqw *w);
/* 1 when the lock was free and is now held, 0 when a transaction runs. */
int sqw_trylock(sqw *w);
/* As sqw_lock, waiting at most ms: 1 held, 0 a transaction still runs. */
int sqw_timedlock(sqw *w, long ms);
/* How long the thread's running transaction has held the connection, in ms
 * (0: none runs). A commit stuck in the disk (a hung fsync) shows here, so
 * /health and the retention tick can tell without waiting for the lock. */
long long sqw_busy_ms(sqw *w);

/* Transactions committed and batches in them (for /health and tests). */
void sqw_counts(sqw *w, long long *commits, long long *batches);

#endif
