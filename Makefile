# Podium's one Makefile.
#
#   make            build bin/podium-server, bin/podium-scheduler, bin/podium-train
#   make run        install missing Debian packages, build, start PostgreSQL,
#                   migrate, start the server and the scheduler
#   make test       the whole suite against a throwaway PostgreSQL
#   make test SAN=1 the same suite built with AddressSanitizer + UBSan
#   make CUDA=0     leave out the CUDA backend (built when nvcc and cuDNN are
#                   found; tests/gpu/run.sh builds and runs its checks on a GPU)
#   make web        the dashboard: npm ci in web/ (when the lock changed), then
#                   the files podium-server serves, copied into build/web/
#
# Layout: each folder of C code (lib/, nn/, server/, scheduler/, trainers/) is a
# static library of its modules plus thin program entry points (*main.c);
# every tests/{unit,integration}/test_*.c is a program of its own, linked
# against all the libraries. Flags come from pkg-config.

ifeq ($(SAN),1)
MODE      := san
BIN       := build/san/bin
SANFLAGS  := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
OPT       := -O1
else
MODE      := release
BIN       := bin
SANFLAGS  :=
OPT       := -O2
endif
B := build/$(MODE)

CC       ?= cc
PKGS     := libmicrohttpd libcjson libpq libuv openblas libcrypto libarchive libpng libjpeg zlib libzstd
TESTPKGS := cmocka libcurl yaml-0.1

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
TEST_CFLAGS := $(shell pkg-config --cflags $(TESTPKGS) 2>/dev/null)
TEST_LIBS   := $(shell pkg-config --libs $(TESTPKGS) 2>/dev/null)

WARN    := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-unused-parameter \
           -Wmissing-prototypes -Wstrict-prototypes -Wvla
CFLAGS  ?= $(OPT) -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE -I. $(WARN) $(CFLAGS) $(SANFLAGS) $(PKG_CFLAGS) -MMD -MP
LDLIBS  := $(PKG_LIBS) -lpthread -lm
ALL_LDFLAGS := $(SANFLAGS) $(LDFLAGS)

VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
ALL_CFLAGS += -DPODIUM_VERSION='"$(VERSION)"'

# --- CUDA (optional) -----------------------------------------------------------
# nn/cuda/*.cu is the CNN engine's CUDA/cuDNN/cuBLAS backend: built into
# libnncuda.a (nvcc, host code without sanitizers) when nvcc and cuDNN are
# found, unless CUDA=0; without it nn/cuda_none.c stands in. CUDA_ARCHS are
# the GPUs compiled for (sm_80 A100, sm_90 H100), plus PTX for newer ones.
CUDA_HOME  ?= /usr/local/cuda
CUDA_ARCHS ?= 80 90
NVCC       ?= $(or $(shell command -v nvcc 2>/dev/null),$(wildcard $(CUDA_HOME)/bin/nvcc))
CUDA_LIBDIR := $(firstword $(wildcard $(CUDA_HOME)/lib64 $(CUDA_HOME)/lib))
CUDNN_FOUND := $(and $(wildcard $(CUDA_HOME)/include/cudnn.h /usr/include/cudnn.h /usr/include/x86_64-linux-gnu/cudnn.h),\
                     $(wildcard $(CUDA_HOME)/lib64/libcudnn.so $(CUDA_HOME)/lib/libcudnn.so /usr/lib/x86_64-linux-gnu/libcudnn.so))
ifeq ($(CUDA),0)
USE_CUDA :=
CUDA_SAYS := ✗ CUDA=0, skipping GPU/CUDA builds
else ifeq ($(NVCC),)
USE_CUDA :=
CUDA_SAYS := ✗ nvcc not found, skipping GPU/CUDA builds
else ifeq ($(CUDNN_FOUND),)
USE_CUDA :=
CUDA_SAYS := ✗ cuDNN not found under $(CUDA_HOME), skipping GPU/CUDA builds
else
USE_CUDA := 1
CUDA_SAYS := ✓ nvcc found, including GPU/CUDA support
endif
ifeq ($(CUDA):$(USE_CUDA),1:)
$(error CUDA=1 but $(CUDA_SAYS))
endif
ifeq ($(MAKELEVEL),0)
$(info $(CUDA_SAYS))
endif
NVCCFLAGS := -O3 -std=c++17 -I. $(foreach a,$(CUDA_ARCHS),-gencode arch=compute_$(a),code=sm_$(a)) \
             -gencode arch=compute_$(lastword $(CUDA_ARCHS)),code=compute_$(lastword $(CUDA_ARCHS)) \
             -Xcompiler -Wall,-Wextra,-Wno-unused-parameter -Werror all-warnings -MMD -MP
ifeq ($(USE_CUDA),1)
LDLIBS += -L$(CUDA_LIBDIR) -Wl,-rpath,$(CUDA_LIBDIR) -Wl,--as-needed -lcudnn -lcublas -lcudart -lstdc++ -Wl,--no-as-needed
endif

# --- sources -----------------------------------------------------------------
mains_of = $(filter %main.c,$(wildcard $(1)/*.c))
mods_of  = $(filter-out %main.c,$(wildcard $(1)/*.c))
objs     = $(patsubst %.c,$(B)/%.o,$(1))

LIB_OBJ   := $(call objs,$(call mods_of,lib)) $(B)/gen/migrations.o
SRV_OBJ   := $(call objs,$(call mods_of,server))
SCHED_OBJ := $(call objs,$(call mods_of,scheduler))
TRAIN_OBJ := $(call objs,$(call mods_of,trainers))
NN_OBJ    := $(call objs,$(filter-out $(if $(USE_CUDA),nn/cuda_none.c),$(call mods_of,nn)))
NNCUDA_OBJ := $(patsubst %.cu,$(B)/%.o,$(wildcard nn/cuda/*.cu))

LIBS := $(B)/libserver.a $(B)/libscheduler.a $(B)/libtrainers.a $(B)/libnn.a \
        $(if $(USE_CUDA),$(B)/libnncuda.a) $(B)/libpodium.a

PROGRAMS := $(BIN)/podium-server $(BIN)/podium-scheduler $(BIN)/podium-train \
            $(if $(wildcard trainers/predict_main.c),$(BIN)/podium-predict)

TEST_SRC := $(wildcard tests/unit/test_*.c tests/integration/test_*.c)
TEST_SUPPORT_OBJ := $(call objs,$(wildcard tests/support/*.c))
TESTS    := $(patsubst tests/%.c,$(B)/tests/%,$(TEST_SRC))

MIGRATIONS := $(sort $(wildcard migrations/*.sql))
JOBS := $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps run test check-tests clean web
# Keep objects that only tests link (make would delete them as intermediates).
.SECONDARY:
# The dashboard needs npm; a build without it (the Docker image) says so
# and goes on with the programs. make run and make test always build it.
NPM := $(shell command -v npm 2>/dev/null)
all: $(PROGRAMS) $(if $(NPM),web)
ifeq ($(NPM),)
	@echo "make: ✗ npm not found, the dashboard (make web) is not built"
endif

# --- libraries and programs --------------------------------------------------
# V=1 shows whole command lines.
Q := $(if $(V),,@)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(B)/%.o: %.cu
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  NVCC    $<")
	$(Q)$(NVCC) $(NVCCFLAGS) -c $< -o $@

$(B)/gen/migrations.c: $(MIGRATIONS) scripts/embed-migrations.sh
	@mkdir -p $(dir $@)
	$(Q)sh scripts/embed-migrations.sh $(MIGRATIONS) > $@.tmp && mv $@.tmp $@

$(B)/gen/migrations.o: $(B)/gen/migrations.c
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(B)/libpodium.a: $(LIB_OBJ)
$(B)/libserver.a: $(SRV_OBJ)
$(B)/libscheduler.a: $(SCHED_OBJ)
$(B)/libtrainers.a: $(TRAIN_OBJ)
$(B)/libnncuda.a: $(NNCUDA_OBJ)
# libnn.a holds nn/cuda_none.o only without CUDA: a stamp rewritten when
# the choice changes (make CUDA=0, then make) rebuilds it.
CUDA_STAMP := $(B)/cuda-choice
$(shell mkdir -p $(B) && (echo "cuda=$(USE_CUDA)" | cmp -s - $(CUDA_STAMP) || echo "cuda=$(USE_CUDA)" > $(CUDA_STAMP)))
$(B)/libnn.a: $(NN_OBJ) $(CUDA_STAMP)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $(NN_OBJ)
$(B)/%.a:
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BIN)/podium-server: $(B)/server/main.o $(LIBS)
$(BIN)/podium-scheduler: $(B)/scheduler/main.o $(LIBS)
$(BIN)/podium-train: $(B)/trainers/train_main.o $(LIBS)
$(BIN)/podium-predict: $(B)/trainers/predict_main.o $(LIBS)
$(PROGRAMS):
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIBS) $(LDLIBS)

# --- tests -------------------------------------------------------------------
$(B)/tests/support/%.o: tests/support/%.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) $(TEST_CFLAGS) -c $< -o $@

$(B)/tests/%: tests/%.c $(TEST_SUPPORT_OBJ) $(LIBS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(TEST_CFLAGS) $(ALL_LDFLAGS) -o $@ $< \
	    $(TEST_SUPPORT_OBJ) $(LIBS) $(TEST_LIBS) $(LDLIBS)

check-tests: $(PROGRAMS) $(TESTS)

# --- the dashboard -----------------------------------------------------------
# web/ holds the sources; npm ci installs the charting library (and the
# browser tests' playwright-core) from package-lock.json when the lock
# changed; build/web/ is what podium-server serves (--web-dir).
WEB_SRC := web/index.html $(wildcard web/src/*.js web/src/*.css web/src/*.svg)

web: build/web/.built

web/node_modules/.podium-installed: web/package.json web/package-lock.json
	@echo "  NPM     web (npm ci)"
	$(Q)cd web && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

build/web/.built: $(WEB_SRC) web/node_modules/.podium-installed
	@echo "  WEB     build/web"
	$(Q)rm -rf build/web.tmp && mkdir -p build/web.tmp/vendor && \
	    cp $(WEB_SRC) build/web.tmp/ && \
	    cp web/node_modules/uplot/dist/uPlot.esm.js web/node_modules/uplot/dist/uPlot.min.css \
	       web/node_modules/uplot/LICENSE build/web.tmp/vendor/ && \
	    touch build/web.tmp/.built && rm -rf build/web && mv build/web.tmp build/web

deps:
	@sh scripts/deps.sh

test: deps
	@$(MAKE) --no-print-directory -j$(JOBS) check-tests web
	@PODIUM_BIN_DIR=$(BIN) PODIUM_TEST_DIR=$(B)/tests sh tests/run.sh

run: deps
	@$(MAKE) --no-print-directory -j$(JOBS) all web
	@sh scripts/run.sh

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)
