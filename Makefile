# The one Makefile of meshd. build.sh drives it; it can also be used alone once the
# dependencies are built (vendor/deps.sh):
#   make                 build/meshd: static, musl, stripped
#   make FLAVOR=san      build/san/{meshd,unit_tests}: glibc, AddressSanitizer + UBSan
#   make FLAVOR=fuzz fuzz  build/fuzz/fuzz_*: clang + libFuzzer
#   make unit            the unit-test runner of the flavor
FLAVOR ?= musl
DEPS_DIR ?= build/deps
OUT := build/$(FLAVOR)

WARN := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes \
        -Wno-missing-field-initializers
BASE := -std=gnu11 -D_GNU_SOURCE -DNGHTTP2_STATICLIB -DYAML_DECLARE_STATIC -fno-strict-aliasing $(WARN)

ifeq ($(FLAVOR),musl)
  CC := musl-gcc
  DEPS := $(DEPS_DIR)/musl
  OPT := -O2 -ffunction-sections -fdata-sections -fno-asynchronous-unwind-tables -fno-unwind-tables
  LDFLAGS := -static -Wl,--gc-sections -s
  LIBC := musl $(shell dpkg-query -W -f '$${Version}' musl-dev 2>/dev/null)
  BIN := build/meshd
else ifeq ($(FLAVOR),san)
  CC := gcc
  DEPS := $(DEPS_DIR)/host
  OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
  LDFLAGS := -fsanitize=address,undefined
  LIBC := glibc
  BIN := $(OUT)/meshd
else ifeq ($(FLAVOR),fuzz)
  CC := clang
  DEPS := $(DEPS_DIR)/host
  OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
         -fno-sanitize-recover=all -DMESHD_FUZZ=1
  LDFLAGS := -fsanitize=fuzzer,address,undefined
  LIBC := glibc
  BIN := $(OUT)/meshd
else
  $(error FLAVOR must be musl, san or fuzz)
endif

# The image build passes GIT_COMMIT in: its build context has no .git.
GIT_COMMIT ?= $(shell git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)

CFLAGS := $(BASE) $(OPT) -Isrc -I$(DEPS)/include -I$(OUT)/gen $(EXTRA_CFLAGS)
LIBS := -L$(DEPS)/lib -lnghttp2 -lev -lbearssl -lyaml

LIB_SRC := $(sort $(wildcard src/core/*.c src/proxy/*.c src/controller/*.c src/inject/*.c \
                                src/init/*.c src/cli/*.c))
# SKIP: sources to leave out of this build (work in progress in the same tree).
LIB_SRC := $(filter-out $(SKIP),$(LIB_SRC))
LIB_OBJ := $(LIB_SRC:%.c=$(OUT)/obj/%.o)
MAIN_OBJ := $(OUT)/obj/src/main.o
UNIT_SRC := test/unit/harness.c $(sort $(wildcard test/unit/t_*.c))
UNIT_SRC := $(filter-out $(SKIP),$(UNIT_SRC))
UNIT_OBJ := $(UNIT_SRC:%.c=$(OUT)/obj/%.o)
FUZZ_SRC := $(filter-out $(SKIP),$(sort $(wildcard test/fuzz/fuzz_*.c)))
FUZZ_BIN := $(FUZZ_SRC:test/fuzz/%.c=$(OUT)/%)

all: $(BIN)

$(BIN): $(MAIN_OBJ) $(LIB_OBJ)
	$(CC) $(OPT) -o $@ $^ $(LIBS) $(LDFLAGS)

unit: $(OUT)/unit_tests
$(OUT)/unit_tests: $(UNIT_OBJ) $(LIB_OBJ)
	$(CC) $(OPT) -o $@ $^ $(LIBS) $(filter-out -s,$(LDFLAGS))

fuzz: $(FUZZ_BIN)
# libFuzzer declares the entry point itself
$(OUT)/obj/test/fuzz/%.o: OBJ_CFLAGS := -Wno-missing-prototypes
$(OUT)/fuzz_%: $(OUT)/obj/test/fuzz/fuzz_%.o $(LIB_OBJ)
	$(CC) $(OPT) -o $@ $^ $(LIBS) $(LDFLAGS)

$(OUT)/obj/%.o: %.c $(OUT)/gen/version-gen.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(OBJ_CFLAGS) -Itest/unit -MMD -MP -c $< -o $@

# Regenerated on every run, replaced only when its content changes, so a new commit
# rebuilds one file and an unchanged tree rebuilds nothing.
$(OUT)/gen/version-gen.h: FORCE
	@mkdir -p $(dir $@)
	@{ cat $(DEPS_DIR)/versions.h; \
	   echo "#define MESHD_GIT_COMMIT \"$(GIT_COMMIT)\""; \
	   echo "#define MESHD_BUILD_FLAVOR \"$(FLAVOR)\""; \
	   echo "#define MESHD_LIBC \"$(LIBC)\""; } > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@

FORCE:
.PHONY: all unit fuzz FORCE
-include $(shell find $(OUT)/obj -name '*.d' 2>/dev/null)
