# Two commands: `make demo` runs the main job, `make test` runs the whole suite.
# Both create .venv on first use (and reuse it after), with everything from requirements.txt.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: setup demo test lint clean

setup: $(INSTALLED)

$(INSTALLED): requirements.txt setup.py
	@test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -r requirements.txt
	$(PYTHON) -m pip install --quiet --no-deps --no-build-isolation -e .
	@# CLIP's BPE vocabulary (for `vla-ros train clip`) ships in this wheel; its imports
	@# need torchvision, which we do not install, so it is only downloaded, never installed.
	$(PYTHON) -m pip download --quiet --no-deps --dest $(VENV)/wheels open-clip-torch==3.3.0
	@# The simulator renders headless through EGL (Mesa); install it where it is missing.
	@$(PYTHON) -m vla_ros.sim.world || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      $$($(PYTHON) -c 'from vla_ros.sim.world import GL_PACKAGES; print(GL_PACKAGES)') \
	    && $(PYTHON) -m vla_ros.sim.world; \
	  else echo 'as root: apt-get install -y libegl1 libegl-mesa0 libgl1-mesa-dri libgles2'; \
	    exit 1; fi; }
	@touch $@

demo: $(INSTALLED)
	$(VENV)/bin/vla-ros demo

# Tests run side by side (pytest-xdist), one worker more than there are cores: the node tests
# spend most of their time waiting on the ROS graph. TEST_WORKERS=0 runs them in one process.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); echo $$(( n < 8 ? n + 1 : 8 )))

test: $(INSTALLED)
	$(PYTHON) -m pytest -n $(or $(TEST_WORKERS),0)

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
