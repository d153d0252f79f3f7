/* bgthread.h -- one background worker thread with its mutex, condition and
 * quit flag: start, wake, stop.
 *
 * Why: three threads (data-storage's SQLite writer and WAL checkpointer,
 * ingestion's spool syncer) each spelled out the same start and the same stop
 * (lock, set quit, signal, unlock, join), and a stop that forgets one step
 * hangs a shutdown. As in Redis' bio.c, the helper owns the thread and its
 * synchronisation; the owner keeps its own work (queues, flags) under t->mu
 * and its own loop:
 *
 *     bgthread_lock(t);
 *     for (;;) {
 *         while (!work && !t->quit) bgthread_wait(t);
 *         if (t->quit) break;            (or: finish the work first)
 *         ... take the work, unlock, do it, lock ...
 *     }
 *     bgthread_unlock(t);
 *
 * Ownership: a bgthread is embedded in its owner; bgthread_init before any
 * other call, bgthread_stop (joins) before bgthread_destroy. */
#ifndef HOMEIQ_BGTHREAD_H
#define HOMEIQ_BGTHREAD_H

#include <pthread.h>

typedef struct bgthread {
    pthread_mutex_t mu; /* guards quit and whatever work the owner shares with the thread */
    pthread_cond_t cv;  /* signalled by bgthread_wake and bgthread_stop */
    int quit;           /* set under mu by bgthread_stop */
    int started;        /* the thread runs (bgthread_start succeeded, not yet stopped) */
    pthread_t thread;
    void *(*fn)(void *); /* what the thread runs, after naming itself */
    void *arg;
    char name[16];       /* Linux keeps 15 bytes of a thread's name */
} bgthread;

void bgthread_init(bgthread *t);
/* Starts fn(arg) on the thread, named `name` (top -H; NULL: the process'
 * name). 0, or -1 when no thread could be made (t stays usable, not started). */
int bgthread_start(bgthread *t, const char *name, void *(*fn)(void *), void *arg);
/* Sets quit, wakes the thread and joins it; the thread's loop decides what it
 * finishes first. No-op when not started. */
void bgthread_stop(bgthread *t);
/* After bgthread_stop (or without a start). */
void bgthread_destroy(bgthread *t);

void bgthread_lock(bgthread *t);
void bgthread_unlock(bgthread *t);
/* Wakes the thread; call with t->mu held, after changing what it waits for. */
void bgthread_wake(bgthread *t);
/* On the thread, with t->mu held: sleeps until woken (check the condition again). */
void bgthread_wait(bgthread *t);

#endif
