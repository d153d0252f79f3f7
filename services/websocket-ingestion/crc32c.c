/* crc32c.c -- see crc32c.h. Hardware path on x86-64 with SSE4.2 (checked at
 * run time), otherwise a byte-wise table. Both give identical results. */
#include "crc32c.h"

#include <string.h>

static uint32_t crc32c_table[256];
static int crc32c_mode; /* 0 = not decided, 1 = table, 2 = sse4.2 */

static void crc32c_init_table(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc32c_table[i] = c;
    }
}

static uint32_t crc32c_sw(uint32_t crc, const unsigned char *p, size_t len) {
    while (len--) crc = crc32c_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const unsigned char *p, size_t len) {
    uint64_t c = crc;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#endif

uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len) {
    if (!crc32c_mode) {
        crc32c_init_table();
        crc32c_mode = 1;
#if defined(__x86_64__)
        __builtin_cpu_init();
        if (__builtin_cpu_supports("sse4.2")) crc32c_mode = 2;
#endif
    }
    crc = ~crc;
#if defined(__x86_64__)
    if (crc32c_mode == 2) return ~crc32c_hw(crc, buf, len);
#endif
    return ~crc32c_sw(crc, buf, len);
}
