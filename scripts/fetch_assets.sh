#!/usr/bin/env bash
# Fetch the scripts that let the built book render math and widgets with no network:
# MathJax 3, RequireJS and the ipywidgets HTML manager, from the npm registry with `npm pack`.
#
# They go to _vendor/_static/offline/ (git-ignored). _config.yml passes _vendor to Sphinx as
# html_extra_path, so the build copies them to _build/html/_static/offline/.
# Each tarball is checked against a pinned SHA-256; only the files the book uses are kept (about 15 MB).
#
# Usage: scripts/fetch_assets.sh [DEST]     (DEST defaults to _vendor; re-running is a no-op)
set -euo pipefail
cd "$(dirname "$0")/.."

dest="${1:-_vendor}"
out="$dest/_static/offline"

# package spec, tarball name, SHA-256 of the tarball
packages=(
  "mathjax@3.2.2                       mathjax-3.2.2.tgz                      1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09"
  "requirejs@2.3.4                     requirejs-2.3.4.tgz                    583693b373f6ab0528ea6644fab5cdb5822011c9b5b1ff1615590d5f2f473dcd"
  "@jupyter-widgets/html-manager@1.0.6 jupyter-widgets-html-manager-1.0.6.tgz 6c198ceb99ba7e7526990a1de16e8147ad7d3a714e3fb06741183623c04b5f6e"
)
wanted="$(printf '%s\n' "${packages[@]}" | awk '{print $1, $3}')"

if [[ -f "$out/.fetched" && "$(cat "$out/.fetched")" == "$wanted" ]]; then
  echo "offline assets: up to date in $out"
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "error: npm is needed to fetch the book's offline assets (Debian: apt-get install npm)" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

specs=()
for entry in "${packages[@]}"; do
  read -r spec _ _ <<<"$entry"
  specs+=("$spec")
done
(cd "$work" && npm pack --silent "${specs[@]}" >/dev/null)

for entry in "${packages[@]}"; do
  read -r spec tarball sha <<<"$entry"
  if ! echo "$sha  $work/$tarball" | sha256sum --check --status; then
    echo "error: $tarball ($spec) does not have the expected SHA-256 $sha" >&2
    exit 1
  fi
done

staging="$work/offline"
mkdir -p "$staging/mathjax" "$staging/requirejs" "$staging/html-manager/dist"

# MathJax: the combined TeX+MathML → CommonHTML component, plus what it loads on demand
# (TeX extensions, the CHTML fonts, the accessibility and menu components, speech rules).
tar -xzf "$work/mathjax-3.2.2.tgz" -C "$work" \
  package/es5/tex-mml-chtml.js package/es5/input package/es5/output/chtml.js package/es5/output/chtml \
  package/es5/a11y package/es5/ui package/es5/sre package/es5/adaptors package/LICENSE
cp -r "$work"/package/es5/. "$staging/mathjax/"
cp "$work/package/LICENSE" "$staging/mathjax/LICENSE"
rm -rf "$work/package"

tar -xzf "$work/requirejs-2.3.4.tgz" -C "$work" package/require.js   # its licence is in its header
cp "$work/package/require.js" "$staging/requirejs/require.js"
rm -rf "$work/package"

# The widget manager: the AMD bundle and the font files its stylesheet refers to.
tar -xzf "$work/jupyter-widgets-html-manager-1.0.6.tgz" -C "$work" package/dist package/LICENSE
cp "$work"/package/dist/embed-amd.js "$staging/html-manager/dist/"
find "$work/package/dist" -maxdepth 1 -type f \
  \( -name '*.woff' -o -name '*.woff2' -o -name '*.ttf' -o -name '*.eot' -o -name '*.svg' \) \
  -exec cp {} "$staging/html-manager/dist/" \;
cp "$work/package/LICENSE" "$staging/html-manager/LICENSE"

echo "$wanted" >"$staging/.fetched"
rm -rf "$out"
mkdir -p "$(dirname "$out")"
mv "$staging" "$out"
echo "offline assets: fetched into $out ($(du -sh "$out" | cut -f1))"
