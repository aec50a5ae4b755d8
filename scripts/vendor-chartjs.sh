#!/usr/bin/env bash
# Vendor Chart.js (the console's charts) from the npm registry into chalicelib/console/static/.
#
# The version and the tarball's integrity hash are pinned here. The script checks the hash the
# registry publishes (`npm view chart.js@VERSION dist.integrity`) against the pin, downloads the
# tarball with `npm pack`, checks its own SHA-512 against the pin, and copies the UMD build and
# the licence. Nothing is fetched at run time: the files are committed and packaged with the app.
#
#   scripts/vendor-chartjs.sh            # re-vendor the pinned version (a no-op diff if unchanged)
#   CHARTJS_VERSION=4.x.y CHARTJS_INTEGRITY=sha512-... scripts/vendor-chartjs.sh   # move the pin
set -euo pipefail

VERSION="${CHARTJS_VERSION:-4.6.1}"
INTEGRITY="${CHARTJS_INTEGRITY:-sha512-hJyniucsFmq//EvXYvJ6c6mahPoI3kaxdjVH8awTaJ/fDNWeSqqqArixMJWkWNN6fcYvPU3HneSANFNYtRi61g==}"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$here/chalicelib/console/static"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

published="$(cd "$work" && npm view "chart.js@$VERSION" dist.integrity)"
if [[ "$published" != "$INTEGRITY" ]]; then
    echo "chart.js@$VERSION: the registry publishes $published, the pin is $INTEGRITY" >&2
    exit 1
fi
tarball="$(cd "$work" && npm pack --silent "chart.js@$VERSION")"
actual="sha512-$(openssl dgst -sha512 -binary "$work/$tarball" | base64 -w0)"
if [[ "$actual" != "$INTEGRITY" ]]; then
    echo "chart.js@$VERSION: the downloaded tarball hashes to $actual, expected $INTEGRITY" >&2
    exit 1
fi
tar -xzf "$work/$tarball" -C "$work" package/dist/chart.umd.min.js package/LICENSE.md
grep -q "Chart.js v$VERSION" "$work/package/dist/chart.umd.min.js" || {
    echo "chart.js@$VERSION: dist/chart.umd.min.js does not name version $VERSION" >&2
    exit 1
}
mkdir -p "$dest"
sed "/^\/\/# sourceMappingURL=/d" "$work/package/dist/chart.umd.min.js" >"$dest/chart.umd.min.js"  # the map is not shipped
cp "$work/package/LICENSE.md" "$dest/chart.js-LICENSE.md"
echo "vendored chart.js $VERSION ($INTEGRITY) into ${dest#"$here"/}"
