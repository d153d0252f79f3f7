/* pyval.h -- Python's float() and str() over JSON values, exactly enough to
 * write the fields Home Assistant's InfluxDB integration writes.
 *
 * Why a module of its own: HA decides a field's name and type by calling
 * float(value) and, when that raises, writing str(value) as "<key>_str".
 * Grafana dashboards query those names, so "True" vs "true", "['a', 'b']"
 * vs "[\"a\",\"b\"]", "1.0" vs "1" or a string float() accepts (" 1.5 ",
 * "1_000", "inf") all change which series a point lands in. The rules here
 * are CPython 3's, for the values JSON can carry:
 *  - float(): bool -> 1.0/0.0, int, real; a string after stripping
 *    whitespace: [sign] digits with single '_' between digits, optional '.',
 *    optional exponent; or [sign] inf/infinity/nan (any case). Overflow gives
 *    inf, as in Python. null, lists and objects raise TypeError.
 *  - str(): a string is itself; None/True/False; ints in decimal; floats in
 *    repr form (shortest round-trip digits, "1.0", "1e+16", "1e-05");
 *    lists "[1, 'a']", objects "{'k': None}", strings inside containers as
 *    repr() with Python's quote choice and escapes.
 * Known differences, documented in docs/INFLUXDB.md: only ASCII digits
 * count as digits; str.isprintable() is approximated by the Unicode ranges
 * that are not printable in practice (controls, separators, format
 * characters, private use, noncharacters), not by unassigned code points.
 *
 * Ownership: nothing is allocated except into the caller's sbuf. */
#ifndef HOMEIQ_PYVAL_H
#define HOMEIQ_PYVAL_H

#include <jansson.h>
#include <stddef.h>
#include "sbuf.h"

/* Python float(s) for a string of n bytes: 0 and *out, or -1 (ValueError). */
int pyval_float_str(const char *s, size_t n, double *out);
/* Python float(v): 0 and *out, or -1 (ValueError or TypeError). */
int pyval_float(const json_t *v, double *out);
/* Appends Python repr(float(v)) ("1.0", "0.0001", "1e-05", "inf", "nan"). */
void pyval_repr_float(sbuf *b, double v);
/* Appends Python str(v). */
void pyval_str(sbuf *b, const json_t *v);
/* HA's RE_DIGIT_TAIL ^[^.]*\d+\.?\d+[^.]*$ on s: 1 when it matches, and
 * *out = float(s with everything but digits and '.' removed). */
int pyval_digit_tail(const char *s, size_t n, double *out);

#endif
