/* ha_client_int.h -- entry points into ha_client.c for tests and fuzzing only
 * (tests/fuzz/fuzz_ha_message.c); the service never calls them.
 *
 * Why: the HA message handler is private and reached only through a live
 * WebSocket. These run exactly the code a socket would, without one: the
 * connection over a bufferevent (one end of a pair, the other plays HA), and
 * one text frame handed to the handler as ws.c would after reassembly. */
#ifndef HOMEIQ_HA_CLIENT_INT_H
#define HOMEIQ_HA_CLIENT_INT_H

#include "ha_client.h"

struct bufferevent;

/* As ha_client_start, over `bev` instead of a socket to the URL: the upgrade
 * request is written to bev at once; the rest (101, auth on open, ...) runs
 * from the loop. Takes bev on 0; -1: not taken, the client is WAITING. */
int ha_client_start_on(ha_client *c, struct bufferevent *bev);

/* One text frame from HA (one message or a JSON array of them), exactly as
 * the WebSocket callback handles it. Only while connected (the state is
 * authenticating, subscribing or subscribed). */
void ha_client_handle_text(ha_client *c, const char *msg, size_t len);

#endif
