# Two commands on a fresh machine with Python 3.11 and make:
#   make run    set up .venv and run chatd on port 8123, its page on http://localhost:8080/, IRC on 6667
#   make test   set up .venv and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PORT ?= 8123
WEB_PORT ?= 8080
IRC_PORT ?= 6667

.PHONY: setup run test check fuzz bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		--config-settings editable_mode=compat -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/chatd --port $(PORT) --web tcp:$(WEB_PORT) --irc tcp:$(IRC_PORT)

# Lint and types first (seconds), then the suite.
test: check browser-deps redis-deps irc-deps
	$(BIN)/python -m pytest

check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# chatd against the naive baseline, in one run: prints the table of
# docs/performance.md (about 5 minutes).
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# A longer byte-level fuzz of the protocol edge, outside the normal test run.
FUZZ_EXAMPLES ?= 20000
fuzz: $(STAMP)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -p no:cacheprovider fuzz/fuzz_protocol.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis

# Debian's chromium for tests/test_browser.py (never Playwright's own browser
# download).  Installed only as root and only when missing; without root,
# apt-get or a network it says why and carries on, and the browser tests
# skip with that reason.
.PHONY: browser-deps screenshot
browser-deps:
	@sh tools/system-deps.sh browser-deps /usr/bin/chromium "the browser tests" chromium fonts-liberation

# docs/screenshot.png, for docs/web.md: chatd --web on free ports, a browser
# user and a TCP user exchanging a few lines (docs/screenshot.py).
screenshot: $(STAMP) browser-deps
	$(BIN)/python docs/screenshot.py docs/screenshot.png

# Debian's redis-server for tests/test_e2e_redis.py.  Installed only as root
# and only when missing; without root, apt-get or a network it says why and
# carries on, and the Redis tests skip with that reason.  The tests start
# their own redis-server on free ports: whether Debian's service runs does
# not matter, and nothing here starts, stops or disables it.
.PHONY: redis-deps
redis-deps:
	@sh tools/system-deps.sh redis-deps redis-server "the Redis tests" redis-server

# A real IRC client for the IRC listener's end-to-end test: WeeChat without
# a terminal, driven through its FIFO (tests/test_e2e_weechat.py).
.PHONY: irc-deps
irc-deps:
	@sh tools/system-deps.sh irc-deps weechat-headless "the real IRC client test" weechat-headless
