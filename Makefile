# Set-up and everyday commands. The README's two commands are `make demo` and `make test`;
# both create .venv and install everything on first use.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# Files that change what `pip install .` puts into the venv (messages, executables, share/).
PACKAGE_FILES := $(shell git ls-files bharnet_ros msg scripts launch config models CMakeLists.txt \
                   package.xml pyproject.toml 2>/dev/null)
# ROS 2 stays on this machine, logs stay in the tree.
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST
export FASTDDS_DEFAULT_PROFILES_FILE ?= $(CURDIR)/config/fastdds.xml
export ROS_HOME ?= $(CURDIR)/.ros
export ROS_LOG_DIR ?= $(CURDIR)/.ros/log
export GLOG_minloglevel ?= 2

.PHONY: setup test lint format demo model lock clean check-system

setup: $(VENV)/.installed

check-system:
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 (apt-get install python3.11 python3.11-venv python3.11-dev)"; exit 1; }
	@command -v cmake >/dev/null && command -v g++ >/dev/null || { echo "error: cmake and g++ are needed to build msg/; run: apt-get install cmake g++"; exit 1; }

$(VENV)/.dependencies: requirements.lock | check-system
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	touch $@

$(VENV)/.installed: $(VENV)/.dependencies $(PACKAGE_FILES)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-build-isolation --no-deps .
	touch $@

test: setup lint
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The main job on a built-in input: scripted synthetic gestures through the real ROS graph.
# `make demo VIDEO=clip.mp4` runs the full pipeline (MediaPipe included) on a video instead.
VIDEO ?=
demo: setup
	$(BIN)/bharnet demo $(if $(VIDEO),--video $(VIDEO))

# Reproduce models/*.onnx and the model card's figures (about 30-60 minutes on 2 CPU cores).
model: setup
	$(BIN)/bharnet synth -o data/synth_train --per-class 100 --seed 0 --force
	$(BIN)/bharnet synth -o data/synth_test --per-class 20 --seed 1 --force
	$(BIN)/bharnet import mpdata ../shared/data/mp_holistic_signs -o data/real_signs.npz --rename iloveyou=i_love_you
	rm -rf runs/synth_cpu runs/synth_body_expert runs/synth_hand_expert runs/eval
	$(BIN)/bharnet train config/train/synth_cpu.yaml progress=false --train data/synth_train --out runs/synth_cpu
	$(BIN)/bharnet train config/train/synth_body_expert.yaml epochs=12 progress=false --train data/synth_train --out runs/synth_body_expert
	$(BIN)/bharnet train config/train/synth_hand_expert.yaml epochs=12 progress=false --train data/synth_train --out runs/synth_hand_expert
	$(BIN)/bharnet export runs/synth_cpu/last.pt -o models/bharnet_e.onnx
	$(BIN)/bharnet export runs/synth_cpu/last.pt -o models/bharnet_e_expert_only.onnx --expert-only
	for m in models/bharnet_e.onnx models/bharnet_e_expert_only.onnx runs/synth_body_expert/last.pt runs/synth_hand_expert/last.pt; do \
	  n=$$(basename $$(dirname $$m))_$$(basename $$m); \
	  $(BIN)/bharnet eval $$m data/synth_test --no-progress --out runs/eval/$$n/synth_test && \
	  $(BIN)/bharnet eval $$m data/real_signs.npz --no-progress --out runs/eval/$$n/real_signs || exit 1; \
	done

lock:
	$(BIN)/python .ci/lock.py > requirements.lock

clean:
	rm -rf build out .ros .pytest_cache .ruff_cache
