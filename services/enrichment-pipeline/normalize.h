/* normalize.h -- HA state strings to numbers, the way Home Assistant reads them.
 *
 * Why: the state is stored verbatim as a string (the Python HomeIQ stored "on"
 * as "True" and "1" as "True"); the numeric `value` next to it is derived here,
 * by rules that match HA's own float(state) and its state_as_number() table, so
 * a reading means the same thing in HomeIQ as in HA's InfluxDB integration. */
#ifndef HOMEIQ_ENRICH_NORMALIZE_H
#define HOMEIQ_ENRICH_NORMALIZE_H

#include <stddef.h>

/* Python float() for finite results: optional surrounding ASCII whitespace,
 * optional sign, digits with an optional '.', optional exponent, and PEP 515
 * single underscores between digits ("1_000"). Rejects "", "nan", "inf",
 * "infinity", "21,5", "0x10", and anything overflowing to +-inf ("1e999").
 * 0 and *out, or -1. */
int normalize_number(const char *s, size_t len, double *out);

/* HA's binary states: on/open/home/locked/above_horizon -> 1,
 * off/closed/not_home/unlocked/below_horizon -> 0 (exact, case-sensitive).
 * 0 and *out, or -1 when the state is not one of them. */
int normalize_binary(const char *s, size_t len, double *out);

/* The numeric value of a state: a number first, then a binary state. */
int normalize_value(const char *s, size_t len, double *out);

#endif
