# The allocator: build/libhakmem.so (override + hk_ API) and build/libhakmem.a.
# HAKMEM_BUILD_STATS=1 compiles the per-class counters that touch the fast paths.
LIB_SRCS := $(wildcard src/*.c)
LIB_HDRS := $(wildcard src/*.h include/*.h)
LIB_CFLAGS := $(CFLAGS_BASE) -fvisibility=hidden -ftls-model=initial-exec -fno-plt \
              -fno-semantic-interposition
ifeq ($(HAKMEM_BUILD_STATS),1)
LIB_CFLAGS += -DHAKMEM_BUILD_STATS=1
endif
ifeq ($(HAKMEM_HARDENED),1)
LIB_CFLAGS += -DHAKMEM_HARDENED=1
endif
LIB_OBJS := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRCS))

# The version has one source, the HAKMEM_VERSION_* lines of include/hakmem.h; the soname
# carries the major version.
hk_version_part = $(shell awk '$$1 ~ /^.define$$/ && $$2 == "HAKMEM_VERSION_$(1)" {print $$3}' \
                    include/hakmem.h)
VERSION_MAJOR := $(call hk_version_part,MAJOR)
VERSION_MINOR := $(call hk_version_part,MINOR)
VERSION_PATCH := $(call hk_version_part,PATCH)
VERSION       := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)
SONAME        := libhakmem.so.$(VERSION_MAJOR)

$(BUILD)/obj/%.o: src/%.c $(LIB_HDRS) | $(BUILD)/obj
	$(CC) $(LIB_CFLAGS) -c $< -o $@

$(BUILD)/obj:
	mkdir -p $@

# -z nodelete: dlclose never unmaps the library, whose background purger thread may still run.
$(BUILD)/libhakmem.so: $(LIB_OBJS) mk/lib.mk include/hakmem.h
	$(CC) -shared -Wl,-soname,$(SONAME) -o $@ $(LIB_OBJS) -lpthread -Wl,-z,now -Wl,-z,nodelete

$(BUILD)/libhakmem.a: $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $(LIB_OBJS)

# `make stats-lib`: the same library with per-class counters, in build/stats/.
.PHONY: stats-lib
stats-lib:
	$(MAKE) HAKMEM_BUILD_STATS=1 BUILD=$(BUILD)/stats $(BUILD)/stats/libhakmem.so

# `make hardened`: the same sources with the hardened build's checks (src/harden.h), in
# build/hardened/ (libhakmem.so and libhakmem.a).
.PHONY: hardened
hardened:
	$(MAKE) HAKMEM_HARDENED=1 BUILD=$(BUILD)/hardened $(BUILD)/hardened/libhakmem.so \
	    $(BUILD)/hardened/libhakmem.a
