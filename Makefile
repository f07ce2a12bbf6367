# darkmap task runner. Set-up is two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LOCKS := requirements-build.lock requirements.lock
# The install stamp's name hashes the locks and pyproject.toml less its [tool.ruff*] and
# [tool.mypy*] sections: a changed dependency reinstalls, a changed lint rule does not.
INSTALL_INPUTS := cat $(LOCKS); awk '/^\[/ {skip = ($$0 ~ /^\[+tool\.(ruff|mypy)/)} !skip' pyproject.toml
STAMP := $(VENV)/.installed-$(shell ($(INSTALL_INPUTS)) | cksum | cut -d' ' -f1)
PIP := $(BIN)/pip --disable-pip-version-check
PIP_TOOLS ?= pip-tools==7.7.0
COMPILE := pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
  --no-emit-index-url --no-emit-find-links
DEMO_WS ?= demo-workspace
PG_DIR ?= /tmp/darkmap-pg-$(shell id -u)
PG_PORT ?= 55432
LOCK_VENV ?= /tmp/darkmap-lock

.PHONY: install demo test test-fast test-tor tor pg-start pg-stop bench lint ruff mypy lock clean browser vendor-web

install: $(STAMP)

# Every file pip installs is checked against a sha256 in a lock (--require-hashes). The build
# back-ends come first, so that sdists (pyicu) and darkmap itself build without isolation: an
# isolated build would download setuptools unchecked. darkmap itself: editable, --no-deps.
$(STAMP):  # no prerequisites: the stamp's name is the hash of what it was installed from
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --require-hashes --no-deps -r requirements-build.lock
	$(PIP) install --quiet --require-hashes --no-build-isolation -r requirements.lock
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	$(PIP) check
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

demo: $(STAMP) bytecode
	$(BIN)/darkmap demo --workspace $(DEMO_WS) --serve

# darkmap's own bytecode, written once: an editable install leaves src/ uncompiled, and
# where PYTHONDONTWRITEBYTECODE is set every command compiled ~50 modules (0.1-0.2 s).
# Python still checks each file's time stamp: an edited module is recompiled as usual.
.PHONY: bytecode
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q src >/dev/null

# The web workbench's browser tests drive Debian's chromium (Playwright's own browser
# download is never used): install the package where it is missing.
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update && apt-get install -y chromium)

# Re-vendor cytoscape.js from the npm registry, integrity-checked (scripts/vendor_web.sh).
vendor-web:
	sh scripts/vendor_web.sh

pg-start:
	@PG_DIR=$(PG_DIR) PG_PORT=$(PG_PORT) bash scripts/pg.sh start

pg-stop:
	@PG_DIR=$(PG_DIR) PG_PORT=$(PG_PORT) bash scripts/pg.sh stop

# Java 17+ for pyspark (the Spark engine's equality tests); installed where missing.
.PHONY: java
java:
	@command -v java >/dev/null 2>&1 || { apt-get update -qq && \
	  (apt-get install -y -qq openjdk-17-jre-headless || \
	   apt-get install -y -qq default-jre-headless); }

# Debian's tor (and tor-gencert) for the crawl over a private Tor network; installed where missing.
.PHONY: tor
tor:
	@command -v tor >/dev/null 2>&1 && command -v tor-gencert >/dev/null 2>&1 || \
	  { apt-get update -qq && apt-get install -y -qq --no-install-recommends tor; }

test: lint pg-start browser java tor bytecode
	DARKMAP_TEST_PG=postgresql://postgres@127.0.0.1:$(PG_PORT)/postgres DARKMAP_TEST_TOR=1 \
	  $(BIN)/python -m pytest -q -p no:cacheprovider

# The crawler end to end over real Tor software: a private Tor network on loopback (tor's
# TestingTorNetwork: 3 authorities, 2 relays, the test market as a v3 onion service, a
# client). Debian's tor is installed where missing. 25-45 s; `make test` runs it too.
test-tor: $(STAMP) tor
	DARKMAP_TEST_TOR=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_crawl_tor.py

bench: $(STAMP)
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b; done

# Fails on any finding of ruff (rules in pyproject [tool.ruff]) or mypy ([tool.mypy]); both run.
lint: $(STAMP)
	@rc=0; $(BIN)/ruff check --output-format concise src tests bench scripts || rc=1; \
	  $(BIN)/mypy || rc=1; exit $$rc

ruff: $(STAMP)
	$(BIN)/ruff check --output-format concise src tests bench scripts

mypy: $(STAMP)
	$(BIN)/mypy

# Re-resolve both locks with hashes after editing requirements*.in. Existing pins are kept
# (pip-compile prefers them); `make lock UPGRADE=--upgrade` moves everything to the newest.
lock:
	rm -rf $(LOCK_VENV) && $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet $(PIP_TOOLS)
	$(LOCK_VENV)/bin/$(COMPILE) $(UPGRADE) -o requirements.lock requirements.in
	$(LOCK_VENV)/bin/$(COMPILE) $(UPGRADE) -o requirements-build.lock requirements-build.in

clean:
	rm -rf $(VENV) $(DEMO_WS) build *.egg-info
