#!/usr/bin/env bash
# Install the worldland CLI into its own virtual environment, then run `worldland doctor`.
#
# From a fresh Ubuntu 22.04/24.04 or Debian 12 host to "what does this machine still need":
#
#   sudo bash install.sh                      # latest release from the package index
#   sudo bash install.sh --version 0.1.0      # a given release
#   sudo bash install.sh --from-wheel worldland-0.1.0-py3-none-any.whl
#   sudo bash install.sh --wheelhouse ./wheels   # no package index: every wheel from DIR
#
# Then follow what doctor says. Running it again changes nothing and says so; a different
# --version or wheel upgrades the environment in place. Nothing outside --prefix and the
# one link in --bin-dir is touched, except python3-venv (or python3.11) installed with apt
# when no Python 3.11+ with venv is present.
set -euo pipefail

PREFIX=/opt/worldland
BIN_DIR=/usr/local/bin
VERSION=""
WHEEL=""
WHEELHOUSE=""
RUN_DOCTOR=1
STAMP_NAME=.worldland-install

usage() {
    cat <<'EOF'
Usage: install.sh [--version X] [--from-wheel FILE | --wheelhouse DIR]
                  [--prefix DIR] [--bin-dir DIR] [--no-doctor]

  --version X        install worldland X from the package index (default: the latest)
  --from-wheel FILE  install this worldland wheel (its dependencies from the index)
  --wheelhouse DIR   install from DIR only, no package index (pip download worldland -d DIR)
  --prefix DIR       the virtual environment (default /opt/worldland)
  --bin-dir DIR      where the worldland link goes (default /usr/local/bin)
  --no-doctor        do not run `worldland doctor` at the end

Exit status: 0 installed (or already installed), 1 failed, 2 usage.
EOF
}

say() { printf 'install.sh: %s\n' "$*"; }
die() {
    printf 'install.sh: error: %s\n' "$1" >&2
    if [ $# -gt 1 ]; then printf '  hint: %s\n' "$2" >&2; fi
    exit 1
}
usage_error() {
    printf 'install.sh: %s\n\n' "$1" >&2
    usage >&2
    exit 2
}

value_of() { # the value of an option given as "--opt VALUE" (checked non-empty)
    if [ $# -lt 2 ] || [ -z "$2" ]; then usage_error "$1 needs a value"; fi
    printf '%s' "$2"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --version) VERSION=$(value_of "$@"); shift 2 ;;
        --from-wheel) WHEEL=$(value_of "$@"); shift 2 ;;
        --wheelhouse) WHEELHOUSE=$(value_of "$@"); shift 2 ;;
        --prefix) PREFIX=$(value_of "$@"); shift 2 ;;
        --bin-dir) BIN_DIR=$(value_of "$@"); shift 2 ;;
        --no-doctor) RUN_DOCTOR=0; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage_error "unknown option: $1" ;;
    esac
done

if [ -n "$WHEEL" ] && [ -n "$WHEELHOUSE" ]; then
    usage_error "--from-wheel and --wheelhouse do not go together"
fi
if [ -n "$WHEEL" ] && [ -n "$VERSION" ]; then
    usage_error "--version and --from-wheel do not go together (the wheel names its version)"
fi
if [ -n "$WHEEL" ]; then
    [ -f "$WHEEL" ] || die "no wheel at $WHEEL"
    WHEEL=$(cd "$(dirname "$WHEEL")" && pwd)/$(basename "$WHEEL")
fi
if [ -n "$WHEELHOUSE" ]; then
    [ -d "$WHEELHOUSE" ] || die "no directory at $WHEELHOUSE"
    WHEELHOUSE=$(cd "$WHEELHOUSE" && pwd)
fi

# ------------------------------------------------------------------ a Python 3.11+ with venv

python_ok() { # usable: 3.11 or newer, and able to make a virtual environment with pip
    "$1" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}

find_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
        if [ -n "$candidate" ] && command -v "$candidate" >/dev/null && python_ok "$candidate"; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

apt_install_python() {
    command -v apt-get >/dev/null || return 1
    [ "$(id -u)" -eq 0 ] || die "no Python 3.11+ with venv, and installing one needs root" \
        "run it again with sudo, or install python3-venv (Python 3.11 or newer) yourself"
    local packages=(python3-venv)
    # Ubuntu 22.04's python3 is 3.10: its universe has 3.11 beside it.
    if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        packages=(python3.11 python3.11-venv)
    fi
    say "installing ${packages[*]} with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}"
}

PY=$(find_python) || { apt_install_python && PY=$(find_python); } ||
    die "no Python 3.11 or newer with the venv module" \
        "install python3.11 and python3.11-venv (or newer), then run this again"

# ------------------------------------------------------------------ the virtual environment

installed_version() { # the worldland version in PREFIX, or nothing
    "$PREFIX/bin/python" -c \
        'import importlib.metadata as m; print(m.version("worldland"))' 2>/dev/null || true
}

wanted_stamp() { # what this run asks for, as recorded in PREFIX/.worldland-install
    if [ -n "$WHEEL" ]; then
        printf 'wheel %s\n' "$(sha256sum "$WHEEL" | cut -d' ' -f1)"
    elif [ -n "$WHEELHOUSE" ]; then
        listing=$(find "$WHEELHOUSE" -maxdepth 1 -type f -printf '%f %s %T@\n' | sort)
        printf 'wheelhouse %s %s\n' "$VERSION" "$(printf '%s' "$listing" | sha256sum | cut -d' ' -f1)"
    elif [ -n "$VERSION" ]; then
        printf 'version %s\n' "$VERSION"
    else
        printf 'latest\n'
    fi
}

pip_install() {
    "$PREFIX/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
}

changed=()
current=$(installed_version)
wanted=$(wanted_stamp)
stamp="$PREFIX/$STAMP_NAME"
recorded=$(cat "$stamp" 2>/dev/null || true)
# Without --version the latest is wanted, and any installed release will do: a second run
# must not depend on the package index (upgrade with --version).
if [ -n "$current" ] && { [ "$recorded" = "$wanted" ] || [ "$wanted" = "latest" ]; }; then
    say "worldland $current is already installed in $PREFIX"
else
    if [ ! -x "$PREFIX/bin/python" ]; then
        # A half-made environment is worse than none: remove it if anything below fails.
        trap 'rm -rf "$PREFIX"; die "installation failed; nothing was left in $PREFIX"' ERR
        say "creating the virtual environment $PREFIX (with $PY)"
        mkdir -p "$(dirname "$PREFIX")"
        "$PY" -m venv "$PREFIX"
        changed+=("created $PREFIX")
    fi
    say "installing worldland into $PREFIX"
    if [ -n "$WHEELHOUSE" ]; then
        pip_install --no-index --find-links "$WHEELHOUSE" --upgrade "worldland${VERSION:+==$VERSION}"
    elif [ -n "$WHEEL" ]; then
        # The wheel itself even when its version is installed (a rebuilt wheel), then
        # whatever it needs that is missing, from the index.
        pip_install --force-reinstall --no-deps "$WHEEL"
        pip_install "$WHEEL"
    else
        pip_install --upgrade "worldland${VERSION:+==$VERSION}"
    fi
    trap - ERR
    printf '%s' "$wanted" >"$stamp"
    changed+=("installed worldland $(installed_version)")
fi

# ------------------------------------------------------------------ the command on PATH

link="$BIN_DIR/worldland"
target="$PREFIX/bin/worldland"
if [ -L "$link" ] && [ "$(readlink "$link")" = "$target" ]; then
    :
elif [ -e "$link" ] && [ ! -L "$link" ]; then
    die "$link exists and is not a link to $target" "move it away, or choose --bin-dir"
else
    mkdir -p "$BIN_DIR"
    ln -sfn "$target" "$link"
    changed+=("linked $link -> $target")
fi

if [ ${#changed[@]} -eq 0 ]; then
    say "nothing changed"
else
    for line in "${changed[@]}"; do say "$line"; done
fi

if [ "$RUN_DOCTOR" -eq 1 ]; then
    say "running: worldland doctor"
    # Not ready yet is the expected answer on a fresh host: join fixes what doctor lists.
    "$link" doctor || true
    if "$link" join --help >/dev/null 2>&1; then
        say "next: sudo worldland join   (what it would do: worldland join --dry-run)"
    else
        say "next: run the fixes doctor listed, in order (docs/provider-guide.md)"
    fi
fi
