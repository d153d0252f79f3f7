/* crc32c.h -- CRC-32C (Castagnoli), the checksum of every spool record.
 *
 * Why CRC-32C and not zlib's CRC-32: x86-64 (SSE4.2) and ARMv8 compute it in
 * hardware, so checksumming a 1 KB event costs well under a microsecond, and
 * the spool must not be the bottleneck of ingestion. A table-driven fallback
 * keeps it portable. */
#ifndef HOMEIQ_CRC32C_H
#define HOMEIQ_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC: crc32c_update(0, buf, n) for a fresh one. */
uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len);

#endif
