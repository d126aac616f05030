# The two commands: `make run` (set up and serve) and `make test` (set up and test).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test

.PHONY: run test test-e2e browser fuzz typecheck bench lint clean nginx

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(STAMP_TEST): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(STAMP_RUN)

# The checkout's own site is data/ (its feedsvc.toml names the packaged sample posts).
run: $(STAMP_RUN)
	$(BIN)/feedsvc --config data/feedsvc.toml init
	$(BIN)/feedsvc --config data/feedsvc.toml serve --host 127.0.0.1 --port 8000

# Lint and type-check, then the whole suite with coverage (printed at the end; see README).
test: $(STAMP_TEST) nginx
	$(BIN)/ruff check .
	$(BIN)/mypy --strict feedsvc
	$(BIN)/python -m pytest --cov=feedsvc --cov-report=term:skip-covered $(PYTEST_ARGS)

# The browser test (tests/e2e, not part of `make test`): Debian's Chromium, driven by Selenium,
# walks a fresh sample site served by `feedsvc serve`; screenshots go to build/e2e/.
test-e2e: $(STAMP_TEST) browser
	$(BIN)/python -m pytest -p no:cacheprovider tests/e2e $(PYTEST_ARGS)

# Chromium, its driver and the CJK fonts (without them Chinese renders as empty boxes):
# apt runs only when one of them is missing (sudo when not root).
APT_INSTALL := env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends
browser:
	@missing=""; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	[ -x /usr/bin/chromedriver ] || missing="$$missing chromium-driver"; \
	ls /usr/share/fonts/opentype/noto/NotoSansCJK-*.ttc >/dev/null 2>&1 || \
		missing="$$missing fonts-noto-cjk"; \
	if [ -n "$$missing" ]; then \
		sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		echo "apt-get install:$$missing"; \
		$$sudo $(APT_INSTALL) $$missing >/dev/null || \
		{ $$sudo apt-get update >/dev/null && \
		  $$sudo $(APT_INSTALL) $$missing >/dev/null; }; \
	fi

# The fuzzers of `make test` (schemathesis, Hypothesis properties, route/CLI/TOML fuzz) with
# many more examples and fresh random inputs (HYPOTHESIS_PROFILE=fuzz).
fuzz: $(STAMP_TEST)
	HYPOTHESIS_PROFILE=fuzz FUZZ_CLI_EXAMPLES=600 FUZZ_TOML_EXAMPLES=1500 \
		$(BIN)/python -m pytest -q -p no:cacheprovider --hypothesis-show-statistics \
		tests/test_api_contract.py tests/test_cursor_properties.py tests/property \
		$(wildcard tests/test_fuzz_*.py) $(PYTEST_ARGS)

typecheck: $(STAMP_TEST)
	$(BIN)/mypy --strict feedsvc

bench: $(STAMP_TEST)
	$(BIN)/python bench/feeds.py
	@if command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; then $(BIN)/python bench/front.py; \
	else echo "bench/front.py skipped: nginx is not installed (apt-get install nginx-light)"; fi
	@if [ -f bench/related.py ]; then $(BIN)/python bench/related.py; fi
	@if [ -f bench/sources.py ]; then $(BIN)/python bench/sources.py; fi
	@if command -v wrk >/dev/null; then $(BIN)/python bench/metrics.py; fi
	$(BIN)/python bench/websub.py
	$(BIN)/python bench/admin.py

# tests/test_front.py runs Debian's nginx in front of `feedsvc serve`: install it when it is
# missing and apt can (as root); otherwise those tests skip, saying why.
nginx:
	@command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || \
	{ if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get install -y --no-install-recommends nginx-light >/dev/null || \
		{ apt-get update >/dev/null && apt-get install -y --no-install-recommends nginx-light >/dev/null; }; \
	else echo "nginx not found and apt-get unusable here: tests/test_front.py will skip"; fi; }

lint: $(STAMP_TEST)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
