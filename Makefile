# Conveniences over dev.py, which needs only Python 3.11+ (see README).
.PHONY: run test bench lab clean
run:
	python3 dev.py run
test:
	python3 dev.py test
bench:
	python3 dev.py bench
lab:
	python3 dev.py lab
clean:
	rm -rf .venv .pytest_cache .hypothesis .benchmarks
