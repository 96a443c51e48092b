# The two commands the README starts with, and what they depend on.
#   make demo   needs only Python 3 (on Debian, python3-venv: tools/venv.sh installs it when
#               missing): it makes a virtual environment (.venv), installs the package into it
#               and serves the bundled sample log, replayed in a loop, on 127.0.0.1.
#   make test   installs what the tests use as real parts (tools/setup.sh: Debian packages,
#               never a mail server; Postfix, Exim and prometheus-postfix-exporter are unpacked
#               under .cache/), then runs the whole suite in the virtual environment.
# Nothing is installed into the system Python (Debian 12 refuses it: PEP 668).
.PHONY: setup venv demo test bench fuzz soak

PYTHON ?= python3
VENV ?= .venv
# The venv's commands (ndr-exporter, hadolint) come first for the tests' subprocesses.
RUN = PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/python

venv:
	PYTHON=$(PYTHON) ./tools/venv.sh $(VENV)

setup:
	PYTHON=$(PYTHON) VENV=$(VENV) ./tools/setup.sh

demo: venv
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check -e .
	$(RUN) -m exporter.cli demo

# pytest's exit status 5 (no test collected) fails too, with a word saying why.
# PYTEST_ARGS narrows the run, e.g. make test PYTEST_ARGS=tests/e2e
PYTEST_ARGS ?=
test: setup
	$(RUN) -m pytest -q -rfEs $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc = 5 ]; then echo "make test: pytest collected no tests" >&2; fi; exit $$rc

bench: setup
	$(RUN) bench/run.py

# Longer runs of what the suite runs briefly: the parser fuzzer with the compiled scanner under
# AddressSanitizer (FUZZ_SECONDS, default 10 minutes), and the soak test (SOAK_SECONDS, default an hour).
FUZZ_SECONDS ?= 600
fuzz: setup
	$(RUN) fuzz/run.py --asan --seconds $(FUZZ_SECONDS)

SOAK_SECONDS ?= 3600
soak: setup
	NDR_SOAK_SECONDS=$(SOAK_SECONDS) $(RUN) -m pytest -q -s -m soak tests/test_soak.py
