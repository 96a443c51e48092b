# The two commands the README starts with, and what they depend on.
.PHONY: setup demo test bench

setup:
	./tools/setup.sh

demo: setup
	ndr-exporter demo

test: setup
	python3 -m pytest -q

bench: setup
	python3 bench/run.py
