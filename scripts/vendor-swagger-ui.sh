#!/usr/bin/env bash
# Refreshes the Swagger UI files that taskgate serves at /docs and /control/docs
# (src/taskgate/api/static/swagger-ui/) from the npm registry's swagger-ui-dist package.
#
#   scripts/vendor-swagger-ui.sh            # the newest 5.x
#   scripts/vendor-swagger-ui.sh 5.35.0     # exactly this release
#
# Needs npm (it only downloads the package tarball: `npm pack` runs no install scripts).
# Only what the page loads is kept, byte for byte as published, with the licence texts;
# README.md there is rewritten with the version and checksums. Then run
# `python -m pytest tests/api/test_docs_pages.py tests/api/test_docs_pages_browser.py`.
set -euo pipefail
cd "$(dirname "$0")/.."

SPEC="${1:-5}"
DEST=src/taskgate/api/static/swagger-ui
# What the page needs, and the notices that must travel with it.
FILES=(swagger-ui-bundle.js swagger-ui.css favicon-32x32.png
       LICENSE NOTICE swagger-ui-bundle.js.LICENSE.txt)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

tarball="$(cd "$work" && SCARF_ANALYTICS=false npm pack --silent "swagger-ui-dist@$SPEC")"
tar -xzf "$work/$tarball" -C "$work"
version="$(node -p 'require(process.argv[1]).version' "$work/package/package.json")"
case "$version" in
  5.*) ;;
  *) echo "swagger-ui-dist $version: taskgate's OpenAPI 3.1 documents need Swagger UI 5" >&2; exit 1 ;;
esac

mkdir -p "$DEST"
find "$DEST" -mindepth 1 -maxdepth 1 -type f -delete
for file in "${FILES[@]}"; do
  cp "$work/package/$file" "$DEST/$file"
done

{
  echo "# Swagger UI $version"
  echo
  echo "Taken unchanged from the npm registry's \`swagger-ui-dist@$version\` package"
  echo "(Apache-2.0, see LICENSE and NOTICE; the licences of the code bundled into"
  echo "swagger-ui-bundle.js are in swagger-ui-bundle.js.LICENSE.txt). taskgate serves these"
  echo "files itself at \`/static/swagger-ui/\` for its API pages (src/taskgate/api/docs_pages.py)."
  echo "Only the files those pages load are kept: no source maps, no sample index.html."
  echo
  echo "Do not edit them: refresh with \`scripts/vendor-swagger-ui.sh [VERSION]\` (default: the"
  echo "newest 5.x), which rewrites this file."
  echo
  echo "| file | sha256 |"
  echo "|---|---|"
  for file in "${FILES[@]}"; do
    echo "| $file | $(sha256sum "$DEST/$file" | cut -d' ' -f1) |"
  done
} > "$DEST/README.md"

echo "Swagger UI $version in $DEST"
