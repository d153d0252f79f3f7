#!/usr/bin/env python3
"""bench/json_spaced.py -- rewrites compact JSON with a space after every ':'
and ',' outside strings, the way Python's json.dumps (default separators) and
most pretty-printers space it, without re-reading numbers or strings (so only
the whitespace differs). Why: issue 15 asks that how the JSON is spaced not
change what it costs; the whitespace benchmark sends the same events both ways.
Usage: json_spaced.py < compact > spaced   (any number of lines)"""
import sys


def spaced(text: str) -> str:
    out = []
    in_str = esc = False
    for c in text:
        out.append(c)
        if in_str:
            if esc:
                esc = False
            elif c == "\\":
                esc = True
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c in ":,":
            out.append(" ")
    return "".join(out)


if __name__ == "__main__":
    sys.stdout.write(spaced(sys.stdin.read()))
