# Two entry points for a fresh machine: `make demo` and `make test` (see README.md).
# While working: `make check` before a commit, `make fmt` to format, `make clean` to start over.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Debian packages the tests drive for real: sshd for transfers, containerd for config
# validation, WireGuard tools and the userspace wireguard-go for tunnels, iproute2 for netns,
# shellcheck for installers/install.sh.
DEBS := openssh-server openssh-client containerd wireguard-tools wireguard-go iproute2 procps \
	shellcheck
DEB_BINS := /usr/sbin/sshd /usr/bin/ssh-keygen /usr/bin/sftp /usr/bin/containerd /usr/bin/wg \
	/usr/bin/wireguard-go /usr/sbin/ip /usr/bin/shellcheck

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

test: sysdeps tools $(STAMP) lint typecheck
	$(BIN)/pytest -q -n 2

demo: tools $(STAMP)
	@$(BIN)/python scripts/demo.py

# Everything the targets above and the tools they run leave behind, and nothing else.
clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist demo-out \
		*.egg-info src/*.egg-info tools/node_modules
	find . -path ./.git -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

# The chain toolchain, pinned in tools/package-lock.json: solc-js compiles the contracts offline
# and anvil is the local EVM the contract tests run on. Installed into tools/node_modules
# (ignored by git); Debian's nodejs and npm first when npm is missing and we are root, else the
# contract tests skip with the reason.
TOOLS_STAMP := tools/node_modules/.installed

$(TOOLS_STAMP): tools/package.json tools/package-lock.json
	@if ! command -v npm >/dev/null; then \
		if [ "$$(id -u)" != 0 ]; then echo "not root and no npm: skipping the chain tools"; exit 0; fi; \
		echo "installing Debian packages nodejs npm"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends nodejs npm >/dev/null; \
	fi; \
	cd tools && npm ci --no-audit --no-fund --loglevel=error && touch $(CURDIR)/$@

.PHONY: tools contracts
tools: $(TOOLS_STAMP)

# Rebuilds the committed hub_stub/contracts/*.json (package data: an installed hub deploys and
# calls the contracts from them); tests/contracts checks they match the sources.
contracts: $(TOOLS_STAMP)
	node tools/compile.js hub_stub/contracts
