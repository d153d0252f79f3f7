/* bev_read.c -- see bev_read.h. */
#include "bev_read.h"

#include <event2/buffer.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define BEV_READ_LIBEVENT 4096 /* libevent 2.1's EVBUFFER_MAX_READ */
#define BEV_READ_VECS 4

static _Thread_local int bev_read_busy; /* our own commit calls the callback again */

/* Puts r bytes read into the reserved vectors and commits them; -1 when the
 * buffer refused them (the bytes are gone from the socket). */
static int bev_read_commit(struct evbuffer *buf, struct evbuffer_iovec *v, int n, size_t r) {
    int used = 0;
    for (; used < n && r > 0; used++) {
        if (v[used].iov_len > r) v[used].iov_len = r;
        r -= v[used].iov_len;
    }
    bev_read_busy = 1;
    int rc = evbuffer_commit_space(buf, v, used);
    bev_read_busy = 0;
    return rc;
}

static void bev_read_more(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg) {
    if (bev_read_busy || info->n_added < BEV_READ_LIBEVENT) return; /* a short read drained the socket */
    evutil_socket_t fd = bufferevent_getfd(arg);
    int avail = 0; /* what is queued, so the buffer grows by no more than that */
    if (fd < 0 || ioctl(fd, FIONREAD, &avail) != 0 || avail <= 0) return;
    struct evbuffer_iovec v[BEV_READ_VECS];
    struct iovec iov[BEV_READ_VECS];
    size_t want = (size_t)(avail < BEV_IO_MAX ? avail : BEV_IO_MAX);
    int n = evbuffer_reserve_space(buf, (ev_ssize_t)want, v, BEV_READ_VECS);
    if (n <= 0) return;
    int k = 0; /* the reserved space may exceed want: read no more than that */
    for (size_t left = want; k < n && left > 0; k++) {
        size_t len = v[k].iov_len < left ? v[k].iov_len : left;
        iov[k] = (struct iovec){v[k].iov_base, len};
        left -= len;
    }
    ssize_t r = readv(fd, iov, k);
    /* nothing (EAGAIN), end of stream or an error: libevent's next read sees
     * the same (an end of stream stays readable; a reset reads as one) */
    if (r > 0 && bev_read_commit(buf, v, k, (size_t)r) != 0)
        shutdown(fd, SHUT_RDWR); /* bytes lost from the stream: end the connection, never carry on without them */
}

int bev_read_more_install(struct bufferevent *bev) {
    return evbuffer_add_cb(bufferevent_get_input(bev), bev_read_more, bev) ? 0 : -1;
}
