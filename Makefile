# One-command set-up, tests and demo. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
AIRFLOW_VENV := .venv-airflow
JARS_DIR := .cache/jars
DERBY_JARS_DIR := .cache/derby
DERBY_VERSION := 10.16.1.1
DERBY_ARTIFACTS := org.apache.derby:derbynet:$(DERBY_VERSION) org.apache.derby:derbyclient:$(DERBY_VERSION)
METASTORE_PORT := 1527
READER_VENV := .venv-reader
S3_VENV := .venv-s3
S3_REQUIREMENTS := moto[s3] flask flask-cors
LAKEHOUSE := .cache/lakehouse
DELTA_VERSION := 4.0.1
DELTA_ARTIFACTS := io.delta:delta-spark_2.13:$(DELTA_VERSION) io.delta:delta-storage:$(DELTA_VERSION)
MVN_DEPENDENCY := org.apache.maven.plugins:maven-dependency-plugin:3.8.1
AIRFLOW_REQUIREMENTS := apache-airflow==3.3.2 apache-airflow-providers-apache-spark==6.3.4
PYTEST_ARGS ?=
# Test processes (pytest-xdist); a file's tests stay in one process, which keeps its
# module fixtures built once. 0 runs everything in this process.
PYTEST_WORKERS ?= 2
PYTEST_PARALLEL := -n $(PYTEST_WORKERS) --dist loadfile
DEMO_DIR ?= demo_out

# Spark binds to loopback (the hostname resolves elsewhere) and runs the venv's Python.
export SPARK_LOCAL_IP := 127.0.0.1
export PYSPARK_PYTHON := $(CURDIR)/$(VENV)/bin/python
export PYSPARK_DRIVER_PYTHON := $(CURDIR)/$(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

JOB_STAMP := $(VENV)/.installed
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed
JARS_STAMP := $(JARS_DIR)/.fetched
DERBY_STAMP := $(DERBY_JARS_DIR)/.fetched
READER_STAMP := $(READER_VENV)/.installed
S3_STAMP := $(S3_VENV)/.installed
SPARK_DEFAULTS := $(VENV)/lib/python3.11/site-packages/pyspark/conf/spark-defaults.conf

.PHONY: help setup metastore stop dist test test-slow test-all demo lint clean
help:
	@echo "make setup     create .venv (jobs), .venv-airflow (scheduler), .venv-reader (delta-rs),"
	@echo "               .venv-s3 (a test S3 server), fetch Delta and Derby jars, start the"
	@echo "               shared metastore server"
	@echo "make stop      stop the metastore server and the SQL server"
	@echo "make dist      build dist/*.whl.zip, the project for spark-submit --py-files"
	@echo "make test      setup, then the default test suite (slow tests excluded)"
	@echo "make test-slow setup, then only the slow tests (the daily DAG end to end, ...)"
	@echo "make test-all  setup, then every test, slow ones included"
	@echo "make demo      setup, then the pipeline on sample data (local Spark + Delta)"
	@echo "make lint      ruff over the code"

CHROMIUM := /usr/bin/chromium

setup: $(JOB_STAMP) $(AIRFLOW_STAMP) $(READER_STAMP) $(S3_STAMP) $(JARS_STAMP) $(SPARK_DEFAULTS) $(CHROMIUM) metastore

# Headless Chromium renders the QA report in its test (Debian's package; needs root once).
$(CHROMIUM):
	@if [ "$$(id -u)" != 0 ]; then \
	  echo "Chromium is missing: run 'sudo apt-get update && sudo apt-get install -y chromium'"; \
	  exit 1; fi
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

$(JOB_STAMP): setup.cfg pyproject.toml constraints/job.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -c constraints/job.txt -e '.[test,dev]'
	touch $@

# Airflow's tree (pandas 3, pyarrow >= 18, pyspark-client) conflicts with the job stack.
$(AIRFLOW_STAMP): constraints/airflow.txt
	test -x $(AIRFLOW_VENV)/bin/python || $(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/pip install --quiet --upgrade pip
	$(AIRFLOW_VENV)/bin/pip install --quiet -c constraints/airflow.txt $(AIRFLOW_REQUIREMENTS)
	touch $@

$(JARS_STAMP):
	mkdir -p $(JARS_DIR)
	for artifact in $(DELTA_ARTIFACTS); do \
	  mvn --batch-mode --quiet $(MVN_DEPENDENCY):copy -Dartifact=$$artifact \
	      -DoutputDirectory=$(JARS_DIR) || exit 1; \
	done
	touch $@

# delta-rs readers (services without a JVM): deltalake needs pyarrow >= 16, the job venv
# keeps pyarrow 14 for petastorm, so it gets a venv of its own.
$(READER_STAMP): constraints/reader.txt
	test -x $(READER_VENV)/bin/python || $(PYTHON) -m venv $(READER_VENV)
	$(READER_VENV)/bin/pip install --quiet --upgrade pip
	$(READER_VENV)/bin/pip install --quiet -c constraints/reader.txt deltalake pyarrow
	touch $@

# moto's S3 server, for the test that reads models and index builds from s3:// (boto3 needs
# python-dateutil < 3, the job venv pins 4.0.0, so the server gets a venv of its own).
$(S3_STAMP): constraints/s3.txt
	test -x $(S3_VENV)/bin/python || $(PYTHON) -m venv $(S3_VENV)
	$(S3_VENV)/bin/pip install --quiet --upgrade pip
	$(S3_VENV)/bin/pip install --quiet -c constraints/s3.txt $(S3_REQUIREMENTS)
	touch $@

# Derby's network server and client driver (the rest of Derby ships in pyspark's jars).
$(DERBY_STAMP):
	mkdir -p $(DERBY_JARS_DIR)
	for artifact in $(DERBY_ARTIFACTS); do \
	  mvn --batch-mode --quiet $(MVN_DEPENDENCY):copy -Dartifact=$$artifact \
	      -DoutputDirectory=$(DERBY_JARS_DIR) || exit 1; \
	done
	touch $@

$(SPARK_DEFAULTS): $(JOB_STAMP) $(JARS_STAMP) $(DERBY_STAMP) notellm2_udf/spark/session.py notellm2_udf/cli/spark_defaults.py
	$(VENV)/bin/notellm2 spark-defaults --jars-dir $(JARS_DIR) --lakehouse $(LAKEHOUSE) \
	  --metastore-jars $(DERBY_JARS_DIR) --metastore-port $(METASTORE_PORT) --write

# The shared metastore every Spark process of the venv uses (idempotent: a running one stays).
metastore: $(SPARK_DEFAULTS) $(DERBY_STAMP)
	$(VENV)/bin/notellm2 metastore start --lakehouse $(LAKEHOUSE) --jars-dir $(DERBY_JARS_DIR) \
	  --port $(METASTORE_PORT)

stop:
	-$(VENV)/bin/notellm2 sql-server stop
	-$(VENV)/bin/notellm2 metastore stop --lakehouse $(LAKEHOUSE) --jars-dir $(DERBY_JARS_DIR) \
	  --port $(METASTORE_PORT)

# The project as a pure-Python wheel renamed *.whl.zip, for spark-submit --py-files on
# executors that do not have it installed (README, "Running on a cluster").
dist: $(JOB_STAMP)
	rm -rf dist
	bash scripts/build_dist.sh dist

test: setup
	$(VENV)/bin/pytest -m "not slow" $(PYTEST_PARALLEL) $(PYTEST_ARGS)

test-slow: setup
	$(VENV)/bin/pytest -m slow $(PYTEST_PARALLEL) $(PYTEST_ARGS)

test-all: setup
	$(VENV)/bin/pytest $(PYTEST_PARALLEL) $(PYTEST_ARGS)

demo: setup
	bash scripts/demo.sh $(DEMO_DIR)

lint: $(JOB_STAMP)
	$(VENV)/bin/ruff check notellm2_udf schemas jobs airflow_dags tests benchmarks scripts

clean: stop
	rm -rf $(DEMO_DIR) $(LAKEHOUSE) .pytest_cache dist
