# The allocator: build/libhakmem.so (override + hk_ API) and build/libhakmem.a.
# HAKMEM_BUILD_STATS=1 compiles the per-class counters that touch the fast paths.
LIB_SRCS := $(wildcard src/*.c)
LIB_HDRS := $(wildcard src/*.h include/*.h)
LIB_CFLAGS := $(CFLAGS_BASE) -fvisibility=hidden -ftls-model=initial-exec -fno-plt \
              -fno-semantic-interposition
ifeq ($(HAKMEM_BUILD_STATS),1)
LIB_CFLAGS += -DHAKMEM_BUILD_STATS=1
endif
LIB_OBJS := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRCS))

$(BUILD)/obj/%.o: src/%.c $(LIB_HDRS) | $(BUILD)/obj
	$(CC) $(LIB_CFLAGS) -c $< -o $@

$(BUILD)/obj:
	mkdir -p $@

# -z nodelete: dlclose never unmaps the library, whose background purger thread may still run.
$(BUILD)/libhakmem.so: $(LIB_OBJS)
	$(CC) -shared -o $@ $(LIB_OBJS) -lpthread -Wl,-z,now -Wl,-z,nodelete

$(BUILD)/libhakmem.a: $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $(LIB_OBJS)

# `make stats-lib`: the same library with per-class counters, in build/stats/.
.PHONY: stats-lib
stats-lib:
	$(MAKE) HAKMEM_BUILD_STATS=1 BUILD=$(BUILD)/stats $(BUILD)/stats/libhakmem.so
