/* bev_read.h -- bigger socket reads for a plain (non-TLS) bufferevent.
 *
 * Why: libevent 2.1 reads a socket at most 4096 bytes at a time
 * (EVBUFFER_MAX_READ, fixed; bufferevent_set_max_single_read does not raise
 * it), one read per loop turn: a 1 MB batch body was ~290 turns of
 * epoll_wait + FIONREAD ioctl + readv in enrichment (and in storage), about
 * one syscall per event (strace, issue 15). bev_read_more_install() adds an
 * input-buffer callback: when libevent's read filled its 4096 bytes, more is
 * likely waiting, and one readv takes what is queued (FIONREAD), up to
 * BEV_IO_MAX, straight into the same input buffer, before the bufferevent's
 * reader (evhttp) sees it: the buffer grows by no more than what arrived.
 * Only ever on the bytes libevent itself would read next: never under TLS. */
#ifndef HOMEIQ_BEV_READ_H
#define HOMEIQ_BEV_READ_H

#include <event2/bufferevent.h>

/* The most one read takes, and one write of a bufferevent we set it on
 * gives (libevent's default write is 16 KB: a 1 MB request was 64 writev). */
#define BEV_IO_MAX (256 * 1024)

/* For a socket bufferevent whose fd is plain TCP (set now or later). 0 or -1. */
int bev_read_more_install(struct bufferevent *bev);

#endif
