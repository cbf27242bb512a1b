# wsrelay: one non-recursive Makefile. `make help` lists the targets.
.DEFAULT_GOAL := all
.SUFFIXES:
.DELETE_ON_ERROR:
.SECONDARY:

SAN ?=
OPT ?= 2
V ?= 0
PORT ?= 8080
Q := $(if $(filter 1,$(V)),,@)
comma := ,
VARIANT := $(if $(SAN),$(subst $(comma),-,$(SAN)),plain)$(if $(filter-out 2,$(OPT)),-O$(OPT))
BUILD ?= build
B := $(BUILD)/$(VARIANT)

CC := gcc
CXX := g++
CPPFLAGS := -I. -D_GNU_SOURCE
CFLAGS := -std=gnu11 -O$(OPT) -g -fno-omit-frame-pointer -pthread \
          -Wall -Wextra -Wshadow -Wconversion -Wno-sign-conversion
CXXFLAGS := -std=gnu++17 -O$(OPT) -g -fno-omit-frame-pointer -pthread -Wall -Wextra
LDFLAGS := -pthread
ifeq ($(CI),true)
CFLAGS += -Werror
endif
# Sanitizer builds use the sanitizer's malloc; normal builds use jemalloc.
ifneq ($(SAN),)
CFLAGS += -fsanitize=$(SAN) -fno-sanitize-recover=all
CXXFLAGS += -fsanitize=$(SAN)
LDFLAGS += -fsanitize=$(SAN)
MALLOC_LIBS :=
else
MALLOC_LIBS := -ljemalloc
endif
LDLIBS := -lcrypto
# The io_uring backend is built when liburing's header is there
# (scripts/deps.sh installs liburing-dev); without it --io=uring falls back.
HAVE_URING := $(shell printf '\043include <liburing.h>\n' | $(CC) -E -x c - >/dev/null 2>&1 && echo 1)
ifeq ($(HAVE_URING),1)
CPPFLAGS += -DWSR_HAVE_URING
LDLIBS += -luring
endif

# Rebuild everything when the flags change.
FLAGS_NOW := $(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) $(CXXFLAGS)
$(B)/.flags: FORCE
	@mkdir -p $(@D)
	@if [ "$$(cat $@ 2>/dev/null)" != '$(FLAGS_NOW)' ]; then echo '$(FLAGS_NOW)' > $@; fi
FORCE:

# ---- sources -----------------------------------------------------------------
CORE_SRCS := $(wildcard core/*.c)
NET_SRCS := $(filter-out net/main.c,$(wildcard net/*.c))
WSLOAD_SRCS := $(wildcard bench/wsload/*.c)
TEST_SRCS := $(wildcard tests/test_*.c)
FUZZ_SRCS := $(filter-out tests/fuzz_replay_main.c,$(wildcard tests/fuzz_*.c))
FAKE_SRCS := $(wildcard tests/fakes/*.c)
MICRO_SRCS := $(wildcard bench/micro/*.cc)
PEER_SRCS := $(wildcard bench/peers/*.c)

CORE_OBJS := $(CORE_SRCS:%.c=$(B)/%.o)
NET_OBJS := $(NET_SRCS:%.c=$(B)/%.o)
WSLOAD_OBJS := $(WSLOAD_SRCS:%.c=$(B)/%.o)
FAKE_OBJS := $(FAKE_SRCS:%.c=$(B)/%.o)
TESTS := $(TEST_SRCS:tests/%.c=$(B)/tests/%)
FUZZ_REPLAYS := $(FUZZ_SRCS:tests/%.c=$(B)/tests/%)
PEERS := $(PEER_SRCS:bench/peers/%.c=$(B)/bench/peers/%)
ALL_OBJS := $(CORE_OBJS) $(NET_OBJS) $(B)/net/main.o $(WSLOAD_OBJS) $(FAKE_OBJS) \
            $(TEST_SRCS:%.c=$(B)/%.o) $(FUZZ_SRCS:%.c=$(B)/%.o) $(B)/tests/fuzz_replay_main.o

$(B)/%.o: %.c $(B)/.flags
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@
$(B)/%.o: %.cc $(B)/.flags
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CXX     $<")
	$(Q)$(CXX) $(CPPFLAGS) $(CXXFLAGS) -MMD -MP -c $< -o $@
-include $(ALL_OBJS:.o=.d)

$(B)/libcore.a: $(CORE_OBJS)
	$(Q)rm -f $@ && ar rcs $@ $^
$(B)/libnet.a: $(NET_OBJS)
	$(Q)rm -f $@ && ar rcs $@ $^

# ---- programs ------------------------------------------------------------------
$(B)/wsrelay: $(B)/net/main.o $(B)/libnet.a $(B)/libcore.a
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) $(MALLOC_LIBS)
$(B)/wsload: $(WSLOAD_OBJS) $(B)/libcore.a
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) -lm
$(B)/bench/peers/%: $(B)/bench/peers/%.o $(B)/libcore.a
	$(Q)$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) $(PEER_LIBS_$*)
PEER_LIBS_lws_echo := -lwebsockets

# Unit tests link the module under test from the libraries (an archive only
# contributes the objects a test references) plus the fakes it asks for.
$(B)/tests/test_%: $(B)/tests/test_%.o $(FAKE_OBJS) $(B)/libnet.a $(B)/libcore.a
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $(TEST_LDFLAGS_$*) $^ -o $@ -lcmocka $(LDLIBS)
# wsload's own modules are not in the libraries: name them.
$(B)/tests/test_wsload_mask: $(B)/bench/wsload/mask.o
# Fuzz targets also link with a replay main() so `make test` runs their corpus.
$(B)/tests/fuzz_%: $(B)/tests/fuzz_%.o $(B)/tests/fuzz_replay_main.o $(B)/libcore.a
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)
$(B)/tests/fuzz_replay_main.o: tests/fuzz_replay_main.c $(B)/.flags
	@mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

PROGRAMS := $(B)/wsrelay $(if $(WSLOAD_SRCS),$(B)/wsload)
all: $(PROGRAMS)
tests: $(TESTS) $(FUZZ_REPLAYS)

# ---- dependencies (Debian packages, npm) ---------------------------------------
deps:
	$(Q)scripts/deps.sh

# ---- run -----------------------------------------------------------------------
run: deps $(B)/wsrelay
	$(B)/wsrelay --port $(PORT) --static static

# ---- tests ---------------------------------------------------------------------
# Each group prints a closing "N passed, N failed" line; `test` runs them all.
export BUILD
test-unit: $(TESTS)
	$(Q)scripts/run-tests.sh unit $(TESTS)
test-fuzz-replay: $(FUZZ_REPLAYS)
	$(Q)for f in $(FUZZ_REPLAYS); do n=$${f##*/}; echo "$$f tests/corpus/$$n"; done | \
	    scripts/run-tests.sh fuzz-replay --pairs
# The integration suite runs once per I/O backend (tests/integration/wsr.py
# passes --io and checks the server's banner says it runs that backend).
IO_BACKENDS := epoll $(if $(filter 1,$(HAVE_URING)),uring)
test-integration: $(PROGRAMS)
	$(Q)for io in $(IO_BACKENDS); do \
	    WSR_IO=$$io WSRELAY=$(B)/wsrelay WSLOAD=$(B)/wsload SAN='$(SAN)' \
	        scripts/run-tests.sh integration-$$io --py tests/integration/test_*.py || exit 1; done
test-e2e: $(B)/wsrelay
	$(Q)WSRELAY=$(B)/wsrelay B=$(B) scripts/run-e2e.sh
test-bench-smoke: all $(PEERS) $(if $(MICRO_SRCS),$(B)/bench/micro/micro)
	$(Q)B=$(B) scripts/bench-smoke.sh

TEST_GROUPS := test-unit test-fuzz-replay test-integration
ifeq ($(SAN),)
TEST_GROUPS += test-e2e test-bench-smoke
endif
test: deps
	$(Q)rm -f $(BUILD)/.test-tally
	$(Q)$(MAKE) --no-print-directory all tests
	$(Q)rc=0; for g in $(TEST_GROUPS); do $(MAKE) --no-print-directory $$g || rc=1; done; \
	    scripts/run-tests.sh --total; exit $$rc

# ---- fuzzing (clang libFuzzer) -------------------------------------------------
FUZZ_SECONDS ?= 60
FB := $(BUILD)/fuzz
FUZZ_BINS := $(FUZZ_SRCS:tests/%.c=$(FB)/%)
FUZZ_CFLAGS := -std=gnu11 -O1 -g -fsanitize=fuzzer,address,undefined -I. -D_GNU_SOURCE
$(FB)/%: tests/%.c $(CORE_SRCS) $(wildcard core/*.h)
	@mkdir -p $(@D)
	$(Q)clang $(FUZZ_CFLAGS) $< $(CORE_SRCS) -o $@ -lcrypto
fuzz: $(FUZZ_BINS)
	$(Q)for f in $(FUZZ_BINS); do n=$${f##*/}; mkdir -p tests/corpus/$$n $(FB)/corpus/$$n; \
	    echo "== $$n for $(FUZZ_SECONDS)s"; \
	    $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $(FB)/corpus/$$n tests/corpus/$$n \
	        2>&1 | grep -E 'stat::number_of_executed_units|ERROR|SUMMARY' || exit 1; done

# ---- benchmarks and profiles ---------------------------------------------------
MICRO := $(B)/bench/micro/micro
$(MICRO): $(MICRO_SRCS:%.cc=$(B)/%.o) $(B)/libcore.a
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CXX) $(LDFLAGS) $^ -o $@ -lbenchmark $(LDLIBS)
-include $(MICRO_SRCS:%.cc=$(B)/%.d)
bench: deps all $(if $(MICRO_SRCS),$(MICRO)) $(filter %/tcp_echo,$(PEERS))
	$(Q)B=$(B) bench/bench.sh
flamegraph: deps all
	$(Q)B=$(B) bench/flamegraph.sh

clean:
	rm -rf build

help:
	@echo "targets: all run test bench fuzz flamegraph clean (variants: SAN=address,undefined SAN=thread OPT=0; V=1 shows commands)"

.PHONY: all tests deps run test test-unit test-fuzz-replay test-integration test-e2e \
        test-bench-smoke fuzz bench flamegraph clean help FORCE
