"""bench/influx_capture_file.py -- the file bench/influx_capture.py writes and bench/influx_capture_stats.py and
bench/influx_replay.py read: per request a header line "METHOD<TAB>PATH?QUERY<TAB>BODY_BYTES<TAB>CONTENT_ENCODING",
then the body and a newline.

Why: the writer and both readers had their own copy of the format and of how a /write body splits into lines
(sessions 8-9); one copy keeps the three in step."""
import re
import urllib.parse

# a line protocol line starts with a measurement name; any other piece continues the line before it (a newline
# inside the feed point's string field)
LINE_START = re.compile(rb"^[a-z_]+[, ]")


def record(method, path, body, enc=""):
    """One request as the capture file holds it (bytes)."""
    return f"{method}\t{path}\t{len(body)}\t{enc}\n".encode() + body + b"\n"


def read(path):
    """Yields (method, path, body, content_encoding) for each request of the capture file at path."""
    with open(path, "rb") as f:
        while True:
            h = f.readline()
            if not h:
                return
            m, p, n, enc = h.decode().rstrip("\n").split("\t")
            body = f.read(int(n))
            f.read(1)
            yield m, p, body, enc


def split_lines(body):
    """A /write body's line protocol lines (a newline inside a string field kept in its line; the body's final
    newline ends its last line, it is not kept in it)."""
    out = []
    for piece in body.split(b"\n")[:-1] if body.endswith(b"\n") else body.split(b"\n"):
        if out and not LINE_START.match(piece):
            out[-1] += b"\n" + piece
        elif piece:
            out.append(piece)
    return out


def query_text(url, body):
    """The q of a /query request: from its URL (urllib.parse.urlparse's answer), else from its form body."""
    return (urllib.parse.parse_qs(url.query).get("q", [""])[0]
            or urllib.parse.parse_qs(body.decode(errors="replace")).get("q", [""])[0])
