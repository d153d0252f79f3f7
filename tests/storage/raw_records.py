#!/usr/bin/env python3
"""raw_records.py FILE... -- prints the raw bytes of every record in FILE(s),
one per line, without re-serialising anything.

Why: "the stored record equals the posted one" must be checked on the bytes
storage answers with. jq (or any JSON library) would re-print both sides in its
own form (7.0 -> 7, \\u00e9 -> e-acute) and hide a difference. Each FILE is a
JSON array of records, or an object with an "events" array (a POST body or a
GET /api/v1/events answer). This scanner only finds where each element of that
array starts and ends (strings and nesting tracked); it never parses a value.
--strip-storage-keys drops the trailing ,"event_id":"<32 hex>","stored_at":"..."
that storage appends to every record it returns.
"""
import re
import sys

STORAGE_KEYS = re.compile(rb',"event_id":"[0-9a-f]{32}","stored_at":"[0-9T:.\-]+Z"}$')


def elements(text, start):
    """Raw elements of the array whose '[' is at text[start]."""
    out, i, depth, in_str, esc, elem_start = [], start + 1, 0, False, False, None
    while i < len(text):
        c = text[i]
        if in_str:
            if esc:
                esc = False
            elif c == 0x5C:  # backslash
                esc = True
            elif c == 0x22:
                in_str = False
        elif c == 0x22:
            in_str = True
            if elem_start is None:
                elem_start = i
        elif c in (0x7B, 0x5B):  # '{' '['
            if elem_start is None:
                elem_start = i
            depth += 1
        elif c in (0x7D, 0x5D):  # '}' ']'
            if depth == 0:  # the array's own ']'
                if elem_start is not None:
                    out.append(text[elem_start:i].rstrip())
                return out
            depth -= 1
        elif c == 0x2C and depth == 0:  # ','
            out.append(text[elem_start:i].rstrip())
            elem_start = None
        elif c not in (0x20, 0x09, 0x0D, 0x0A) and elem_start is None:
            elem_start = i
        i += 1
    raise SystemExit("unterminated array")


def records(text):
    text = text.strip()
    if text.startswith(b'['):
        return elements(text, 0)
    m = re.match(rb'\{\s*"events"\s*:\s*\[', text)
    if not m:
        raise SystemExit("no events array at the start of the file")
    return elements(text, m.end() - 1)


def main():
    args = sys.argv[1:]
    strip = "--strip-storage-keys" in args
    out = sys.stdout.buffer
    for path in (a for a in args if not a.startswith("--")):
        with open(path, "rb") as f:
            for r in records(f.read()):
                if strip:
                    r, n = STORAGE_KEYS.subn(b'}', r)
                    if n != 1:
                        raise SystemExit("record without storage's event_id/stored_at: %r" % r[:200])
                out.write(r + b"\n")


main()
