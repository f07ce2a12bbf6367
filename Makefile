# darkmap task runner. Set-up is two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
DEMO_WS ?= demo-workspace
PG_DIR ?= /tmp/darkmap-pg-$(shell id -u)
PG_PORT ?= 55432

.PHONY: install demo test test-fast pg-start pg-stop bench lint lock clean

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/darkmap demo --workspace $(DEMO_WS)

pg-start:
	@PG_DIR=$(PG_DIR) PG_PORT=$(PG_PORT) bash scripts/pg.sh start

pg-stop:
	@PG_DIR=$(PG_DIR) PG_PORT=$(PG_PORT) bash scripts/pg.sh stop

test: $(STAMP) pg-start
	DARKMAP_TEST_PG=postgresql://postgres@127.0.0.1:$(PG_PORT)/postgres \
	  $(BIN)/python -m pytest -q -p no:cacheprovider

bench: $(STAMP)
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b; done

lint: $(STAMP)
	$(BIN)/python -m ruff check src tests bench || true

lock:
	$(PYTHON) -m venv /tmp/darkmap-lock && /tmp/darkmap-lock/bin/pip install -q -r requirements.in \
	  && /tmp/darkmap-lock/bin/pip freeze > requirements.lock

clean:
	rm -rf $(VENV) $(DEMO_WS) build *.egg-info
