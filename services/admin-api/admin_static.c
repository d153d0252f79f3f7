/* admin_static.c -- the dashboard's files: www/ at /, and the chart library
 * (Debian's libjs-chart.js, pinned by scripts/install-deps) at
 * /vendor/chart.min.js.
 *
 * Why this way: no build step and no copy of third-party code in the repo;
 * the page uses relative URLs only, so it also works under a path prefix.
 * Files are read on first use and kept with their gzip form (zlib), keyed by
 * size + mtime, so an edited file is picked up and a quiet service holds only
 * what was asked for. ETag + If-None-Match answer 304; the page's own files
 * are revalidated on every load (no-cache), the library is cached a week. */
#include "admin.h"
#include "log.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

typedef struct static_file {
    char *name;          /* URL path */
    char *path;          /* file */
    off_t size;
    struct timespec mtime;
    char etag[64];
    unsigned char *data, *gz;
    size_t len, gz_len;  /* gz_len 0: not worth compressing */
    struct static_file *next;
} static_file;

struct admin_static {
    char *www_dir;
    char *chart_js;
    static_file *files;
};

int admin_static_new(admin *a, const char *www_dir, const char *chart_js) {
    admin_static *s = calloc(1, sizeof *s);
    if (!s) return -1;
    s->www_dir = strdup(www_dir);
    s->chart_js = strdup(chart_js);
    a->files = s;
    if (!s->www_dir || !s->chart_js) return -1;
    struct stat st;
    if (stat(chart_js, &st) != 0)
        log_warn("ADMIN_API_CHART_JS=%s: %s; the dashboard's charts will not draw (install libjs-chart.js)", chart_js,
                 strerror(errno));
    char index[4200];
    snprintf(index, sizeof index, "%s/index.html", www_dir);
    if (stat(index, &st) != 0)
        log_warn("ADMIN_API_STATIC_DIR=%s: no index.html (%s); the dashboard is not served", www_dir, strerror(errno));
    return 0;
}

static void static_file_free(static_file *f) {
    free(f->name);
    free(f->path);
    free(f->data);
    free(f->gz);
    free(f);
}

void admin_static_free(admin *a) {
    admin_static *s = a->files;
    if (!s) return;
    while (s->files) {
        static_file *n = s->files->next;
        static_file_free(s->files);
        s->files = n;
    }
    free(s->www_dir);
    free(s->chart_js);
    free(s);
    a->files = NULL;
}

static const char *static_type(const char *name) {
    const char *dot = strrchr(name, '.');
    static const char *const types[][2] = {
        {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},   {".svg", "image/svg+xml"},
        {".png", "image/png"},                 {".json", "application/json"},
        {".ico", "image/x-icon"},
    };
    for (size_t i = 0; dot && i < sizeof types / sizeof *types; i++)
        if (strcmp(dot, types[i][0]) == 0) return types[i][1];
    return "application/octet-stream";
}

/* gzip of data, or 0 when it does not get smaller. */
static int static_gzip(static_file *f) {
    if (f->len < 512 || strcmp(static_type(f->name), "image/png") == 0) return 0;
    z_stream z = {0};
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK) return -1;
    size_t cap = deflateBound(&z, (uLong)f->len);
    f->gz = malloc(cap);
    if (!f->gz) {
        deflateEnd(&z);
        return -1;
    }
    z.next_in = f->data;
    z.avail_in = (uInt)f->len;
    z.next_out = f->gz;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    f->gz_len = rc == Z_STREAM_END ? z.total_out : 0;
    deflateEnd(&z);
    if (f->gz_len == 0 || f->gz_len >= f->len) {
        free(f->gz);
        f->gz = NULL;
        f->gz_len = 0;
    }
    return 0;
}

static int static_load(static_file *f, const struct stat *st) {
    FILE *fp = fopen(f->path, "rb");
    if (!fp) return -1;
    unsigned char *d = malloc((size_t)st->st_size + 1);
    size_t n = d ? fread(d, 1, (size_t)st->st_size, fp) : 0;
    fclose(fp);
    if (!d || n != (size_t)st->st_size) {
        free(d);
        return -1;
    }
    free(f->data);
    free(f->gz);
    f->gz = NULL;
    f->gz_len = 0;
    f->data = d;
    f->len = n;
    f->size = st->st_size;
    f->mtime = st->st_mtim;
    snprintf(f->etag, sizeof f->etag, "\"%llx-%llx\"", (unsigned long long)st->st_size,
             (unsigned long long)st->st_mtim.tv_sec * 1000000000ULL + (unsigned long long)st->st_mtim.tv_nsec);
    return static_gzip(f);
}

/* The cached file for `name` at `path`, (re)loaded when it changed. */
static static_file *static_get(admin_static *s, const char *name, const char *path) {
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return NULL;
    static_file *f = s->files;
    while (f && strcmp(f->name, name) != 0) f = f->next;
    if (!f) {
        f = calloc(1, sizeof *f);
        if (!f || !(f->name = strdup(name)) || !(f->path = strdup(path))) {
            if (f) static_file_free(f);
            return NULL;
        }
        f->next = s->files;
        s->files = f;
    }
    if (f->data && f->size == st.st_size && f->mtime.tv_sec == st.st_mtim.tv_sec &&
        f->mtime.tv_nsec == st.st_mtim.tv_nsec)
        return f;
    return static_load(f, &st) == 0 ? f : NULL;
}

static int static_accepts_gzip(struct evhttp_request *req) {
    const char *ae = evhttp_find_header(evhttp_request_get_input_headers(req), "Accept-Encoding");
    const char *g = ae ? strstr(ae, "gzip") : NULL;
    return g && strncmp(g + 4, ";q=0", 4) != 0;
}

static void static_send(struct evhttp_request *req, static_file *f, int immutable) {
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Cache-Control", immutable ? "public, max-age=604800" : "no-cache");
    evhttp_add_header(h, "ETag", f->etag);
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    if (f->gz) evhttp_add_header(h, "Vary", "Accept-Encoding");
    const char *inm = evhttp_find_header(evhttp_request_get_input_headers(req), "If-None-Match");
    if (inm && strstr(inm, f->etag)) {
        evhttp_send_reply(req, 304, "Not Modified", NULL);
        return;
    }
    evhttp_add_header(h, "Content-Type", static_type(f->name));
    int gz = f->gz && static_accepts_gzip(req);
    if (gz) evhttp_add_header(h, "Content-Encoding", "gzip");
    struct evbuffer *b = evbuffer_new();
    if (b) evbuffer_add(b, gz ? f->gz : f->data, gz ? f->gz_len : f->len);
    evhttp_send_reply(req, 200, "OK", b);
    if (b) evbuffer_free(b);
}

/* A plain file name: letters, digits, '-', '_', '.', not starting with '.'. */
static int static_name_ok(const char *n) {
    if (!*n || *n == '.' || strlen(n) > 100) return 0;
    for (const char *p = n; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
              *p == '_' || *p == '.'))
            return 0;
    return 1;
}

void admin_static_serve(admin *a, struct evhttp_request *req, const char *path) {
    admin_static *s = a->files;
    if (httpd_require_method(req, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD) != 0) return;
    char file[4200];
    static_file *f = NULL;
    int immutable = 0;
    if (strcmp(path, "/vendor/chart.min.js") == 0) {
        f = static_get(s, path, s->chart_js);
        immutable = 1;
    } else {
        const char *name = strcmp(path, "/") == 0 ? "index.html" : path + 1;
        if (static_name_ok(name)) {
            snprintf(file, sizeof file, "%s/%s", s->www_dir, name);
            f = static_get(s, name, file);
        }
    }
    if (!f) {
        httpd_reply_error(req, 404, "no such file: %s", path);
        return;
    }
    static_send(req, f, immutable);
}
