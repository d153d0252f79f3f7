/* sim.h -- shared state of the Home Assistant simulator.
 *
 * Why one header: the simulator is a single process with one libevent loop
 * and one `sim` struct that the HTTP front door (sim_http.c), the HA protocol
 * (sim_proto.c) and the house model (sim_house.c) all read; keeping the types
 * in one place keeps the modules' narrow interfaces visible. */
#ifndef HOMEIQ_SIM_H
#define HOMEIQ_SIM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <jansson.h>

#include "ws.h"

#define SIM_HA_VERSION "2025.6.1"
#define SIM_BACKPRESSURE_BYTES (4u * 1024 * 1024)
#define SIM_MAX_INBOUND (4u * 1024 * 1024)   /* HA's max_msg_size */
#define SIM_COALESCE_MAX 256

/* ---- growable string buffer (sim_util.c) ----
 * Its own name, not lib/sbuf.h's: this one returns -1 per failed call (the
 * protocol code checks each append) where lib's keeps a sticky flag, and the
 * simulator links homeiq_common, so two sbuf_add() symbols could collide. */
typedef struct simbuf {
    char *p;
    size_t len, cap;
} simbuf;
int simbuf_reserve(simbuf *b, size_t extra);
int simbuf_add(simbuf *b, const void *data, size_t n);
int simbuf_adds(simbuf *b, const char *s);
int simbuf_printf(simbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int simbuf_add_jstr(simbuf *b, const char *s); /* JSON string literal with quotes */
/* The head every state row starts with, {"entity_id":<id>,"<skey>":<state>,"<akey>":<attrs_json>,
 * the caller writes the rest: HA's state object (sim_house.c) and the recorder's history row
 * (sim_history.c) differ only in their keys and their tails. */
int simbuf_state_head(simbuf *b, const char *entity_id, const char *skey, const char *state, const char *akey,
                      const char *attrs_json);
void simbuf_free(simbuf *b);

/* ---- small helpers (sim_util.c) ---- */
uint64_t sim_rand(void);             /* xorshift64*, seeded by sim_seed */
void sim_seed(uint64_t seed);
double sim_rand01(void);
void sim_ulid(long long ts_us, char out[27]);
void sim_isotime(long long ts_us, char out[40]);   /* HA isoformat, "+00:00" */
void sim_epoch_float(long long ts_us, char out[32]);/* Python float repr of seconds */
long long sim_py_us(double epoch_s);              /* datetime.fromtimestamp's microsecond (CPython rule) */
void sim_pyfloat(double v, char out[32]);         /* shortest round-trip repr, like Python/orjson */

/* ---- entities (sim_house.c) ---- */
typedef struct sim_snap {           /* one State of an entity */
    char state[64];
    json_t *attrs;                  /* owned reference */
    char *attrs_json;               /* compact serialisation of attrs */
    long long lc, lu;               /* last_changed, last_updated (= last_reported), microseconds */
    double lcf, luf;                /* the same as HA's raw float epoch (time.time()); lu = sim_py_us(luf) */
    char ctx[27], parent[27];       /* parent "" = null */
    int has_user;
    char *state_json;               /* the full State object */
} sim_snap;

typedef struct sim_entity {
    char *entity_id;
    double interval_s;
    long long next_due;             /* mono us */
    int numeric;                    /* state is a random walk */
    double value, vmin, vmax, vstep;
    int decimals;
    char **states;                  /* enum states (NULL when numeric) */
    size_t nstates;
    double p_state;                 /* chance a tick changes the enum state */
    json_t *base_attrs;             /* owned */
    json_t *state_attrs;            /* {state: {attr overlay}}, owned or NULL */
    char *walk_attr;                /* attribute random walk (climate, weather) */
    double wval, wmin, wmax, wstep;
    int wdecimals;
    double p_unavailable, p_unknown;
    double p_user;                  /* chance a change is a user's call_service */
    char *service_domain;           /* for call_service events (light, switch, ...) */
    int has_state;                  /* cur valid */
    int glitch;                     /* currently unavailable/unknown */
    sim_snap cur, prev;
    int has_prev;
    struct sim_hrow *hist;          /* recorder history, oldest first (sim_history.c) */
    size_t nhist, caphist;
} sim_entity;

/* One recorder row: what HA's states table keeps of a state change. */
typedef struct sim_hrow {
    double lu, lc;                  /* float epoch seconds, as the recorder stores them */
    char *state;
    char *attrs;                    /* compact JSON; shared with the previous row when equal */
    int owns_attrs;
} sim_hrow;

typedef struct sim_automation {
    char *name, *entity_id, *trigger, *to, *target, *service;
} sim_automation;

/* ---- clients ---- */
typedef enum { SUB_EVENTS, SUB_ENTITIES } sub_kind;
typedef struct sim_sub {
    long long id;
    sub_kind kind;
    char *event_type;               /* SUB_EVENTS: NULL = "*" */
    char **entity_ids;              /* SUB_ENTITIES filter, NULL = all */
    size_t nentity_ids;
} sim_sub;

typedef struct sim sim;
typedef struct sim_client {
    sim *s;
    ws_conn *ws;
    int authed;
    int closing;
    int coalesce;
    long long last_id;
    struct event *auth_timer;
    sim_sub *subs;
    size_t nsubs, capsubs;
    simbuf batch;                     /* coalesced events of the current tick */
    int batch_count;
    struct sim_client *prev, *next;
} sim_client;

typedef struct sim_http_conn {
    sim *s;
    struct bufferevent *bev;
    int responded;
    struct sim_http_conn *prev, *next;
} sim_http_conn;

struct sim {
    struct event_base *base;
    struct evconnlistener *listener;
    char *token;
    /* config */
    long long rate, count, seed;
    int load_mode;
    char *scenario_path;
    /* house */
    sim_entity *entities;
    size_t nentities;
    sim_automation *automations;
    size_t nautomations;
    char user_id[33];
    json_t *config_json;            /* get_config result */
    json_t *services_json;          /* get_services result */
    size_t rr;                      /* load-mode round robin */
    long long last_ts;              /* strictly increasing event time */
    int always_on;                  /* the house lives on without subscribers (SIMULATOR_ALWAYS_ON) */
    int history_on;                 /* the recorder/history component is loaded (SIMULATOR_HISTORY) */
    int json_spaced;                /* events as json.dumps spaces them (SIMULATOR_JSON_SPACED) */
    simbuf spaced;                  /* the spaced text of the message being queued */
    long long history_fail;         /* the next N history calls fail (POST /api/sim/history/fail/N) */
    long long history_calls, history_rows, history_purged;
    long long history_max_rows;     /* SIMULATOR_HISTORY_MAX_ROWS: purge beyond (memory bound) */
    FILE *history_file;             /* recorder rows, one JSON line each (SIMULATOR_HISTORY_FILE) */
    FILE *truth_log;                /* every generated event, sent or not (SIMULATOR_TRUTH_LOG) */
    /* generation */
    struct event *gen_timer;
    long long tick_us;
    double credit;
    long long last_tick_mono;
    int paused;
    int backpressure;
    /* stats */
    long long sent, deliveries, paused_backpressure, connections_total, drops, generated;
    long long bytes_sent_events;
    /* sent log */
    FILE *sent_log;
    /* lists */
    sim_client *clients;
    sim_http_conn *http_conns;
    /* registries (sim_registry.c): HA-shaped entries, changed by POST /api/sim/registry/... */
    json_t *reg_floors, *reg_areas, *reg_labels, *reg_devices, *reg_entities;
    int reg_mode;                   /* SIM_REG_FULL / _OLD (no floors, labels) / _USER (non-admin) / _MUTE (no answers) */
    long long reg_calls, reg_changes;
    simbuf ev;                        /* scratch: event body */
    simbuf tmp;                       /* scratch */
};

/* sim_house.c */
int house_load(sim *s, const char *path);
void house_free(sim *s);
void house_tick(sim *s);            /* generation timer body */
void house_start_stop(sim *s);      /* (re)arm or stop generation after a change */
int house_generating(const sim *s);
/* Sends `event` (any bytes: tests play an HA that sends odd JSON) as the
 * "event" of an event message to every events subscription, after what is
 * queued. Returns the number of messages sent. */
int house_inject(sim *s, const char *event, size_t len);
void house_states_json(sim *s, simbuf *out);
void house_rebuild_state(sim *s, sim_entity *e);  /* e->cur.state_json from its fields */
void house_entities_snapshot(sim *s, const sim_sub *sub, simbuf *out);

/* Fires an event (`data`: its data object's JSON text) to the subscriptions of its type,
 * in order after what is queued; not counted as a generated state change. */
void house_fire(sim *s, const char *event_type, const char *data);
void house_flush(sim *s);           /* sends the queued (coalesced) events now */

/* sim_registry.c: the five config/..._registry/list commands, and changes firing ..._registry_updated */
enum { SIM_REG_FULL = 0, SIM_REG_OLD, SIM_REG_USER, SIM_REG_MUTE };
int reg_load(sim *s, json_t *root);                /* the scenario's "registry" section; 0/-1 */
void reg_free(sim *s);
struct sim_client;
void reg_command(struct sim_client *c, long long id, json_t *m);
int reg_control(sim *s, const char *what, simbuf *out); /* HTTP status, body in out */

/* sim_history.c: the recorder and history/history_during_period */
int hist_load(sim *s, const char *path);          /* replays a history file (HA restart); 0/-1 */
void hist_record(sim *s, sim_entity *e);           /* e->cur is a new state change */
void hist_free(sim *s);
struct sim_client;
void hist_command(struct sim_client *c, long long id, json_t *m);

/* sim_proto.c */
sim_client *proto_client_new(sim *s);
void proto_client_start(sim_client *c);     /* after ws_server_accept: auth_required */
void proto_client_free(sim_client *c);       /* unlinks, frees ws too */
void proto_drop_all(sim *s);
int proto_subscribed_clients(const sim *s);
long long proto_subscriptions(const sim *s);
void proto_send_reply(sim_client *c, const char *msg, size_t len);
void proto_send_error(sim_client *c, long long id, const char *code, const char *message);
extern const ws_callbacks proto_ws_callbacks;

/* sim_http.c */
int http_listen(sim *s, const char *bind, int port);
void http_free_all(sim *s);
void sim_stats_json(sim *s, simbuf *out);

#endif
