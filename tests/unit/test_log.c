/* Unit tests for lib/log.c: no value can end or forge a log line, JSON lines
 * stay valid JSON, and registered secrets never appear. stderr is captured
 * through a pipe, exactly as the services write it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* Runs log_msg(level, "%s", value) with stderr on a pipe; returns what was written. */
static char *capture(const char *format, const char *value) {
    static char out[65536];
    int p[2], saved = dup(STDERR_FILENO);
    assert_int_equal(pipe(p), 0);
    setenv("LOG_FORMAT", format, 1);
    assert_int_equal(log_init("test"), 0);
    dup2(p[1], STDERR_FILENO);
    log_warn("value=[%s]", value);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(p[1]);
    ssize_t n = read(p[0], out, sizeof out - 1);
    close(p[0]);
    out[n > 0 ? n : 0] = '\0';
    return out;
}

static int count_char(const char *s, char c) {
    int n = 0;
    for (; *s; s++) n += *s == c;
    return n;
}

static const char forged[] = "sensor.x\n2026-01-01T00:00:00.000Z error data-storage: forged\r\x1b[31mred\x1b[0m\tq\x7f\xff\xc3";

static void test_text_one_line(void **state) {
    (void)state;
    const char *line = capture("text", forged);
    assert_int_equal(count_char(line, '\n'), 1);               /* exactly the terminating newline */
    assert_int_equal(line[strlen(line) - 1], '\n');
    assert_null(strchr(line, '\r'));
    assert_null(strchr(line, '\x1b'));
    assert_null(strchr(line, '\x7f'));
    assert_non_null(strstr(line, "sensor.x\\n2026-01-01T00:00:00.000Z error data-storage: forged\\r\\x1b[31mred"));
    assert_non_null(strstr(line, "\\t"));
    assert_non_null(strstr(line, "\\xff\\xc3]"));                /* bytes that are not UTF-8 are shown, not passed */
    /* An escape typed by the sender cannot pass for one made by the logger. */
    line = capture("text", "a\\nb");
    assert_non_null(strstr(line, "[a\\\\nb]"));
    /* Valid UTF-8 passes unchanged. */
    line = capture("text", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8f\xa0");
    assert_non_null(strstr(line, "[caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8f\xa0]"));
}

static void test_json_valid(void **state) {
    (void)state;
    const char *line = capture("json", forged);
    assert_int_equal(count_char(line, '\n'), 1);
    json_error_t e;
    json_t *v = json_loads(line, 0, &e);
    assert_non_null(v);
    const char *msg = json_string_value(json_object_get(v, "msg"));
    assert_non_null(msg);
    assert_non_null(strstr(msg, "sensor.x\n2026"));              /* the value survives, decoded */
    assert_non_null(strstr(msg, "\x1b[31mred"));
    json_decref(v);
    setenv("LOG_FORMAT", "text", 1);
    log_init("test");
}

static void test_secret_scrubbed(void **state) {
    (void)state;
    log_add_secret("s3cr3t-token-value");
    const char *line = capture("text", "Bearer s3cr3t-token-value!");
    assert_null(strstr(line, "s3cr3t"));
    assert_non_null(strstr(line, "Bearer ***!"));
    log_shutdown();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_one_line),
        cmocka_unit_test(test_json_valid),
        cmocka_unit_test(test_secret_scrubbed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
