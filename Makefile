# Podium's one Makefile.
#
#   make            build bin/podium-server, bin/podium-scheduler, bin/podium-train
#   make run        install missing Debian packages, build, start PostgreSQL,
#                   migrate, start the server and the scheduler
#   make test       the whole suite against a throwaway PostgreSQL
#   make test SAN=1 the same suite built with AddressSanitizer + UBSan
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

# --- sources -----------------------------------------------------------------
mains_of = $(filter %main.c,$(wildcard $(1)/*.c))
mods_of  = $(filter-out %main.c,$(wildcard $(1)/*.c))
objs     = $(patsubst %.c,$(B)/%.o,$(1))

LIB_OBJ   := $(call objs,$(call mods_of,lib)) $(B)/gen/migrations.o
SRV_OBJ   := $(call objs,$(call mods_of,server))
SCHED_OBJ := $(call objs,$(call mods_of,scheduler))
TRAIN_OBJ := $(call objs,$(call mods_of,trainers))
NN_OBJ    := $(call objs,$(call mods_of,nn))

LIBS := $(B)/libserver.a $(B)/libscheduler.a $(B)/libtrainers.a $(B)/libnn.a $(B)/libpodium.a

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

$(B)/gen/migrations.c: $(MIGRATIONS) scripts/embed-migrations.sh
	@mkdir -p $(dir $@)
	$(Q)sh scripts/embed-migrations.sh $(MIGRATIONS) > $@.tmp && mv $@.tmp $@

$(B)/gen/migrations.o: $(B)/gen/migrations.c
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(B)/libpodium.a: $(LIB_OBJ)
$(B)/libserver.a: $(SRV_OBJ)
$(B)/libscheduler.a: $(SCHED_OBJ)
$(B)/libtrainers.a: $(TRAIN_OBJ)
$(B)/libnn.a: $(NN_OBJ)
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
