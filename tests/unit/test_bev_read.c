/* test_bev_read.c -- lib/bev_read on a real loopback TCP connection: what is
 * queued on the socket reaches the input buffer in one loop turn (libevent 2.1
 * alone hands over 4096 bytes per turn), every byte once and in order, and the
 * peer's close still reads as the end of the stream. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bev_read.h"

#define TOTAL (200 * 1024)

typedef struct seen {
    size_t turns, first_turn, bytes;
    int eof, bad;
    unsigned char next;
} seen;

static void on_read(struct bufferevent *bev, void *arg) {
    seen *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n = evbuffer_get_length(in);
    if (s->turns++ == 0) s->first_turn = n;
    unsigned char *p = evbuffer_pullup(in, -1);
    for (size_t i = 0; i < n; i++) s->bad |= p[i] != (unsigned char)(s->next++);
    s->bytes += n;
    evbuffer_drain(in, n);
}

static void on_event(struct bufferevent *bev, short what, void *arg) {
    (void)bev;
    seen *s = arg;
    if (what & BEV_EVENT_EOF) s->eof = 1;
    event_base_loopbreak(bufferevent_get_base(bev));
}

/* A connected loopback pair: *a (blocking, the writer) and *b (non-blocking). */
static void tcp_pair(int *a, int *b) {
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    int l = socket(AF_INET, SOCK_STREAM, 0), big = 4 << 20;
    assert_true(l >= 0);
    assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &sl), 0);
    *a = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(*a, (struct sockaddr *)&sa, sizeof sa), 0);
    *b = accept(l, NULL, NULL);
    assert_true(*b >= 0);
    close(l);
    setsockopt(*b, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    setsockopt(*a, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    evutil_make_socket_nonblocking(*b);
}

static void run(int install, seen *s) {
    int a, b;
    tcp_pair(&a, &b);
    unsigned char *data = malloc(TOTAL);
    assert_non_null(data);
    for (size_t i = 0; i < TOTAL; i++) data[i] = (unsigned char)i;
    size_t off = 0; /* queued on b before the loop runs: loopback delivers on send */
    while (off < TOTAL) {
        ssize_t w = write(a, data + off, TOTAL - off);
        assert_true(w > 0);
        off += (size_t)w;
    }
    close(a);
    free(data);
    struct event_base *base = event_base_new();
    struct bufferevent *bev = bufferevent_socket_new(base, b, BEV_OPT_CLOSE_ON_FREE);
    assert_non_null(bev);
    bufferevent_set_max_single_read(bev, BEV_IO_MAX);
    if (install) assert_int_equal(bev_read_more_install(bev), 0);
    memset(s, 0, sizeof *s);
    bufferevent_setcb(bev, on_read, NULL, on_event, s);
    bufferevent_enable(bev, EV_READ);
    event_base_dispatch(base);
    bufferevent_free(bev);
    event_base_free(base);
}

static void test_reads_what_is_queued(void **state) {
    (void)state;
    seen s;
    run(1, &s);
    assert_int_equal(s.bytes, TOTAL);
    assert_false(s.bad);
    assert_true(s.eof);
    assert_true(s.first_turn > 4096); /* libevent alone: 4096 */
    assert_true(s.turns < TOTAL / 4096);
    run(0, &s); /* what it fixes, so this test knows it can fail */
    assert_int_equal(s.bytes, TOTAL);
    assert_false(s.bad);
    assert_int_equal(s.first_turn, 4096);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_what_is_queued),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
