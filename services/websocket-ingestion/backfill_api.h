/* backfill_api.h -- HTTP routes of the backfill (see backfill_api.c). Owner: main.c. */
#ifndef HOMEIQ_BACKFILL_API_H
#define HOMEIQ_BACKFILL_API_H

#include "ingest.h"

#include <jansson.h>

/* Routes /api/v1/backfill and /api/v1/backfill/import on in->hd. 0/-1. */
int backfill_api_init(ingest *in);
/* The "backfill" object of /health and GET /api/v1/backfill (null without HA). */
json_t *backfill_api_json(ingest *in);

#endif
