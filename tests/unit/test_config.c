/* Unit tests for lib/config.c: values, defaults and ranges come from the one
 * table; a name read but not declared, a default contradicted at a call site,
 * and a table whose own default is out of range are all refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

static const config_var vars[] = {
    CONFIG_INT("T_NUM", "100", 10, 1000, "a number"),
    CONFIG_BOOL("T_FLAG", "1", "a flag"),
    CONFIG_TEXT("T_TEXT", "dflt", "a | text <x>"),
    CONFIG_TEXT("T_UNSET", NULL, "no default"),
    CONFIG_END,
};

static void test_values(void **state) {
    (void)state;
    long long n = 0;
    int f = -1;
    unsetenv("T_NUM"), unsetenv("T_FLAG"), unsetenv("T_TEXT"), unsetenv("T_UNSET");
    assert_int_equal(config_int(vars, "T_NUM", &n), 0);
    assert_int_equal(n, 100); /* the table's default */
    assert_int_equal(config_flag(vars, "T_FLAG", &f), 0);
    assert_int_equal(f, 1);
    assert_string_equal(config_text(vars, "T_TEXT"), "dflt");
    assert_null(config_text(vars, "T_UNSET"));

    setenv("T_NUM", "1000", 1), setenv("T_FLAG", "off", 1), setenv("T_TEXT", "v", 1);
    assert_int_equal(config_int(vars, "T_NUM", &n), 0);
    assert_int_equal(n, 1000);
    assert_int_equal(config_flag(vars, "T_FLAG", &f), 0);
    assert_int_equal(f, 0);
    assert_string_equal(config_text(vars, "T_TEXT"), "v");

    const char *bad[] = {"9", "1001", "12x", "", NULL};
    for (int i = 0; bad[i]; i++) {
        setenv("T_NUM", bad[i], 1);
        if (*bad[i]) assert_int_equal(config_int(vars, "T_NUM", &n), -1);
        else assert_int_equal(config_int(vars, "T_NUM", &n), 0); /* empty = unset */
    }
    setenv("T_FLAG", "maybe", 1);
    assert_int_equal(config_flag(vars, "T_FLAG", &f), -1);
    unsetenv("T_NUM"), unsetenv("T_FLAG"), unsetenv("T_TEXT");
}

static void test_undeclared_and_type(void **state) {
    (void)state;
    long long n;
    int f;
    assert_int_equal(config_int(vars, "T_MISSING", &n), -1);
    assert_int_equal(config_int(vars, "T_TEXT", &n), -1); /* declared as text */
    assert_int_equal(config_flag(vars, "T_NUM", &f), -1);
    assert_null(config_find(vars, "T_MISSING"));
    assert_int_equal(config_find(vars, "T_UNSET")->type, CONFIG_TEXT);
}

/* The older getters refuse a default that contradicts the registered table. */
static void test_legacy_agreement(void **state) {
    (void)state;
    long long n;
    int f;
    config_use(vars);
    unsetenv("T_NUM"), unsetenv("T_FLAG");
    assert_int_equal(config_long("T_NUM", 100, 0, 1000, &n), 0);
    assert_int_equal(n, 100);
    assert_int_equal(config_long("T_NUM", 0, 0, 1000, &n), -1); /* the SPOOL_SEGMENT_BYTES bug */
    assert_int_equal(config_bool("T_FLAG", 1, &f), 0);
    assert_int_equal(config_bool("T_FLAG", 0, &f), -1);
    assert_int_equal(config_long("NOT_IN_TABLE", 5, 0, 10, &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(config_int(NULL, "T_NUM", &n), 0); /* NULL = the registered table */
    assert_int_equal(n, 100);
    config_use(NULL);
    assert_int_equal(config_int(NULL, "T_NUM", &n), -1);
}

static void test_table_checked(void **state) {
    (void)state;
    static const config_var wrong[] = {CONFIG_INT("T_W", "5", 10, 20, "default below its range"), CONFIG_END};
    static const config_var wrong_bool[] = {CONFIG_BOOL("T_B", "2", "not a boolean"), CONFIG_END};
    char *argv[] = {"prog", NULL};
    assert_int_equal(config_parse_args(1, argv, "usage", wrong), -1);
    assert_int_equal(config_parse_args(1, argv, "usage", wrong_bool), -1);
    assert_int_equal(config_parse_args(1, argv, "usage", vars), 0);
    config_use(NULL);
}

/* --config-markdown rows: default, range and help, '|' and '<' escaped. */
static void test_markdown(void **state) {
    (void)state;
    char path[] = "/tmp/homeiq-config-md.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stdout);
    int saved = dup(1);
    dup2(fd, 1);
    config_markdown(vars, 0);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    char buf[2048] = {0};
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    unlink(path);
    assert_true(n > 0);
    assert_non_null(strstr(buf, "| `T_NUM` | `100` | 10..1000 | a number |\n"));
    assert_non_null(strstr(buf, "| `T_FLAG` | `1` | 0, 1 | a flag |\n"));
    assert_non_null(strstr(buf, "| `T_TEXT` | `dflt` |  | a \\| text &lt;x> |\n"));
    assert_non_null(strstr(buf, "| `T_UNSET` | — |  | no default |\n"));
}

int main(void) {
    log_init("test_config");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_undeclared_and_type),
        cmocka_unit_test(test_legacy_agreement),
        cmocka_unit_test(test_table_checked),
        cmocka_unit_test(test_markdown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
