#!/usr/bin/python3
"""Read sinklab checkpoints with numpy alone.

A checkpoint (runs/NAME/checkpoints/step_NNNNNNN.ckpt) is an .npz-compatible ZIP file, so
``numpy.load(path)`` already opens it; this module adds the integrity checks sinklab itself makes
(every member's CRC32 and the central directory's CRC32 kept in the ZIP comment), the format
version check, and a tidy dictionary. The format is specified in the README ("Checkpoints").

    import sys; sys.path.insert(0, "tools")
    import sinklab_ckpt
    ck = sinklab_ckpt.load("runs/quickstart/checkpoints/step_0000500.ckpt")
    ck["state"]["step"]                         # 500
    ck["params"]["blocks.0.attn.q.weight"]      # float32 array (C, C), PyTorch Linear layout
    ck["adam_m"]["wte"], ck["adam_v"]["wte"]    # Adam moments (SGD: momentum buffer in adam_m)
    print(ck["config"])                         # the fully resolved YAML config of the run
    cfg = sinklab_ckpt.parse_config(ck["config"])  # the same as nested dicts

Command line:  python3 tools/sinklab_ckpt.py CKPT [--config] [--params]
prints a summary (step, tokens, parameter shapes and RMS); exit 0, or 2 with a message naming
the file and the damaged section.
"""
import io
import struct
import sys
import zipfile
import zlib

import numpy as np

FORMAT_VERSION = 1
# The int64 member `state`, in order (train/checkpoint.h CkptState). Fields are only appended.
STATE_FIELDS = ["step", "tokens_seen", "data_pos", "data_epoch"] + ["extra%d" % i for i in range(8)]
COMMENT_PREFIX = b"sinklab checkpoint; central directory crc32="
KINDS = ("param", "adam_m", "adam_v")


class CheckpointError(Exception):
    """A damaged, truncated, wrong-version or foreign file; the message names the file."""


def _check_central_directory(path, raw):
    """The end record must close the file and its comment must carry the directory's CRC32."""
    lo = max(0, len(raw) - 22 - 0xFFFF)
    for i in range(len(raw) - 22, lo - 1, -1):
        if raw[i:i + 4] == b"PK\x05\x06" and i + 22 + struct.unpack("<H", raw[i + 20:i + 22])[0] == len(raw):
            end = i
            break
    else:
        raise CheckpointError("%s: truncated or not a checkpoint (no ZIP end-of-archive record in "
                              "its %d bytes)" % (path, len(raw)))
    cd_size, cd_off, clen = struct.unpack("<IIH", raw[end + 12:end + 22])
    comment = raw[end + 22:end + 22 + clen]
    if not comment.startswith(COMMENT_PREFIX):
        raise CheckpointError("%s: not a sinklab checkpoint (a ZIP file without the sinklab "
                              "signature)" % path)
    if cd_off + cd_size != end:
        raise CheckpointError("%s: central directory out of place (file damaged or truncated)" % path)
    want = int(comment[len(COMMENT_PREFIX):].decode("ascii", "replace")[:8] or "0", 16)
    if zlib.crc32(raw[cd_off:cd_off + cd_size]) & 0xFFFFFFFF != want:
        raise CheckpointError("%s: central directory CRC mismatch (file damaged)" % path)


def _read_members(path, raw):
    """Every member as a numpy array, keyed by its name without '.npy'; CRC-checked."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
    except zipfile.BadZipFile as e:
        raise CheckpointError("%s: unreadable ZIP structure (%s)" % (path, e))
    out = {}
    for info in zf.infolist():
        name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        try:
            data = zf.read(info)
        except zipfile.BadZipFile as e:
            what = "CRC mismatch" if "CRC" in str(e) else str(e)
            raise CheckpointError("%s: section '%s' %s (file damaged)" % (path, name, what))
        try:
            out[name] = np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
        except Exception as e:  # numpy raises ValueError and friends for bad headers
            raise CheckpointError("%s: section '%s' is not a readable .npy array (%s)" % (path, name, e))
    return out


def load(path, verify=True):
    """Reads a checkpoint into a dict:
    format (int), config (str, YAML), state (dict of STATE_FIELDS -> int), rng (uint64[4]),
    params, adam_m, adam_v (dicts name -> float32 array, in the model's parameter order),
    path. Raises CheckpointError on damage or a format version other than FORMAT_VERSION."""
    with open(path, "rb") as f:
        raw = f.read()
    if verify:
        _check_central_directory(path, raw)
    m = _read_members(path, raw)
    for need in ("format", "config", "state", "rng"):
        if need not in m:
            raise CheckpointError("%s: section '%s' missing" % (path, need))
    version = int(m["format"].reshape(-1)[0])
    if version != FORMAT_VERSION:
        raise CheckpointError("%s: checkpoint format version %d, this reader reads version %d"
                              % (path, version, FORMAT_VERSION))
    state_values = [int(x) for x in m["state"].reshape(-1)]
    ck = {
        "path": path,
        "format": version,
        "config": bytes(m["config"].astype(np.uint8)).decode("utf-8"),
        "state": {k: (state_values[i] if i < len(state_values) else 0)
                  for i, k in enumerate(STATE_FIELDS)},
        "rng": m["rng"].astype(np.uint64),
    }
    # members are written in parameter order; dicts keep it
    for kind in KINDS:
        prefix = kind + "/"
        ck[kind if kind != "param" else "params"] = {
            k[len(prefix):]: v for k, v in m.items() if k.startswith(prefix)}
    return ck


# ---- config parsing: PyYAML when present, else a small parser for the YAML sinklab writes ----

def _scalar(s):
    s = s.strip()
    if s.startswith(("'", '"')) and s.endswith(s[0]) and len(s) >= 2:
        return s[1:-1]
    low = s.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("null", "~", ""):
        return None
    for conv in (int, float):
        try:
            return conv(s)
        except ValueError:
            pass
    return s


def _flow(s, i):
    """Parses a flow value starting at s[i]; returns (value, next index)."""
    while s[i] == " ":
        i += 1
    if s[i] in "[{":
        close, items, obj = "]" if s[i] == "[" else "}", [], {}
        i += 1
        while True:
            while s[i] in " ,":
                i += 1
            if s[i] == close:
                return (items if close == "]" else obj), i + 1
            if close == "}":
                j = s.index(":", i)
                key = _scalar(s[i:j])
                val, i = _flow(s, j + 1)
                obj[key] = val
            else:
                val, i = _flow(s, i)
                items.append(val)
    j = i
    while j < len(s) and s[j] not in ",]}":
        j += 1
    return _scalar(s[i:j]), j


def _strip_comment(line):
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


def _tiny_yaml(text):
    """Block mappings, block lists of scalars/flow values, flow [..] and {..}; enough for the
    resolved configs sinklab writes."""
    root = {}
    stack = [(-1, root)]        # (indent, container)
    pending = None              # (indent, parent dict, key) waiting for a nested block
    for raw in text.splitlines():
        line = _strip_comment(raw)
        if not line.strip() or line.strip() in ("---", "..."):
            continue
        indent = len(line) - len(line.lstrip(" "))
        body = line.strip()
        if pending is not None:
            p_indent, parent, key = pending
            pending = None
            if indent > p_indent:
                parent[key] = [] if body.startswith("- ") or body == "-" else {}
                stack.append((p_indent + 1, parent[key]))
        while indent < stack[-1][0]:
            stack.pop()
        container = stack[-1][1]
        if body.startswith("-"):
            item = body[1:].strip()
            container.append(_flow(item + " ", 0)[0] if item else None)
            continue
        key, _, rest = body.partition(":")
        key, rest = _scalar(key), rest.strip()
        if rest:
            container[key] = _flow(rest + " ", 0)[0]
        else:
            container[key] = None
            pending = (indent, container, key)
    return root


def parse_config(text):
    """The checkpoint's YAML config as nested dicts. The small parser above handles what sinklab
    writes (and reads 1e-3 as a number, which PyYAML would not); PyYAML, when installed, is the
    fallback for hand-edited text the small parser cannot follow."""
    try:
        return _tiny_yaml(text)
    except (ValueError, IndexError):
        import yaml
        return yaml.safe_load(text)


# ---- command line ----

def _summary(ck, show_config, show_params):
    st = ck["state"]
    out = ["%s: sinklab checkpoint format %d" % (ck["path"], ck["format"]),
           "step %d  tokens_seen %d  data_pos %d  data_epoch %d"
           % (st["step"], st["tokens_seen"], st["data_pos"], st["data_epoch"]),
           "rng " + " ".join("%016x" % int(x) for x in ck["rng"])]
    extra = [st["extra%d" % i] for i in range(8)]
    if any(extra):
        out.append("extra " + " ".join(str(x) for x in extra))
    params = ck["params"]
    total = sum(a.size for a in params.values())
    out.append("params: %d tensors, %d values; Adam moments: %s"
               % (len(params), total, "yes" if ck["adam_m"] and ck["adam_v"] else "no"))
    width = max([len(k) for k in params] + [4])
    for name, a in params.items():
        if not show_params and len(params) > 12 and name not in list(params)[:6]:
            continue
        rms = float(np.sqrt(np.mean(a.astype(np.float64) ** 2))) if a.size else 0.0
        m = ck["adam_m"].get(name)
        mrms = float(np.sqrt(np.mean(m.astype(np.float64) ** 2))) if m is not None and m.size else 0.0
        out.append("  %-*s %-14s rms %.4g  adam_m rms %.3g" % (width, name, tuple(a.shape), rms, mrms))
    if not show_params and len(params) > 12:
        out.append("  ... %d more (--params lists all)" % (len(params) - 6))
    if show_config:
        out.append("config:")
        out.append(ck["config"].rstrip("\n"))
    else:
        out.append("config: %d lines (--config prints it)" % len(ck["config"].splitlines()))
    return "\n".join(out)


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    flags = set(a for a in argv if a.startswith("--"))
    unknown = flags - {"--config", "--params", "--help"}
    if "--help" in flags or len(args) != 1 or unknown:
        print("usage: sinklab_ckpt.py CKPT [--config] [--params]\n"
              "  summary of a sinklab checkpoint; --config prints its YAML config, --params lists "
              "every parameter", file=sys.stderr if unknown or len(args) != 1 else sys.stdout)
        return 0 if "--help" in flags and not unknown else 2
    try:
        ck = load(args[0])
    except (OSError, CheckpointError) as e:
        print("sinklab_ckpt: %s" % e, file=sys.stderr)
        return 2
    print(_summary(ck, "--config" in flags, "--params" in flags))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
