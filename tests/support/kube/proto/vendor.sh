#!/usr/bin/env bash
# Re-creates this directory from git clones of kubernetes/api and kubernetes/apimachinery:
#   tests/support/kube/proto/vendor.sh PATH/TO/api PATH/TO/apimachinery [TAG]
# - *.proto: the upstream generated.proto files at TAG, comment and blank lines removed
#   (license headers kept).
# - omitempty.txt: "package.Message.field" for every field Go declares as a non-pointer with
#   `omitempty` (from the types' struct tags): Go writes such a field to protobuf even when it
#   is zero, but leaves its zero out of JSON, while a pointer's explicit zero is kept in both.
set -euo pipefail
API=$1 MACHINERY=$2 TAG=${3:-v0.32.4}
OUT="$(cd "$(dirname "$0")" && pwd)"
strip() { awk 'BEGIN{hdr=1} { if (hdr) { print; if ($0 ~ /^\*\//) hdr=0; next } if ($0 ~ /^[ \t]*\/\// || $0 ~ /^[ \t]*$/) next; print }'; }
omitempty() { # package, then Go sources on stdin
  python3 -c '
import re, sys
pkg, struct = sys.argv[1], None
for line in sys.stdin:
    m = re.match(r"^type (\w+) struct \{", line)
    if m:
        struct = m.group(1)
        continue
    if line.startswith("}"):
        struct = None
    f = re.match(r"^\s+(?:\w+\s+)?(\S+)\s+`json:\"([^\"]*)\".*protobuf:\"[^\"]*name=(\w+)", line)
    if struct and f and not f.group(1).startswith("*") and ",omitempty" in f.group(2):
        print(f"{pkg}.{struct}.{f.group(3)}")
' "$1"
}
rm -f "$OUT"/*.proto "$OUT/omitempty.txt"
for g in core apps batch autoscaling networking rbac; do
  git -C "$API" show "$TAG:$g/v1/generated.proto" | strip >"$OUT/api-$g-v1.proto"
  for f in $(git -C "$API" ls-tree --name-only "$TAG" "$g/v1/" | grep -E '/types\.go$'); do
    git -C "$API" show "$TAG:$f"
  done | omitempty "k8s.io.api.$g.v1" >>"$OUT/omitempty.txt"
done
for p in apis/meta/v1 runtime util/intstr api/resource; do
  git -C "$MACHINERY" show "$TAG:pkg/$p/generated.proto" | strip >"$OUT/apimachinery-${p//\//-}.proto"
done
for f in types.go meta.go; do
  git -C "$MACHINERY" show "$TAG:pkg/apis/meta/v1/$f" 2>/dev/null || true
done | omitempty "k8s.io.apimachinery.pkg.apis.meta.v1" >>"$OUT/omitempty.txt"
sort -o "$OUT/omitempty.txt" "$OUT/omitempty.txt"
