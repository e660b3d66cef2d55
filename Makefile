# Two entry points for a fresh machine: `make demo` and `make test` (see README.md).
# While working: `make check` before a commit, `make fmt` to format, `make clean` to start over.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Debian packages the tests drive for real: sshd for transfers, containerd for config
# validation, WireGuard tools and the userspace wireguard-go for tunnels, iproute2 for netns.
DEBS := openssh-server openssh-client containerd wireguard-tools wireguard-go iproute2 procps
DEB_BINS := /usr/sbin/sshd /usr/bin/ssh-keygen /usr/bin/sftp /usr/bin/containerd /usr/bin/wg /usr/bin/wireguard-go /usr/sbin/ip

.PHONY: all demo test check unit lint typecheck fmt sysdeps venv clean

all: test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

venv: $(STAMP)

# Installs the Debian packages only when running as root and something is missing, so a
# developer without root still gets a working venv (the tests that need them then skip).
sysdeps:
	@missing=""; for b in $(DEB_BINS); do [ -x $$b ] || missing="$$missing $$b"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "not root: skipping apt-get for$$missing"; exit 0; fi; \
	echo "installing Debian packages for$$missing"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends $(DEBS) >/dev/null

lint: $(STAMP)
	$(BIN)/ruff check src hub_stub tests bench scripts
	$(BIN)/ruff format --check src hub_stub tests bench scripts

typecheck: $(STAMP)
	$(BIN)/mypy

# Rewrites files: import order (ruff's I rules) and layout, the two things `lint` checks
# that a tool can fix without judgment.
fmt: $(STAMP)
	$(BIN)/ruff check --select I --fix src hub_stub tests bench scripts
	$(BIN)/ruff format src hub_stub tests bench scripts

unit: $(STAMP)
	$(BIN)/pytest -q -m "not root"

# Before a commit: lint, types and the tests that need neither root nor seconds by design.
check: lint typecheck
	$(BIN)/pytest -q -n 2 -m "not root and not slow"

test: sysdeps $(STAMP) lint typecheck
	$(BIN)/pytest -q -n 2

demo: $(STAMP)
	@$(BIN)/python scripts/demo.py

# Everything the targets above and the tools they run leave behind, and nothing else.
clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist demo-out \
		*.egg-info src/*.egg-info
	find . -path ./.git -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
