# Set-up and everyday commands. The README's two commands are `make demo` and `make test`;
# both create .venv and install everything on first use.
PYTHON ?= python3.11
PIP_ARGS ?=  # e.g. --extra-index-url https://download.pytorch.org/whl/cpu (torch's CPU build)
VENV ?= .venv
BIN := $(VENV)/bin
# Files that change what `pip install .` puts into the venv (messages, executables, share/).
PACKAGE_FILES := $(shell git ls-files bharnet_ros msg scripts launch config models CMakeLists.txt \
                   package.xml pyproject.toml 2>/dev/null)
# ROS 2 stays on this machine, logs stay in the tree.
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST
export FASTDDS_DEFAULT_PROFILES_FILE ?= $(CURDIR)/config/fastdds_localhost.xml
export ROS_HOME ?= $(CURDIR)/.ros
export ROS_LOG_DIR ?= $(CURDIR)/.ros/log
export GLOG_minloglevel ?= 2

.PHONY: setup test lint format demo model model-cv people-curve teach-curve fuzz mutation lock clean check-system

setup: $(VENV)/.installed

check-system:
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 (apt-get install python3.11 python3.11-venv python3.11-dev)"; exit 1; }
	@command -v cmake >/dev/null && command -v g++ >/dev/null || { echo "error: cmake and g++ are needed to build msg/; run: apt-get install cmake g++"; exit 1; }
	@$(PYTHON) -c "import os, sysconfig; raise SystemExit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))" || { echo "error: the messages are built against Python's headers (Python.h); run: apt-get install python3.11-dev"; exit 1; }
	@/sbin/ldconfig -p | grep -q 'libGL\.so\.1' && /sbin/ldconfig -p | grep -q 'libgthread-2\.0\.so\.0' || { echo "error: OpenCV (from MediaPipe) needs libGL and GLib; run: apt-get install libgl1 libglib2.0-0"; exit 1; }

$(VENV)/.dependencies: requirements.lock | check-system
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(PIP_ARGS) -r requirements.lock
	touch $@

$(VENV)/.installed: $(VENV)/.dependencies $(PACKAGE_FILES)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-build-isolation --no-deps .
	touch $@

test: setup lint
	$(BIN)/pytest

# A long property-based search of the skeleton message path (the short one runs in `make test`).
fuzz: setup
	BHARNET_FUZZ_EXAMPLES=3000 $(BIN)/pytest -q test/nodes/test_fuzz.py

# Mutation testing (docs/testing.md, with each module's score and time): mutmut over the modules of
# [tool.mutmut] in pyproject.toml, one at a time with only its own test file. A benchmark, not a
# gate, and not part of `make test`. `make mutation MUTATE="smoothing resample"`: some modules only.
MUTMUT_VERSION := 3.8.1
MUTATE ?=
mutation: setup
	$(BIN)/pip show mutmut 2>/dev/null | grep -qx "Version: $(MUTMUT_VERSION)" || \
	  $(BIN)/pip install --quiet --disable-pip-version-check mutmut==$(MUTMUT_VERSION)
	$(BIN)/python .ci/mutation.py $(MUTATE)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The main job on a built-in input: real people's gestures (../shared/data/hri_gestures) through the
# real ROS graph, or scripted synthetic gestures where those recordings are absent.
# `make demo VIDEO=clip.mp4` runs the full pipeline (MediaPipe included) on a video instead.
VIDEO ?=
export VIDEO  # read by the shell as one word, whatever its spaces or quotes
demo: setup
	$(BIN)/bharnet demo --force $(if $(VIDEO),--video "$$VIDEO")

# Data of the default model (models/README.md): six HRI people, four signers, synthetic hand shapes.
SHARED ?= ../shared/data
SYNTH_EXTRA := thumbs_up,thumbs_down,ok_sign,victory_sign,pointing,fidget,clap
data/hri.npz:
	$(BIN)/bharnet import videos $(SHARED)/hri_gestures --pattern "{label}_{take}_{distance}_{framing}" \
	  -o $@ --jobs 2 --no-progress --force
data/signs.npz:
	$(BIN)/bharnet import mpdata $(SHARED)/mp_holistic_signs -o $@ --rename iloveyou=i_love_you --no-progress --force
data/synth_extra/index.csv:
	$(BIN)/bharnet synth -o data/synth_extra --per-class 30 --seed 0 --classes $(SYNTH_EXTRA) --force
MODEL_DATA := data/hri.npz data/signs.npz data/synth_extra/index.csv

# Reproduce models/ (about an hour on 2 CPU cores, 15 minutes of it the pose stage on 270 clips):
# the body and hand experts on the HRI people first, then BHaRNet-E started from them (paper IV-A).
# The temperature, the none threshold and the distance threshold come from
# config/train/real_cpu_calibration.json, which `make model-cv` writes from people the folds never
# saw; the feature distance is measured against the config's training data (--distance-from).
# An expert counts as trained once `finished` is written after its last epoch (last.pt is written
# after every epoch, so an interrupted training would otherwise pass for a finished one).
EXPERTS := runs/real_cpu_body/finished runs/real_cpu_hand/finished
INIT_EXPERTS = model.init.body=runs/$(1)_body model.init.hand=runs/$(1)_hand
runs/real_cpu_%/finished: data/hri.npz
	rm -rf runs/real_cpu_$*
	$(BIN)/bharnet train config/train/real_cpu_$*_expert.yaml progress=false --out runs/real_cpu_$*
	touch $@

model: setup $(MODEL_DATA)
	rm -rf runs/real_cpu $(dir $(EXPERTS))
	$(MAKE) $(EXPERTS)
	$(BIN)/bharnet train config/train/real_cpu.yaml $(call INIT_EXPERTS,real_cpu) progress=false --out runs/real_cpu
	$(BIN)/bharnet export runs/real_cpu/last.pt -o models/bharnet_e.onnx --force \
	  --calibration config/train/real_cpu_calibration.json --distance-from config/train/real_cpu.yaml
	$(BIN)/bharnet export runs/real_cpu/last.pt -o models/bharnet_e_expert_only.onnx --expert-only --force \
	  --calibration config/train/real_cpu_calibration.json --distance-from config/train/real_cpu.yaml
	cp runs/real_cpu/last.pt models/bharnet_e.pt
	$(BIN)/bharnet open-set --model models/bharnet_e_expert_only.onnx $(SHARED)/videos/kinetics_tai_chi.mp4 \
	  $(SHARED)/videos/hand_gestures_closeup.mp4 $(SHARED)/videos/sign_dobrii_den.mp4 \
	  $(SHARED)/videos/ntu_two_person_hug.avi --out runs/open_set --force

# The model card's figures on people the model never saw (several hours on 2 CPU cores): one fold per
# HRI person, each started from experts that never saw that person either, whose held-out scores
# calibrate the shipped model (the robot's setting); one per signer in its own folder (the HRI
# experts never saw a signer); then the streams of real clips, each person scored by their own fold.
# Rerun after an interruption: it continues where it stopped (finished folds and epochs stay).
HRI_PEOPLE := S1,S2,S3,S4,S5,S6
model-cv: setup $(MODEL_DATA) $(EXPERTS)
	$(BIN)/bharnet train config/train/real_cpu_body_expert.yaml progress=false --loso $(HRI_PEOPLE) --out runs/cv_body
	$(BIN)/bharnet train config/train/real_cpu_hand_expert.yaml progress=false --loso $(HRI_PEOPLE) --out runs/cv_hand
	$(BIN)/bharnet train config/train/real_cpu.yaml $(call INIT_EXPERTS,cv) progress=false \
	  --loso $(HRI_PEOPLE) --out runs/cv
	cp runs/cv/calibration.json config/train/real_cpu_calibration.json
	$(BIN)/bharnet train config/train/real_cpu.yaml $(call INIT_EXPERTS,real_cpu) progress=false \
	  --loso 25kamalesh,AkashSharma095,Atulkoirala,Bhavyagokhroo --out runs/cv_signers
	$(BIN)/bharnet streams $(SHARED)/hri_gestures --dataset data/hri.npz --cv runs/cv --expert-only \
	  --subjects $(HRI_PEOPLE) --out runs/streams --force

# Accuracy against the number of people trained on (models/README.md, about 90 minutes on 2 CPU
# cores): the HRI-only recipe, S2, S4 and S5 held out, each fold trained on 1 to 5 of the others;
# then three people again, started from experts trained on the same three.
HRI_ONLY := config/train/real_cpu.yaml "data.train=[data/hri.npz]" "data.relabel={}" epochs=50 \
  data.class_balance=0 model.test_mirror=false progress=false
people-curve: setup data/hri.npz
	for k in 1 2 3 4 5; do $(BIN)/bharnet train $(HRI_ONLY) --loso S2,S4,S5 --train-people $$k \
	  --out runs/people/k$$k || exit 1; done
	for e in body hand; do $(BIN)/bharnet train config/train/real_cpu_$${e}_expert.yaml progress=false \
	  --loso S2,S4,S5 --train-people 3 --out runs/people_$$e/k3 || exit 1; done
	$(BIN)/bharnet train $(HRI_ONLY) model.init.body=runs/people_body/k3 model.init.hand=runs/people_hand/k3 \
	  --loso S2,S4,S5 --train-people 3 --out runs/people_e/k3

# The learning curve of docs/teaching.md (about 100 minutes on 2 CPU cores): three base models
# without five HRI gestures, each leaving one person out and started from body and hand experts of
# the same data (as the shipped model is), then those gestures taught from one or two people's
# takes and measured on the person left out; the same three models trained with every gesture from
# the start as references; and three signs taught from the signers, to the first base and to all three.
TEACH_OLD := [attention,back,continue,left,'no',random,right,static,turnback,'yes']
TEACH_BASES := runs/teach_base/fold_S4/last.pt runs/teach_base/fold_S5/last.pt runs/teach_base/fold_S6/last.pt
TEACH_FOLD = "data.exclude_subjects=[$$p]" progress=false
# A run counts as trained once `finished` is written after its last epoch; an interrupted one
# (last.pt is written after every epoch) is trained again.
teach-curve: setup data/hri.npz data/signs.npz
	for p in S4 S5 S6; do for r in teach teach_all; do \
	  if [ $$r = teach ]; then c="data.classes=$(TEACH_OLD)"; else c="data.classes=[]"; fi; \
	  for e in body hand; do f=runs/$${r}_$$e/fold_$$p; test -f $$f/finished || { rm -rf $$f && \
	    $(BIN)/bharnet train config/train/real_cpu_$${e}_expert.yaml "$$c" $(TEACH_FOLD) \
	    --out $$f && touch $$f/finished; } || exit 1; done; \
	  f=runs/$${r}_base/fold_$$p; test -f $$f/finished || { rm -rf $$f && \
	  $(BIN)/bharnet train config/train/real_cpu.yaml "data.train=[data/hri.npz]" "data.relabel={}" "$$c" \
	    $(TEACH_FOLD) data.class_balance=0 epochs=40 model.init.body=runs/$${r}_body/fold_$$p \
	    model.init.hand=runs/$${r}_hand/fold_$$p --out $$f && touch $$f/finished; } || exit 1; done; done
	$(BIN)/bharnet teach curve --base $(TEACH_BASES) --data data/hri.npz --new come,greeting,shrug,slowdown,stop \
	  --reference runs/teach_all_base/fold_S4/last.pt runs/teach_all_base/fold_S5/last.pt \
	  runs/teach_all_base/fold_S6/last.pt --takes 1,2,3,4,6 --out runs/teach_curve/hri --force
	$(BIN)/bharnet teach curve --base runs/teach_base/fold_S6/last.pt --data data/signs.npz data/hri.npz \
	  --new hello,thanks,i_love_you --takes 1,3,5,10 --out runs/teach_curve/signs --force
	$(BIN)/bharnet teach curve --base $(TEACH_BASES) --data data/signs.npz data/hri.npz \
	  --new hello,thanks,i_love_you --takes 1,3,5,10 --test-mirror --out runs/teach_curve/signs3 --force

lock:
	$(BIN)/python .ci/lock.py > requirements.lock

clean:
	rm -rf build out .ros .pytest_cache .ruff_cache .mutmut mutants
