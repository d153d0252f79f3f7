/* fuzz_url.c -- lib/url's split on arbitrary text: no crash, no read past the
 * string, and what it returns is consistent (port in range, target inside
 * the URL, no spaces or control characters in it). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    url_parts u;
    if (url_split(s, "http", "https", &u) == 0 || url_split(s, "ws", "wss", &u) == 0) {
        if (u.port < 1 || u.port > 65535) abort();
        if (u.target < s || u.target + u.target_len > s + strlen(s)) abort();
        for (size_t i = 0; i < u.target_len; i++)
            if ((unsigned char)u.target[i] <= 0x20 || u.target[i] == 0x7f) abort();
        if (memchr(u.host, '\0', sizeof u.host) == NULL) abort();
        (void)url_target_needs_slash(&u);
    }
    free(s);
    return 0;
}
