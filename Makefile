# The two commands the README starts with, and what they depend on.
#   make demo   needs only Python: it installs the package and serves the bundled real log.
#   make test   needs the Debian packages the tests use as real parts: tools/setup.sh installs them.
.PHONY: setup demo test bench

setup:
	./tools/setup.sh

demo:
	python3 -m pip install -q --disable-pip-version-check -e .
	python3 -m exporter.cli demo

test: setup
	python3 -m pytest -q

bench: setup
	python3 bench/run.py
