/* bgthread.c -- see bgthread.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_setname_np */
#endif
#include "bgthread.h"

#include <stdio.h>
#include <string.h>

void bgthread_init(bgthread *t) {
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
}

/* The thread names itself before the owner's function runs, so the name is
 * there from its first instruction (top -H, a test reading it). */
static void *bgthread_main(void *arg) {
    bgthread *t = arg;
    if (t->name[0]) pthread_setname_np(pthread_self(), t->name);
    return t->fn(t->arg);
}

int bgthread_start(bgthread *t, const char *name, void *(*fn)(void *), void *arg) {
    t->quit = 0;
    t->fn = fn;
    t->arg = arg;
    snprintf(t->name, sizeof t->name, "%s", name ? name : "");
    if (pthread_create(&t->thread, NULL, bgthread_main, t) != 0) return -1;
    t->started = 1;
    return 0;
}

void bgthread_stop(bgthread *t) {
    if (!t->started) return;
    pthread_mutex_lock(&t->mu);
    t->quit = 1;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    t->started = 0;
}

void bgthread_destroy(bgthread *t) {
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
}

void bgthread_lock(bgthread *t) {
    pthread_mutex_lock(&t->mu);
}

void bgthread_unlock(bgthread *t) {
    pthread_mutex_unlock(&t->mu);
}

void bgthread_wake(bgthread *t) {
    pthread_cond_signal(&t->cv);
}

void bgthread_wait(bgthread *t) {
    pthread_cond_wait(&t->cv, &t->mu);
}
