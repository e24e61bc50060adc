#!/usr/bin/env bash
# heap-diff.sh — what grew between two heap profiles of primed, per allocation site, by pprof.
#
#   scripts/heap-diff.sh [options] A B
#
# A and B are each a URL (http://127.0.0.1:6060 or …/debug/pprof/heap: fetched now and
# symbolized by the server's /debug/pprof/symbol, so two instants of one process or two
# instances, even on other machines, compare by function name), a profile saved by
# `go tool pprof -proto` (.pb.gz, already symbolized), or tcmalloc's text profile as
# /debug/pprof/heap serves it (symbolized with --binary, default build/primed).
# The comparison is `go tool pprof -diff_base=A B` on in-use bytes; a site is the allocating
# function (pprof drops malloc/new frames), its stack the largest growing trace through it.
#
# Options:
#   --threshold-kib N  a site "grew" when its in-use bytes rose by more than N KiB (default 64)
#   --requests N       requests served between A and B: growth is also shown per 1,000 requests
#                      and the threshold applies per 1,000 requests
#   --binary PATH      the executable for text profiles (default $PRIMED_BIN or build/primed)
#   --tsv FILE         also write every growing site as "site<TAB>bytes<TAB>stack" (for scripts)
#   --all              list every site that grew, not only those above the threshold
# Exit status: 0 no site grew beyond the threshold, 1 some did (listed), 2 usage or pprof error.
# Example (real output in docs/observability.md, "memory grows"):
#   scripts/heap-diff.sh http://127.0.0.1:6060 http://127.0.0.1:6061
set -uo pipefail

threshold_kib=64 requests=0 tsv="" all=0
binary=${PRIMED_BIN:-$(cd "$(dirname "$0")/.." && pwd)/build/primed}
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --threshold-kib) threshold_kib=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    --binary) binary=$2; shift 2 ;;
    --tsv) tsv=$2; shift 2 ;;
    --all) all=1; shift ;;
    -h|--help) usage ;;
    --) shift; break ;;
    -*) echo "heap-diff.sh: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
done
[ $# -eq 2 ] || usage
[[ $threshold_kib =~ ^[0-9]+$ && $requests =~ ^[0-9]+$ ]] || { echo "heap-diff.sh: numbers only" >&2; exit 2; }

GO=$(command -v go || echo /usr/lib/go/bin/go)
[ -x "$GO" ] || { echo "heap-diff.sh: go not installed (golang-go)" >&2; exit 2; }
work=$(mktemp -d /tmp/heap-diff.XXXXXX)
trap 'rm -rf "$work"' EXIT
# pprof keeps fetched profiles and caches under HOME / PPROF_TMPDIR: keep them in our directory.
export PPROF_TMPDIR="$work/pprof" HOME=${HOME:-$work}
mkdir -p "$PPROF_TMPDIR"

# to_proto SRC OUT — a symbolized profile.proto of SRC in OUT
to_proto() {
  local src=$1 out=$2
  case $src in
    http://*|https://*)
      [[ $src == */debug/* ]] || src="${src%/}/debug/pprof/heap"
      "$GO" tool pprof -proto -symbolize=remote "$src" >"$out" 2>"$work/err" ;;
    *)
      [ -r "$src" ] || { echo "heap-diff.sh: cannot read $src" >&2; return 2; }
      if [ "$(head -c2 "$src" | od -An -tx1 | tr -d ' ')" = 1f8b ]; then
        cp "$src" "$out"
      else
        [ -x "$binary" ] || { echo "heap-diff.sh: $src is a text profile: give --binary" >&2; return 2; }
        "$GO" tool pprof -proto -symbolize=local "$binary" "$src" >"$out" 2>"$work/err"
      fi ;;
  esac || { echo "heap-diff.sh: pprof could not read $1:" >&2; cat "$work/err" >&2; return 2; }
}
to_proto "$1" "$work/a.pb.gz" || exit 2
to_proto "$2" "$work/b.pb.gz" || exit 2

PP=("$GO" tool pprof -sample_index=inuse_space -unit=B -diff_base="$work/a.pb.gz")
"${PP[@]}" -traces "$work/b.pb.gz" >"$work/traces" 2>"$work/err" ||
  { echo "heap-diff.sh: pprof -traces failed:" >&2; cat "$work/err" >&2; exit 2; }

# pprof prints every trace of B with its bytes and every trace of A negated. A site is the
# trace's first frame outside the allocator (pprof drops malloc/new frames it can name; a text
# profile symbolized locally leaves tcmalloc's as "[libtcmalloc…]", skipped here). Its stack:
# the largest growing trace through it.
python3 - "$work/traces" "$threshold_kib" "$requests" "$all" "${tsv:-/dev/null}" <<'EOF'
import re, sys
traces, thr_kib, requests, show_all, tsv = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1", sys.argv[5]
ALLOC = re.compile(r"^(\[libtcmalloc|tc_|malloc$|calloc$|realloc$|__libc_|operator new)")

def b(v):  # "4328B", "-512B"
    return int(v[:-1])

sites = {}
stack = {}  # site -> (bytes, frames)
for block in open(traces).read().split("-----------+-------------------------------------------------------"):
    frames, val = [], None
    for line in block.splitlines():
        m = re.match(r"\s*(-?\d+B)\s+(.+)$", line)
        if m and val is None:
            val = b(m.group(1)); frames.append(m.group(2).strip())
        elif val is not None and line.strip() and not line.strip().startswith("bytes:"):
            frames.append(line.strip())
    while frames and ALLOC.match(frames[0]):
        frames.pop(0)
    if val is None or not frames:
        continue
    sites[frames[0]] = sites.get(frames[0], 0) + val
    if val > 0 and (frames[0] not in stack or val > stack[frames[0]][0]):
        stack[frames[0]] = (val, frames)

scale = 1000.0 / requests if requests else 1.0
unit = "KiB/1000 req" if requests else "KiB"
grew = sorted(((v, s) for s, v in sites.items() if v > 0), key=lambda x: (-x[0], x[1]))
over = [(v, s) for v, s in grew if v / 1024.0 * scale > thr_kib]
with open(tsv, "w") as f:
    for v, s in grew:
        f.write("%s\t%d\t%s\n" % (s, v, " < ".join(stack.get(s, (0, [s]))[1][:12])))
rows = grew if show_all else over
print("heap growth per allocation site (in-use bytes, B minus A; threshold %d %s)" % (thr_kib, unit))
if not rows:
    print("  no site grew by more than %d %s (%d sites grew at all, %d shrank)" % (
        thr_kib, unit, len(grew), sum(1 for v in sites.values() if v < 0)))
for v, s in rows:
    fr = stack.get(s, (0, [s]))[1]
    print("  %-36s %+10.1f %s%s" % (s, v / 1024.0 * scale, unit, "   OVER" if (v, s) in over else ""))
    print("      stack: %s" % " < ".join(fr[:12]))
sys.exit(1 if over else 0)
EOF
