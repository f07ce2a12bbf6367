#!/bin/sh
# Re-vendor the workbench's graph library from the npm registry (never a CDN): pack the
# pinned cytoscape release, check the tarball against the registry's integrity hash, and
# copy dist/cytoscape.min.js and its licence into src/darkmap/web/static/vendor/.
# tests/test_web_assets.py checks the copied file against VENDORED.txt.
set -eu
VERSION=3.35.0
INTEGRITY=sha512-sMvBIXiGMnhkCaWz2R06FwF/27MNlS+Tqvi17foO9UhnUg3XGZccKjxsvEqQFAQYMSSZmN5SxYzUYlQ0DOJJ3g==
DEST=$(cd "$(dirname "$0")/.." && pwd)/src/darkmap/web/static/vendor
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "cytoscape@$VERSION" >/dev/null)
got="sha512-$(openssl dgst -sha512 -binary "$tmp/cytoscape-$VERSION.tgz" | base64 -w0)"
if [ "$got" != "$INTEGRITY" ]; then
  echo "cytoscape-$VERSION.tgz: integrity $got, expected $INTEGRITY" >&2
  exit 1
fi
tar -xzf "$tmp/cytoscape-$VERSION.tgz" -C "$tmp" package/dist/cytoscape.min.js package/LICENSE
cp "$tmp/package/dist/cytoscape.min.js" "$DEST/cytoscape.min.js"
cp "$tmp/package/LICENSE" "$DEST/cytoscape.LICENSE"
echo "cytoscape $VERSION vendored into $DEST"
